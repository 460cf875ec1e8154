#!/usr/bin/env bash
# The main job on the embedded SQLite default: set up, create the database, import the shipped
# example ledger (璧山区科技局 2022 巡察整改台账), print the status board, then run the daemon in the
# foreground with reminders going to the console. /healthz, /metrics, the board and /calendar.ics
# are served on the address in config.toml ([daemon] listen). Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export DUBAN_CONFIG="$PWD/config.toml"
.venv/bin/duban init
.venv/bin/duban ledger import examples/bishan-keji-2022.csv --feedback-date 2022-07-15 --report-submitted 2022-09-15
.venv/bin/duban status
# the supervising side (reviewers who sign off, an observer): once
if ! .venv/bin/duban user list --json | grep -q '"纪检组长"'; then
  .venv/bin/duban user import examples/users.csv
fi
listen=$(.venv/bin/python -c 'import tomllib; print(tomllib.load(open("config.toml","rb")).get("daemon",{}).get("listen","127.0.0.1:8790"))')
link() {  # a user's signed workspace link, absolute
  local l; l=$(.venv/bin/duban user link "$1")
  case "$l" in /*) echo "http://$listen$l" ;; *) echo "$l" ;; esac
}
echo
echo "the workspace of 办公室 (the link its reminders carry): $(link 办公室)"
echo "a reviewer's, 纪检组长 (signs off 销号 or returns for 二次整改): $(link 纪检组长)"
echo "starting the daemon: health at http://$listen/healthz, the board at http://$listen/ (Ctrl-C stops it)"
exec .venv/bin/duban run
