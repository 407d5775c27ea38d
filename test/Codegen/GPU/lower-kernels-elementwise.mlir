// RUN: qwen-opt %s --split-input-file --qwen-gpu-lower-kernels | FileCheck %s

// elementwise silu_mul over the two halves of gate|up: blocks of (row,
// chunk), each thread one vector<4xf32> of each half (the up half starts at
// column 192 of the 384-wide row), silu(a) * v = a / (1 + exp(-a)) * v.
// CHECK-LABEL: func.func @step
// CHECK:       qkernel.launch @kernels::@qk0_elementwise
// CHECK-SAME:    gpu_block = array<i64: 64, 1, 1>, gpu_grid = ["T"], gpu_shared_bytes = 0 : i64
// CHECK:       gpu.func @qk0_elementwise(%{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64)
// CHECK-SAME:    known_block_size = array<i32: 64, 1, 1>
// CHECK:         %[[INSIDE:.*]] = arith.cmpi ult
// CHECK:         scf.if %[[INSIDE]]
// CHECK:           vector.load %{{.*}} {alignment = 16 : i64} : memref<?xf32>, vector<4xf32>
// CHECK:           %[[UP:.*]] = arith.constant 192 : index
// CHECK:           arith.addi %{{.*}}, %[[UP]]
// CHECK:           vector.load %{{.*}} {alignment = 16 : i64} : memref<?xf32>, vector<4xf32>
// CHECK:           arith.negf
// CHECK:           math.exp
// CHECK:           arith.divf
// CHECK:           arith.mulf
// CHECK:           vector.store %{{.*}} {alignment = 16 : i64} : memref<?xf32>, vector<4xf32>
func.func @step(%x: tensor<?x384xf32> {qtf.input = "tokens"}) -> tensor<?x192xf32> {
  %0 = qkernel.launch @kernels::@qk0_elementwise(%x) : (tensor<?x384xf32>) -> tensor<?x192xf32>
  return %0 : tensor<?x192xf32>
}
module @kernels {
  func.func @qk0_elementwise(%arg0: tensor<?x384xf32>) -> tensor<?x192xf32> attributes {qkernel.kernel, qkernel.kind = "elementwise"} {
    %0:2 = qtf.split %arg0 [192, 192] : tensor<?x384xf32> -> tensor<?x192xf32>, tensor<?x192xf32>
    %1 = qtf.silu_mul %0#0, %0#1 : tensor<?x192xf32>
    return %1 : tensor<?x192xf32>
  }
}

// -----

// A view at an odd offset (column 3) cannot take aligned vectors: scalar
// accesses, still one per thread.
// CHECK-LABEL: func.func @step
// CHECK:       gpu_block = array<i64: 32, 1, 1>, gpu_grid = ["T"]
// CHECK:       gpu.func @qk0_elementwise
// CHECK-NOT:     vector<4xf32>
// CHECK:         arith.addf %{{.*}} : vector<1xf32>
func.func @step(%x: tensor<?x10xf32> {qtf.input = "tokens"}) -> tensor<?x5xf32> {
  %0 = qkernel.launch @kernels::@qk0_elementwise(%x) : (tensor<?x10xf32>) -> tensor<?x5xf32>
  return %0 : tensor<?x5xf32>
}
module @kernels {
  func.func @qk0_elementwise(%arg0: tensor<?x10xf32>) -> tensor<?x5xf32> attributes {qkernel.kernel, qkernel.kind = "elementwise"} {
    %0:3 = qtf.split %arg0 [3, 5, 2] : tensor<?x10xf32> -> tensor<?x3xf32>, tensor<?x5xf32>, tensor<?x2xf32>
    %1 = qtf.add %0#1, %0#1 : tensor<?x5xf32>
    return %1 : tensor<?x5xf32>
  }
}
