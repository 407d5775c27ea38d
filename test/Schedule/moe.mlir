// RUN: qwen-opt %s --qwen-select-schedule=target=cuda | FileCheck %s --check-prefix=CUDA
// RUN: qwen-opt %s --qwen-select-schedule="target=cuda max-threads=64" | FileCheck %s --check-prefix=T64
// RUN: qwen-opt %s --qwen-select-schedule=target=cpu | FileCheck %s --check-prefix=CPU

// MoE experts. On CUDA, blocks of max-threads gathering up to 8 slots (their x
// and h rows in shared memory: 4 for Qwen3-30B-A3B's hidden 2048 + 768),
// `splits` blocks per expert so the grid has about 512 blocks (at most 8).
// On the CPU, one work item per expert, SwiGLU over blocks of 4 gathered slots
// with f32 FMA register tiles; a step of at least 16 tokens gathers groups of
// up to 64 slots (their bf16 input rows in 256 KiB) and walks the expert's
// weights in panels of at most 256 KiB: Qwen3-30B-A3B's 32 gate / up row
// pairs (32 x 2 x 2048 bf16) and 170 down rows (170 x 768 bf16), in 4 x 2
// register tiles with 8-lane vectors (4 x 4 with 16, see dot-kind.mlir).

// CUDA-LABEL: func.func @qwen3_30b_a3b(
// CUDA-SAME:  qkernel.schedule = #qkernel.schedule<target = cuda, threads = 256, vector_width = 4, tile = [4], splits = 4>
// CUDA-LABEL: func.func @small(
// CUDA-SAME:  qkernel.schedule = #qkernel.schedule<target = cuda, threads = 256, vector_width = 4, tile = [8], splits = 8>

// T64-LABEL: func.func @qwen3_30b_a3b(
// T64-SAME:  qkernel.schedule = #qkernel.schedule<target = cuda, threads = 64, vector_width = 4, tile = [4], splits = 4>
// T64-LABEL: func.func @small(
// T64-SAME:  qkernel.schedule = #qkernel.schedule<target = cuda, threads = 64, vector_width = 4, tile = [8], splits = 8>

// CPU-LABEL: func.func @qwen3_30b_a3b(
// CPU-SAME:  qkernel.schedule = #qkernel.schedule<target = cpu, grain = 1, vector_width = 8, tile = [4, 64, 170], dot = fma, panel = 32, prefill_tile = [4, 2], prefill_tokens = 16>
// CPU-LABEL: func.func @small(
// CPU-SAME:  qkernel.schedule = #qkernel.schedule<target = cpu, grain = 1, vector_width = 8, tile = [4, 64, 32], dot = fma, panel = 16, prefill_tile = [4, 2], prefill_tokens = 16>

module {
  module @kernels {
    func.func @qwen3_30b_a3b(%x: tensor<?x2048xf32>, %ids: tensor<?x8xi32>, %w: tensor<?x8xf32>, %gu: tensor<196608x2048xbf16>, %down: tensor<262144x768xbf16>) -> tensor<?x8x2048xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<experts>} {
      %0 = qtf.moe_expert_ffn %x, %ids, %w, %gu, %down {intermediate_size = 768 : i64, num_experts = 128 : i64} : tensor<?x2048xf32>, tensor<?x8xi32>, tensor<?x8xf32>, tensor<196608x2048xbf16>, tensor<262144x768xbf16> -> tensor<?x8x2048xf32>
      return %0 : tensor<?x8x2048xf32>
    }
    func.func @small(%x: tensor<?x32xf32>, %ids: tensor<?x2xi32>, %w: tensor<?x2xf32>, %gu: tensor<256x32xbf16>, %down: tensor<256x16xbf16>) -> tensor<?x2x32xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<experts>} {
      %0 = qtf.moe_expert_ffn %x, %ids, %w, %gu, %down {intermediate_size = 16 : i64, num_experts = 8 : i64} : tensor<?x32xf32>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<256x32xbf16>, tensor<256x16xbf16> -> tensor<?x2x32xf32>
      return %0 : tensor<?x2x32xf32>
    }
  }
}
