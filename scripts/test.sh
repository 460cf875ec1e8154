#!/usr/bin/env bash
# Set up and run every test. PostgreSQL tests use postgresql://postgres@127.0.0.1:5432/test
# (DUBAN_TEST_POSTGRES overrides); with DUBAN_REQUIRE_POSTGRES=1 (as in CI) they fail, not skip,
# when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
