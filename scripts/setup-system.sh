#!/usr/bin/env bash
# System packages from Debian, for the optional parts: bubblewrap (the sandbox), a JDK and junit5 (Java
# in the sandbox), python3.11-venv (the sandbox toolchain's venv on /usr/bin/python3.11, see
# setup-toolchain.sh), chromium (UI tests, screenshots). Node.js is not here: Debian 12's nodejs is 18,
# too old, so setup-toolchain.sh installs one from PyPI when PATH has no node >= 20.
# Installs only what is missing, so a second run costs a dpkg query.
#
# Chat, tasks and dashboards need none of these. So without root (or when apt fails) this prints one
# line naming the missing packages and the apt-get command, and exits 0: setup goes on, and the
# sandbox, its runtimes and the browser report themselves unavailable in `workbench doctor` and the UI.
# Under CI=true a missing package is an error (exit 1): CI runs as root and must have them all.
#
# WORKBENCH_SYSTEM_PACKAGES overrides the list (space-separated), e.g. for an image without chromium.
set -euo pipefail
read -r -a wanted <<< "${WORKBENCH_SYSTEM_PACKAGES:-bubblewrap default-jdk-headless junit5 python3.11-venv chromium}"

in_ci() { case "${CI:-}" in true|TRUE|True|1|yes) return 0;; esac; return 1; }

installed() {
  # Any Debian JDK will do (e.g. openjdk-17-jdk-headless installed by hand): look for javac.
  if [ "$1" = default-jdk-headless ] && [ -x /usr/bin/javac ]; then return 0; fi
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

missing=()
for pkg in "${wanted[@]}"; do
  installed "$pkg" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

give_up() {  # give_up WHY: one line with the fix; exit 0 so setup goes on (1 under CI)
  echo "setup: $1: ${missing[*]}. Chat, tasks and dashboards work without them; for the sandbox, its" \
       "Java runtime and the browser run: sudo apt-get install -y ${missing[*]}" >&2
  if in_ci; then
    echo "setup: CI=true, so missing system packages are an error" >&2
    exit 1
  fi
  exit 0
}

if [ "$(id -u)" -ne 0 ]; then
  give_up "not root, so these Debian packages were not installed"
fi
echo "setup: installing Debian packages: ${missing[*]}"
apt-get update -qq || give_up "apt-get update failed (see above), so these Debian packages were not installed"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
  || give_up "apt-get install failed (see above), so these Debian packages were not installed"
