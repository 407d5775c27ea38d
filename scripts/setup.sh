#!/usr/bin/env bash
# Installs every Debian 12 package the build and the tests need (run as root,
# or with sudo available); libclang-rt-22-dev holds the sanitizer and
# libFuzzer runtimes of scripts/sanitizer-tests.sh and scripts/fuzz.sh. The CUDA toolkit is optional and not installed here.
set -euo pipefail
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  build-essential cmake ninja-build ccache pkg-config python3 \
  clang-22 lld-22 llvm-22-dev llvm-22-tools libmlir-22-dev mlir-22-tools \
  nlohmann-json3-dev libpcre2-dev libutf8proc-dev libgtest-dev libcli11-dev \
  libclang-rt-22-dev \
  >/dev/null
echo "setup: Debian packages installed"
