// RUN: not qwen-opt %s --split-input-file --qwen-gpu-lower-kernels 2>&1 | FileCheck %s

// A tensor-core schedule (AttentionMma.cpp) that the kernel cannot take:
// qwen-select-schedule never makes one (it keeps an f32 cache on CUDA
// cores, test/Schedule/attention-mma.mlir), but a hand-written schedule is
// refused, not miscompiled.

// CHECK: error: 'func.func' op tensor-core attention needs a bf16 or f16 KV cache
module {
  func.func @step(%arg0: tensor<?xi32> {qtf.input = "positions"}, %arg1: tensor<?xi32> {qtf.input = "token_seq"}, %arg2: tensor<?x?xi32> {qtf.input = "block_table"}, %arg3: tensor<?x8x64xf32> {qtf.input = "tokens"}, %arg4: !qtf.kv_cache<layers = 2, kv_heads = 2, head_dim = 64, page_size = 16, f32>) -> tensor<?x8x64xf32> {
    %r = qkernel.launch @kernels::@qk0_attention(%arg3, %arg4, %arg0, %arg1, %arg2) : (tensor<?x8x64xf32>, !qtf.kv_cache<layers = 2, kv_heads = 2, head_dim = 64, page_size = 16, f32>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>) -> tensor<?x8x64xf32>
    return %r : tensor<?x8x64xf32>
  }
  module @kernels {
    func.func @qk0_attention(%arg0: tensor<?x8x64xf32>, %arg1: !qtf.kv_cache<layers = 2, kv_heads = 2, head_dim = 64, page_size = 16, f32>, %arg2: tensor<?xi32>, %arg3: tensor<?xi32>, %arg4: tensor<?x?xi32>) -> tensor<?x8x64xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<attention>, qkernel.schedule = #qkernel.schedule<target = cuda, threads = 128, vector_width = 4, lanes = 16, tile = [64, 64], tile_lanes = 4, tensor_cores = true, decode_threads = 128, decode_lanes = 4, decode_tile = [4], splits = 32, combine_threads = 64, split_keys = 64>} {
      %a = qtf.paged_attention %arg0, %arg1[1], %arg2, %arg3, %arg4 {scale = 0.125 : f64} : tensor<?x8x64xf32>, !qtf.kv_cache<layers = 2, kv_heads = 2, head_dim = 64, page_size = 16, f32>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x8x64xf32>
      return %a : tensor<?x8x64xf32>
    }
  }
}

// -----

// Q must be 16 rows per warp (4 warps: 64).
// CHECK: error: 'func.func' op tensor-core attention schedule does not fit head_dim 64
module {
  func.func @step(%arg0: tensor<?xi32> {qtf.input = "positions"}, %arg1: tensor<?xi32> {qtf.input = "token_seq"}, %arg2: tensor<?x?xi32> {qtf.input = "block_table"}, %arg3: tensor<?x8x64xf32> {qtf.input = "tokens"}, %arg4: !qtf.kv_cache<layers = 2, kv_heads = 2, head_dim = 64, page_size = 16, bf16>) -> tensor<?x8x64xf32> {
    %r = qkernel.launch @kernels::@qk0_attention(%arg3, %arg4, %arg0, %arg1, %arg2) : (tensor<?x8x64xf32>, !qtf.kv_cache<layers = 2, kv_heads = 2, head_dim = 64, page_size = 16, bf16>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>) -> tensor<?x8x64xf32>
    return %r : tensor<?x8x64xf32>
  }
  module @kernels {
    func.func @qk0_attention(%arg0: tensor<?x8x64xf32>, %arg1: !qtf.kv_cache<layers = 2, kv_heads = 2, head_dim = 64, page_size = 16, bf16>, %arg2: tensor<?xi32>, %arg3: tensor<?xi32>, %arg4: tensor<?x?xi32>) -> tensor<?x8x64xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<attention>, qkernel.schedule = #qkernel.schedule<target = cuda, threads = 128, vector_width = 4, lanes = 16, tile = [32, 64], tile_lanes = 4, tensor_cores = true, decode_threads = 128, decode_lanes = 4, decode_tile = [4], splits = 32, combine_threads = 64, split_keys = 64>} {
      %a = qtf.paged_attention %arg0, %arg1[1], %arg2, %arg3, %arg4 {scale = 0.125 : f64} : tensor<?x8x64xf32>, !qtf.kv_cache<layers = 2, kv_heads = 2, head_dim = 64, page_size = 16, bf16>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x8x64xf32>
      return %a : tensor<?x8x64xf32>
    }
  }
}
