#!/usr/bin/env bash
# Builds the host-emulated GPU kernels that libqwen-fake-cuda.so runs:
#
#   build-emulated-kernels.sh OUT_DIR qwen-compile-args...
#
# OUT_DIR receives emu.so (wrap_NAME per kernel and simt_launch) and
# kernels.json; point $QWEN_FAKE_CUDA_KERNELS at it. Pass the same
# qwen-compile arguments as for the artifact, minus -o and --target. Tools come
# from PATH: qwen-compile, qwen-opt, mlir-translate, clang.
set -euo pipefail
if [ "$#" -lt 2 ]; then
  echo "usage: $0 OUT_DIR qwen-compile-args..." >&2
  exit 2
fi
OUT="$1"
shift
SIMT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../Codegen/GPU/simt" && pwd)"
mkdir -p "$OUT"
qwen-compile "$@" --target=cuda --emit=mlir --stop-after-stage=kernels > "$OUT/kernels.mlir"
qwen-opt "$OUT/kernels.mlir" --pass-pipeline='builtin.module(gpu.module(qwen-gpu-expand-subgroup-reduce,canonicalize,cse))' > "$OUT/canon.mlir"
python3 "$SIMT/simt.py" lower "$OUT/canon.mlir" "$OUT"
qwen-opt "$OUT/emu.mlir" --qwen-cpu-lower-to-llvm | mlir-translate --mlir-to-llvmir > "$OUT/emu.ll"
clang -O1 -shared -fPIC -Wno-override-module "$OUT/emu.ll" "$SIMT/simt_runtime.c" "$OUT/wrappers.c" \
  -o "$OUT/emu.so" -lm -lpthread
