// RUN: qwen-opt %s --split-input-file --pass-pipeline="builtin.module(func.func(qwen-fusion-form-kernel-regions))" | FileCheck %s

// A residual add is the epilogue of the linear that feeds it.
// CHECK-LABEL: func.func @linear_residual
// CHECK:       %[[R:.+]] = qkernel.region <matmul> -> tensor<?x32xf32> {
// CHECK-NEXT:    %[[L:.+]] = qtf.linear
// CHECK-NEXT:    %[[A:.+]] = qtf.add %{{.*}}, %[[L]]
// CHECK-NEXT:    qkernel.yield %[[A]]
// CHECK:       return %[[R]]
func.func @linear_residual(%x: tensor<?x64xf32>, %r: tensor<?x32xf32>) -> tensor<?x32xf32> {
  %w = qtf.weight ["w"] : tensor<32x64xbf16>
  %l = qtf.linear %x, %w : tensor<?x64xf32>, tensor<32x64xbf16> -> tensor<?x32xf32>
  %a = qtf.add %r, %l : tensor<?x32xf32>
  return %a : tensor<?x32xf32>
}

// -----

// Per-head q-norm + rope and the k chain with the KV-cache write form one
// `kv_write` kernel that returns the query and the cache: the attention's
// query chain joins the write of the layer it reads. The split/reshape views
// are cloned into it so it reads the stacked projection directly.
!kv = !qtf.kv_cache<layers = 1, kv_heads = 2, head_dim = 16, page_size = 16, f32>
// CHECK-LABEL: func.func @qk_norm_rope
// CHECK:       %[[W:.+]]:2 = qkernel.region <kv_write> -> tensor<?x4x16xf32>, !qtf.kv_cache
// CHECK-NEXT:    qtf.split
// CHECK-NEXT:    qtf.reshape
// CHECK-NEXT:    %[[QN:.+]] = qtf.rms_norm
// CHECK-NEXT:    %[[QR:.+]] = qtf.rope %[[QN]]
// CHECK-NEXT:    qtf.reshape
// CHECK-NEXT:    %[[KN:.+]] = qtf.rms_norm
// CHECK-NEXT:    %[[KR:.+]] = qtf.rope %[[KN]]
// CHECK-NEXT:    qtf.reshape
// CHECK-NEXT:    %[[C:.+]] = qtf.kv_cache_write %{{.*}}[0], %[[KR]]
// CHECK-NEXT:    qkernel.yield %[[QR]], %[[C]]
// CHECK:       qkernel.region <attention>
// CHECK-NEXT:    qtf.paged_attention %[[W]]#0, %[[W]]#1[0]
// CHECK-NOT:   qkernel.region <rows>
func.func @qk_norm_rope(%qkv: tensor<?x128xf32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>, %bt: tensor<?x?xi32>, %kv: !kv) -> tensor<?x4x16xf32> {
  %q, %k, %v = qtf.split %qkv [64, 32, 32] : tensor<?x128xf32> -> tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>
  %q3 = qtf.reshape %q : tensor<?x64xf32> -> tensor<?x4x16xf32>
  %k3 = qtf.reshape %k : tensor<?x32xf32> -> tensor<?x2x16xf32>
  %v3 = qtf.reshape %v : tensor<?x32xf32> -> tensor<?x2x16xf32>
  %wq = qtf.weight ["q_norm"] : tensor<16xbf16>
  %wk = qtf.weight ["k_norm"] : tensor<16xbf16>
  %qn = qtf.rms_norm %q3, %wq {epsilon = 1.0e-6 : f64} : tensor<?x4x16xf32>, tensor<16xbf16> -> tensor<?x4x16xf32>
  %qr = qtf.rope %qn, %pos {theta = 1.0e6 : f64, rotary_dim = 16 : i64} : tensor<?x4x16xf32>, tensor<?xi32> -> tensor<?x4x16xf32>
  %kn = qtf.rms_norm %k3, %wk {epsilon = 1.0e-6 : f64} : tensor<?x2x16xf32>, tensor<16xbf16> -> tensor<?x2x16xf32>
  %kr = qtf.rope %kn, %pos {theta = 1.0e6 : f64, rotary_dim = 16 : i64} : tensor<?x2x16xf32>, tensor<?xi32> -> tensor<?x2x16xf32>
  %kv1 = qtf.kv_cache_write %kv[0], %kr, %v3, %pos, %seq, %bt : !kv, tensor<?x2x16xf32>, tensor<?x2x16xf32>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>
  %a = qtf.paged_attention %qr, %kv1[0], %pos, %seq, %bt {scale = 0.25 : f64} : tensor<?x4x16xf32>, !kv, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x4x16xf32>
  return %a : tensor<?x4x16xf32>
}

// -----

// A query that is no row chain (no q-norm, no rope) stays out of the cache
// write: the write kernel returns only the cache.
!kv = !qtf.kv_cache<layers = 1, kv_heads = 2, head_dim = 16, page_size = 16, f32>
// CHECK-LABEL: func.func @plain_query
// CHECK:       qkernel.region <kv_write> -> !qtf.kv_cache
// CHECK:       qkernel.region <attention> -> tensor<?x4x16xf32> {
// CHECK-NEXT:    qtf.split
// CHECK-NEXT:    qtf.reshape
// CHECK-NEXT:    qtf.paged_attention
func.func @plain_query(%qkv: tensor<?x128xf32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>, %bt: tensor<?x?xi32>, %kv: !kv) -> tensor<?x4x16xf32> {
  %q, %k, %v = qtf.split %qkv [64, 32, 32] : tensor<?x128xf32> -> tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>
  %q3 = qtf.reshape %q : tensor<?x64xf32> -> tensor<?x4x16xf32>
  %k3 = qtf.reshape %k : tensor<?x32xf32> -> tensor<?x2x16xf32>
  %v3 = qtf.reshape %v : tensor<?x32xf32> -> tensor<?x2x16xf32>
  %wk = qtf.weight ["k_norm"] : tensor<16xbf16>
  %kn = qtf.rms_norm %k3, %wk {epsilon = 1.0e-6 : f64} : tensor<?x2x16xf32>, tensor<16xbf16> -> tensor<?x2x16xf32>
  %kv1 = qtf.kv_cache_write %kv[0], %kn, %v3, %pos, %seq, %bt : !kv, tensor<?x2x16xf32>, tensor<?x2x16xf32>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>
  %a = qtf.paged_attention %q3, %kv1[0], %pos, %seq, %bt {scale = 0.25 : f64} : tensor<?x4x16xf32>, !kv, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x4x16xf32>
  return %a : tensor<?x4x16xf32>
}

// -----

// The logits gather is the prologue of the lm_head matmul; silu_mul and the
// embedding stay kernels of their own.
// CHECK-LABEL: func.func @gather_lm_head
// CHECK:       qkernel.region <embedding>
// CHECK:       qkernel.region <elementwise>
// CHECK-NEXT:    qtf.split
// CHECK-NEXT:    qtf.silu_mul
// CHECK:       qkernel.region <matmul> -> tensor<?x256xf32> {
// CHECK-NEXT:    qtf.gather_rows
// CHECK-NEXT:    qtf.linear
func.func @gather_lm_head(%ids: tensor<?xi32>, %rows: tensor<?xi32>, %gu: tensor<?x64xf32>) -> (tensor<?x256xf32>, tensor<?x32xf32>) {
  %table = qtf.weight ["embed"] : tensor<256x32xbf16>
  %x = qtf.embedding %table[%ids] : tensor<256x32xbf16>, tensor<?xi32> -> tensor<?x32xf32>
  %g, %u = qtf.split %gu [32, 32] : tensor<?x64xf32> -> tensor<?x32xf32>, tensor<?x32xf32>
  %m = qtf.silu_mul %g, %u : tensor<?x32xf32>
  %sel = qtf.gather_rows %x[%rows] : tensor<?x32xf32>, tensor<?xi32> -> tensor<?x32xf32>
  %logits = qtf.linear %sel, %table : tensor<?x32xf32>, tensor<256x32xbf16> -> tensor<?x256xf32>
  return %logits, %m : tensor<?x256xf32>, tensor<?x32xf32>
}

// -----

// MoE: the router and the grouped experts are kernels of their own; the
// expert combine absorbs the residual add.
// CHECK-LABEL: func.func @moe
// CHECK:       qkernel.region <matmul>
// CHECK-NEXT:    qtf.linear
// CHECK:       qkernel.region <router>
// CHECK-NEXT:    qtf.moe_router
// CHECK:       qkernel.region <experts>
// CHECK-NEXT:    qtf.moe_expert_ffn
// CHECK:       qkernel.region <elementwise>
// CHECK-NEXT:    qtf.moe_combine
// CHECK-NEXT:    qtf.add
func.func @moe(%x: tensor<?x32xf32>, %h: tensor<?x32xf32>) -> tensor<?x32xf32> {
  %wr = qtf.weight ["gate"] : tensor<8x32xbf16>
  %logits = qtf.linear %x, %wr : tensor<?x32xf32>, tensor<8x32xbf16> -> tensor<?x8xf32>
  %ids, %w = qtf.moe_router %logits {top_k = 2 : i64, normalize} : tensor<?x8xf32> -> tensor<?x2xi32>, tensor<?x2xf32>
  %gu = qtf.weight ["gu"] : tensor<256x32xbf16>
  %d = qtf.weight ["d"] : tensor<256x16xbf16>
  %slots = qtf.moe_expert_ffn %x, %ids, %w, %gu, %d {num_experts = 8 : i64, intermediate_size = 16 : i64} : tensor<?x32xf32>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<256x32xbf16>, tensor<256x16xbf16> -> tensor<?x2x32xf32>
  %y = qtf.moe_combine %slots : tensor<?x2x32xf32> -> tensor<?x32xf32>
  %r = qtf.add %h, %y : tensor<?x32xf32>
  return %r : tensor<?x32xf32>
}

// -----

// A Gated DeltaNet mixer: the conv, the delta rule and the gated norm are
// kernels of their own (conv walks channels, the rule (request, head) pairs,
// the norm (token, head) pairs); the state is threaded through, the views of
// the conv output are cloned into the delta rule, and the attention-style
// sigmoid gate is an elementwise kernel.
!state = !qtf.linear_state<layers = 1, conv_channels = 64, conv_window = 3, heads = 2, key_dim = 16, value_dim = 16, f32>
// CHECK-LABEL: func.func @gated_delta_net
// CHECK:       qkernel.region <conv> -> tensor<?x64xf32>, !qtf.linear_state
// CHECK:       qkernel.region <delta_rule> -> tensor<?x2x16xf32>, !qtf.linear_state
// CHECK-NEXT:    qtf.split
// CHECK-NEXT:    qtf.reshape
// CHECK-NEXT:    qtf.reshape
// CHECK-NEXT:    qtf.reshape
// CHECK-NEXT:    qtf.gated_delta_rule
// CHECK:       qkernel.region <gated_norm> -> tensor<?x2x16xf32>
// CHECK:       qkernel.region <elementwise> -> tensor<?x32xf32>
// CHECK-NEXT:    qtf.reshape
// CHECK-NEXT:    qtf.sigmoid_mul
func.func @gated_delta_net(%s: !state, %x: tensor<?x64xf32>, %seq: tensor<?xi32>, %slots: tensor<?xi32>,
                           %a: tensor<?x2xf32>, %b: tensor<?x2xf32>, %z: tensor<?x2x16xf32>, %g: tensor<?x32xf32>) -> (tensor<?x32xf32>, !state) {
  %w = qtf.weight ["conv1d.weight"] : tensor<64x4xbf16>
  %alog = qtf.weight ["A_log"] : tensor<2xf32>
  %dt = qtf.weight ["dt_bias"] : tensor<2xf32>
  %nw = qtf.weight ["norm.weight"] : tensor<16xf32>
  %c, %s1 = qtf.causal_conv1d %s[0], %x, %w, %seq, %slots : !state, tensor<?x64xf32>, tensor<64x4xbf16>, tensor<?xi32>, tensor<?xi32> -> tensor<?x64xf32>
  %p:3 = qtf.split %c [16, 16, 32] : tensor<?x64xf32> -> tensor<?x16xf32>, tensor<?x16xf32>, tensor<?x32xf32>
  %q = qtf.reshape %p#0 : tensor<?x16xf32> -> tensor<?x1x16xf32>
  %k = qtf.reshape %p#1 : tensor<?x16xf32> -> tensor<?x1x16xf32>
  %v = qtf.reshape %p#2 : tensor<?x32xf32> -> tensor<?x2x16xf32>
  %o, %s2 = qtf.gated_delta_rule %s1[0], %q, %k, %v, %a, %b, %alog, %dt, %seq, %slots {scale = 0.25 : f64} : !state, tensor<?x1x16xf32>, tensor<?x1x16xf32>, tensor<?x2x16xf32>, tensor<?x2xf32>, tensor<?x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<?xi32>, tensor<?xi32> -> tensor<?x2x16xf32>
  %n = qtf.gated_rms_norm %o, %z, %nw {epsilon = 1.0e-6 : f64} : tensor<?x2x16xf32>, tensor<?x2x16xf32>, tensor<16xf32> -> tensor<?x2x16xf32>
  %rows = qtf.reshape %n : tensor<?x2x16xf32> -> tensor<?x32xf32>
  %gated = qtf.sigmoid_mul %rows, %g : tensor<?x32xf32>, tensor<?x32xf32>
  return %gated, %s2 : tensor<?x32xf32>, !state
}

// -----

// Hidden-state outputs: the final norm of the selected rows reads them in
// place (one `rows` kernel over the R rows), no gather kernel.
// CHECK-LABEL: func.func @hidden_states
// CHECK:       %[[R:.+]] = qkernel.region <rows> -> tensor<?x32xf32> {
// CHECK-NEXT:    %[[G:.+]] = qtf.gather_rows
// CHECK-NEXT:    %[[N:.+]] = qtf.rms_norm %[[G]]
// CHECK-NEXT:    qkernel.yield %[[N]]
// CHECK:       return %[[R]]
func.func @hidden_states(%x: tensor<?x32xf32>, %rows: tensor<?xi32>) -> tensor<?x32xf32> {
  %w = qtf.weight ["norm.weight"] : tensor<32xf32>
  %g = qtf.gather_rows %x[%rows] : tensor<?x32xf32>, tensor<?xi32> -> tensor<?x32xf32>
  %n = qtf.rms_norm %g, %w {epsilon = 1.0e-6 : f64} : tensor<?x32xf32>, tensor<32xf32> -> tensor<?x32xf32>
  return %n : tensor<?x32xf32>
}
