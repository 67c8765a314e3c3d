#!/usr/bin/env bash
# Install the Debian packages HanoiPay needs beside its Python packages, if any is missing:
#   runtime  fonts-dejavu-core (Vietnamese text in printed signs, receipts and statements)
#   test     chromium, chromium-driver (the pages' end-to-end tests, driven by Playwright)
#   bench    wrk (an HTTP load generator that costs the server almost no CPU)
# Usage: scripts/system-packages.sh runtime|test|bench ...
set -euo pipefail

declare -A PACKAGES=(
  [runtime]="fonts-dejavu-core"
  [test]="fonts-dejavu-core chromium chromium-driver"
  [bench]="wrk"
)

wanted=()
for group in "$@"; do
  for package in ${PACKAGES[$group]:?unknown group $group}; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || wanted+=("$package")
  done
done
[ ${#wanted[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "need root (or sudo) to install: ${wanted[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "installing Debian packages: ${wanted[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${wanted[@]}" >/dev/null
