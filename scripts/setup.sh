#!/usr/bin/env bash
# Set up duban on a fresh machine: system packages (when root and apt is there), a virtualenv in
# .venv, and duban installed into it with its test extras. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for cand in python3.13 python3.12 python3.11 python3; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      PY=$cand; break
    fi
  done
fi
[ -n "$PY" ] || { echo "duban needs Python 3.11 or newer" >&2; exit 2; }

# Graphviz draws state diagrams; the CJK fonts let diagrams and reports show Chinese.
need=()
command -v dot >/dev/null 2>&1 || need+=(graphviz)
fc-list 2>/dev/null | grep -qi "Noto Sans CJK" || need+=(fonts-noto-cjk)
# LibreOffice turns the .docx report into PDF and poppler reads it back (tests); Debian's Chromium
# drives the board in the browser tests (Playwright launches it: never `playwright install`).
command -v soffice >/dev/null 2>&1 || need+=(libreoffice-writer-nogui)
# Calc opens the exported ledgers in a test (formula-looking cells must stay text)
ls /usr/lib/libreoffice/program/libsclo.so >/dev/null 2>&1 || need+=(libreoffice-calc-nogui)
command -v pdftotext >/dev/null 2>&1 || need+=(poppler-utils)
[ -x /usr/bin/chromium ] || need+=(chromium)
# pg_dump and pg_restore: `duban backup` / `duban restore` of a PostgreSQL database
command -v pg_dump >/dev/null 2>&1 && command -v pg_restore >/dev/null 2>&1 || need+=(postgresql-client)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing system packages: ${need[*]}"
    apt-get update -qq >/dev/null
    # older releases have no -nogui flavour of Writer; the full one converts just the same
    if [[ " ${need[*]} " == *" libreoffice-writer-nogui "* ]] && ! apt-cache show libreoffice-writer-nogui >/dev/null 2>&1; then
      need=("${need[@]/libreoffice-writer-nogui/libreoffice-writer}")
    fi
    if [[ " ${need[*]} " == *" libreoffice-calc-nogui "* ]] && ! apt-cache show libreoffice-calc-nogui >/dev/null 2>&1; then
      need=("${need[@]/libreoffice-calc-nogui/libreoffice-calc}")
    fi
    # without recommends: LibreOffice and Chromium would otherwise pull in Java, desktop services…
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "note: please install ${need[*]} (state diagrams, Chinese fonts, report and browser tests, PostgreSQL backups)" >&2
  fi
fi

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
# promtool checks /metrics in a test. Taken out of Debian's prometheus package rather than installing
# it: the package would also enable a Prometheus server on :9090.
if [ ! -x .venv/bin/promtool ] && command -v apt-get >/dev/null 2>&1; then
  if command -v promtool >/dev/null 2>&1; then
    ln -sf "$(command -v promtool)" .venv/bin/promtool
  else
    tmp=$(mktemp -d)
    if (cd "$tmp" && apt-get download -qq prometheus >/dev/null 2>&1) && dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/x"; then
      cp "$tmp/x/usr/bin/promtool" .venv/bin/promtool
    else
      echo "note: promtool (Debian's prometheus package) not found: the /metrics lint test will fail" >&2
    fi
    rm -rf "$tmp"
  fi
fi
echo "duban installed in .venv ($(.venv/bin/duban --version))"
