// RUN: qwen-opt %s --split-input-file --qwen-select-schedule=target=cuda --qwen-gpu-lower-kernels --mlir-print-debuginfo --mlir-print-local-scope | FileCheck %s

// The GPU attention kernels are emitted as named phases (KernelPhase: a
// NameLoc "attention.<phase>" on every op of the phase, nested phases
// nested), in this order:
//   NAME: role, load_q (the q_norm -> rope chain when there is one, block
//     reductions with shuffles), the per-token walk (key_loop { scores,
//     online_softmax, accumulate_v }, merge_groups, finalize), the query
//     tile (key_loop { stage_kv, scores, online_softmax, accumulate_v },
//     finalize);
//   NAME_decode: split_range, then per chunk of query heads load_q,
//     key_loop { scores, online_softmax, accumulate_v } (one scores phase
//     per head of the chunk), merge_groups, finalize, split_partial_write;
//   NAME_decode_combine: combine.

// -----

// head_dim 64, GQA 4 (8 query heads on 2 kv heads), bf16 cache, the query
// through q_norm -> rope.
// CHECK-LABEL: gpu.func @qk0_attention(
// CHECK:         loc("attention.role"
// CHECK:         {{gpu.shuffle|gpu.subgroup_reduce}} {{.*}} loc("attention.load_q"
// CHECK:         loc("attention.load_q"
// CHECK:         arith.constant {{.*}} loc("attention.key_loop"
// CHECK:           {{gpu.shuffle|gpu.subgroup_reduce}} {{.*}} loc("attention.scores"("attention.key_loop"
// CHECK:           arith.maximumf {{.*}} loc("attention.online_softmax"("attention.key_loop"
// CHECK:           vector.fma {{.*}} loc("attention.accumulate_v"("attention.key_loop"
// CHECK:         } loc("attention.key_loop"
// CHECK:         gpu.barrier loc("attention.merge_groups"
// CHECK:         arith.divf {{.*}} loc("attention.finalize"
// CHECK:         gpu.barrier loc("attention.stage_kv"("attention.key_loop"
// CHECK:           {{gpu.shuffle|gpu.subgroup_reduce}} {{.*}} loc("attention.scores"("attention.key_loop"
// CHECK:           arith.maximumf {{.*}} loc("attention.online_softmax"("attention.key_loop"
// CHECK:           vector.fma {{.*}} loc("attention.accumulate_v"("attention.key_loop"
// CHECK:         arith.divf {{.*}} loc("attention.finalize"
// CHECK-LABEL: gpu.func @qk0_attention_decode(
// CHECK:         loc("attention.split_range"
// Chunk 0 of query heads.
// CHECK:         loc("attention.load_q"
// CHECK:         arith.constant {{.*}} loc("attention.key_loop"
// CHECK:           arith.maximumf {{.*}} loc("attention.online_softmax"("attention.key_loop"
// CHECK:         } loc("attention.key_loop"
// CHECK:         gpu.barrier loc("attention.merge_groups"
// CHECK:         arith.divf {{.*}} loc("attention.finalize"
// CHECK:         memref.store {{.*}} loc("attention.split_partial_write"("attention.finalize"
// CHECK-LABEL: gpu.func @qk0_attention_decode_combine(
// CHECK:         math.exp {{.*}} loc("attention.combine"
// CHECK:         arith.divf {{.*}} loc("attention.combine"
!kv0 = !qtf.kv_cache<layers = 2, kv_heads = 2, head_dim = 64, page_size = 16, bf16>
func.func @step(%x: tensor<?x768xf32> {qtf.input = "tokens"}, %kv: !kv0, %pos: tensor<?xi32> {qtf.input = "positions"}, %seq: tensor<?xi32> {qtf.input = "token_seq"}, %bt: tensor<?x?xi32> {qtf.input = "block_table"}) -> tensor<?x8x64xf32> {
  %w = qtf.weight ["q_norm"] : tensor<64xbf16>
  %0 = qkernel.launch @kernels::@qk0_attention(%x, %w, %kv, %pos, %seq, %bt) : (tensor<?x768xf32>, tensor<64xbf16>, !kv0, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>) -> tensor<?x8x64xf32>
  return %0 : tensor<?x8x64xf32>
}
module @kernels {
  func.func @qk0_attention(%x: tensor<?x768xf32>, %w: tensor<64xbf16>, %kv: !kv0, %pos: tensor<?xi32>, %seq: tensor<?xi32>, %bt: tensor<?x?xi32>) -> tensor<?x8x64xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<attention>} {
    %s:3 = qtf.split %x [512, 128, 128] : tensor<?x768xf32> -> tensor<?x512xf32>, tensor<?x128xf32>, tensor<?x128xf32>
    %q3 = qtf.reshape %s#0 : tensor<?x512xf32> -> tensor<?x8x64xf32>
    %n = qtf.rms_norm %q3, %w {epsilon = 1.0e-6 : f64} : tensor<?x8x64xf32>, tensor<64xbf16> -> tensor<?x8x64xf32>
    %r = qtf.rope %n, %pos {theta = 1.0e6 : f64, rotary_dim = 64 : i64} : tensor<?x8x64xf32>, tensor<?xi32> -> tensor<?x8x64xf32>
    %0 = qtf.paged_attention %r, %kv[1], %pos, %seq, %bt {scale = 0.125 : f64} : tensor<?x8x64xf32>, !kv0, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x8x64xf32>
    return %0 : tensor<?x8x64xf32>
  }
}

// -----

// head_dim 128, MHA (4 heads), f32 cache, the query read as is.
// CHECK-LABEL: gpu.func @qk0_attention(
// CHECK:         loc("attention.role"
// CHECK:         loc("attention.load_q"
// CHECK:         arith.constant {{.*}} loc("attention.key_loop"
// CHECK:           {{gpu.shuffle|gpu.subgroup_reduce}} {{.*}} loc("attention.scores"("attention.key_loop"
// CHECK:           arith.maximumf {{.*}} loc("attention.online_softmax"("attention.key_loop"
// CHECK:           vector.fma {{.*}} loc("attention.accumulate_v"("attention.key_loop"
// CHECK:         } loc("attention.key_loop"
// CHECK:         gpu.barrier loc("attention.merge_groups"
// CHECK:         arith.divf {{.*}} loc("attention.finalize"
// CHECK:         gpu.barrier loc("attention.stage_kv"("attention.key_loop"
// CHECK:           {{gpu.shuffle|gpu.subgroup_reduce}} {{.*}} loc("attention.scores"("attention.key_loop"
// CHECK:           arith.maximumf {{.*}} loc("attention.online_softmax"("attention.key_loop"
// CHECK:           vector.fma {{.*}} loc("attention.accumulate_v"("attention.key_loop"
// CHECK:         arith.divf {{.*}} loc("attention.finalize"
// CHECK-LABEL: gpu.func @qk0_attention_decode(
// CHECK:         loc("attention.split_range"
// Chunk 0 of query heads.
// CHECK:         loc("attention.load_q"
// CHECK:         arith.constant {{.*}} loc("attention.key_loop"
// CHECK:           arith.maximumf {{.*}} loc("attention.online_softmax"("attention.key_loop"
// CHECK:         } loc("attention.key_loop"
// CHECK:         gpu.barrier loc("attention.merge_groups"
// CHECK:         arith.divf {{.*}} loc("attention.finalize"
// CHECK:         memref.store {{.*}} loc("attention.split_partial_write"("attention.finalize"
// CHECK-LABEL: gpu.func @qk0_attention_decode_combine(
// CHECK:         math.exp {{.*}} loc("attention.combine"
// CHECK:         arith.divf {{.*}} loc("attention.combine"
!kv1 = !qtf.kv_cache<layers = 2, kv_heads = 4, head_dim = 128, page_size = 16, f32>
func.func @step(%q: tensor<?x4x128xf32> {qtf.input = "tokens"}, %kv: !kv1, %pos: tensor<?xi32> {qtf.input = "positions"}, %seq: tensor<?xi32> {qtf.input = "token_seq"}, %bt: tensor<?x?xi32> {qtf.input = "block_table"}) -> tensor<?x4x128xf32> {
  %0 = qkernel.launch @kernels::@qk0_attention(%q, %kv, %pos, %seq, %bt) : (tensor<?x4x128xf32>, !kv1, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>) -> tensor<?x4x128xf32>
  return %0 : tensor<?x4x128xf32>
}
module @kernels {
  func.func @qk0_attention(%q: tensor<?x4x128xf32>, %kv: !kv1, %pos: tensor<?xi32>, %seq: tensor<?xi32>, %bt: tensor<?x?xi32>) -> tensor<?x4x128xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<attention>} {
    %0 = qtf.paged_attention %q, %kv[1], %pos, %seq, %bt {scale = 0.08838834764831845 : f64} : tensor<?x4x128xf32>, !kv1, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x4x128xf32>
    return %0 : tensor<?x4x128xf32>
  }
}

// -----

// head_dim 256, GQA 8 (16 query heads on 2 kv heads), bf16 cache, q_norm -> rope.
// CHECK-LABEL: gpu.func @qk0_attention(
// CHECK:         loc("attention.role"
// CHECK:         {{gpu.shuffle|gpu.subgroup_reduce}} {{.*}} loc("attention.load_q"
// CHECK:         loc("attention.load_q"
// CHECK:         arith.constant {{.*}} loc("attention.key_loop"
// CHECK:           {{gpu.shuffle|gpu.subgroup_reduce}} {{.*}} loc("attention.scores"("attention.key_loop"
// CHECK:           arith.maximumf {{.*}} loc("attention.online_softmax"("attention.key_loop"
// CHECK:           vector.fma {{.*}} loc("attention.accumulate_v"("attention.key_loop"
// CHECK:         } loc("attention.key_loop"
// CHECK:         gpu.barrier loc("attention.merge_groups"
// CHECK:         arith.divf {{.*}} loc("attention.finalize"
// CHECK:         gpu.barrier loc("attention.stage_kv"("attention.key_loop"
// CHECK:           {{gpu.shuffle|gpu.subgroup_reduce}} {{.*}} loc("attention.scores"("attention.key_loop"
// CHECK:           arith.maximumf {{.*}} loc("attention.online_softmax"("attention.key_loop"
// CHECK:           vector.fma {{.*}} loc("attention.accumulate_v"("attention.key_loop"
// CHECK:         arith.divf {{.*}} loc("attention.finalize"
// CHECK-LABEL: gpu.func @qk0_attention_decode(
// CHECK:         loc("attention.split_range"
// Chunk 0 of query heads.
// CHECK:         loc("attention.load_q"
// CHECK:         arith.constant {{.*}} loc("attention.key_loop"
// CHECK:           arith.maximumf {{.*}} loc("attention.online_softmax"("attention.key_loop"
// CHECK:         } loc("attention.key_loop"
// CHECK:         gpu.barrier loc("attention.merge_groups"
// CHECK:         arith.divf {{.*}} loc("attention.finalize"
// CHECK:         memref.store {{.*}} loc("attention.split_partial_write"("attention.finalize"
// Chunk 1 of query heads.
// CHECK:         loc("attention.load_q"
// CHECK:         arith.constant {{.*}} loc("attention.key_loop"
// CHECK:           arith.maximumf {{.*}} loc("attention.online_softmax"("attention.key_loop"
// CHECK:         } loc("attention.key_loop"
// CHECK:         gpu.barrier loc("attention.merge_groups"
// CHECK:         arith.divf {{.*}} loc("attention.finalize"
// CHECK:         memref.store {{.*}} loc("attention.split_partial_write"("attention.finalize"
// CHECK-LABEL: gpu.func @qk0_attention_decode_combine(
// CHECK:         math.exp {{.*}} loc("attention.combine"
// CHECK:         arith.divf {{.*}} loc("attention.combine"
!kv2 = !qtf.kv_cache<layers = 2, kv_heads = 2, head_dim = 256, page_size = 16, bf16>
func.func @step(%x: tensor<?x5120xf32> {qtf.input = "tokens"}, %kv: !kv2, %pos: tensor<?xi32> {qtf.input = "positions"}, %seq: tensor<?xi32> {qtf.input = "token_seq"}, %bt: tensor<?x?xi32> {qtf.input = "block_table"}) -> tensor<?x16x256xf32> {
  %w = qtf.weight ["q_norm"] : tensor<256xbf16>
  %0 = qkernel.launch @kernels::@qk0_attention(%x, %w, %kv, %pos, %seq, %bt) : (tensor<?x5120xf32>, tensor<256xbf16>, !kv2, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>) -> tensor<?x16x256xf32>
  return %0 : tensor<?x16x256xf32>
}
module @kernels {
  func.func @qk0_attention(%x: tensor<?x5120xf32>, %w: tensor<256xbf16>, %kv: !kv2, %pos: tensor<?xi32>, %seq: tensor<?xi32>, %bt: tensor<?x?xi32>) -> tensor<?x16x256xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<attention>} {
    %s:3 = qtf.split %x [4096, 512, 512] : tensor<?x5120xf32> -> tensor<?x4096xf32>, tensor<?x512xf32>, tensor<?x512xf32>
    %q3 = qtf.reshape %s#0 : tensor<?x4096xf32> -> tensor<?x16x256xf32>
    %n = qtf.rms_norm %q3, %w {epsilon = 1.0e-6 : f64} : tensor<?x16x256xf32>, tensor<256xbf16> -> tensor<?x16x256xf32>
    %r = qtf.rope %n, %pos {theta = 1.0e6 : f64, rotary_dim = 256 : i64} : tensor<?x16x256xf32>, tensor<?xi32> -> tensor<?x16x256xf32>
    %0 = qtf.paged_attention %r, %kv[1], %pos, %seq, %bt {scale = 0.0625 : f64} : tensor<?x16x256xf32>, !kv2, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x16x256xf32>
    return %0 : tensor<?x16x256xf32>
  }
}
