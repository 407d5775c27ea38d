// RUN: qwen-opt %s --qwen-select-schedule=target=cpu --qwen-cpu-lower-kernels | qwen-opt --pass-pipeline="builtin.module(builtin.module(qwen-cpu-lower-to-llvm))" | FileCheck %s

// The kernels module lowers entirely to the LLVM dialect with the C ABI
// `void(ptr args, ptr dims, i64 begin, i64 end)`.
// CHECK:     module @kernels
// CHECK:       llvm.func @qk0_elementwise(%{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: i64, %{{.*}}: i64)
// CHECK-NOT:     memref.
// CHECK-NOT:     vector.load
// CHECK:         llvm.intr.exp
// CHECK:       llvm.func @qwen_artifact_abi_version() -> i64
func.func @step(%gu: tensor<?x32xf32> {qtf.input = "tokens"}) -> tensor<?x16xf32> {
  %0 = qkernel.launch @kernels::@qk0_elementwise(%gu) : (tensor<?x32xf32>) -> tensor<?x16xf32>
  return %0 : tensor<?x16xf32>
}
module @kernels {
  func.func @qk0_elementwise(%gu: tensor<?x32xf32>) -> tensor<?x16xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<elementwise>} {
    %g, %u = qtf.split %gu [16, 16] : tensor<?x32xf32> -> tensor<?x16xf32>, tensor<?x16xf32>
    %m = qtf.silu_mul %g, %u : tensor<?x16xf32>
    return %m : tensor<?x16xf32>
  }
}
