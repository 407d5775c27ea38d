// RUN: qwen-opt %s --qwen-select-schedule=target=cpu --qwen-cpu-lower-kernels | FileCheck %s

// kv_write on the CPU, from the same row family as the GPU's
// (Common/KVWrite.cpp): one work item per (token, kv head), so the grid is
// ["T", kv_heads] on both targets. The key row goes through the k-norm /
// rope chain in a stack row, the value row is copied; both are stored into
// slot position % 16 of page block_table[seq][position / 16].
// CHECK-LABEL: func.func @step
// CHECK:       qkernel.launch @kernels::@qk0_kv_write{{.*}}grid = [T, 2]>
// CHECK:       func.func @qk0_kv_write(%{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: i64, %{{.*}}: i64)
// CHECK:         %[[ROW:.*]] = memref.alloca() : memref<32xf32>
// CHECK:         scf.for %[[ITEM:.*]] = %{{.*}} to %{{.*}} step
// CHECK:           arith.divui %[[ITEM]], %{{.*}} : index
// CHECK:           arith.remui %[[ITEM]], %{{.*}} : index
// CHECK:           %[[PAGESIZE:.*]] = arith.constant 16 : index
// CHECK:           arith.divui %{{.*}}, %[[PAGESIZE]]
// The key chain: the row loaded, rms_norm (vector FMAs, one reduction,
// rsqrt), then rope on the pairs.
// CHECK:           vector.store %{{.*}}, %[[ROW]][%{{.*}}] : memref<32xf32>, vector<8xf32>
// CHECK:           vector.fma
// CHECK:           vector.reduction <add>
// CHECK:           math.rsqrt
// CHECK:           math.cos
// CHECK:           vector.store %{{.*}} : memref<?xf32>, vector<8xf32>
// The value row.
// CHECK:           vector.store %{{.*}}, %[[ROW]][%{{.*}}] : memref<32xf32>, vector<8xf32>
// CHECK:           vector.store %{{.*}} : memref<?xf32>, vector<8xf32>
!kv = !qtf.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, page_size = 16, f32>
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
