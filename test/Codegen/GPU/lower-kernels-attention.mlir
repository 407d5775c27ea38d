// RUN: qwen-opt %s --split-input-file --qwen-gpu-lower-kernels | FileCheck %s
// RUN: qwen-opt %s --split-input-file --qwen-gpu-lower-kernels="attention-threads=128" | FileCheck %s --check-prefix=T128

// attention, head_dim 128: one block per (token, query head). 32 lanes
// share a key (one vector<4xf32> each, a coalesced 512-byte row), so 256
// threads make 8 groups walking positions g, g + 8, ... with their own
// online softmax; the q.k dot is reduced over the 32 lanes with 5 xor
// shuffles. The loop bound is block-uniform (every shuffle has its whole
// warp): positions past the context are clamped for the loads and masked
// out with selects. The 8 partial states merge through shared memory.
!kv = !qtf.kv_cache<layers = 2, kv_heads = 2, head_dim = 128, page_size = 16, f32>
// CHECK-LABEL: func.func @step
// CHECK:       qkernel.launch @kernels::@qk0_attention
// CHECK-SAME:    gpu_block = array<i64: 256, 1, 1>, gpu_grid = ["T", 4], gpu_shared_bytes = 4672 : i64
// CHECK:       gpu.func @qk0_attention
// CHECK-SAME:    workgroup(%[[Q:.*]] : memref<128xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %[[MAX:.*]] : memref<8xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %[[SUM:.*]] : memref<8xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %[[ACC:.*]] : memref<1024xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64})
// CHECK:         gpu.barrier
// CHECK:         %[[QV:.*]] = vector.load %[[Q]]
// CHECK:         %[[GROUPS:.*]] = arith.constant 8 : index
// CHECK:         scf.for %{{.*}} = %{{.*}} to %{{.*}} step %[[GROUPS]] iter_args(%{{.*}} = %{{.*}}, %{{.*}} = %{{.*}}, %{{.*}} = %{{.*}}) -> (f32, f32, vector<4xf32>)
// CHECK:           %[[VALID:.*]] = arith.cmpi ult
// CHECK:           arith.minui
// CHECK:           vector.load %{{.*}} {alignment = 16 : i64} : memref<?xf32>, vector<4xf32>
// CHECK:           vector.fma %[[QV]]
// CHECK:           vector.reduction <add>
// CHECK-COUNT-5:   gpu.shuffle xor
// CHECK:           arith.maximumf
// CHECK:           math.exp
// CHECK:           math.exp
// CHECK:           arith.select %[[VALID]]
// CHECK:           arith.select %[[VALID]]
// CHECK:           vector.fma
// CHECK:           arith.select %[[VALID]]
// CHECK:         memref.store %{{.*}}, %[[MAX]]
// CHECK:         memref.store %{{.*}}, %[[SUM]]
// CHECK:         vector.store %{{.*}}, %[[ACC]]
// CHECK:         gpu.barrier
// CHECK:         scf.for
// CHECK:           memref.load %[[MAX]]
// CHECK:           arith.maximumf
// CHECK:         scf.for
// CHECK:           math.exp
// CHECK:           math.fma
// CHECK:           math.fma
// CHECK:         arith.divf
// T128:        gpu_block = array<i64: 128, 1, 1>, gpu_grid = ["T", 4], gpu_shared_bytes = 2592 : i64
func.func @step(%q: tensor<?x4x128xf32> {qtf.input = "tokens"}, %kv: !kv, %pos: tensor<?xi32> {qtf.input = "positions"}, %seq: tensor<?xi32> {qtf.input = "token_seq"}, %bt: tensor<?x?xi32> {qtf.input = "block_table"}) -> tensor<?x4x128xf32> {
  %0 = qkernel.launch @kernels::@qk0_attention(%q, %kv, %pos, %seq, %bt) : (tensor<?x4x128xf32>, !kv, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>) -> tensor<?x4x128xf32>
  return %0 : tensor<?x4x128xf32>
}
module @kernels {
  func.func @qk0_attention(%q: tensor<?x4x128xf32>, %kv: !kv, %pos: tensor<?xi32>, %seq: tensor<?xi32>, %bt: tensor<?x?xi32>) -> tensor<?x4x128xf32> attributes {qkernel.kernel, qkernel.kind = "attention"} {
    %0 = qtf.paged_attention %q, %kv[1], %pos, %seq, %bt {scale = 0.0883883476 : f64} : tensor<?x4x128xf32>, !kv, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x4x128xf32>
    return %0 : tensor<?x4x128xf32>
  }
}

// -----

// head_dim 32: 8 vectors, so groups of 8 lanes (3 shuffles), 32 groups.
!kv = !qtf.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, page_size = 16, f32>
// CHECK-LABEL: func.func @step
// CHECK:       gpu_block = array<i64: 256, 1, 1>, gpu_grid = ["T", 4]
// CHECK:       gpu.func @qk0_attention
// CHECK:         scf.for
// CHECK:           vector.reduction <add>
// CHECK-NEXT:      %[[OFFSET:.*]] = arith.constant 4 : i32
// CHECK-NEXT:      %[[WIDTH:.*]] = arith.constant 32 : i32
// CHECK-NEXT:      gpu.shuffle xor %{{.*}}, %[[OFFSET]], %[[WIDTH]] : f32
// CHECK-COUNT-2:   gpu.shuffle xor
// CHECK-NOT:       gpu.shuffle
// CHECK:           arith.maximumf
func.func @step(%q: tensor<?x4x32xf32> {qtf.input = "tokens"}, %kv: !kv, %pos: tensor<?xi32> {qtf.input = "positions"}, %seq: tensor<?xi32> {qtf.input = "token_seq"}, %bt: tensor<?x?xi32> {qtf.input = "block_table"}) -> tensor<?x4x32xf32> {
  %0 = qkernel.launch @kernels::@qk0_attention(%q, %kv, %pos, %seq, %bt) : (tensor<?x4x32xf32>, !kv, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>) -> tensor<?x4x32xf32>
  return %0 : tensor<?x4x32xf32>
}
module @kernels {
  func.func @qk0_attention(%q: tensor<?x4x32xf32>, %kv: !kv, %pos: tensor<?xi32>, %seq: tensor<?xi32>, %bt: tensor<?x?xi32>) -> tensor<?x4x32xf32> attributes {qkernel.kernel, qkernel.kind = "attention"} {
    %0 = qtf.paged_attention %q, %kv[0], %pos, %seq, %bt {scale = 0.17677669529663687 : f64} : tensor<?x4x32xf32>, !kv, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x4x32xf32>
    return %0 : tensor<?x4x32xf32>
  }
}
