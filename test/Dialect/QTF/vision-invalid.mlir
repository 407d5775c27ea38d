// RUN: qwen-opt %s -split-input-file -verify-diagnostics

func.func @layer_norm_bias(%x: tensor<?x64xf32>, %w: tensor<64xf32>, %b: tensor<32xf32>) {
  // expected-error @+1 {{'qtf.layer_norm' op bias must be 1-D with the size of the last input dimension (64)}}
  %0 = qtf.layer_norm %x, %w, %b {epsilon = 1.0e-6 : f64} : tensor<?x64xf32>, tensor<64xf32>, tensor<32xf32> -> tensor<?x64xf32>
  return
}

// -----

func.func @layer_norm_epsilon(%x: tensor<?x64xf32>, %w: tensor<64xf32>) {
  // expected-error @+1 {{'qtf.layer_norm' op epsilon must be positive}}
  %0 = qtf.layer_norm %x, %w, %w {epsilon = 0.0 : f64} : tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32> -> tensor<?x64xf32>
  return
}

// -----

func.func @gelu_kind(%x: tensor<?x64xf32>) {
  // expected-error @+2 {{expected ::qwen::qtf::GeluApproximation to be one of: erf, tanh}}
  // expected-error @+1 {{failed to parse QTF_GeluApproximationAttr parameter 'value'}}
  %0 = qtf.gelu %x {approximation = #qtf.gelu_approximation<sigmoid>} : tensor<?x64xf32>
  return
}

// -----

func.func @rotary_table(%x: tensor<?x4x16xf32>, %c: tensor<?x16xf32>) {
  // expected-error @+1 {{'qtf.rotary_embedding' op cos must be [tokens, 8] f32}}
  %0 = qtf.rotary_embedding %x, %c, %c : tensor<?x4x16xf32>, tensor<?x16xf32>, tensor<?x16xf32> -> tensor<?x4x16xf32>
  return
}

// -----

func.func @rotary_rank(%x: tensor<?x64xf32>, %c: tensor<?x32xf32>) {
  // expected-error @+1 {{'qtf.rotary_embedding' op expects [tokens, heads, head_dim] input}}
  %0 = qtf.rotary_embedding %x, %c, %c : tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32> -> tensor<?x64xf32>
  return
}

// -----

func.func @segment_bounds(%q: tensor<?x4x16xf32>, %b: tensor<?xi32>) {
  // expected-error @+1 {{'qtf.segment_attention' op segment_bounds must be [tokens, 2]}}
  %0 = qtf.segment_attention %q, %q, %q, %b {scale = 0.25 : f64} : tensor<?x4x16xf32>, tensor<?x4x16xf32>, tensor<?x4x16xf32>, tensor<?xi32> -> tensor<?x4x16xf32>
  return
}

// -----

func.func @segment_heads(%q: tensor<?x4x16xf32>, %k: tensor<?x2x16xf32>, %b: tensor<?x2xi32>) {
  // expected-error @+1 {{'qtf.segment_attention' op key, value and result must have the query type}}
  %0 = qtf.segment_attention %q, %k, %q, %b {scale = 0.25 : f64} : tensor<?x4x16xf32>, tensor<?x2x16xf32>, tensor<?x4x16xf32>, tensor<?x2xi32> -> tensor<?x4x16xf32>
  return
}

// -----

func.func @gather_weights(%t: tensor<256x64xf32>, %i: tensor<?x4xi32>, %w: tensor<?x2xf32>) {
  // expected-error @+1 {{'qtf.weighted_gather' op weights must be f32 of the indices' shape}}
  %0 = qtf.weighted_gather %t[%i], %w : tensor<256x64xf32>, tensor<?x4xi32>, tensor<?x2xf32> -> tensor<?x64xf32>
  return
}

// -----

func.func @gather_width(%t: tensor<256x64xf32>, %i: tensor<?x4xi32>, %w: tensor<?x4xf32>) {
  // expected-error @+1 {{'qtf.weighted_gather' op result must be [tokens, 64]}}
  %0 = qtf.weighted_gather %t[%i], %w : tensor<256x64xf32>, tensor<?x4xi32>, tensor<?x4xf32> -> tensor<?x32xf32>
  return
}

// -----

func.func @merge_width(%x: tensor<?x64xf32>) {
  // expected-error @+1 {{'qtf.merge_rows' op result rows must be 256 wide}}
  %0 = qtf.merge_rows %x {factor = 4 : i64} : tensor<?x64xf32> -> tensor<?x128xf32>
  return
}

// -----

func.func @merge_static(%x: tensor<6x64xf32>) {
  // expected-error @+1 {{'qtf.merge_rows' op input rows must be factor times the result rows}}
  %0 = qtf.merge_rows %x {factor = 4 : i64} : tensor<6x64xf32> -> tensor<2x256xf32>
  return
}
