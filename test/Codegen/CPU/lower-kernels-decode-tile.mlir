// RUN: qwen-opt %s --qwen-select-schedule="vector-width=16 cpu-features=avx512f" --qwen-cpu-lower-kernels | FileCheck %s

// Decode tiles of a matmul over short weight rows (64 bf16; the schedule
// gives decode_tile = [4, 1], test/Schedule/matmul.mlir): a lone token walks
// the work item's weight rows one by one, each with a single accumulator
// over k, so the item reads its weights as one sequential stream; a step of
// at most 4 tokens (batched decode) takes 4 x 1 tiles the same way; longer
// steps take the 4 x 2 `tile` (then 4 x 1 for the item's odd row).
// CHECK-LABEL: func.func @qk0_matmul(
// CHECK:         %[[FEW:.*]] = arith.cmpi sle, %[[M:.*]], %c4
// CHECK:         scf.if %[[FEW]] {
// CHECK:           scf.for %{{.*}} step %c4
// CHECK:             scf.for %{{.*}} step %c1
// CHECK:               scf.for {{.*}} iter_args({{.*}}) -> (vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>)
// CHECK-COUNT-4:         vector.fma
// CHECK-NOT:             vector.fma
// CHECK:               vector.reduction <add>
// Lone tokens: rows one at a time, one vector accumulator, one FMA per step.
// CHECK:           scf.for %{{.*}} step %c1
// CHECK:             scf.for %{{.*}} step %c1
// CHECK:               scf.for %{{.*}} = %{{.*}} to %{{.*}} step %c16{{.*}} iter_args(%{{.*}} = %{{.*}}) -> (vector<16xf32>)
// CHECK:                 vector.load %{{.*}} : memref<?xi16>, vector<16xi16>
// CHECK:                 vector.fma
// CHECK-NOT:             vector.fma
// CHECK:               vector.reduction <add>
// CHECK:         %[[MANY:.*]] = arith.cmpi sgt, %[[M]], %c4
// CHECK:         scf.if %[[MANY]] {
// CHECK:           scf.for %{{.*}} step %c4
// CHECK:             scf.for %{{.*}} step %c2
// CHECK-COUNT-8:         vector.fma
// CHECK:             scf.for %{{.*}} step %c1
// CHECK-COUNT-4:         vector.fma
// CHECK:           scf.for %{{.*}} step %c1
// CHECK:             scf.for %{{.*}} step %c1
// CHECK:               scf.for {{.*}} -> (vector<16xf32>)
// CHECK:                 vector.fma
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
