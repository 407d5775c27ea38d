// RUN: qwen-opt %s --split-input-file --qwen-select-schedule=target=cpu --qwen-cpu-lower-kernels --mlir-print-debuginfo --mlir-print-local-scope | FileCheck %s

// The CPU delta rule is emitted as named phases (KernelPhase: a NameLoc
// "delta_rule.<phase>" on every op of the phase, nested phases nested), in
// this order: find_run, then per token in token_loop: load_qk (with gates),
// then per column block of S (a vector of up to four of the schedule's
// vectors, every key row walked from the slot) the recurrent step of
// Common/DeltaRule: state_update (m = S^T k, then S updated and o = S^T q
// accumulated in one walk), output.

// -----

// 4 value heads on 2 key heads, key_dim 64, value_dim 16.
// CHECK-LABEL: func.func @qk0_delta_rule(
// CHECK:         arith.select {{.*}} loc("delta_rule.find_run"
// CHECK:         vector.reduction <add>, {{.*}} loc("delta_rule.load_qk"("delta_rule.token_loop"
// CHECK:         math.rsqrt {{.*}} loc("delta_rule.load_qk"("delta_rule.token_loop"
// CHECK:         math.log1p {{.*}} loc("delta_rule.gates"("delta_rule.load_qk"("delta_rule.token_loop"
// CHECK:         math.exp {{.*}} loc("delta_rule.gates"("delta_rule.load_qk"("delta_rule.token_loop"
// CHECK:         scf.for {{.*}} -> (vector<[[W:[0-9]+]]xf32>) {
// CHECK:           vector.fma {{.*}} loc("delta_rule.state_update"("delta_rule.token_loop"
// CHECK:         arith.subf {{.*}} : vector<[[W]]xf32> loc("delta_rule.state_update"("delta_rule.token_loop"
// CHECK:         scf.for {{.*}} -> (vector<[[W]]xf32>) {
// CHECK:           vector.fma {{.*}} loc("delta_rule.state_update"("delta_rule.token_loop"
// CHECK:           vector.store {{.*}} loc("delta_rule.state_update"("delta_rule.token_loop"
// CHECK:           vector.fma {{.*}} loc("delta_rule.state_update"("delta_rule.token_loop"
// CHECK:         vector.store {{.*}} loc("delta_rule.output"("delta_rule.token_loop"
// CHECK:         } loc("delta_rule.token_loop"
!st0 = !qtf.linear_state<layers = 1, conv_channels = 320, conv_window = 3, heads = 4, key_dim = 64, value_dim = 16, f32>
func.func @step(%x: tensor<?x320xf32> {qtf.input = "tokens"}, %p: tensor<?x328xf32> {qtf.input = "tokens"}, %seq: tensor<?xi32> {qtf.input = "token_seq"}, %slots: tensor<?xi32> {qtf.input = "state_slots"}, %state: !st0) -> (tensor<?x4x16xf32>, !st0) {
  %alog = qtf.weight ["A_log"] : tensor<4xf32>
  %dt = qtf.weight ["dt_bias"] : tensor<4xf32>
  %0:2 = qkernel.launch @kernels::@qk0_delta_rule(%x, %p, %state, %alog, %dt, %seq, %slots) : (tensor<?x320xf32>, tensor<?x328xf32>, !st0, tensor<4xf32>, tensor<4xf32>, tensor<?xi32>, tensor<?xi32>) -> (tensor<?x4x16xf32>, !st0)
  return %0#0, %0#1 : tensor<?x4x16xf32>, !st0
}
module @kernels {
  func.func @qk0_delta_rule(%arg0: tensor<?x320xf32>, %arg1: tensor<?x328xf32>, %arg2: !st0, %arg3: tensor<4xf32>, %arg4: tensor<4xf32>, %arg5: tensor<?xi32>, %arg6: tensor<?xi32>) -> (tensor<?x4x16xf32>, !st0) attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<delta_rule>} {
    %0:3 = qtf.split %arg0 [128, 128, 64] : tensor<?x320xf32> -> tensor<?x128xf32>, tensor<?x128xf32>, tensor<?x64xf32>
    %1 = qtf.reshape %0#0 : tensor<?x128xf32> -> tensor<?x2x64xf32>
    %2 = qtf.reshape %0#1 : tensor<?x128xf32> -> tensor<?x2x64xf32>
    %3 = qtf.reshape %0#2 : tensor<?x64xf32> -> tensor<?x4x16xf32>
    %4:3 = qtf.split %arg1 [320, 4, 4] : tensor<?x328xf32> -> tensor<?x320xf32>, tensor<?x4xf32>, tensor<?x4xf32>
    %result, %new_state = qtf.gated_delta_rule %arg2[0], %1, %2, %3, %4#2, %4#1, %arg3, %arg4, %arg5, %arg6 {scale = 0.125 : f64} : !st0, tensor<?x2x64xf32>, tensor<?x2x64xf32>, tensor<?x4x16xf32>, tensor<?x4xf32>, tensor<?x4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<?xi32>, tensor<?xi32> -> tensor<?x4x16xf32>
    return %result, %new_state : tensor<?x4x16xf32>, !st0
  }
}

// -----

// Qwen3.5's shape: 4 value heads on 2 key heads, key_dim = value_dim = 128.
// CHECK-LABEL: func.func @qk0_delta_rule(
// CHECK:         arith.select {{.*}} loc("delta_rule.find_run"
// CHECK:         vector.reduction <add>, {{.*}} loc("delta_rule.load_qk"("delta_rule.token_loop"
// CHECK:         math.rsqrt {{.*}} loc("delta_rule.load_qk"("delta_rule.token_loop"
// CHECK:         math.log1p {{.*}} loc("delta_rule.gates"("delta_rule.load_qk"("delta_rule.token_loop"
// CHECK:         math.exp {{.*}} loc("delta_rule.gates"("delta_rule.load_qk"("delta_rule.token_loop"
// CHECK:         scf.for {{.*}} -> (vector<[[W:[0-9]+]]xf32>) {
// CHECK:           vector.fma {{.*}} loc("delta_rule.state_update"("delta_rule.token_loop"
// CHECK:         arith.subf {{.*}} : vector<[[W]]xf32> loc("delta_rule.state_update"("delta_rule.token_loop"
// CHECK:         scf.for {{.*}} -> (vector<[[W]]xf32>) {
// CHECK:           vector.fma {{.*}} loc("delta_rule.state_update"("delta_rule.token_loop"
// CHECK:           vector.store {{.*}} loc("delta_rule.state_update"("delta_rule.token_loop"
// CHECK:           vector.fma {{.*}} loc("delta_rule.state_update"("delta_rule.token_loop"
// CHECK:         vector.store {{.*}} loc("delta_rule.output"("delta_rule.token_loop"
// CHECK:         } loc("delta_rule.token_loop"
!st1 = !qtf.linear_state<layers = 1, conv_channels = 1024, conv_window = 3, heads = 4, key_dim = 128, value_dim = 128, f32>
func.func @step(%x: tensor<?x1024xf32> {qtf.input = "tokens"}, %p: tensor<?x1032xf32> {qtf.input = "tokens"}, %seq: tensor<?xi32> {qtf.input = "token_seq"}, %slots: tensor<?xi32> {qtf.input = "state_slots"}, %state: !st1) -> (tensor<?x4x128xf32>, !st1) {
  %alog = qtf.weight ["A_log"] : tensor<4xf32>
  %dt = qtf.weight ["dt_bias"] : tensor<4xf32>
  %0:2 = qkernel.launch @kernels::@qk0_delta_rule(%x, %p, %state, %alog, %dt, %seq, %slots) : (tensor<?x1024xf32>, tensor<?x1032xf32>, !st1, tensor<4xf32>, tensor<4xf32>, tensor<?xi32>, tensor<?xi32>) -> (tensor<?x4x128xf32>, !st1)
  return %0#0, %0#1 : tensor<?x4x128xf32>, !st1
}
module @kernels {
  func.func @qk0_delta_rule(%arg0: tensor<?x1024xf32>, %arg1: tensor<?x1032xf32>, %arg2: !st1, %arg3: tensor<4xf32>, %arg4: tensor<4xf32>, %arg5: tensor<?xi32>, %arg6: tensor<?xi32>) -> (tensor<?x4x128xf32>, !st1) attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<delta_rule>} {
    %0:3 = qtf.split %arg0 [256, 256, 512] : tensor<?x1024xf32> -> tensor<?x256xf32>, tensor<?x256xf32>, tensor<?x512xf32>
    %1 = qtf.reshape %0#0 : tensor<?x256xf32> -> tensor<?x2x128xf32>
    %2 = qtf.reshape %0#1 : tensor<?x256xf32> -> tensor<?x2x128xf32>
    %3 = qtf.reshape %0#2 : tensor<?x512xf32> -> tensor<?x4x128xf32>
    %4:3 = qtf.split %arg1 [1024, 4, 4] : tensor<?x1032xf32> -> tensor<?x1024xf32>, tensor<?x4xf32>, tensor<?x4xf32>
    %result, %new_state = qtf.gated_delta_rule %arg2[0], %1, %2, %3, %4#2, %4#1, %arg3, %arg4, %arg5, %arg6 {scale = 0.08838834764831845 : f64} : !st1, tensor<?x2x128xf32>, tensor<?x2x128xf32>, tensor<?x4x128xf32>, tensor<?x4xf32>, tensor<?x4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<?xi32>, tensor<?xi32> -> tensor<?x4x128xf32>
    return %result, %new_state : tensor<?x4x128xf32>, !st1
  }
}

// -----

// key_dim 128, value_dim 256.
// CHECK-LABEL: func.func @qk0_delta_rule(
// CHECK:         arith.select {{.*}} loc("delta_rule.find_run"
// CHECK:         vector.reduction <add>, {{.*}} loc("delta_rule.load_qk"("delta_rule.token_loop"
// CHECK:         math.rsqrt {{.*}} loc("delta_rule.load_qk"("delta_rule.token_loop"
// CHECK:         math.log1p {{.*}} loc("delta_rule.gates"("delta_rule.load_qk"("delta_rule.token_loop"
// CHECK:         math.exp {{.*}} loc("delta_rule.gates"("delta_rule.load_qk"("delta_rule.token_loop"
// CHECK:         scf.for {{.*}} -> (vector<[[W:[0-9]+]]xf32>) {
// CHECK:           vector.fma {{.*}} loc("delta_rule.state_update"("delta_rule.token_loop"
// CHECK:         arith.subf {{.*}} : vector<[[W]]xf32> loc("delta_rule.state_update"("delta_rule.token_loop"
// CHECK:         scf.for {{.*}} -> (vector<[[W]]xf32>) {
// CHECK:           vector.fma {{.*}} loc("delta_rule.state_update"("delta_rule.token_loop"
// CHECK:           vector.store {{.*}} loc("delta_rule.state_update"("delta_rule.token_loop"
// CHECK:           vector.fma {{.*}} loc("delta_rule.state_update"("delta_rule.token_loop"
// CHECK:         vector.store {{.*}} loc("delta_rule.output"("delta_rule.token_loop"
// CHECK:         } loc("delta_rule.token_loop"
!st2 = !qtf.linear_state<layers = 1, conv_channels = 768, conv_window = 3, heads = 2, key_dim = 128, value_dim = 256, f32>
func.func @step(%x: tensor<?x768xf32> {qtf.input = "tokens"}, %p: tensor<?x772xf32> {qtf.input = "tokens"}, %seq: tensor<?xi32> {qtf.input = "token_seq"}, %slots: tensor<?xi32> {qtf.input = "state_slots"}, %state: !st2) -> (tensor<?x2x256xf32>, !st2) {
  %alog = qtf.weight ["A_log"] : tensor<2xf32>
  %dt = qtf.weight ["dt_bias"] : tensor<2xf32>
  %0:2 = qkernel.launch @kernels::@qk0_delta_rule(%x, %p, %state, %alog, %dt, %seq, %slots) : (tensor<?x768xf32>, tensor<?x772xf32>, !st2, tensor<2xf32>, tensor<2xf32>, tensor<?xi32>, tensor<?xi32>) -> (tensor<?x2x256xf32>, !st2)
  return %0#0, %0#1 : tensor<?x2x256xf32>, !st2
}
module @kernels {
  func.func @qk0_delta_rule(%arg0: tensor<?x768xf32>, %arg1: tensor<?x772xf32>, %arg2: !st2, %arg3: tensor<2xf32>, %arg4: tensor<2xf32>, %arg5: tensor<?xi32>, %arg6: tensor<?xi32>) -> (tensor<?x2x256xf32>, !st2) attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<delta_rule>} {
    %0:3 = qtf.split %arg0 [128, 128, 512] : tensor<?x768xf32> -> tensor<?x128xf32>, tensor<?x128xf32>, tensor<?x512xf32>
    %1 = qtf.reshape %0#0 : tensor<?x128xf32> -> tensor<?x1x128xf32>
    %2 = qtf.reshape %0#1 : tensor<?x128xf32> -> tensor<?x1x128xf32>
    %3 = qtf.reshape %0#2 : tensor<?x512xf32> -> tensor<?x2x256xf32>
    %4:3 = qtf.split %arg1 [768, 2, 2] : tensor<?x772xf32> -> tensor<?x768xf32>, tensor<?x2xf32>, tensor<?x2xf32>
    %result, %new_state = qtf.gated_delta_rule %arg2[0], %1, %2, %3, %4#2, %4#1, %arg3, %arg4, %arg5, %arg6 {scale = 0.08838834764831845 : f64} : !st2, tensor<?x1x128xf32>, tensor<?x1x128xf32>, tensor<?x2x256xf32>, tensor<?x2xf32>, tensor<?x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<?xi32>, tensor<?xi32> -> tensor<?x2x256xf32>
    return %result, %new_state : tensor<?x2x256xf32>, !st2
  }
}
