// RUN: qwen-opt %s --split-input-file --qwen-gpu-lower-kernels -verify-diagnostics
// RUN: not qwen-opt %s --split-input-file --qwen-gpu-lower-kernels="max-threads=48" 2>&1 | FileCheck %s --check-prefix=THREADS
// RUN: not qwen-opt %s --split-input-file --qwen-gpu-lower-kernels="attention-threads=40" 2>&1 | FileCheck %s --check-prefix=ATTENTION

// THREADS: error: max-threads must be a multiple of 32 in [32, 1024]

// A dynamic size that does not trace back to a step input is an error, not
// a guess.
func.func @step(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
  %0 = qkernel.launch @kernels::@qk0_elementwise(%x) : (tensor<?x8xf32>) -> tensor<?x8xf32>
  return %0 : tensor<?x8xf32>
}
module @kernels {
  // expected-error @+1 {{cannot tell the size of its grid}}
  func.func @qk0_elementwise(%x: tensor<?x8xf32>) -> tensor<?x8xf32> attributes {qkernel.kernel, qkernel.kind = "elementwise"} {
    %0 = qtf.add %x, %x : tensor<?x8xf32>
    return %0 : tensor<?x8xf32>
  }
}

// -----

// A kind without GPU codegen.
func.func @step(%x: tensor<?x8xf32> {qtf.input = "tokens"}) -> tensor<?x8xf32> {
  %0 = qkernel.launch @kernels::@qk0_scan(%x) : (tensor<?x8xf32>) -> tensor<?x8xf32>
  return %0 : tensor<?x8xf32>
}
module @kernels {
  // expected-error @+1 {{has no GPU codegen for kernel kind "scan"}}
  func.func @qk0_scan(%x: tensor<?x8xf32>) -> tensor<?x8xf32> attributes {qkernel.kernel, qkernel.kind = "scan"} {
    %0 = qtf.add %x, %x : tensor<?x8xf32>
    return %0 : tensor<?x8xf32>
  }
}

// -----

// A row staged in shared memory must fit the 48 KiB a block gets statically.
func.func @step(%x: tensor<?x16384xf32> {qtf.input = "tokens"}) -> tensor<?x16384xf32> {
  %w = qtf.weight ["norm"] : tensor<16384xbf16>
  %0 = qkernel.launch @kernels::@qk0_rows(%x, %w) : (tensor<?x16384xf32>, tensor<16384xbf16>) -> tensor<?x16384xf32>
  return %0 : tensor<?x16384xf32>
}
module @kernels {
  // expected-error @+1 {{needs 65568 bytes of shared memory, more than a block gets statically (49152)}}
  func.func @qk0_rows(%x: tensor<?x16384xf32>, %w: tensor<16384xbf16>) -> tensor<?x16384xf32> attributes {qkernel.kernel, qkernel.kind = "rows"} {
    %0 = qtf.rms_norm %x, %w {epsilon = 1.0e-6 : f64} : tensor<?x16384xf32>, tensor<16384xbf16> -> tensor<?x16384xf32>
    return %0 : tensor<?x16384xf32>
  }
}

// -----

// ATTENTION: error: 'func.func' op attention-threads must be a multiple of 32 in [32, 1024]
!kv = !qtf.kv_cache<layers = 1, kv_heads = 1, head_dim = 32, page_size = 16, f32>
func.func @step(%q: tensor<?x1x32xf32> {qtf.input = "tokens"}, %kv: !kv, %pos: tensor<?xi32> {qtf.input = "positions"}, %seq: tensor<?xi32> {qtf.input = "token_seq"}, %bt: tensor<?x?xi32> {qtf.input = "block_table"}) -> tensor<?x1x32xf32> {
  %0 = qkernel.launch @kernels::@qk0_attention(%q, %kv, %pos, %seq, %bt) : (tensor<?x1x32xf32>, !kv, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>) -> tensor<?x1x32xf32>
  return %0 : tensor<?x1x32xf32>
}
module @kernels {
  func.func @qk0_attention(%q: tensor<?x1x32xf32>, %kv: !kv, %pos: tensor<?xi32>, %seq: tensor<?xi32>, %bt: tensor<?x?xi32>) -> tensor<?x1x32xf32> attributes {qkernel.kernel, qkernel.kind = "attention"} {
    %0 = qtf.paged_attention %q, %kv[0], %pos, %seq, %bt {scale = 0.17677669529663687 : f64} : tensor<?x1x32xf32>, !kv, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x1x32xf32>
    return %0 : tensor<?x1x32xf32>
  }
}
