// RUN: qwen-opt %s --split-input-file --qwen-select-schedule=target=cpu --qwen-cpu-lower-kernels | FileCheck %s

// conv: one item per vector of 8 channels (16 channels -> grid 2), walking
// the tokens in order; a request's first row starts from its saved window
// (loaded under scf.if), its last row writes the window back (scf.if).
// CHECK-LABEL: func.func @step
// CHECK:       qkernel.launch @kernels::@qk0_conv{{.*}}grid = [2]
// CHECK:       func.func @qk0_conv
// CHECK:         vector.from_elements
// CHECK:         scf.for {{.*}} iter_args
// CHECK:           scf.if {{.*}} -> (vector<8xf32>, vector<8xf32>, vector<8xf32>)
// CHECK:           vector.fma
// CHECK:           math.exp
// CHECK:           scf.if
// CHECK:             vector.store
!state = !qtf.linear_state<layers = 2, conv_channels = 16, conv_window = 3, heads = 2, key_dim = 8, value_dim = 8, f32>
func.func @step(%x: tensor<?x16xf32> {qtf.input = "tokens"}, %seq: tensor<?xi32> {qtf.input = "token_seq"}, %slots: tensor<?xi32> {qtf.input = "state_slots"}, %s: !state) -> tensor<?x16xf32> {
  %w = qtf.weight ["conv1d.weight"] : tensor<16x4xbf16>
  %0:2 = qkernel.launch @kernels::@qk0_conv(%x, %s, %w, %seq, %slots) : (tensor<?x16xf32>, !state, tensor<16x4xbf16>, tensor<?xi32>, tensor<?xi32>) -> (tensor<?x16xf32>, !state)
  return %0#0 : tensor<?x16xf32>
}
module @kernels {
  func.func @qk0_conv(%x: tensor<?x16xf32>, %s: !state, %w: tensor<16x4xbf16>, %seq: tensor<?xi32>, %slots: tensor<?xi32>) -> (tensor<?x16xf32>, !state) attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<conv>} {
    %y, %s1 = qtf.causal_conv1d %s[1], %x, %w, %seq, %slots : !state, tensor<?x16xf32>, tensor<16x4xbf16>, tensor<?xi32>, tensor<?xi32> -> tensor<?x16xf32>
    return %y, %s1 : tensor<?x16xf32>, !state
  }
}

// -----

// delta_rule: one item per (request, value head); the request's rows are
// found by a scan (first row and count in f32, Common/DeltaRule.cpp), then
// processed token by token (the recurrent step), q and k normalized into
// two scratch rows.
// CHECK-LABEL: func.func @step
// CHECK:       qkernel.launch @kernels::@qk0_delta_rule{{.*}}grid = [B, 4]
// CHECK:       func.func @qk0_delta_rule
// CHECK-COUNT-2: memref.alloca() : memref<8xf32>
// CHECK:         scf.for {{.*}} iter_args({{.*}}) -> (f32, f32)
// CHECK:           arith.minimumf
// CHECK:         arith.fptoui
// CHECK:         arith.fptoui
// CHECK:         scf.for %{{.*}} = %{{.*}} to %{{.*}} step %c1
// CHECK:           vector.reduction <add>
// CHECK:           math.rsqrt
// CHECK:           math.log1p
// CHECK:           vector.fma
!state = !qtf.linear_state<layers = 1, conv_channels = 64, conv_window = 3, heads = 4, key_dim = 8, value_dim = 8, f32>
func.func @step(%c: tensor<?x64xf32> {qtf.input = "tokens"}, %ab: tensor<?x8xf32>, %seq: tensor<?xi32> {qtf.input = "token_seq"}, %slots: tensor<?xi32> {qtf.input = "state_slots"}, %s: !state) -> tensor<?x4x8xf32> {
  %alog = qtf.weight ["A_log"] : tensor<4xf32>
  %dt = qtf.weight ["dt_bias"] : tensor<4xf32>
  %0:2 = qkernel.launch @kernels::@qk0_delta_rule(%c, %ab, %alog, %dt, %seq, %slots, %s) : (tensor<?x64xf32>, tensor<?x8xf32>, tensor<4xf32>, tensor<4xf32>, tensor<?xi32>, tensor<?xi32>, !state) -> (tensor<?x4x8xf32>, !state)
  return %0#0 : tensor<?x4x8xf32>
}
module @kernels {
  func.func @qk0_delta_rule(%c: tensor<?x64xf32>, %ab: tensor<?x8xf32>, %alog: tensor<4xf32>, %dt: tensor<4xf32>, %seq: tensor<?xi32>, %slots: tensor<?xi32>, %s: !state) -> (tensor<?x4x8xf32>, !state) attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<delta_rule>} {
    %p:3 = qtf.split %c [16, 16, 32] : tensor<?x64xf32> -> tensor<?x16xf32>, tensor<?x16xf32>, tensor<?x32xf32>
    %q = qtf.reshape %p#0 : tensor<?x16xf32> -> tensor<?x2x8xf32>
    %k = qtf.reshape %p#1 : tensor<?x16xf32> -> tensor<?x2x8xf32>
    %v = qtf.reshape %p#2 : tensor<?x32xf32> -> tensor<?x4x8xf32>
    %g:2 = qtf.split %ab [4, 4] : tensor<?x8xf32> -> tensor<?x4xf32>, tensor<?x4xf32>
    %o, %s1 = qtf.gated_delta_rule %s[0], %q, %k, %v, %g#0, %g#1, %alog, %dt, %seq, %slots {scale = 0.35355339059327373 : f64} : !state, tensor<?x2x8xf32>, tensor<?x2x8xf32>, tensor<?x4x8xf32>, tensor<?x4xf32>, tensor<?x4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<?xi32>, tensor<?xi32> -> tensor<?x4x8xf32>
    return %o, %s1 : tensor<?x4x8xf32>, !state
  }
}

// -----

// gated_norm: one item per (token, head): RMSNorm, times w, times silu(gate).
// CHECK-LABEL: func.func @step
// CHECK:       qkernel.launch @kernels::@qk0_gated_norm{{.*}}grid = [T, 4]
// CHECK:       func.func @qk0_gated_norm
// CHECK:         vector.reduction <add>
// CHECK:         math.rsqrt
// CHECK:         math.exp
func.func @step(%o: tensor<?x4x8xf32> {qtf.input = "tokens"}, %z: tensor<?x4x8xf32>) -> tensor<?x4x8xf32> {
  %w = qtf.weight ["norm.weight"] : tensor<8xf32>
  %0 = qkernel.launch @kernels::@qk0_gated_norm(%o, %z, %w) : (tensor<?x4x8xf32>, tensor<?x4x8xf32>, tensor<8xf32>) -> tensor<?x4x8xf32>
  return %0 : tensor<?x4x8xf32>
}
module @kernels {
  func.func @qk0_gated_norm(%o: tensor<?x4x8xf32>, %z: tensor<?x4x8xf32>, %w: tensor<8xf32>) -> tensor<?x4x8xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<gated_norm>} {
    %0 = qtf.gated_rms_norm %o, %z, %w {epsilon = 1.0e-6 : f64} : tensor<?x4x8xf32>, tensor<?x4x8xf32>, tensor<8xf32> -> tensor<?x4x8xf32>
    return %0 : tensor<?x4x8xf32>
  }
}

// -----

// sigmoid_mul with a one-column gate: the gate is loaded once per row and
// broadcast (the shared-expert gate).
// CHECK-LABEL: func.func @step
// CHECK:       func.func @qk0_elementwise
// CHECK:         vector.broadcast {{.*}} : f32 to vector<8xf32>
// CHECK:         scf.for
// CHECK:           math.exp
// CHECK:           arith.divf
func.func @step(%x: tensor<?x32xf32> {qtf.input = "tokens"}, %g: tensor<?x1xf32>) -> tensor<?x32xf32> {
  %0 = qkernel.launch @kernels::@qk0_elementwise(%x, %g) : (tensor<?x32xf32>, tensor<?x1xf32>) -> tensor<?x32xf32>
  return %0 : tensor<?x32xf32>
}
module @kernels {
  func.func @qk0_elementwise(%x: tensor<?x32xf32>, %g: tensor<?x1xf32>) -> tensor<?x32xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<elementwise>} {
    %0 = qtf.sigmoid_mul %x, %g : tensor<?x32xf32>, tensor<?x1xf32>
    return %0 : tensor<?x32xf32>
  }
}

// -----

// Interleaved MRoPE: three positions per token, chosen per frequency.
// CHECK-LABEL: func.func @step
// CHECK:       func.func @qk0_rows
// CHECK:         arith.remui {{.*}}, %c3
// CHECK:         arith.select
// CHECK:         arith.select
// CHECK:         math.cos
func.func @step(%x: tensor<?x2x32xf32> {qtf.input = "tokens"}, %pos: tensor<?x3xi32> {qtf.input = "mrope_positions"}) -> tensor<?x2x32xf32> {
  %0 = qkernel.launch @kernels::@qk0_rows(%x, %pos) : (tensor<?x2x32xf32>, tensor<?x3xi32>) -> tensor<?x2x32xf32>
  return %0 : tensor<?x2x32xf32>
}
module @kernels {
  func.func @qk0_rows(%x: tensor<?x2x32xf32>, %pos: tensor<?x3xi32>) -> tensor<?x2x32xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<rows>} {
    %0 = qtf.rope %x, %pos {theta = 1.0e7 : f64, rotary_dim = 8 : i64, mrope_section = array<i64: 2, 1, 1>} : tensor<?x2x32xf32>, tensor<?x3xi32> -> tensor<?x2x32xf32>
    return %0 : tensor<?x2x32xf32>
  }
}
