// RUN: qwen-opt %s | qwen-opt | FileCheck %s

// CHECK-LABEL: func.func @step
// CHECK:       %[[R:.+]] = qkernel.region <matmul> -> tensor<?x8xf32> {
// CHECK:         qkernel.yield %{{.*}} : tensor<?x8xf32>
// CHECK:       qkernel.launch @kernels::@k(%[[R]]) {launch = #qkernel.launch<grid = [T, 2]>, result_buffers = array<i64: 0>}
func.func @step(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
  %r = qkernel.region <matmul> -> tensor<?x8xf32> {
    %a = qtf.add %x, %x : tensor<?x8xf32>
    qkernel.yield %a : tensor<?x8xf32>
  }
  %l = qkernel.launch @kernels::@k(%r) {launch = #qkernel.launch<grid = [T, 2]>, result_buffers = array<i64: 0>} : (tensor<?x8xf32>) -> tensor<?x8xf32>
  return %l : tensor<?x8xf32>
}
module @kernels {
  // CHECK: func.func @k({{.*}} attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<rows>}
  func.func @k(%x: tensor<?x8xf32>) -> tensor<?x8xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<rows>} {
    return %x : tensor<?x8xf32>
  }
}
