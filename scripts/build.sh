#!/usr/bin/env bash
# Configures and builds everything into build/ (or $QWEN_BUILD_DIR); extra
# CMake options for a new build folder in $QWEN_CMAKE_ARGS (e.g. -DQWEN_SANITIZE=ON).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${QWEN_BUILD_DIR:-$ROOT/build}"
JOBS="${QWEN_JOBS:-$(nproc)}"
if [ ! -f "$BUILD/build.ninja" ]; then
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_COMPILER=clang-22 -DCMAKE_CXX_COMPILER=clang++-22 -DLLVM_USE_LINKER=lld \
    -DMLIR_DIR=/usr/lib/llvm-22/lib/cmake/mlir \
    -DLLVM_EXTERNAL_LIT=/usr/lib/llvm-22/bin/lit ${QWEN_CMAKE_ARGS:-}
fi
ninja -C "$BUILD" -j "$JOBS"
echo "build: done ($BUILD/bin)"
