// RUN: qwen-opt %s --qwen-select-schedule="target=cuda gpu-attention=mma" --qwen-gpu-lower-kernels --mlir-print-debuginfo --mlir-print-local-scope | FileCheck %s

// The tensor-core query tile (AttentionMma.cpp) as named phases
// (KernelPhase), after the role phase and the per-token walk of
// AttentionKernel.cpp: load_q (the rows rounded to the cache dtype into the
// staging buffer, then ldmatrix x4 fragments), key_loop { stage_kv (raw
// 16-byte copies of the keys and values), scores (ldmatrix x4 of K, mma.sync
// into f32), online_softmax (the quad max by xor shuffles, exp),
// accumulate_v (p rounded, ldmatrix x4 .trans of V, mma.sync) }, finalize.
// head_dim 64, GQA 4 (8 query heads on 2 kv heads), bf16 cache: staging
// buffer [2 x 64 keys][64 + 8].

// CHECK-LABEL: gpu.func @qk0_attention(
// CHECK-SAME:    workgroup({{.*}}memref<128x72xbf16, #gpu.address_space<workgroup>>
// CHECK:         loc("attention.role"
// CHECK:         loc("attention.merge_groups"
// CHECK:         arith.truncf {{.*}} vector<4xf32> to vector<4xbf16> loc("attention.load_q"
// CHECK:         nvgpu.ldmatrix {{.*}} {numTiles = 4 : i32, transpose = false} : memref<128x72xbf16, {{.*}} loc("attention.load_q"
// CHECK:         gpu.barrier loc("attention.load_q"
// CHECK:         vector.load {{.*}} vector<8xi16> loc("attention.stage_kv"("attention.key_loop"
// CHECK:         vector.store {{.*}} vector<8xbf16> loc("attention.stage_kv"("attention.key_loop"
// CHECK:         gpu.barrier loc("attention.stage_kv"("attention.key_loop"
// CHECK:         nvgpu.ldmatrix {{.*}} {numTiles = 4 : i32, transpose = false} {{.*}} loc("attention.scores"("attention.key_loop"
// CHECK:         nvvm.mma.sync {{.*}}multiplicandAPtxType = #nvvm.mma_type<bf16>{{.*}}shape = #nvvm.shape<m = 16, n = 8, k = 16>{{.*}} loc("attention.scores"("attention.key_loop"
// CHECK:         gpu.shuffle  xor {{.*}} loc("attention.online_softmax"("attention.key_loop"
// CHECK:         math.exp {{.*}} loc("attention.online_softmax"("attention.key_loop"
// CHECK:         arith.truncf {{.*}} vector<2xf32> to vector<2xbf16> loc("attention.accumulate_v"("attention.key_loop"
// CHECK:         nvgpu.ldmatrix {{.*}} {numTiles = 4 : i32, transpose = true} {{.*}} loc("attention.accumulate_v"("attention.key_loop"
// CHECK:         nvvm.mma.sync {{.*}} loc("attention.accumulate_v"("attention.key_loop"
// CHECK:         gpu.barrier loc("attention.key_loop"
// CHECK:         gpu.shuffle  xor {{.*}} loc("attention.finalize"
// CHECK:         arith.divf {{.*}} loc("attention.finalize"
// CHECK:         gpu.return
// CHECK-LABEL: gpu.func @qk0_attention_decode(
// CHECK-NOT:     nvvm.mma.sync
// CHECK:         gpu.return

module {
  func.func @step(%arg0: tensor<?xi32> {qtf.input = "positions"}, %arg1: tensor<?xi32> {qtf.input = "token_seq"}, %arg2: tensor<?x?xi32> {qtf.input = "block_table"}, %arg3: tensor<?x8x64xf32> {qtf.input = "tokens"}, %arg4: !qtf.kv_cache<layers = 2, kv_heads = 2, head_dim = 64, page_size = 16, bf16>) -> tensor<?x8x64xf32> {
    %r = qkernel.launch @kernels::@qk0_attention(%arg3, %arg4, %arg0, %arg1, %arg2) : (tensor<?x8x64xf32>, !qtf.kv_cache<layers = 2, kv_heads = 2, head_dim = 64, page_size = 16, bf16>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>) -> tensor<?x8x64xf32>
    return %r : tensor<?x8x64xf32>
  }
  module @kernels {
    func.func @qk0_attention(%arg0: tensor<?x8x64xf32>, %arg1: !qtf.kv_cache<layers = 2, kv_heads = 2, head_dim = 64, page_size = 16, bf16>, %arg2: tensor<?xi32>, %arg3: tensor<?xi32>, %arg4: tensor<?x?xi32>) -> tensor<?x8x64xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<attention>} {
      %a = qtf.paged_attention %arg0, %arg1[1], %arg2, %arg3, %arg4 {scale = 0.125 : f64} : tensor<?x8x64xf32>, !qtf.kv_cache<layers = 2, kv_heads = 2, head_dim = 64, page_size = 16, bf16>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x8x64xf32>
      return %a : tensor<?x8x64xf32>
    }
  }
}
