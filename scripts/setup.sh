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
  libcpp-httplib-dev curl python3-venv \
  libpng-dev libjpeg62-turbo-dev libwebp-dev \
  >/dev/null
echo "setup: Debian packages installed"

# The server's end-to-end tests (test/Serve) talk to `qwen-run serve` with
# the official OpenAI Python client, installed into a test-only venv.
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="$ROOT/.venv-test"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install -q --disable-pip-version-check "openai>=1.40"
echo "setup: test venv $VENV ($("$VENV/bin/python" -c 'import openai; print("openai", openai.__version__)'))"
