#!/bin/sh
# Install duban from this bundle, offline: a virtualenv in PREFIX, every package from ./wheels
# (pip --no-index: no package index is reached), then `duban config init` in the config folder.
#
#   ./install.sh [--prefix /opt/duban] [--config-dir /etc/duban] [--postgres] [--python python3.11]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
prefix=/opt/duban
config_dir=/etc/duban
extra=""
python=""
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) shift; prefix=${1:?--prefix needs a folder} ;;
    --config-dir) shift; config_dir=${1:?--config-dir needs a folder} ;;
    --postgres) extra="[postgres]" ;;
    --python) shift; python=${1:?--python needs an interpreter} ;;
    -h|--help) sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
want=$(sed -n 's/^python \([0-9.]*\) .*/\1/p' "$here/BUNDLE")
if [ -z "$python" ]; then
  for cand in "python$want" python3; do
    command -v "$cand" >/dev/null 2>&1 && { python=$cand; break; }
  done
fi
[ -n "$python" ] || { echo "install.sh: this bundle is for Python $want; none found (--python PATH)" >&2; exit 2; }
have=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
if [ "$have" != "$want" ]; then
  echo "install.sh: this bundle's wheels are for Python $want; $python is $have (--python PATH)" >&2
  exit 2
fi
arch=$(uname -m)
bundled=$(sed -n 's/^platform manylinux \(.*\)/\1/p' "$here/BUNDLE")
if [ "$arch" != "$bundled" ]; then
  echo "install.sh: this bundle is for $bundled; this machine is $arch" >&2
  exit 2
fi

echo "creating $prefix/.venv"
"$python" -m venv "$prefix/.venv"
# --no-index with only the bundle's wheels: an intranet machine never reaches a package index
PIP_CONFIG_FILE=/dev/null "$prefix/.venv/bin/python" -m pip install -q --disable-pip-version-check --no-index \
  --find-links "$here/wheels" "duban$extra"
"$prefix/.venv/bin/duban" --version
if [ -f "$config_dir/config.toml" ]; then
  echo "$config_dir/config.toml exists: kept"
else
  "$prefix/.venv/bin/duban" config init "$config_dir"
fi
cat <<NEXT
next:
  $prefix/.venv/bin/duban --config $config_dir/config.toml init
  $prefix/.venv/bin/duban --config $config_dir/config.toml ledger import LEDGER.xlsx
  $prefix/.venv/bin/duban --config $config_dir/config.toml service install    # the daemon under systemd
NEXT
