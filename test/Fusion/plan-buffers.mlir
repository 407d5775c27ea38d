// RUN: qwen-opt %s --pass-pipeline="builtin.module(func.func(qwen-plan-buffers))" | FileCheck %s

// %a dies at the second launch, so the third reuses its buffer; the second
// launch cannot write the buffer it reads. The R-sized result gets its own.
// CHECK-LABEL: func.func @step
// CHECK-SAME:  qkernel.buffers = [{symbol = "T", type = tensor<?x8xf32>}, {symbol = "T", type = tensor<?x8xf32>}, {symbol = "R", type = tensor<?x8xf32>}]
// CHECK:       @kernels::@k0{{.*}}result_buffers = array<i64: 0>
// CHECK:       @kernels::@k1{{.*}}result_buffers = array<i64: 1>
// CHECK:       @kernels::@k1{{.*}}result_buffers = array<i64: 0>
// CHECK:       @kernels::@k2{{.*}}result_buffers = array<i64: 2>
func.func @step(%tokens: tensor<?xi32> {qtf.input = "tokens"}, %rows: tensor<?xi32> {qtf.input = "logit_rows"}) -> tensor<?x8xf32> {
  %a = qkernel.launch @kernels::@k0(%tokens) : (tensor<?xi32>) -> tensor<?x8xf32>
  %b = qkernel.launch @kernels::@k1(%a) : (tensor<?x8xf32>) -> tensor<?x8xf32>
  %c = qkernel.launch @kernels::@k1(%b) : (tensor<?x8xf32>) -> tensor<?x8xf32>
  %d = qkernel.launch @kernels::@k2(%c, %rows) : (tensor<?x8xf32>, tensor<?xi32>) -> tensor<?x8xf32>
  return %d : tensor<?x8xf32>
}
module @kernels {
  func.func @k0(%t: tensor<?xi32>) -> tensor<?x8xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<embedding>} {
    %w = qtf.weight ["e"] : tensor<16x8xf32>
    %0 = qtf.embedding %w[%t] : tensor<16x8xf32>, tensor<?xi32> -> tensor<?x8xf32>
    return %0 : tensor<?x8xf32>
  }
  func.func @k1(%x: tensor<?x8xf32>) -> tensor<?x8xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<elementwise>} {
    %0 = qtf.add %x, %x : tensor<?x8xf32>
    return %0 : tensor<?x8xf32>
  }
  func.func @k2(%x: tensor<?x8xf32>, %r: tensor<?xi32>) -> tensor<?x8xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<rows>} {
    %0 = qtf.gather_rows %x[%r] : tensor<?x8xf32>, tensor<?xi32> -> tensor<?x8xf32>
    return %0 : tensor<?x8xf32>
  }
}
