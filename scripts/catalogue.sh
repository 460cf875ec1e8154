#!/usr/bin/env bash
# The message catalogue: extract (duban's messages and click's own), update zh_CN's .po, compile the .mo.
#   scripts/catalogue.sh           after changing messages; then translate the new entries in the .po
#   scripts/catalogue.sh compile   only compile the .po (tests/test_cli_language.py checks the .mo matches)
#   scripts/catalogue.sh stats     how many of the messages found in each folder are translated
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-.venv/bin/python}
locale=engine/locale
if [ "${1:-}" = stats ]; then
    exec "$py" - <<'PY'
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

with open("engine/locale/zh_CN/LC_MESSAGES/duban.po", "rb") as fh:
    book = read_po(fh)
for folder in ("engine/app/cli", "engine", "notifications"):
    found = {m if isinstance(m, str) else m[0]
             for _f, _l, m, _c, _x in extract_from_dir(folder, method_map=[("**.py", "engine.i18n.extract:extract")])}
    done = {m for m in found if (e := book.get(m)) is not None and (e.string if isinstance(e.string, str) else e.string[0])}
    print(f"{folder}: {len(done)} of {len(found)} messages translated ({len(done) / len(found):.1%})")
PY
fi
if [ "${1:-}" != compile ]; then
    click_dir=$("$py" -c 'import click, os; print(os.path.dirname(click.__file__))')
    "$py" -m babel.messages.frontend extract -F babel.cfg --no-location --sort-output --omit-header \
        -o "$locale/duban.pot" engine notifications "$click_dir"
    "$py" -m babel.messages.frontend update -D duban -i "$locale/duban.pot" -d "$locale" -l zh_CN \
        --no-fuzzy-matching --ignore-obsolete
fi
"$py" -m babel.messages.frontend compile -D duban -d "$locale" -l zh_CN
