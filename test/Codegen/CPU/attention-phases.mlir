// RUN: qwen-opt %s --split-input-file --qwen-select-schedule=target=cpu --qwen-cpu-lower-kernels --mlir-print-debuginfo --mlir-print-local-scope | FileCheck %s
// RUN: qwen-opt %s --split-input-file --qwen-select-schedule=target=cpu --qwen-cpu-lower-kernels --mlir-print-debuginfo | qwen-opt --split-input-file --pass-pipeline="builtin.module(builtin.module(qwen-cpu-lower-to-llvm))" --mlir-print-debuginfo --mlir-print-local-scope | FileCheck %s --check-prefix=LLVM

// The CPU attention kernel is emitted as named phases (KernelPhase: a
// NameLoc "attention.<phase>" on every op of the phase, nested phases
// nested). The phases appear in this order for every head_dim and group:
// load_q (the q_norm -> rope chain when there is one), init, then the loop
// over blocks of keys with scores (partial dots summed by a shuffle tree),
// online_softmax (a masked block, the scalar correction exp, the vector exp
// expanded into its polynomial: no vector math.exp is left) and
// accumulate_v inside it, finalize. The phase locations survive the
// lowering to the LLVM dialect (LLVM).

// -----

// head_dim 64, GQA 4 (8 query heads on 2 kv heads), bf16 cache, the query
// through q_norm -> rope.
// CHECK-LABEL: func.func @qk0_attention(
// LLVM-LABEL:  llvm.func @qk0_attention(
// LLVM:          llvm.intr.exp({{.*}} loc("attention.online_softmax"("attention.key_loop"
// LLVM:          llvm.fdiv {{.*}} loc("attention.finalize"
// CHECK:         math.rsqrt {{.*}} loc("attention.load_q"
// CHECK:         math.cos {{.*}} loc("attention.load_q"
// CHECK:         loc("attention.init"
// CHECK:         arith.minui {{.*}} loc("attention.key_loop"
// CHECK:           vector.fma {{.*}} loc("attention.scores"("attention.key_loop"
// CHECK:           vector.shuffle {{.*}} loc("attention.scores"("attention.key_loop"
// CHECK:           vector.create_mask {{.*}} loc("attention.online_softmax"("attention.key_loop"
// CHECK:           vector.reduction <maximumf>, {{.*}} loc("attention.online_softmax"("attention.key_loop"
// CHECK:           math.exp {{.*}} : f32 loc("attention.online_softmax"("attention.key_loop"
// CHECK-NOT:       math.exp
// CHECK:           math.fma {{.*}} : vector<8xf32> loc("attention.online_softmax"("attention.key_loop"
// CHECK:           vector.fma {{.*}} loc("attention.accumulate_v"("attention.key_loop"
// CHECK:         } loc("attention.key_loop"
// CHECK:         arith.divf {{.*}} loc("attention.finalize"
// CHECK:         vector.store {{.*}} loc("attention.finalize"
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
// CHECK-LABEL: func.func @qk0_attention(
// LLVM-LABEL:  llvm.func @qk0_attention(
// LLVM:          llvm.intr.exp({{.*}} loc("attention.online_softmax"("attention.key_loop"
// LLVM:          llvm.fdiv {{.*}} loc("attention.finalize"
// CHECK:         loc("attention.load_q"
// CHECK:         loc("attention.init"
// CHECK:         arith.minui {{.*}} loc("attention.key_loop"
// CHECK:           vector.fma {{.*}} loc("attention.scores"("attention.key_loop"
// CHECK:           vector.shuffle {{.*}} loc("attention.scores"("attention.key_loop"
// CHECK:           vector.create_mask {{.*}} loc("attention.online_softmax"("attention.key_loop"
// CHECK:           vector.reduction <maximumf>, {{.*}} loc("attention.online_softmax"("attention.key_loop"
// CHECK:           math.exp {{.*}} : f32 loc("attention.online_softmax"("attention.key_loop"
// CHECK-NOT:       math.exp
// CHECK:           math.fma {{.*}} : vector<8xf32> loc("attention.online_softmax"("attention.key_loop"
// CHECK:           vector.fma {{.*}} loc("attention.accumulate_v"("attention.key_loop"
// CHECK:         } loc("attention.key_loop"
// CHECK:         arith.divf {{.*}} loc("attention.finalize"
// CHECK:         vector.store {{.*}} loc("attention.finalize"
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
// CHECK-LABEL: func.func @qk0_attention(
// LLVM-LABEL:  llvm.func @qk0_attention(
// LLVM:          llvm.intr.exp({{.*}} loc("attention.online_softmax"("attention.key_loop"
// LLVM:          llvm.fdiv {{.*}} loc("attention.finalize"
// CHECK:         math.rsqrt {{.*}} loc("attention.load_q"
// CHECK:         math.cos {{.*}} loc("attention.load_q"
// CHECK:         loc("attention.init"
// CHECK:         arith.minui {{.*}} loc("attention.key_loop"
// CHECK:           vector.fma {{.*}} loc("attention.scores"("attention.key_loop"
// CHECK:           vector.shuffle {{.*}} loc("attention.scores"("attention.key_loop"
// CHECK:           vector.create_mask {{.*}} loc("attention.online_softmax"("attention.key_loop"
// CHECK:           vector.reduction <maximumf>, {{.*}} loc("attention.online_softmax"("attention.key_loop"
// CHECK:           math.exp {{.*}} : f32 loc("attention.online_softmax"("attention.key_loop"
// CHECK-NOT:       math.exp
// CHECK:           math.fma {{.*}} : vector<8xf32> loc("attention.online_softmax"("attention.key_loop"
// CHECK:           vector.fma {{.*}} loc("attention.accumulate_v"("attention.key_loop"
// CHECK:         } loc("attention.key_loop"
// CHECK:         arith.divf {{.*}} loc("attention.finalize"
// CHECK:         vector.store {{.*}} loc("attention.finalize"
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
