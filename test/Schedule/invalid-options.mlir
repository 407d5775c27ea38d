// RUN: not qwen-opt %s --qwen-select-schedule=target=rocm 2>&1 | FileCheck %s --check-prefix=TARGET
// RUN: not qwen-opt %s --qwen-select-schedule="target=cpu vector-width=12" 2>&1 | FileCheck %s --check-prefix=WIDTH
// RUN: not qwen-opt %s --qwen-select-schedule="target=cuda max-threads=48" 2>&1 | FileCheck %s --check-prefix=THREADS
// RUN: not qwen-opt %s --qwen-select-schedule="target=cuda attention-threads=2048" 2>&1 | FileCheck %s --check-prefix=ATTENTION
// RUN: not qwen-opt %s --qwen-select-schedule="bf16-activations=half" 2>&1 | FileCheck %s --check-prefix=BF16
// RUN: not qwen-opt %s --qwen-select-schedule="target=cuda cpu-features=avx512bf16" 2>&1 | FileCheck %s --check-prefix=FEATURES
// RUN: not qwen-opt %s --qwen-select-schedule="target=cuda bf16-activations=round" 2>&1 | FileCheck %s --check-prefix=FEATURES
// RUN: not qwen-opt %s --qwen-select-schedule="target=cuda gpu-gemv=tensor" 2>&1 | FileCheck %s --check-prefix=GEMV
// RUN: not qwen-opt %s --qwen-select-schedule="target=cpu gpu-gemv=generated" 2>&1 | FileCheck %s --check-prefix=GEMV-CPU

// TARGET: error: qwen-select-schedule: target must be cpu or cuda, got 'rocm'
// WIDTH: error: vector-width must be a power of two in [1, 16]
// THREADS: error: max-threads must be a multiple of 32 in [32, 1024]
// ATTENTION: error: attention-threads must be a multiple of 32 in [32, 1024]
// BF16: error: bf16-activations must be auto, off, split or round, not 'half'
// FEATURES: error: cpu-features and bf16-activations are cpu options
// GEMV: error: gpu-gemv must be cublaslt or generated, not 'tensor'
// GEMV-CPU: error: gpu-gemv is a cuda option
module {
  module @kernels {
  }
}
