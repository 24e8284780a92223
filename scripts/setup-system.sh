#!/usr/bin/env bash
# System packages from Debian: bubblewrap (sandbox), chromium (UI tests, screenshots), junit5 (Java tests),
# python3.11-venv (the sandbox toolchain's venv on /usr/bin/python3.11, see setup-toolchain.sh).
# Installs only what is missing, so a second run costs a dpkg query.
set -euo pipefail
wanted=(bubblewrap chromium junit5 python3.11-venv)
missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "setup: missing Debian packages: ${missing[*]}. Install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "setup: installing Debian packages: ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
