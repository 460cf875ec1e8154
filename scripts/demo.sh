#!/usr/bin/env bash
# The main job on the embedded SQLite default: set up, create the database, import the shipped
# example ledger (璧山区科技局 2022 巡察整改台账) and print the status board.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export DUBAN_CONFIG="$PWD/config.toml"
.venv/bin/duban init
.venv/bin/duban ledger import examples/bishan-keji-2022.csv --feedback-date 2022-07-15
.venv/bin/duban status
