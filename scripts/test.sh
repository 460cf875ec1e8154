#!/usr/bin/env bash
# Set up and run every test. PostgreSQL tests use postgresql://postgres@127.0.0.1:5432/test
# (DUBAN_TEST_POSTGRES overrides); with DUBAN_REQUIRE_POSTGRES=1 (as in CI) they fail, not skip,
# when it is missing.
#
# The suite runs in parallel (pytest-xdist): DUBAN_TEST_WORKERS processes, by default one more than
# the cores (the process-level tests spend much of their time waiting on daemons, browsers and
# PostgreSQL). Work-stealing keeps the few long tests (daemon kill loops, the property test, the
# wheel, the browser) from queueing behind each other on one worker. `-n 0` runs it in one process.
set -euo pipefail
cd "$(dirname "$0")/.."
# .ci/run has just set up (a second pip install of the same tree costs ~20 s)
[ "${DUBAN_SET_UP:-}" = 1 ] || scripts/setup.sh
workers=${DUBAN_TEST_WORKERS:-$(( $(nproc) + 1 ))}
exec .venv/bin/python -m pytest -n "$workers" --dist worksteal "$@"
