// RUN: qwen-opt %s -split-input-file -verify-diagnostics

func.func @weight_without_sources() {
  // expected-error @+1 {{'qtf.weight' op needs at least one source tensor name}}
  %w = qtf.weight [] : tensor<4x4xbf16>
  return
}

// -----

func.func @norm_weight_mismatch(%x: tensor<?x64xf32>, %w: tensor<32xbf16>) {
  // expected-error @+1 {{'qtf.rms_norm' op weight must be 1-D with the size of the last input dimension (64)}}
  %0 = qtf.rms_norm %x, %w {epsilon = 1.0e-6 : f64} : tensor<?x64xf32>, tensor<32xbf16> -> tensor<?x64xf32>
  return
}

// -----

func.func @norm_epsilon(%x: tensor<?x64xf32>, %w: tensor<64xbf16>) {
  // expected-error @+1 {{'qtf.rms_norm' op epsilon must be positive}}
  %0 = qtf.rms_norm %x, %w {epsilon = 0.0 : f64} : tensor<?x64xf32>, tensor<64xbf16> -> tensor<?x64xf32>
  return
}

// -----

func.func @linear_features(%x: tensor<?x64xf32>, %w: tensor<128x32xbf16>) {
  // expected-error @+1 {{'qtf.linear' op input features (64) must match weight columns (32)}}
  %0 = qtf.linear %x, %w : tensor<?x64xf32>, tensor<128x32xbf16> -> tensor<?x128xf32>
  return
}

// -----

func.func @linear_result(%x: tensor<?x64xf32>, %w: tensor<128x64xbf16>) {
  // expected-error @+1 {{'qtf.linear' op result must be [rows, weight rows]}}
  %0 = qtf.linear %x, %w : tensor<?x64xf32>, tensor<128x64xbf16> -> tensor<?x96xf32>
  return
}

// -----

func.func @linear_bias(%x: tensor<?x64xf32>, %w: tensor<128x64xbf16>, %b: tensor<64xbf16>) {
  // expected-error @+1 {{'qtf.linear' op bias must be 1-D with one entry per weight row}}
  %0 = qtf.linear %x, %w bias %b : tensor<?x64xf32>, tensor<128x64xbf16>, tensor<64xbf16> -> tensor<?x128xf32>
  return
}

// -----

func.func @split_sizes(%x: tensor<?x128xf32>) {
  // expected-error @+1 {{'qtf.split' op sizes sum to 96 but the last dimension is 128}}
  %0:2 = qtf.split %x [64, 32] : tensor<?x128xf32> -> tensor<?x64xf32>, tensor<?x32xf32>
  return
}

// -----

func.func @reshape_elements(%x: tensor<?x128xf32>) {
  // expected-error @+1 {{'qtf.reshape' op must keep the number of elements per row}}
  %0 = qtf.reshape %x : tensor<?x128xf32> -> tensor<?x4x16xf32>
  return
}

// -----

func.func @rope_rotary_dim(%x: tensor<?x4x16xf32>, %p: tensor<?xi32>) {
  // expected-error @+1 {{'qtf.rope' op rotary_dim (18) must be even, positive and at most head_dim (16)}}
  %0 = qtf.rope %x, %p {theta = 1.0e6 : f64, rotary_dim = 18 : i64} : tensor<?x4x16xf32>, tensor<?xi32> -> tensor<?x4x16xf32>
  return
}

// -----

!kv = !qtf.kv_cache<layers = 2, kv_heads = 2, head_dim = 16, page_size = 16, f32>
func.func @attention_gqa(%q: tensor<?x3x16xf32>, %kv: !kv, %p: tensor<?xi32>, %bt: tensor<?x?xi32>) {
  // expected-error @+1 {{'qtf.paged_attention' op query heads (3) must be a multiple of kv heads (2)}}
  %0 = qtf.paged_attention %q, %kv[0], %p, %p, %bt {scale = 0.25 : f64} : tensor<?x3x16xf32>, !kv, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x3x16xf32>
  return
}

// -----

!kv = !qtf.kv_cache<layers = 2, kv_heads = 2, head_dim = 16, page_size = 16, f32>
func.func @attention_layer(%q: tensor<?x4x16xf32>, %kv: !kv, %p: tensor<?xi32>, %bt: tensor<?x?xi32>) {
  // expected-error @+1 {{'qtf.paged_attention' op layer 2 is out of range [0, 2)}}
  %0 = qtf.paged_attention %q, %kv[2], %p, %p, %bt {scale = 0.25 : f64} : tensor<?x4x16xf32>, !kv, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x4x16xf32>
  return
}

// -----

!kv = !qtf.kv_cache<layers = 2, kv_heads = 2, head_dim = 16, page_size = 16, f32>
func.func @kv_write_shape(%k: tensor<?x4x16xf32>, %kv: !kv, %p: tensor<?xi32>, %bt: tensor<?x?xi32>) {
  // expected-error @+1 {{'qtf.kv_cache_write' op keys must be [tokens, 2, 16], got 'tensor<?x4x16xf32>'}}
  %0 = qtf.kv_cache_write %kv[0], %k, %k, %p, %p, %bt : !kv, tensor<?x4x16xf32>, tensor<?x4x16xf32>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>
  return
}

// -----

// expected-error @+1 {{kv_cache sizes must be positive}}
func.func @cache_type(%kv: !qtf.kv_cache<layers = 0, kv_heads = 2, head_dim = 16, page_size = 16, f32>) {
  return
}

// -----

func.func @gather(%x: tensor<?x64xf32>, %r: tensor<?xi32>) {
  // expected-error @+1 {{'qtf.gather_rows' op result must be [num rows, input width]}}
  %0 = qtf.gather_rows %x[%r] : tensor<?x64xf32>, tensor<?xi32> -> tensor<?x32xf32>
  return
}

// -----

func.func @router_top_k(%l: tensor<?x8xf32>) {
  // expected-error @+1 {{'qtf.moe_router' op top_k (9) must be in [1, 8]}}
  %ids, %w = qtf.moe_router %l {top_k = 9 : i64} : tensor<?x8xf32> -> tensor<?x9xi32>, tensor<?x9xf32>
  return
}

// -----

func.func @experts_gate_up(%x: tensor<?x32xf32>, %ids: tensor<?x2xi32>, %w: tensor<?x2xf32>, %gu: tensor<128x32xbf16>, %d: tensor<256x16xbf16>) {
  // expected-error @+1 {{'qtf.moe_expert_ffn' op gate_up must be [256, 32]}}
  %s = qtf.moe_expert_ffn %x, %ids, %w, %gu, %d {num_experts = 8 : i64, intermediate_size = 16 : i64} : tensor<?x32xf32>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<128x32xbf16>, tensor<256x16xbf16> -> tensor<?x2x32xf32>
  return
}

// -----

func.func @combine(%s: tensor<?x2x32xf32>) {
  // expected-error @+1 {{'qtf.moe_combine' op expects [tokens, top_k, hidden] -> [tokens, hidden]}}
  %y = qtf.moe_combine %s : tensor<?x2x32xf32> -> tensor<?x16xf32>
  return
}

// -----

!state = !qtf.linear_state<layers = 2, conv_channels = 64, conv_window = 3, heads = 2, key_dim = 16, value_dim = 16, f32>
func.func @conv_layer(%s: !state, %x: tensor<?x64xf32>, %w: tensor<64x4xbf16>, %seq: tensor<?xi32>) {
  // expected-error @+1 {{'qtf.causal_conv1d' op layer 2 is out of range [0, 2)}}
  %c, %s1 = qtf.causal_conv1d %s[2], %x, %w, %seq, %seq : !state, tensor<?x64xf32>, tensor<64x4xbf16>, tensor<?xi32>, tensor<?xi32> -> tensor<?x64xf32>
  return
}

// -----

!state = !qtf.linear_state<layers = 2, conv_channels = 64, conv_window = 3, heads = 2, key_dim = 16, value_dim = 16, f32>
func.func @conv_kernel(%s: !state, %x: tensor<?x64xf32>, %w: tensor<64x3xbf16>, %seq: tensor<?xi32>) {
  // expected-error @+1 {{'qtf.causal_conv1d' op weight must be [64, 4] (channels, kernel size)}}
  %c, %s1 = qtf.causal_conv1d %s[0], %x, %w, %seq, %seq : !state, tensor<?x64xf32>, tensor<64x3xbf16>, tensor<?xi32>, tensor<?xi32> -> tensor<?x64xf32>
  return
}

// -----

!state = !qtf.linear_state<layers = 1, conv_channels = 96, conv_window = 3, heads = 2, key_dim = 16, value_dim = 16, f32>
func.func @delta_heads(%s: !state, %q: tensor<?x3x16xf32>, %v: tensor<?x2x16xf32>, %a: tensor<?x2xf32>, %p: tensor<2xf32>, %seq: tensor<?xi32>) {
  // expected-error @+1 {{'qtf.gated_delta_rule' op value heads (2) must be a multiple of key heads (3)}}
  %o, %s1 = qtf.gated_delta_rule %s[0], %q, %q, %v, %a, %a, %p, %p, %seq, %seq {scale = 0.25 : f64} : !state, tensor<?x3x16xf32>, tensor<?x3x16xf32>, tensor<?x2x16xf32>, tensor<?x2xf32>, tensor<?x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<?xi32>, tensor<?xi32> -> tensor<?x2x16xf32>
  return
}

// -----

func.func @mrope_sum(%h: tensor<?x2x32xf32>, %pos: tensor<?x3xi32>) {
  // expected-error @+1 {{'qtf.rope' op mrope_section must sum to rotary_dim / 2 (4), got 5}}
  %r = qtf.rope %h, %pos {theta = 1.0e7 : f64, rotary_dim = 8 : i64, mrope_section = array<i64: 2, 2, 1>} : tensor<?x2x32xf32>, tensor<?x3xi32> -> tensor<?x2x32xf32>
  return
}

// -----

func.func @sigmoid_gate(%x: tensor<?x64xf32>, %g: tensor<?x2xf32>) {
  // expected-error @+1 {{'qtf.sigmoid_mul' op gate must have the input's shape or be one column}}
  %0 = qtf.sigmoid_mul %x, %g : tensor<?x64xf32>, tensor<?x2xf32>
  return
}

// -----

func.func @gated_norm_weight(%o: tensor<?x2x16xf32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{'qtf.gated_rms_norm' op weight must be [16]}}
  %0 = qtf.gated_rms_norm %o, %o, %w {epsilon = 1.0e-6 : f64} : tensor<?x2x16xf32>, tensor<?x2x16xf32>, tensor<8xf32> -> tensor<?x2x16xf32>
  return
}

// -----

func.func @rope_dynamic_rows(%x: tensor<?x4x16xf32>, %p: tensor<?xi32>) {
  // expected-error @+1 {{'qtf.rope' op with dynamic or longrope scaling, token_seq is required}}
  %0 = qtf.rope %x, %p {theta = 1.0e4 : f64, rotary_dim = 16 : i64, scaling = #qtf.rope_scaling<kind = dynamic, factor = 2.0, original_max_positions = 64>} : tensor<?x4x16xf32>, tensor<?xi32> -> tensor<?x4x16xf32>
  return
}

// -----

func.func @rope_static_rows(%x: tensor<?x4x16xf32>, %p: tensor<?xi32>, %s: tensor<?xi32>) {
  // expected-error @+1 {{'qtf.rope' op token_seq is only taken with dynamic or longrope scaling}}
  %0 = qtf.rope %x, %p, %s {theta = 1.0e4 : f64, rotary_dim = 16 : i64, scaling = #qtf.rope_scaling<kind = linear, factor = 2.0>} : tensor<?x4x16xf32>, tensor<?xi32>, tensor<?xi32> -> tensor<?x4x16xf32>
  return
}

// -----

func.func @rope_longrope_length(%x: tensor<?x4x16xf32>, %p: tensor<?xi32>, %s: tensor<?xi32>) {
  // expected-error @+1 {{'qtf.rope' op longrope factors must have rotary_dim / 2 (8) entries, got 2}}
  %0 = qtf.rope %x, %p, %s {theta = 1.0e4 : f64, rotary_dim = 16 : i64, scaling = #qtf.rope_scaling<kind = longrope, factor = 4.0, original_max_positions = 16, short_factor = [1.0, 1.0], long_factor = [1.0, 2.0]>} : tensor<?x4x16xf32>, tensor<?xi32>, tensor<?xi32> -> tensor<?x4x16xf32>
  return
}

// -----

func.func @rope_factor(%x: tensor<?x4x16xf32>, %p: tensor<?xi32>) {
  // expected-error @+1 {{rope_scaling factor must be finite and at least 1, got 5.000000e-01}}
  %0 = qtf.rope %x, %p {theta = 1.0e4 : f64, rotary_dim = 16 : i64, scaling = #qtf.rope_scaling<kind = linear, factor = 0.5>} : tensor<?x4x16xf32>, tensor<?xi32> -> tensor<?x4x16xf32>
  return
}

// -----

func.func @rope_yarn_original(%x: tensor<?x4x16xf32>, %p: tensor<?xi32>) {
  // expected-error @+1 {{rope_scaling yarn needs a positive original_max_positions}}
  %0 = qtf.rope %x, %p {theta = 1.0e4 : f64, rotary_dim = 16 : i64, scaling = #qtf.rope_scaling<kind = yarn, factor = 4.0>} : tensor<?x4x16xf32>, tensor<?xi32> -> tensor<?x4x16xf32>
  return
}

// -----

func.func @rope_longrope_without_factors(%x: tensor<?x4x16xf32>, %p: tensor<?xi32>, %s: tensor<?xi32>) {
  // expected-error @+1 {{short_factor and long_factor are given exactly for longrope}}
  %0 = qtf.rope %x, %p, %s {theta = 1.0e4 : f64, rotary_dim = 16 : i64, scaling = #qtf.rope_scaling<kind = longrope, factor = 4.0, original_max_positions = 16>} : tensor<?x4x16xf32>, tensor<?xi32>, tensor<?xi32> -> tensor<?x4x16xf32>
  return
}
