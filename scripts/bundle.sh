#!/usr/bin/env bash
# Build an offline bundle: one archive per platform with duban's wheel, every dependency's wheel for
# the target Python and platform, the shipped files and install.sh, which installs with
# `pip --no-index` (no package index is reached on the machine it is carried to).
#
#   scripts/bundle.sh [--platform x86_64|aarch64|all] [--python 3.11] [-o DIR]
#
# This machine needs the package index (or a mirror) once, to fetch the wheels; the target needs
# only Python (the same minor version) with venv. PostgreSQL's driver is in the bundle and installed
# with `install.sh --postgres`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

platforms=(x86_64 aarch64)
pyver=""
out="$root/dist"
while [ $# -gt 0 ]; do
  case "$1" in
    --platform) shift; [ "${1:-}" = all ] && platforms=(x86_64 aarch64) || platforms=("${1:?--platform needs x86_64, aarch64 or all}") ;;
    --python) shift; pyver=${1:?--python needs a version such as 3.11} ;;
    -o|--out) shift; out=${1:?-o needs a folder} ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bundle.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
for p in "${platforms[@]}"; do
  case "$p" in x86_64|aarch64) ;; *) echo "bundle.sh: unknown platform $p: x86_64 or aarch64" >&2; exit 2 ;; esac
done

py=.venv/bin/python
[ -x "$py" ] || py=$(command -v python3)
[ -n "$pyver" ] || pyver=$("$py" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
[[ "$pyver" =~ ^3\.[0-9]+$ ]] || { echo "bundle.sh: --python wants MAJOR.MINOR, e.g. 3.11" >&2; exit 2; }
abi="cp${pyver/./}"
version=$("$py" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pip=("$py" -m pip -q --disable-pip-version-check)
# this machine's pip configuration may name mirror folders that do not exist: not worth a warning each
quiet() { "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }

echo "building duban $version's wheel"
quiet "${pip[@]}" wheel --no-deps -w "$work/own" . >/dev/null
# Dependencies published only as source (sdnotify) are built here into pure-Python wheels, which
# the per-platform download below then finds instead of the source it cannot take.
echo "building the pure-Python wheels of dependencies published as source only"
own=$(ls "$work/own/"duban-*.whl)
quiet "${pip[@]}" wheel -w "$work/host" "$own[postgres]" >/dev/null
mkdir -p "$work/pure"
cp "$work/host/"*-none-any.whl "$work/pure/"

mkdir -p "$out"
pack() {
  local arch=$1 name="duban-$version-$abi-$1" dest="$work/duban-$version-$abi-$1"
  mkdir -p "$dest/wheels"
  local tags=()
  for t in manylinux_2_17 manylinux2014 manylinux_2_24 manylinux_2_28 manylinux_2_31 manylinux_2_34; do
    tags+=(--platform "${t}_$arch")
  done
  quiet "${pip[@]}" download --only-binary=:all: "${tags[@]}" --python-version "$pyver" --implementation cp \
    --abi "$abi" --abi abi3 --abi none --find-links "$work/own" --find-links "$work/pure" \
    -d "$dest/wheels" "duban[postgres]==$version" >/dev/null
  cp scripts/bundle/install.sh "$dest/install.sh"
  chmod +x "$dest/install.sh"
  cp README.md "$dest/"
  mkdir -p "$dest/packaging"
  cp packaging/duban.service packaging/container-entry.sh Containerfile "$dest/packaging/"
  printf '%s\n' "duban $version" "python $pyver ($abi)" "platform manylinux $arch" > "$dest/BUNDLE"
  (cd "$dest/wheels" && ls) > "$dest/WHEELS"
  tar -C "$work" -czf "$out/$name.tar.gz" "$name"
  echo "wrote $out/$name.tar.gz ($(du -h "$out/$name.tar.gz" | cut -f1), $(wc -l < "$dest/WHEELS") wheels)"
}
echo "fetching every dependency's wheel for CPython $pyver on manylinux ${platforms[*]}"
# the platforms' downloads wait on the index, not the CPU: side by side
pids=()
for arch in "${platforms[@]}"; do
  pack "$arch" & pids+=($!)
done
for pid in "${pids[@]}"; do
  wait "$pid"
done
