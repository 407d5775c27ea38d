// RUN: qwen-opt %s --qwen-select-schedule="target=cuda gpu-attention=mma" | FileCheck %s --check-prefix=MMA
// RUN: qwen-opt %s --qwen-select-schedule="target=cuda gpu-attention=simt" | FileCheck %s --check-prefix=SIMT
// RUN: not qwen-opt %s --qwen-select-schedule="target=cuda gpu-attention=wmma" 2>&1 | FileCheck %s --check-prefix=INVALID

// gpu-attention=mma: prefill query tiles on tensor cores
// (passes/Codegen/GPU/AttentionMma.cpp) where the KV cache is bf16 or f16:
// `tensor_cores`, 128 threads (4 warps of 16 query rows: tile[0] = 64) and
// tile[1] keys staged with their values as the cache dtype, rows padded by
// 8 elements, in at most 36 KiB: 64 at head_dim 64 and 128, 32 at 256. The
// per-token walk and the decode variants keep their rules (for 128
// threads). An f32 cache keeps the CUDA-core schedule, as does the default
// (simt; test/Schedule/attention.mlir).

// MMA-LABEL: func.func @head_dim_64(
// MMA-SAME:  qkernel.schedule = #qkernel.schedule<target = cuda, threads = 128, vector_width = 4, lanes = 16, tile = [64, 64], tile_lanes = 4, tensor_cores = true, decode_threads = 128, decode_lanes = 4, decode_tile = [4], splits = 32, combine_threads = 64, split_keys = 64>
// MMA-LABEL: func.func @qwen3_0_6b(
// MMA-SAME:  qkernel.schedule = #qkernel.schedule<target = cuda, threads = 128, vector_width = 4, lanes = 32, tile = [64, 64], tile_lanes = 8, tensor_cores = true, decode_threads = 128, decode_lanes = 8, decode_tile = [2], splits = 32, combine_threads = 128, split_keys = 64>
// MMA-LABEL: func.func @qwen3_8b(
// MMA-SAME:  qkernel.schedule = #qkernel.schedule<target = cuda, threads = 128, vector_width = 4, lanes = 32, tile = [64, 64], tile_lanes = 8, tensor_cores = true, decode_threads = 128, decode_lanes = 8, decode_tile = [4], splits = 32, combine_threads = 128, split_keys = 64>
// MMA-LABEL: func.func @head_dim_256(
// MMA-SAME:  qkernel.schedule = #qkernel.schedule<target = cuda, threads = 128, vector_width = 4, lanes = 32, tile = [64, 32], tile_lanes = 16, tensor_cores = true, decode_threads = 128, decode_lanes = 16, decode_tile = [4], splits = 32, combine_threads = 128, split_keys = 64>
// MMA-LABEL: func.func @f16_cache(
// MMA-SAME:  qkernel.schedule = #qkernel.schedule<target = cuda, threads = 128, vector_width = 4, lanes = 32, tile = [64, 64], tile_lanes = 8, tensor_cores = true, decode_threads = 128, decode_lanes = 8, decode_tile = [4], splits = 32, combine_threads = 128, split_keys = 64>
// MMA-LABEL: func.func @f32_cache(
// MMA-SAME:  qkernel.schedule = #qkernel.schedule<target = cuda, threads = 256, vector_width = 4, lanes = 32, tile = [32, 32], tile_lanes = 8, decode_threads = 128, decode_lanes = 8, decode_tile = [4], splits = 32, combine_threads = 128, split_keys = 64>

// SIMT-NOT: tensor_cores
// SIMT-LABEL: func.func @qwen3_8b(
// SIMT-SAME:  qkernel.schedule = #qkernel.schedule<target = cuda, threads = 256, vector_width = 4, lanes = 32, tile = [32, 32], tile_lanes = 8, decode_threads = 128, decode_lanes = 8, decode_tile = [4], splits = 32, combine_threads = 128, split_keys = 64>

// INVALID: error: gpu-attention must be simt or mma, not 'wmma'

module {
  module @kernels {
    func.func @head_dim_64(%q: tensor<?x16x64xf32>, %kv: !qtf.kv_cache<layers = 1, kv_heads = 2, head_dim = 64, page_size = 16, bf16>, %pos: tensor<?xi32>, %seq: tensor<?xi32>, %bt: tensor<?x?xi32>) -> tensor<?x16x64xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<attention>} {
      %0 = qtf.paged_attention %q, %kv[0], %pos, %seq, %bt {scale = 0.125 : f64} : tensor<?x16x64xf32>, !qtf.kv_cache<layers = 1, kv_heads = 2, head_dim = 64, page_size = 16, bf16>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x16x64xf32>
      return %0 : tensor<?x16x64xf32>
    }
    func.func @qwen3_0_6b(%q: tensor<?x16x128xf32>, %kv: !qtf.kv_cache<layers = 1, kv_heads = 8, head_dim = 128, page_size = 16, bf16>, %pos: tensor<?xi32>, %seq: tensor<?xi32>, %bt: tensor<?x?xi32>) -> tensor<?x16x128xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<attention>} {
      %0 = qtf.paged_attention %q, %kv[0], %pos, %seq, %bt {scale = 0.08838834764831845 : f64} : tensor<?x16x128xf32>, !qtf.kv_cache<layers = 1, kv_heads = 8, head_dim = 128, page_size = 16, bf16>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x16x128xf32>
      return %0 : tensor<?x16x128xf32>
    }
    func.func @qwen3_8b(%q: tensor<?x32x128xf32>, %kv: !qtf.kv_cache<layers = 1, kv_heads = 8, head_dim = 128, page_size = 16, bf16>, %pos: tensor<?xi32>, %seq: tensor<?xi32>, %bt: tensor<?x?xi32>) -> tensor<?x32x128xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<attention>} {
      %0 = qtf.paged_attention %q, %kv[0], %pos, %seq, %bt {scale = 0.08838834764831845 : f64} : tensor<?x32x128xf32>, !qtf.kv_cache<layers = 1, kv_heads = 8, head_dim = 128, page_size = 16, bf16>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x32x128xf32>
      return %0 : tensor<?x32x128xf32>
    }
    func.func @head_dim_256(%q: tensor<?x16x256xf32>, %kv: !qtf.kv_cache<layers = 1, kv_heads = 2, head_dim = 256, page_size = 16, bf16>, %pos: tensor<?xi32>, %seq: tensor<?xi32>, %bt: tensor<?x?xi32>) -> tensor<?x16x256xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<attention>} {
      %0 = qtf.paged_attention %q, %kv[0], %pos, %seq, %bt {scale = 0.0625 : f64} : tensor<?x16x256xf32>, !qtf.kv_cache<layers = 1, kv_heads = 2, head_dim = 256, page_size = 16, bf16>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x16x256xf32>
      return %0 : tensor<?x16x256xf32>
    }
    func.func @f16_cache(%q: tensor<?x32x128xf32>, %kv: !qtf.kv_cache<layers = 1, kv_heads = 8, head_dim = 128, page_size = 16, f16>, %pos: tensor<?xi32>, %seq: tensor<?xi32>, %bt: tensor<?x?xi32>) -> tensor<?x32x128xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<attention>} {
      %0 = qtf.paged_attention %q, %kv[0], %pos, %seq, %bt {scale = 0.08838834764831845 : f64} : tensor<?x32x128xf32>, !qtf.kv_cache<layers = 1, kv_heads = 8, head_dim = 128, page_size = 16, f16>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x32x128xf32>
      return %0 : tensor<?x32x128xf32>
    }
    func.func @f32_cache(%q: tensor<?x32x128xf32>, %kv: !qtf.kv_cache<layers = 1, kv_heads = 8, head_dim = 128, page_size = 16, f32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>, %bt: tensor<?x?xi32>) -> tensor<?x32x128xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<attention>} {
      %0 = qtf.paged_attention %q, %kv[0], %pos, %seq, %bt {scale = 0.08838834764831845 : f64} : tensor<?x32x128xf32>, !qtf.kv_cache<layers = 1, kv_heads = 8, head_dim = 128, page_size = 16, f32>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x32x128xf32>
      return %0 : tensor<?x32x128xf32>
    }
  }
}
