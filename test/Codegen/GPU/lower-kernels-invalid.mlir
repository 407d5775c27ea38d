// RUN: qwen-opt %s --split-input-file --qwen-select-schedule=target=cuda --qwen-gpu-lower-kernels -verify-diagnostics
// RUN: not qwen-opt %s --split-input-file --qwen-select-schedule="target=cuda max-threads=48" 2>&1 | FileCheck %s --check-prefix=THREADS
// RUN: not qwen-opt %s --split-input-file --qwen-select-schedule="target=cuda attention-threads=40" 2>&1 | FileCheck %s --check-prefix=ATTENTION

// THREADS: error: max-threads must be a multiple of 32 in [32, 1024]

// A dynamic size that does not trace back to a step input is an error, not
// a guess.
func.func @step(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
  %0 = qkernel.launch @kernels::@qk0_elementwise(%x) : (tensor<?x8xf32>) -> tensor<?x8xf32>
  return %0 : tensor<?x8xf32>
}
module @kernels {
  // expected-error @+1 {{cannot tell the size of its grid}}
  func.func @qk0_elementwise(%x: tensor<?x8xf32>) -> tensor<?x8xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<elementwise>} {
    %0 = qtf.add %x, %x : tensor<?x8xf32>
    return %0 : tensor<?x8xf32>
  }
}

// -----

// A kind without GPU codegen of its own (codegen makes pack kernels).
func.func @step(%x: tensor<?x8xf32> {qtf.input = "tokens"}) -> tensor<?x8xf32> {
  %0 = qkernel.launch @kernels::@qk0_pack(%x) : (tensor<?x8xf32>) -> tensor<?x8xf32>
  return %0 : tensor<?x8xf32>
}
module @kernels {
  // expected-error @+1 {{has no GPU codegen for kernel kind #qkernel.kind<gemm_pack>}}
  func.func @qk0_pack(%x: tensor<?x8xf32>) -> tensor<?x8xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<gemm_pack>} {
    %0 = qtf.add %x, %x : tensor<?x8xf32>
    return %0 : tensor<?x8xf32>
  }
}

// -----

// A row staged in shared memory must fit the 48 KiB a block gets statically
// (#qkernel.launch's verifier).
func.func @step(%x: tensor<?x16384xf32> {qtf.input = "tokens"}) -> tensor<?x16384xf32> {
  %w = qtf.weight ["norm"] : tensor<16384xbf16>
  %0 = qkernel.launch @kernels::@qk0_rows(%x, %w) : (tensor<?x16384xf32>, tensor<16384xbf16>) -> tensor<?x16384xf32>
  return %0 : tensor<?x16384xf32>
}
module @kernels {
  // expected-error @+1 {{shared memory must be 0 to 49152 bytes (static, sm_90), got 65568}}
  func.func @qk0_rows(%x: tensor<?x16384xf32>, %w: tensor<16384xbf16>) -> tensor<?x16384xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<rows>} {
    %0 = qtf.rms_norm %x, %w {epsilon = 1.0e-6 : f64} : tensor<?x16384xf32>, tensor<16384xbf16> -> tensor<?x16384xf32>
    return %0 : tensor<?x16384xf32>
  }
}

// -----

// ATTENTION: error: attention-threads must be a multiple of 32 in [32, 1024]
!kv = !qtf.kv_cache<layers = 1, kv_heads = 1, head_dim = 32, page_size = 16, f32>
func.func @step(%q: tensor<?x1x32xf32> {qtf.input = "tokens"}, %kv: !kv, %pos: tensor<?xi32> {qtf.input = "positions"}, %seq: tensor<?xi32> {qtf.input = "token_seq"}, %bt: tensor<?x?xi32> {qtf.input = "block_table"}) -> tensor<?x1x32xf32> {
  %0 = qkernel.launch @kernels::@qk0_attention(%q, %kv, %pos, %seq, %bt) : (tensor<?x1x32xf32>, !kv, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>) -> tensor<?x1x32xf32>
  return %0 : tensor<?x1x32xf32>
}
module @kernels {
  func.func @qk0_attention(%q: tensor<?x1x32xf32>, %kv: !kv, %pos: tensor<?xi32>, %seq: tensor<?xi32>, %bt: tensor<?x?xi32>) -> tensor<?x1x32xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<attention>} {
    %0 = qtf.paged_attention %q, %kv[0], %pos, %seq, %bt {scale = 0.17677669529663687 : f64} : tensor<?x1x32xf32>, !kv, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x1x32xf32>
    return %0 : tensor<?x1x32xf32>
  }
}

// -----

// delta_rule gives each value column a thread: at most 1024 columns.
!st = !qtf.linear_state<layers = 1, conv_channels = 2080, conv_window = 3, heads = 1, key_dim = 16, value_dim = 2048, f32>
func.func @step(%x: tensor<?x2080xf32> {qtf.input = "tokens"}, %p: tensor<?x2xf32> {qtf.input = "tokens"}, %seq: tensor<?xi32> {qtf.input = "token_seq"}, %slots: tensor<?xi32> {qtf.input = "state_slots"}, %state: !st) -> (tensor<?x1x2048xf32>, !st) {
  %alog = qtf.weight ["A_log"] : tensor<1xf32>
  %dt = qtf.weight ["dt_bias"] : tensor<1xf32>
  %0:2 = qkernel.launch @kernels::@qk0_delta_rule(%x, %p, %state, %alog, %dt, %seq, %slots) : (tensor<?x2080xf32>, tensor<?x2xf32>, !st, tensor<1xf32>, tensor<1xf32>, tensor<?xi32>, tensor<?xi32>) -> (tensor<?x1x2048xf32>, !st)
  return %0#0, %0#1 : tensor<?x1x2048xf32>, !st
}
module @kernels {
  // expected-error @+1 {{delta_rule needs value_dim <= 1024 (one thread per column)}}
  func.func @qk0_delta_rule(%arg0: tensor<?x2080xf32>, %arg1: tensor<?x2xf32>, %arg2: !st, %arg3: tensor<1xf32>, %arg4: tensor<1xf32>, %arg5: tensor<?xi32>, %arg6: tensor<?xi32>) -> (tensor<?x1x2048xf32>, !st) attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<delta_rule>} {
    %0:3 = qtf.split %arg0 [16, 16, 2048] : tensor<?x2080xf32> -> tensor<?x16xf32>, tensor<?x16xf32>, tensor<?x2048xf32>
    %1 = qtf.reshape %0#0 : tensor<?x16xf32> -> tensor<?x1x16xf32>
    %2 = qtf.reshape %0#1 : tensor<?x16xf32> -> tensor<?x1x16xf32>
    %3 = qtf.reshape %0#2 : tensor<?x2048xf32> -> tensor<?x1x2048xf32>
    %4:2 = qtf.split %arg1 [1, 1] : tensor<?x2xf32> -> tensor<?x1xf32>, tensor<?x1xf32>
    %result, %new_state = qtf.gated_delta_rule %arg2[0], %1, %2, %3, %4#1, %4#0, %arg3, %arg4, %arg5, %arg6 {scale = 0.25 : f64} : !st, tensor<?x1x16xf32>, tensor<?x1x16xf32>, tensor<?x1x2048xf32>, tensor<?x1xf32>, tensor<?x1xf32>, tensor<1xf32>, tensor<1xf32>, tensor<?xi32>, tensor<?xi32> -> tensor<?x1x2048xf32>
    return %result, %new_state : tensor<?x1x2048xf32>, !st
  }
}
