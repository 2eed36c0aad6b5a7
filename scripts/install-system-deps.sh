#!/usr/bin/env bash
# Installs the Debian packages tinyml-kit runs for real: the Arm cross compiler and C library, QEMU
# for the Cortex-M4 board, ngspice, libusb (open3d) and the Fashion-MNIST data package.
# As root it installs them; as another user it prints the exact sudo command and exits with 1.
# Usage: install-system-deps.sh [--check]   (--check: only report what is missing; exit 1 if any)
set -euo pipefail

PACKAGES=(gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm ngspice libngspice0
          libusb-1.0-0 dataset-fashion-mnist)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "tinyml-kit: system packages present (${PACKAGES[*]})"
  exit 0
fi
if [ "${1:-}" = "--check" ]; then
  echo "tinyml-kit: missing system packages: ${missing[*]}"
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "tinyml-kit: this script needs Debian/Ubuntu's apt-get; install these by hand: ${missing[*]}" >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "tinyml-kit: missing system packages: ${missing[*]}" >&2
  echo "Run this once as an administrator, then re-run your command:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "tinyml-kit: installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
