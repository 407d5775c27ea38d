// RUN: qwen-opt %s --qwen-select-schedule=target=cuda --qwen-gpu-lower-kernels | FileCheck %s

// kv_write: one block per (token, kv head). The key row goes through the
// k-norm / rope chain in shared memory, the value row is copied; both are
// stored into slot position % 16 of page block_table[seq][position / 16].
// Slots: qkv, k_norm, positions, keys, values (the cache), token_seq,
// block_table; the cache result has no slot. Then T, B, P, R.
!kv = !qtf.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, page_size = 16, f32>
// CHECK-LABEL: func.func @step
// CHECK:       qkernel.launch @kernels::@qk0_kv_write
// CHECK-SAME:    launch = #qkernel.launch<grid = [T, 2], block = 32, shared = 128>
// CHECK:       func.func private @qk0_kv_write({{.*}}) -> !qtf.kv_cache
// CHECK:       gpu.func @qk0_kv_write(%{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %[[KEYS:.*]]: !llvm.ptr, %[[VALUES:.*]]: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: i64, %{{.*}}: i64, %[[P:.*]]: i64, %{{.*}}: i64)
// CHECK-SAME:    workgroup(%[[ROW:.*]] : memref<32xf32, #gpu.address_space<workgroup>>
// CHECK:         %[[PAGESIZE:.*]] = arith.constant 16 : index
// CHECK:         arith.divui %{{.*}}, %[[PAGESIZE]]
// CHECK:         arith.remui %{{.*}}, %[[PAGESIZE]]
// CHECK-COUNT-5: {{gpu.shuffle xor|gpu.subgroup_reduce}}
// CHECK:         math.cos
// CHECK:         gpu.barrier
// CHECK:         vector.store %{{.*}} {alignment = 16 : i64} : memref<?xf32>, vector<4xf32>
// CHECK:         vector.store %{{.*}}, %[[ROW]]
// CHECK:         gpu.barrier
// CHECK:         vector.store %{{.*}} {alignment = 16 : i64} : memref<?xf32>, vector<4xf32>
// CHECK:         gpu.return
func.func @step(%qkv: tensor<?x256xf32> {qtf.input = "tokens"}, %kv: !kv, %pos: tensor<?xi32> {qtf.input = "positions"}, %seq: tensor<?xi32> {qtf.input = "token_seq"}, %bt: tensor<?x?xi32> {qtf.input = "block_table"}) -> !kv {
  %w = qtf.weight ["k_norm"] : tensor<32xbf16>
  %0 = qkernel.launch @kernels::@qk0_kv_write(%qkv, %w, %pos, %kv, %seq, %bt) : (tensor<?x256xf32>, tensor<32xbf16>, tensor<?xi32>, !kv, tensor<?xi32>, tensor<?x?xi32>) -> !kv
  return %0 : !kv
}
module @kernels {
  func.func @qk0_kv_write(%arg0: tensor<?x256xf32>, %arg1: tensor<32xbf16>, %arg2: tensor<?xi32>, %arg3: !kv, %arg4: tensor<?xi32>, %arg5: tensor<?x?xi32>) -> !kv attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<kv_write>} {
    %0:3 = qtf.split %arg0 [128, 64, 64] : tensor<?x256xf32> -> tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>
    %1 = qtf.reshape %0#1 : tensor<?x64xf32> -> tensor<?x2x32xf32>
    %2 = qtf.rms_norm %1, %arg1 {epsilon = 1.0e-6 : f64} : tensor<?x2x32xf32>, tensor<32xbf16> -> tensor<?x2x32xf32>
    %3 = qtf.rope %2, %arg2 {rotary_dim = 32 : i64, theta = 1.000000e+06 : f64} : tensor<?x2x32xf32>, tensor<?xi32> -> tensor<?x2x32xf32>
    %4 = qtf.reshape %0#2 : tensor<?x64xf32> -> tensor<?x2x32xf32>
    %5 = qtf.kv_cache_write %arg3[1], %3, %4, %arg2, %arg4, %arg5 : !kv, tensor<?x2x32xf32>, tensor<?x2x32xf32>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>
    return %5 : !kv
  }
}
