// RUN: qwen-opt %s -split-input-file -verify-diagnostics

func.func @unknown_kind(%x: tensor<?x8xf32>) {
  // expected-error @+2 {{expected ::qwen::qkernel::KernelKind to be one of: matmul, rows}}
  // expected-error @+1 {{failed to parse QKernel_KernelKindAttr parameter 'value'}}
  %r = qkernel.region <fancy> -> tensor<?x8xf32> {
    qkernel.yield %x : tensor<?x8xf32>
  }
  return
}

// -----

func.func @codegen_kind(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{'qkernel.region' op kernel kind 'gemm_pack' is not a fusion kind}}
  %r = qkernel.region <gemm_pack> -> tensor<?x8xf32> {
    qkernel.yield %x : tensor<?x8xf32>
  }
  return
}

// -----

func.func @yield_types(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{'qkernel.region' op yielded types must match the region results}}
  %r = qkernel.region <rows> -> tensor<?x4xf32> {
    qkernel.yield %x : tensor<?x8xf32>
  }
  return
}

// -----

func.func @missing_kernel(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{'qkernel.launch' op kernel '@kernels::@nope' does not exist}}
  %l = qkernel.launch @kernels::@nope(%x) : (tensor<?x8xf32>) -> tensor<?x8xf32>
  return
}
module @kernels {
}

// -----

func.func @signature(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{'qkernel.launch' op operand/result types do not match kernel '@kernels::@k'}}
  %l = qkernel.launch @kernels::@k(%x) : (tensor<?x8xf32>) -> tensor<?x4xf32>
  return
}
module @kernels {
  func.func @k(%x: tensor<?x8xf32>) -> tensor<?x8xf32> attributes {qkernel.kernel} {
    return %x : tensor<?x8xf32>
  }
}

// -----

func.func @buffers(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{'qkernel.launch' op needs one result buffer per result}}
  %l = qkernel.launch @kernels::@k(%x) {result_buffers = array<i64: 0, 1>} : (tensor<?x8xf32>) -> tensor<?x8xf32>
  return
}
module @kernels {
  func.func @k(%x: tensor<?x8xf32>) -> tensor<?x8xf32> attributes {qkernel.kernel} {
    return %x : tensor<?x8xf32>
  }
}
