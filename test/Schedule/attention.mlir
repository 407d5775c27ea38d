// RUN: qwen-opt %s --qwen-select-schedule=target=cuda | FileCheck %s --check-prefix=CUDA
// RUN: qwen-opt %s --qwen-select-schedule="target=cuda attention-threads=128" | FileCheck %s --check-prefix=T128
// RUN: qwen-opt %s --qwen-select-schedule="target=cpu vector-width=16" | FileCheck %s --check-prefix=CPU

// Paged attention with head_dim 64, 128 (Qwen3-0.6B: 16 query heads over 8
// kv heads; Qwen3-8B: 32 over 8) and 256 (Qwen3.5 full attention: 16 over 2).
//
// CUDA, per (token, query head) block of `threads`: the head in f32
// vectors of `vector_width`, `lanes` of them sharing one key (up to a warp);
// prefill tiles of tile[0] queries (`tile_lanes` lanes each, at most 4
// vectors) over tile[1] staged keys (both at most 32 KiB, the kernel under
// 48 KiB). Decode: one block per (token, kv head) of `decode_threads`,
// `decode_lanes` per key (at most 4 vectors each), decode_tile[0] query
// heads per pass (at most 64 accumulator floats a lane), split-K over the
// context in up to 32 blocks merged by `combine_threads` (one per column).
// CPU, per (token, tile[0] query heads): a whole GQA group shares every K / V
// row it loads; the context in blocks of tile[1] keys, one register of
// scores (one vector exp per head and block); V accumulated in passes of
// tile[2] vectors of the head row (at most 16 accumulators for the group).

// CUDA-LABEL: func.func @head_dim_64(
// CUDA-SAME:  qkernel.schedule = #qkernel.schedule<target = cuda, threads = 256, vector_width = 4, lanes = 16, tile = [32, 64], tile_lanes = 8, decode_threads = 128, decode_lanes = 4, decode_tile = [4], splits = 32, combine_threads = 64, split_keys = 64>
// CUDA-LABEL: func.func @qwen3_0_6b(
// CUDA-SAME:  qkernel.schedule = #qkernel.schedule<target = cuda, threads = 256, vector_width = 4, lanes = 32, tile = [32, 32], tile_lanes = 8, decode_threads = 128, decode_lanes = 8, decode_tile = [2], splits = 32, combine_threads = 128, split_keys = 64>
// CUDA-LABEL: func.func @qwen3_8b(
// CUDA-SAME:  qkernel.schedule = #qkernel.schedule<target = cuda, threads = 256, vector_width = 4, lanes = 32, tile = [32, 32], tile_lanes = 8, decode_threads = 128, decode_lanes = 8, decode_tile = [4], splits = 32, combine_threads = 128, split_keys = 64>
// CUDA-LABEL: func.func @head_dim_256(
// CUDA-SAME:  qkernel.schedule = #qkernel.schedule<target = cuda, threads = 256, vector_width = 4, lanes = 32, tile = [16, 16], tile_lanes = 16, decode_threads = 128, decode_lanes = 16, decode_tile = [4], splits = 32, combine_threads = 128, split_keys = 64>

// T128-LABEL: func.func @head_dim_64(
// T128-SAME:  qkernel.schedule = #qkernel.schedule<target = cuda, threads = 128, vector_width = 4, lanes = 16, tile = [32, 64], tile_lanes = 4, decode_threads = 128, decode_lanes = 4, decode_tile = [4], splits = 32, combine_threads = 64, split_keys = 64>
// T128-LABEL: func.func @qwen3_0_6b(
// T128-SAME:  qkernel.schedule = #qkernel.schedule<target = cuda, threads = 128, vector_width = 4, lanes = 32, tile = [16, 32], tile_lanes = 8, decode_threads = 128, decode_lanes = 8, decode_tile = [2], splits = 32, combine_threads = 128, split_keys = 64>
// T128-LABEL: func.func @qwen3_8b(
// T128-SAME:  qkernel.schedule = #qkernel.schedule<target = cuda, threads = 128, vector_width = 4, lanes = 32, tile = [16, 32], tile_lanes = 8, decode_threads = 128, decode_lanes = 8, decode_tile = [4], splits = 32, combine_threads = 128, split_keys = 64>
// T128-LABEL: func.func @head_dim_256(
// T128-SAME:  qkernel.schedule = #qkernel.schedule<target = cuda, threads = 128, vector_width = 4, lanes = 32, tile = [8, 16], tile_lanes = 16, decode_threads = 128, decode_lanes = 16, decode_tile = [4], splits = 32, combine_threads = 128, split_keys = 64>

// CPU-LABEL: func.func @head_dim_64(
// CPU-SAME:  qkernel.schedule = #qkernel.schedule<target = cpu, grain = 1, vector_width = 16, tile = [8, 16, 2]>
// CPU-LABEL: func.func @qwen3_0_6b(
// CPU-SAME:  qkernel.schedule = #qkernel.schedule<target = cpu, grain = 1, vector_width = 16, tile = [2, 16, 8]>
// CPU-LABEL: func.func @qwen3_8b(
// CPU-SAME:  qkernel.schedule = #qkernel.schedule<target = cpu, grain = 1, vector_width = 16, tile = [4, 16, 4]>
// CPU-LABEL: func.func @head_dim_256(
// CPU-SAME:  qkernel.schedule = #qkernel.schedule<target = cpu, grain = 1, vector_width = 16, tile = [8, 16, 2]>

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
  }
}
