// RUN: qwen-opt %s | qwen-opt | FileCheck %s

!kv = !qtf.kv_cache<layers = 2, kv_heads = 2, head_dim = 16, page_size = 16, f32>

// CHECK-LABEL: func.func @layer
func.func @layer(%tokens: tensor<?xi32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>,
                 %bt: tensor<?x?xi32>, %rows: tensor<?xi32>, %kv: !kv)
    -> (tensor<?x256xf32>, !kv) {
  // CHECK: qtf.weight ["model.embed_tokens.weight"] : tensor<256x64xbf16>
  %emb = qtf.weight ["model.embed_tokens.weight"] : tensor<256x64xbf16>
  // CHECK: qtf.embedding %{{.*}}[%{{.*}}]
  %x = qtf.embedding %emb[%tokens] : tensor<256x64xbf16>, tensor<?xi32> -> tensor<?x64xf32>
  %wn = qtf.weight ["model.layers.0.input_layernorm.weight"] : tensor<64xbf16>
  // CHECK: qtf.rms_norm {{.*}} {epsilon = 9.9999999999999995E-7 : f64}
  %xn = qtf.rms_norm %x, %wn {epsilon = 1.0e-6 : f64} : tensor<?x64xf32>, tensor<64xbf16> -> tensor<?x64xf32>
  %wqkv = qtf.weight ["q", "k", "v"] : tensor<128x64xbf16>
  %bqkv = qtf.weight ["qb", "kb", "vb"] : tensor<128xbf16>
  // CHECK: qtf.linear %{{.*}}, %{{.*}} bias %{{.*}} :
  %qkv = qtf.linear %xn, %wqkv bias %bqkv : tensor<?x64xf32>, tensor<128x64xbf16>, tensor<128xbf16> -> tensor<?x128xf32>
  // CHECK: qtf.split %{{.*}} [64, 32, 32]
  %q, %k, %v = qtf.split %qkv [64, 32, 32] : tensor<?x128xf32> -> tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>
  %q3 = qtf.reshape %q : tensor<?x64xf32> -> tensor<?x4x16xf32>
  %k3 = qtf.reshape %k : tensor<?x32xf32> -> tensor<?x2x16xf32>
  %v3 = qtf.reshape %v : tensor<?x32xf32> -> tensor<?x2x16xf32>
  %wq = qtf.weight ["q_norm"] : tensor<16xbf16>
  // CHECK: qtf.rms_norm {{.*}} zero_centered
  %qn = qtf.rms_norm %q3, %wq {epsilon = 1.0e-6 : f64, zero_centered} : tensor<?x4x16xf32>, tensor<16xbf16> -> tensor<?x4x16xf32>
  // CHECK: qtf.rope {{.*}} {rotary_dim = 16 : i64, theta = 1.000000e+06 : f64}
  %qr = qtf.rope %qn, %pos {theta = 1.0e6 : f64, rotary_dim = 16 : i64} : tensor<?x4x16xf32>, tensor<?xi32> -> tensor<?x4x16xf32>
  %kr = qtf.rope %k3, %pos {theta = 1.0e6 : f64, rotary_dim = 8 : i64} : tensor<?x2x16xf32>, tensor<?xi32> -> tensor<?x2x16xf32>
  // CHECK: qtf.kv_cache_write %{{.*}}[0]
  %kv1 = qtf.kv_cache_write %kv[0], %kr, %v3, %pos, %seq, %bt : !kv, tensor<?x2x16xf32>, tensor<?x2x16xf32>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>
  // CHECK: qtf.paged_attention %{{.*}}, %{{.*}}[0]
  %a = qtf.paged_attention %qr, %kv1[0], %pos, %seq, %bt {scale = 0.25 : f64} : tensor<?x4x16xf32>, !kv, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x4x16xf32>
  %a2 = qtf.reshape %a : tensor<?x4x16xf32> -> tensor<?x64xf32>
  // CHECK: qtf.add
  %h = qtf.add %x, %a2 : tensor<?x64xf32>
  %g, %u = qtf.split %h [32, 32] : tensor<?x64xf32> -> tensor<?x32xf32>, tensor<?x32xf32>
  // CHECK: qtf.silu_mul
  %m = qtf.silu_mul %g, %u : tensor<?x32xf32>
  // CHECK: qtf.gather_rows
  %r = qtf.gather_rows %h[%rows] : tensor<?x64xf32>, tensor<?xi32> -> tensor<?x64xf32>
  %lm = qtf.weight ["model.embed_tokens.weight"] : tensor<256x64xbf16>
  %logits = qtf.linear %r, %lm : tensor<?x64xf32>, tensor<256x64xbf16> -> tensor<?x256xf32>
  return %logits, %kv1 : tensor<?x256xf32>, !kv
}

// CHECK-LABEL: func.func @moe
// CHECK:       %[[IDS:.+]], %[[W:.+]] = qtf.moe_router %{{.*}} {normalize, top_k = 2 : i64} : tensor<?x8xf32> -> tensor<?x2xi32>, tensor<?x2xf32>
// CHECK:       qtf.moe_expert_ffn %{{.*}}, %[[IDS]], %[[W]], %{{.*}}, %{{.*}} {intermediate_size = 16 : i64, num_experts = 8 : i64}
// CHECK:       qtf.moe_combine %{{.*}} : tensor<?x2x32xf32> -> tensor<?x32xf32>
func.func @moe(%x: tensor<?x32xf32>, %logits: tensor<?x8xf32>) -> tensor<?x32xf32> {
  %ids, %w = qtf.moe_router %logits {top_k = 2 : i64, normalize} : tensor<?x8xf32> -> tensor<?x2xi32>, tensor<?x2xf32>
  %gu = qtf.weight ["e0.gate", "e0.up"] : tensor<256x32xbf16>
  %d = qtf.weight ["e0.down"] : tensor<256x16xbf16>
  %slots = qtf.moe_expert_ffn %x, %ids, %w, %gu, %d {num_experts = 8 : i64, intermediate_size = 16 : i64} : tensor<?x32xf32>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<256x32xbf16>, tensor<256x16xbf16> -> tensor<?x2x32xf32>
  %y = qtf.moe_combine %slots : tensor<?x2x32xf32> -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}

// Gated DeltaNet ops thread the linear-attention state like the KV cache.
// CHECK-LABEL: func.func @gated_delta_net
// CHECK: qtf.causal_conv1d %{{.*}}[1], %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : <layers = 2, conv_channels = 64
// CHECK: qtf.gated_delta_rule %{{.*}}[1], {{.*}} {scale = 2.500000e-01 : f64}
// CHECK: qtf.gated_rms_norm
// CHECK: qtf.sigmoid_mul %{{.*}}, %{{.*}} : tensor<?x64xf32>, tensor<?x1xf32>
// CHECK: qtf.rope {{.*}}mrope_section = array<i64: 2, 1, 1>
!state = !qtf.linear_state<layers = 2, conv_channels = 64, conv_window = 3, heads = 2, key_dim = 16, value_dim = 16, f32>
func.func @gated_delta_net(%s: !state, %x: tensor<?x64xf32>, %w: tensor<64x4xbf16>, %seq: tensor<?xi32>, %slots: tensor<?xi32>,
                           %a: tensor<?x2xf32>, %b: tensor<?x2xf32>, %alog: tensor<2xf32>, %dt: tensor<2xf32>,
                           %z: tensor<?x2x16xf32>, %nw: tensor<16xf32>, %g: tensor<?x1xf32>,
                           %h: tensor<?x2x32xf32>, %pos: tensor<?x3xi32>) -> (tensor<?x2x16xf32>, tensor<?x64xf32>, tensor<?x2x32xf32>, !state) {
  %c, %s1 = qtf.causal_conv1d %s[1], %x, %w, %seq, %slots : !state, tensor<?x64xf32>, tensor<64x4xbf16>, tensor<?xi32>, tensor<?xi32> -> tensor<?x64xf32>
  %p:3 = qtf.split %c [16, 16, 32] : tensor<?x64xf32> -> tensor<?x16xf32>, tensor<?x16xf32>, tensor<?x32xf32>
  %q = qtf.reshape %p#0 : tensor<?x16xf32> -> tensor<?x1x16xf32>
  %k = qtf.reshape %p#1 : tensor<?x16xf32> -> tensor<?x1x16xf32>
  %v = qtf.reshape %p#2 : tensor<?x32xf32> -> tensor<?x2x16xf32>
  %o, %s2 = qtf.gated_delta_rule %s1[1], %q, %k, %v, %a, %b, %alog, %dt, %seq, %slots {scale = 0.25 : f64} : !state, tensor<?x1x16xf32>, tensor<?x1x16xf32>, tensor<?x2x16xf32>, tensor<?x2xf32>, tensor<?x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<?xi32>, tensor<?xi32> -> tensor<?x2x16xf32>
  %n = qtf.gated_rms_norm %o, %z, %nw {epsilon = 1.0e-6 : f64} : tensor<?x2x16xf32>, tensor<?x2x16xf32>, tensor<16xf32> -> tensor<?x2x16xf32>
  %gated = qtf.sigmoid_mul %x, %g : tensor<?x64xf32>, tensor<?x1xf32>
  %r = qtf.rope %h, %pos {theta = 1.0e7 : f64, rotary_dim = 8 : i64, mrope_section = array<i64: 2, 1, 1>} : tensor<?x2x32xf32>, tensor<?x3xi32> -> tensor<?x2x32xf32>
  return %n, %gated, %r, %s2 : tensor<?x2x16xf32>, tensor<?x64xf32>, tensor<?x2x32xf32>, !state
}

// Scaled RoPE: the parameters round-trip (defaults omitted); dynamic and
// longrope take the request rows of the step (token_seq).
// CHECK-LABEL: func.func @rope_scaling
// CHECK: qtf.rope %{{.*}}, %{{.*}} {rotary_dim = 16 : i64, scaling = #qtf.rope_scaling<kind = yarn, factor = 4.000000e+00, original_max_positions = 32768, attention_factor = 1.1386294361119891, beta_fast = 1.600000e+01, truncate = false>, theta = 1.000000e+06 : f64}
// CHECK: qtf.rope %{{.*}}, %{{.*}}, %{{.*}} {rotary_dim = 16 : i64, scaling = #qtf.rope_scaling<kind = dynamic, factor = 2.000000e+00, original_max_positions = 64>, theta = 1.000000e+04 : f64} : tensor<?x4x16xf32>, tensor<?xi32>, tensor<?xi32> -> tensor<?x4x16xf32>
// CHECK: #qtf.rope_scaling<kind = llama3, factor = 8.000000e+00, original_max_positions = 8192, high_freq_factor = 8.000000e+00>
// CHECK: #qtf.rope_scaling<kind = longrope, factor = 4.000000e+00, original_max_positions = 16, attention_factor = 1.2247448713915889, short_factor = [1.000000e+00, 1.000000e+00, 1.000000e+00, 1.000000e+00, 1.000000e+00, 1.000000e+00, 1.000000e+00, 1.000000e+00], long_factor = [1.000000e+00, 2.000000e+00, 3.000000e+00, 4.000000e+00, 5.000000e+00, 6.000000e+00, 7.000000e+00, 8.500000e+00]>
func.func @rope_scaling(%x: tensor<?x4x16xf32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>) -> (tensor<?x4x16xf32>, tensor<?x4x16xf32>, tensor<?x4x16xf32>, tensor<?x4x16xf32>) {
  %y = qtf.rope %x, %pos {theta = 1.0e6 : f64, rotary_dim = 16 : i64, scaling = #qtf.rope_scaling<kind = yarn, factor = 4.0, original_max_positions = 32768, attention_factor = 1.1386294361119891, beta_fast = 16.0, truncate = false>} : tensor<?x4x16xf32>, tensor<?xi32> -> tensor<?x4x16xf32>
  %d = qtf.rope %x, %pos, %seq {theta = 1.0e4 : f64, rotary_dim = 16 : i64, scaling = #qtf.rope_scaling<kind = dynamic, factor = 2.0, original_max_positions = 64>} : tensor<?x4x16xf32>, tensor<?xi32>, tensor<?xi32> -> tensor<?x4x16xf32>
  %l = qtf.rope %x, %pos {theta = 5.0e5 : f64, rotary_dim = 16 : i64, scaling = #qtf.rope_scaling<kind = llama3, factor = 8.0, original_max_positions = 8192, high_freq_factor = 8.0>} : tensor<?x4x16xf32>, tensor<?xi32> -> tensor<?x4x16xf32>
  %r = qtf.rope %x, %pos, %seq {theta = 1.0e4 : f64, rotary_dim = 16 : i64, scaling = #qtf.rope_scaling<kind = longrope, factor = 4.0, original_max_positions = 16, attention_factor = 1.2247448713915889, short_factor = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0], long_factor = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.5]>} : tensor<?x4x16xf32>, tensor<?xi32>, tensor<?xi32> -> tensor<?x4x16xf32>
  return %y, %d, %l, %r : tensor<?x4x16xf32>, tensor<?x4x16xf32>, tensor<?x4x16xf32>, tensor<?x4x16xf32>
}
