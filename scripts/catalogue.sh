#!/usr/bin/env bash
# The message catalogue: extract (duban's messages and click's own), update zh_CN's .po, compile the .mo.
#   scripts/catalogue.sh           after changing messages; then translate the new entries in the .po
#   scripts/catalogue.sh compile   only compile the .po (tests/test_cli_language.py checks the .mo matches)
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-.venv/bin/python}
locale=engine/locale
if [ "${1:-}" != compile ]; then
    click_dir=$("$py" -c 'import click, os; print(os.path.dirname(click.__file__))')
    "$py" -m babel.messages.frontend extract -F babel.cfg --no-location --sort-output --omit-header \
        -o "$locale/duban.pot" engine notifications "$click_dir"
    "$py" -m babel.messages.frontend update -D duban -i "$locale/duban.pot" -d "$locale" -l zh_CN \
        --no-fuzzy-matching --ignore-obsolete
fi
"$py" -m babel.messages.frontend compile -D duban -d "$locale" -l zh_CN
