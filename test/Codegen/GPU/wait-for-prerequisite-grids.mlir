// RUN: qwen-opt %s --qwen-gpu-wait-for-prerequisite-grids | FileCheck %s

// Every kernel starts by waiting for the grids launched before it, so the
// runtime may launch it programmatically (its launch overlapped with the
// previous kernel); none triggers its dependents early; a device function
// that is not a kernel is left alone. Each generated launch whose kernels
// (with its decode and combine variants) now all wait says so in its
// #qkernel.launch (`programmatic`); the manifest turns that into the
// target's "programmatic_launch".
// CHECK-NOT:   launch_dependents
// CHECK-LABEL: func.func @step
// CHECK:         qkernel.launch @kernels::@first({{.*}}) {launch = #qkernel.launch<grid = [T], block = 32, shared = 0, programmatic>}
// CHECK:         qkernel.launch @kernels::@second({{.*}}) {launch = #qkernel.launch<grid = [T], block = 32, shared = 0, decode = <"second", grid = [B], block = 32, shared = 0>, max_splits = 2, partial_floats = 4, combine = <"first", grid = [B], block = 32, shared = 0>, split_keys = 64, programmatic>}
// A decode variant that is not in the GPU module does not wait.
// CHECK:         qkernel.launch @kernels::@first({{.*}}) {launch = #qkernel.launch<grid = [T], block = 32, shared = 0, decode = <"elsewhere", grid = [B], block = 32, shared = 0>, max_splits = 1, partial_floats = 4>}
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
  func.func @step(%x: tensor<?xi64>) {
    qkernel.launch @kernels::@first(%x) {launch = #qkernel.launch<grid = [T], block = 32, shared = 0>} : (tensor<?xi64>) -> ()
    qkernel.launch @kernels::@second() {launch = #qkernel.launch<grid = [T], block = 32, shared = 0, decode = <"second", grid = [B], block = 32, shared = 0>, max_splits = 2, partial_floats = 4, combine = <"first", grid = [B], block = 32, shared = 0>, split_keys = 64>} : () -> ()
    qkernel.launch @kernels::@first(%x) {launch = #qkernel.launch<grid = [T], block = 32, shared = 0, decode = <"elsewhere", grid = [B], block = 32, shared = 0>, max_splits = 1, partial_floats = 4>} : (tensor<?xi64>) -> ()
    return
  }
  module @kernels {
    func.func private @first(tensor<?xi64>) attributes {qkernel.kernel}
    func.func private @second() attributes {qkernel.kernel}
  }
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
