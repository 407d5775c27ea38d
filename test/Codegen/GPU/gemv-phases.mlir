// RUN: qwen-opt %s --qwen-select-schedule="target=cuda gpu-gemv=generated" --qwen-gpu-lower-kernels --mlir-print-debuginfo --mlir-print-local-scope | FileCheck %s

// The generated GEMV (a GEMM's decode variant, GemvKernel.cpp) is emitted as
// named phases (KernelPhase): per pass of rows, gemv.rows picks the
// activation rows (gathered rows through their ids), gemv.dot streams the
// weight row against them, gemv.epilogue sums across the warp and adds the
// bias and the residual on lane 0 (f32 weights with a bias and a residual:
// the decode variant of the cuBLASLt entry).

// CHECK-LABEL: gpu.func @qk0_matmul_decode(
// CHECK:         scf.for
// CHECK:           arith.minui {{.*}} loc("gemv.rows"
// CHECK:           scf.for {{.*}} {
// CHECK:             vector.reduction <add>, {{.*}} loc("gemv.dot"
// CHECK:           } loc("gemv.dot"
// CHECK:           {{gpu.shuffle|gpu.subgroup_reduce}} {{.*}} loc("gemv.epilogue"
// CHECK:           arith.addf {{.*}} loc("gemv.epilogue"
// CHECK:           arith.addf {{.*}} loc("gemv.epilogue"
// CHECK:           memref.store {{.*}} loc("gemv.epilogue"
// CHECK:         gpu.return

func.func @step(%arg0: tensor<?x32xf32> {qtf.input = "tokens"}, %arg1: tensor<?x40xf32> {qtf.input = "positions"}) -> tensor<?x40xf32> attributes {qkernel.buffers = [{symbol = "T", type = tensor<?x40xf32>}]} {
  %w = qtf.weight ["w"] : tensor<40x32xf32>
  %b = qtf.weight ["b"] : tensor<40xf32>
  %0 = qkernel.launch @kernels::@qk0_matmul(%arg0, %w, %b, %arg1) {result_buffers = array<i64: 0>} : (tensor<?x32xf32>, tensor<40x32xf32>, tensor<40xf32>, tensor<?x40xf32>) -> tensor<?x40xf32>
  return %0 : tensor<?x40xf32>
}
module @kernels {
  func.func @qk0_matmul(%x: tensor<?x32xf32>, %w: tensor<40x32xf32>, %b: tensor<40xf32>, %r: tensor<?x40xf32>) -> tensor<?x40xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
    %0 = qtf.linear %x, %w bias %b : tensor<?x32xf32>, tensor<40x32xf32>, tensor<40xf32> -> tensor<?x40xf32>
    %1 = qtf.add %0, %r : tensor<?x40xf32>
    return %1 : tensor<?x40xf32>
  }
}
