#!/usr/bin/env bash
# Sandbox runtimes, built OUTSIDE the repo and the home directory (the sandbox binds this directory
# read-only, and must never see the repo, data/ or ~):
#   $TC/python   venv on Debian's /usr/bin/python3.11 (already visible in the sandbox through /usr),
#                with pytest + coverage pinned
#   $TC/node     node_modules with typescript, tsx, prettier pinned (node itself is Debian's /usr/bin/node)
#   $TC/stamp.json  the versions; a second run with the same pins only reads this file and exits.
# Java needs nothing here: the JDK and Debian's junit5 jars live under /usr (scripts/setup-system.sh).
set -euo pipefail

TC="${WORKBENCH_TOOLCHAIN_DIR:-/opt/workbench-toolchain}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BASE_PYTHON="${WORKBENCH_TOOLCHAIN_PYTHON:-/usr/bin/python3.11}"

PYTEST=9.2.0
COVERAGE=7.17.4
TYPESCRIPT=7.0.2
TSX=4.23.15
PRETTIER=3.10.1
# pytest's own dependencies, pinned too so two machines get the same runner.
PY_DEPS="iniconfig==2.3.1 packaging==26.4 pluggy==1.7.0 pygments==2.21.0"
PINS="python:pytest==$PYTEST,coverage==$COVERAGE,${PY_DEPS// /,};node:typescript@$TYPESCRIPT,tsx@$TSX,prettier@$PRETTIER;base:$BASE_PYTHON"

# The sandbox must not see the repo or a home directory, so the toolchain may not live inside either.
tc_abs="$(realpath -m "$TC")"
for forbidden in "$REPO" "${HOME:-/root}"; do
  case "$tc_abs/" in
    "$(realpath -m "$forbidden")"/*)
      echo "setup-toolchain: $tc_abs is inside $forbidden; the sandbox binds it, so put it elsewhere" \
           "(e.g. WORKBENCH_TOOLCHAIN_DIR=/opt/workbench-toolchain)" >&2
      exit 1;;
  esac
done

if [ -f "$TC/stamp.json" ] && grep -qF "\"pins\": \"$PINS\"" "$TC/stamp.json" \
   && [ -x "$TC/python/bin/python" ] && [ -e "$TC/node/node_modules/.bin/tsx" ]; then
  exit 0  # already built with these pins
fi

for tool in "$BASE_PYTHON" node npm; do
  command -v "$tool" >/dev/null || {
    echo "setup-toolchain: $tool not found; run scripts/setup-system.sh (Debian python3.11-venv, nodejs)" >&2
    exit 1
  }
done

# node >= 20: its test runner's junit/lcov reporters and --disable-warning are used by the sandbox.
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
  echo "setup-toolchain: node $(node --version) is too old; install Node.js 20 or newer (e.g. from nodesource)" >&2
  exit 1
fi

echo "setup-toolchain: building $TC"
mkdir -p "$TC"
rm -f "$TC/stamp.json"  # written last: a half-built toolchain is rebuilt by the next run

# Python: a fresh venv every time the pins change (venvs are not relocatable, so build in place).
rm -rf "$TC/python"
"$BASE_PYTHON" -m venv "$TC/python"
PIP_DISABLE_PIP_VERSION_CHECK=1 "$TC/python/bin/python" -m pip install -q --no-input \
  "pytest==$PYTEST" "coverage==$COVERAGE" $PY_DEPS

# Node: exact versions, no audit/fund chatter; node_modules/.bin holds tsx and prettier.
rm -rf "$TC/node"
mkdir -p "$TC/node"
printf '{\n  "name": "workbench-toolchain",\n  "private": true\n}\n' > "$TC/node/package.json"
npm install --prefix "$TC/node" --save-exact --no-audit --no-fund --loglevel=error \
  "typescript@$TYPESCRIPT" "tsx@$TSX" "prettier@$PRETTIER" >/dev/null

# The sandbox runs as an unprivileged uid: everything must be world-readable, nothing writable.
chmod -R a+rX,go-w "$TC"

py_version="$("$TC/python/bin/python" -c 'import sys; print(sys.version.split()[0])')"
node_version="$(node --version)"
java_version="$( (javac -version 2>&1 || echo none) | tail -1)"
cat > "$TC/stamp.json" <<EOF
{
  "pins": "$PINS",
  "python": "$py_version",
  "pytest": "$PYTEST",
  "coverage": "$COVERAGE",
  "node": "$node_version",
  "typescript": "$TYPESCRIPT",
  "tsx": "$TSX",
  "prettier": "$PRETTIER",
  "javac": "$java_version",
  "built": "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
}
EOF
chmod a+r "$TC/stamp.json"
echo "setup-toolchain: ready ($TC/stamp.json)"
