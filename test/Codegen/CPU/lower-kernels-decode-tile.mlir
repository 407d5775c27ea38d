// RUN: qwen-opt %s --qwen-select-schedule="vector-width=16 cpu-features=avx512f" --qwen-cpu-lower-kernels | FileCheck %s

// The one-token (decode) tile of a matmul is 1 x 1 (decode_tile = [1, 1],
// test/Schedule/matmul.mlir): the work item's weight rows are walked one by
// one, each with a single accumulator over k, so the item reads its weights
// as one sequential stream. The 4-token tiles come first (4 x 2, then 4 x 1
// for the item's odd row); the lone tokens after them take no remainder
// tile since a 1-row tile divides every item.
// CHECK-LABEL: func.func @qk0_matmul(
// CHECK:         scf.for %{{.*}} step %c4
// CHECK-COUNT-8:   vector.fma
// CHECK-COUNT-4:   vector.fma
// Lone tokens: rows one at a time, one vector accumulator, one FMA per step.
// CHECK:         scf.for %{{.*}} = %{{.*}} to %{{.*}} step %c1
// CHECK:           scf.for %{{.*}} = %{{.*}} to %{{.*}} step %c1
// CHECK:             scf.for %{{.*}} = %{{.*}} to %{{.*}} step %c16{{.*}} iter_args(%{{.*}} = %{{.*}}) -> (vector<16xf32>)
// CHECK:               vector.load %{{.*}} : memref<?xi16>, vector<16xi16>
// CHECK:               vector.fma
// CHECK-NOT:           vector.fma
// CHECK:             vector.reduction <add>
// CHECK-NOT:     vector.fma
// CHECK:         return
func.func @step(%x: tensor<?x64xf32> {qtf.input = "tokens"}) -> tensor<?x40xf32> {
  %w = qtf.weight ["w"] : tensor<40x64xbf16>
  %0 = qkernel.launch @kernels::@qk0_matmul(%x, %w) : (tensor<?x64xf32>, tensor<40x64xbf16>) -> tensor<?x40xf32>
  return %0 : tensor<?x40xf32>
}
module @kernels {
  func.func @qk0_matmul(%x: tensor<?x64xf32>, %w: tensor<40x64xbf16>) -> tensor<?x40xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
    %0 = qtf.linear %x, %w : tensor<?x64xf32>, tensor<40x64xbf16> -> tensor<?x40xf32>
    return %0 : tensor<?x40xf32>
  }
}
