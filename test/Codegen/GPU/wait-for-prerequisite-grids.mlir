// RUN: qwen-opt %s --pass-pipeline='builtin.module(gpu.module(qwen-gpu-wait-for-prerequisite-grids))' | FileCheck %s

// Every kernel starts by waiting for the grids launched before it, so the
// runtime may launch it programmatically (its launch overlapped with the
// previous kernel); none triggers its dependents early; a device function
// that is not a kernel is left alone.
// CHECK-NOT:   launch_dependents
// CHECK-LABEL: gpu.func @first(
// CHECK-NEXT:    nvvm.griddepcontrol wait
// CHECK-NEXT:    gpu.block_id
// CHECK-LABEL: gpu.func @second(
// CHECK-NEXT:    nvvm.griddepcontrol wait
// CHECK-NEXT:    gpu.return
// CHECK-LABEL: gpu.func @helper(
// CHECK-NOT:     nvvm.griddepcontrol
// CHECK:         gpu.return
module attributes {gpu.container_module} {
  gpu.module @qwen_kernels {
    gpu.func @first(%out: memref<?xi64>) kernel {
      %b = gpu.block_id x
      %i = arith.index_cast %b : index to i64
      memref.store %i, %out[%b] : memref<?xi64>
      gpu.return
    }
    gpu.func @second() kernel {
      gpu.return
    }
    gpu.func @helper() {
      gpu.return
    }
  }
}
