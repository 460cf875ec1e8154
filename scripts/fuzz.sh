#!/usr/bin/env bash
# Fuzz for longer than CI does: the properties of tests/test_fuzz.py (workflow YAML, CSV and XLSX
# ledgers, CLI arguments, HTTP requests), round after round with fresh random cases, until --minutes are up.
# Prints the cases run per kind and every failure (a traceback, a partial write, an exit code
# other than 0/1/2). Usage: scripts/fuzz.sh [--minutes N] (default 10).
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=10
if [[ "${1:-}" == "--minutes" ]]; then minutes="${2:?--minutes needs a number}"; fi
[[ -x .venv/bin/python ]] || scripts/setup.sh >/dev/null
per_round=2000
end=$(( $(date +%s) + minutes * 60 ))
rounds=0; failed=0
log=$(mktemp -t duban-fuzz-XXXXXX.log)
while (( $(date +%s) < end )); do
  if FUZZ_EXAMPLES=$per_round .venv/bin/python -m pytest -q -p no:cacheprovider tests/test_fuzz.py >>"$log" 2>&1; then
    rounds=$((rounds + 1))
  else
    rounds=$((rounds + 1)); failed=$((failed + 1))
  fi
  echo "round $rounds: $((rounds * per_round)) cases of each kind (workflow YAML, CSV, XLSX, CLI, HTTP), failed rounds: $failed"
done
echo "cases per kind: $((rounds * per_round)); failed rounds: $failed; log: $log"
grep -E "^(FAILED|E  )" "$log" | sort | uniq -c | sort -rn | head -20 || true
(( failed == 0 ))
