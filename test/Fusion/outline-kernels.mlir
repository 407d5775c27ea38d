// RUN: qwen-opt %s --split-input-file --qwen-fusion-outline-kernels | FileCheck %s

// Each region becomes a kernel function in @kernels taking its captured
// values; the host keeps weights and launches.
// CHECK-LABEL: func.func @step
// CHECK:       %[[W:.+]] = qtf.weight ["w"]
// CHECK:       %[[L:.+]] = qkernel.launch @kernels::@qk0_matmul(%{{.*}}, %[[W]], %{{.*}}) : (tensor<?x64xf32>, tensor<32x64xbf16>, tensor<?x32xf32>) -> tensor<?x32xf32>
// CHECK:       qkernel.launch @kernels::@qk1_elementwise(%[[L]])
// CHECK:     module @kernels
// CHECK:       func.func @qk0_matmul(%{{.*}}: tensor<?x64xf32>, %{{.*}}: tensor<32x64xbf16>, %{{.*}}: tensor<?x32xf32>) -> tensor<?x32xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>}
// CHECK:         qtf.linear
// CHECK:         qtf.add
// CHECK:         return
// CHECK:       func.func @qk1_elementwise
// CHECK:         qtf.split
// CHECK:         qtf.silu_mul
func.func @step(%x: tensor<?x64xf32> {qtf.input = "tokens"}, %r: tensor<?x32xf32>) -> tensor<?x16xf32> {
  %w = qtf.weight ["w"] : tensor<32x64xbf16>
  %0 = qkernel.region <matmul> -> tensor<?x32xf32> {
    %l = qtf.linear %x, %w : tensor<?x64xf32>, tensor<32x64xbf16> -> tensor<?x32xf32>
    %a = qtf.add %r, %l : tensor<?x32xf32>
    qkernel.yield %a : tensor<?x32xf32>
  }
  %1 = qkernel.region <elementwise> -> tensor<?x16xf32> {
    %g, %u = qtf.split %0 [16, 16] : tensor<?x32xf32> -> tensor<?x16xf32>, tensor<?x16xf32>
    %m = qtf.silu_mul %g, %u : tensor<?x16xf32>
    qkernel.yield %m : tensor<?x16xf32>
  }
  return %1 : tensor<?x16xf32>
}

// -----

// Regions with identical bodies (as every layer's are: weights are arguments)
// share one kernel function.
// CHECK-LABEL: func.func @step
// CHECK:       %[[A:.+]] = qkernel.launch @kernels::@qk0_elementwise(%{{.*}})
// CHECK:       qkernel.launch @kernels::@qk0_elementwise(%[[A]])
// CHECK:     module @kernels
// CHECK-COUNT-1: func.func
// CHECK-NOT:   func.func
func.func @step(%x: tensor<?x8xf32> {qtf.input = "tokens"}) -> tensor<?x8xf32> {
  %0 = qkernel.region <elementwise> -> tensor<?x8xf32> {
    %a = qtf.add %x, %x : tensor<?x8xf32>
    qkernel.yield %a : tensor<?x8xf32>
  }
  %1 = qkernel.region <elementwise> -> tensor<?x8xf32> {
    %a = qtf.add %0, %0 : tensor<?x8xf32>
    qkernel.yield %a : tensor<?x8xf32>
  }
  return %1 : tensor<?x8xf32>
}
