#!/usr/bin/env bash
# Debian packages the test suite needs besides Python's: poppler-utils (pdftotext reads the PDFs back)
# and the DejaVu fonts the PDFs embed. Installed only when missing; fails under CI when it cannot.
set -u
missing=()
command -v pdftotext >/dev/null 2>&1 || missing+=(poppler-utils)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "system packages: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"; } >/dev/null; then
  echo "system packages: could not install ${missing[*]}"
  [ "${CI:-}" = "true" ] && exit 1
fi
exit 0
