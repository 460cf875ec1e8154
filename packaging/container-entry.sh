#!/bin/sh
# The container's entry: a config and a schema on first start, then the daemon (or any duban command).
set -eu
if [ ! -f "$DUBAN_CONFIG" ]; then
  duban config init "$(dirname "$DUBAN_CONFIG")"
  # inside a container the health and metrics endpoint must answer beyond loopback to be published
  sed -i 's/^listen = "127\.0\.0\.1:8790"/listen = "0.0.0.0:8790"/' "$DUBAN_CONFIG"
fi
if [ "${1:-run}" = run ]; then
  duban init
fi
exec duban "$@"
