#!/usr/bin/env bash
# Installs the Debian packages voicegw builds and tests with, skipping what
# is already installed. Needs root (or sudo) and Debian's package archive.
#   build:  libopus-dev pkg-config libwebrtc-audio-processing-dev gcc
#   tests:  chromium (softphone end to end), espeak-ng + sox (test speech),
#           sip-tester (SIPp), redis-server (shared limits), iproute2 (loopback-only namespace)
# Usage: scripts/install-deps.sh [build|test]   (default: test, which includes build)
set -euo pipefail
want=(libopus-dev pkg-config libwebrtc-audio-processing-dev gcc libc6-dev)
if [ "${1:-test}" = test ]; then
  want+=(chromium espeak-ng sox sip-tester redis-server iproute2 util-linux)
fi
missing=()
for p in "${want[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing: ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -q "${missing[@]}"
