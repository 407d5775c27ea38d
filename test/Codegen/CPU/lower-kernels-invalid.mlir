// RUN: qwen-opt %s --qwen-select-schedule=target=cpu --qwen-cpu-lower-kernels -verify-diagnostics

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
