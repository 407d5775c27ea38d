#!/usr/bin/env bash
# Runs a command against the fake CUDA device (test/tools/fake-cuda): the
# CUDA driver and cuBLASLt emulated on the host, the generated GPU kernels run
# by the SIMT emulator, so the runtime's whole CUDA path (module load, device
# memory, uploads, launches, cuBLASLt descriptors, CUDA graphs) is exercised
# without a GPU.
#   fake-gpu.sh FAKE_LIB EMU_DIR CHECKPOINT [QWEN-COMPILE FLAGS...] -- COMMAND...
# builds the emulated kernels of CHECKPOINT's CUDA compilation (with the
# flags) into EMU_DIR (unless they exist) and runs COMMAND with
# QWEN_CUDA_DRIVER / QWEN_CUBLASLT / QWEN_FAKE_CUDA_KERNELS set and
# QWEN_COMPILE_FLAGS="--target=cuda FLAGS" (for check-reference.sh).
set -euo pipefail
lib=$1; emu=$2; checkpoint=$3; shift 3
flags=()
while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do flags+=("$1"); shift; done
[ "$#" -gt 0 ] && shift
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ -f "$emu/emu.so" ] ||
  bash "$here/../tools/fake-cuda/build-emulated-kernels.sh" "$emu" "$checkpoint" ${flags[@]+"${flags[@]}"} > /dev/null
export QWEN_CUDA_DRIVER=$lib QWEN_CUBLASLT=$lib QWEN_FAKE_CUDA_KERNELS=$emu
export QWEN_COMPILE_FLAGS="--target=cuda${flags[*]+ ${flags[*]}}"
exec "$@"
