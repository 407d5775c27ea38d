// RUN: qwen-opt %s --split-input-file --qwen-select-schedule=target=cuda --qwen-gpu-lower-kernels | FileCheck %s

// elementwise silu_mul over the two halves of gate|up: blocks of (row,
// chunk), each thread one vector<4xf32> of each half (the up half starts at
// column 192 of the 384-wide row), silu(a) * v = a / (1 + exp(-a)) * v.
// CHECK-LABEL: func.func @step
// CHECK:       qkernel.launch @kernels::@qk0_elementwise
// CHECK-SAME:    launch = #qkernel.launch<grid = [T], block = 64, shared = 0>
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
  func.func @qk0_elementwise(%arg0: tensor<?x384xf32>) -> tensor<?x192xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<elementwise>} {
    %0:2 = qtf.split %arg0 [192, 192] : tensor<?x384xf32> -> tensor<?x192xf32>, tensor<?x192xf32>
    %1 = qtf.silu_mul %0#0, %0#1 : tensor<?x192xf32>
    return %1 : tensor<?x192xf32>
  }
}

// -----

// A view at an odd offset (column 3) cannot take aligned vectors: scalar
// accesses, still one per thread.
// CHECK-LABEL: func.func @step
// CHECK:       launch = #qkernel.launch<grid = [T], block = 32,
// CHECK:       gpu.func @qk0_elementwise
// CHECK-NOT:     vector<4xf32>
// CHECK:         arith.addf %{{.*}} : vector<1xf32>
func.func @step(%x: tensor<?x10xf32> {qtf.input = "tokens"}) -> tensor<?x5xf32> {
  %0 = qkernel.launch @kernels::@qk0_elementwise(%x) : (tensor<?x10xf32>) -> tensor<?x5xf32>
  return %0 : tensor<?x5xf32>
}
module @kernels {
  func.func @qk0_elementwise(%arg0: tensor<?x10xf32>) -> tensor<?x5xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<elementwise>} {
    %0:3 = qtf.split %arg0 [3, 5, 2] : tensor<?x10xf32> -> tensor<?x3xf32>, tensor<?x5xf32>, tensor<?x2xf32>
    %1 = qtf.add %0#1, %0#1 : tensor<?x5xf32>
    return %1 : tensor<?x5xf32>
  }
}

// -----

// sigmoid_mul of the attention output by its gate (the second half of each
// head's q|gate columns, a view at column 64 of the projection row):
// a * sigmoid(g) = a / (1 + exp(-g)), vector<4xf32> per thread.
// CHECK-LABEL: func.func @step
// CHECK:       qkernel.launch @kernels::@qk0_elementwise
// CHECK-SAME:    launch = #qkernel.launch<grid = [T], block = 32,
// CHECK:       gpu.func @qk0_elementwise
// CHECK:         scf.if
// CHECK:           %[[A:.*]] = vector.load %{{.*}} {alignment = 16 : i64} : memref<?xf32>, vector<4xf32>
// CHECK:           %[[GATE:.*]] = arith.constant 64 : index
// CHECK:           arith.addi %{{.*}}, %[[GATE]]
// CHECK:           %[[G:.*]] = vector.load %{{.*}} {alignment = 16 : i64} : memref<?xf32>, vector<4xf32>
// CHECK:           %[[NEG:.*]] = arith.negf %[[G]]
// CHECK:           %[[EXP:.*]] = math.exp %[[NEG]]
// CHECK:           %[[DEN:.*]] = arith.addf %{{.*}}, %[[EXP]]
// CHECK:           %[[Y:.*]] = arith.divf %[[A]], %[[DEN]]
// CHECK:           vector.store %[[Y]]
func.func @step(%o: tensor<?x2x32xf32> {qtf.input = "tokens"}, %qkv: tensor<?x192xf32> {qtf.input = "tokens"}) -> tensor<?x64xf32> {
  %0 = qkernel.launch @kernels::@qk0_elementwise(%o, %qkv) : (tensor<?x2x32xf32>, tensor<?x192xf32>) -> tensor<?x64xf32>
  return %0 : tensor<?x64xf32>
}
module @kernels {
  func.func @qk0_elementwise(%arg0: tensor<?x2x32xf32>, %arg1: tensor<?x192xf32>) -> tensor<?x64xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<elementwise>} {
    %0 = qtf.reshape %arg0 : tensor<?x2x32xf32> -> tensor<?x64xf32>
    %1:4 = qtf.split %arg1 [64, 64, 32, 32] : tensor<?x192xf32> -> tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>
    %2 = qtf.sigmoid_mul %0, %1#1 : tensor<?x64xf32>, tensor<?x64xf32>
    return %2 : tensor<?x64xf32>
  }
}

// -----

// sigmoid_mul by a one-column gate (the shared expert's gate at column 56
// of a 57-wide row, an odd offset): the gate is one scalar per row,
// broadcast, and does not narrow the vectors of the input.
// CHECK-LABEL: func.func @step
// CHECK:       launch = #qkernel.launch<grid = [T], block = 32,
// CHECK:       gpu.func @qk0_elementwise
// CHECK:         scf.if
// CHECK:           %[[X:.*]] = vector.load %{{.*}} {alignment = 16 : i64} : memref<?xf32>, vector<4xf32>
// CHECK:           %[[C56:.*]] = arith.constant 56 : index
// CHECK:           %[[AT:.*]] = arith.addi %{{.*}}, %[[C56]]
// CHECK:           %[[G:.*]] = memref.load %{{.*}}[%[[AT]]] : memref<?xf32>
// CHECK:           %[[GV:.*]] = vector.broadcast %[[G]] : f32 to vector<4xf32>
// CHECK:           arith.negf %[[GV]]
// CHECK:           math.exp
// CHECK:           arith.divf %[[X]]
// CHECK:           vector.store
func.func @step(%a: tensor<?x57xf32> {qtf.input = "tokens"}, %x: tensor<?x32xf32> {qtf.input = "tokens"}) -> tensor<?x32xf32> {
  %0 = qkernel.launch @kernels::@qk0_elementwise(%a, %x) : (tensor<?x57xf32>, tensor<?x32xf32>) -> tensor<?x32xf32>
  return %0 : tensor<?x32xf32>
}
module @kernels {
  func.func @qk0_elementwise(%arg0: tensor<?x57xf32>, %arg1: tensor<?x32xf32>) -> tensor<?x32xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<elementwise>} {
    %0:4 = qtf.split %arg0 [8, 24, 24, 1] : tensor<?x57xf32> -> tensor<?x8xf32>, tensor<?x24xf32>, tensor<?x24xf32>, tensor<?x1xf32>
    %1 = qtf.sigmoid_mul %arg1, %0#3 : tensor<?x32xf32>, tensor<?x1xf32>
    return %1 : tensor<?x32xf32>
  }
}

// -----

// moe_combine + residual: residual + slot 0 + slot 1 of each token, in that
// order (the CPU's), as vectors of the [T, 2, 32] expert rows.
// CHECK-LABEL: func.func @step
// CHECK:       launch = #qkernel.launch<grid = [T], block = 32,
// CHECK:       gpu.func @qk0_elementwise(%{{[^:]+}}: !llvm.ptr, %{{[^:]+}}: !llvm.ptr, %{{[^:]+}}: !llvm.ptr, %{{[^:]+}}: i64
// CHECK:         %[[SLOTS:.*]] = builtin.unrealized_conversion_cast %{{.*}} to memref<?xf32>
// CHECK:         %[[RESIDUAL:.*]] = builtin.unrealized_conversion_cast %{{.*}} to memref<?xf32>
// CHECK:         scf.if
// CHECK:           %[[R:.*]] = vector.load %[[RESIDUAL]]
// CHECK:           %[[S0:.*]] = vector.load %[[SLOTS]]
// CHECK:           %[[SUM0:.*]] = arith.addf %[[R]], %[[S0]] : vector<4xf32>
// CHECK:           %[[S1:.*]] = vector.load %[[SLOTS]]
// CHECK:           %[[SUM1:.*]] = arith.addf %[[SUM0]], %[[S1]] : vector<4xf32>
// CHECK:           vector.store %[[SUM1]]
func.func @step(%s: tensor<?x2x32xf32> {qtf.input = "tokens"}, %x: tensor<?x32xf32> {qtf.input = "tokens"}) -> tensor<?x32xf32> {
  %0 = qkernel.launch @kernels::@qk0_elementwise(%s, %x) : (tensor<?x2x32xf32>, tensor<?x32xf32>) -> tensor<?x32xf32>
  return %0 : tensor<?x32xf32>
}
module @kernels {
  func.func @qk0_elementwise(%arg0: tensor<?x2x32xf32>, %arg1: tensor<?x32xf32>) -> tensor<?x32xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<elementwise>} {
    %0 = qtf.moe_combine %arg0 : tensor<?x2x32xf32> -> tensor<?x32xf32>
    %1 = qtf.add %0, %arg1 : tensor<?x32xf32>
    return %1 : tensor<?x32xf32>
  }
}
