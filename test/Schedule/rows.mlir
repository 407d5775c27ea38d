// RUN: qwen-opt %s --qwen-select-schedule=target=cuda | FileCheck %s --check-prefix=CUDA
// RUN: qwen-opt %s --qwen-select-schedule="target=cuda max-threads=64" | FileCheck %s --check-prefix=T64
// RUN: qwen-opt %s --qwen-select-schedule=target=cpu | FileCheck %s --check-prefix=CPU

// The row families (here the q_norm -> rope chain of Qwen3-0.6B) on CUDA
// take blocks of up to max-threads, fitted to the row by the emitter; on
// the CPU one work item per row, vectors of the register width.

// CUDA-LABEL: func.func @qwen3_0_6b_q_rows(
// CUDA-SAME:  qkernel.schedule = #qkernel.schedule<target = cuda, threads = 256>
// T64-LABEL:  func.func @qwen3_0_6b_q_rows(
// T64-SAME:   qkernel.schedule = #qkernel.schedule<target = cuda, threads = 64>
// CPU-LABEL:  func.func @qwen3_0_6b_q_rows(
// CPU-SAME:   qkernel.schedule = #qkernel.schedule<target = cpu, grain = 1, vector_width = 8>

module {
  module @kernels {
    func.func @qwen3_0_6b_q_rows(%qkv: tensor<?x4096xf32>, %w: tensor<128xbf16>, %pos: tensor<?xi32>) -> tensor<?x16x128xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<rows>} {
      %q, %k, %v = qtf.split %qkv [2048, 1024, 1024] : tensor<?x4096xf32> -> tensor<?x2048xf32>, tensor<?x1024xf32>, tensor<?x1024xf32>
      %q3 = qtf.reshape %q : tensor<?x2048xf32> -> tensor<?x16x128xf32>
      %n = qtf.rms_norm %q3, %w {epsilon = 1.0e-6 : f64} : tensor<?x16x128xf32>, tensor<128xbf16> -> tensor<?x16x128xf32>
      %r = qtf.rope %n, %pos {theta = 1.0e6 : f64, rotary_dim = 128 : i64} : tensor<?x16x128xf32>, tensor<?xi32> -> tensor<?x16x128xf32>
      return %r : tensor<?x16x128xf32>
    }
  }
}
