// RUN: qwen-opt %s --qwen-select-schedule=target=cuda --qwen-gpu-lower-kernels | FileCheck %s

// kv_write with the attention's query chain joined (FormKernelRegions): one
// block per (token, kv head, unit), unit 0 and 1 the kv head's two query
// heads, unit 2 the kv head itself (unit = item % 6 = kv head * 3 + r). A
// query block builds its q-norm / rope row in shared memory and stores it to
// the query result; a kv block stores its key and value rows into the cache
// page as a lone kv_write does. The branch is uniform over a block, so the
// barriers of each chain stay matched.
// Slots: qkv, q_norm, positions, k_norm, keys, values (the cache), token_seq,
// block_table, the query result (the cache result has none). Then T, B, P, R.
!kv = !qtf.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, page_size = 16, f32>
// CHECK-LABEL: func.func @step
// CHECK:       qkernel.launch @kernels::@qk0_kv_write
// CHECK-SAME:    launch = #qkernel.launch<grid = [T, 6], block = 32, shared = 128>
// CHECK:       func.func private @qk0_kv_write({{.*}}) -> (tensor<?x4x32xf32> {qkernel.symbol = "T"}, !qtf.kv_cache
// CHECK:       gpu.func @qk0_kv_write(%{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %[[KEYS:.*]]: !llvm.ptr, %[[VALUES:.*]]: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %[[QUERY:.*]]: !llvm.ptr, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64)
// CHECK-SAME:    workgroup(%[[ROW:.*]] : memref<32xf32, #gpu.address_space<workgroup>>
// CHECK:         %[[R:.*]] = arith.remui %{{.*}}, %c3{{.*}} : index
// CHECK:         %[[ISQ:.*]] = arith.cmpi ult, %[[R]], %c2 : index
// CHECK:         scf.if %[[ISQ]] {
// CHECK:           math.cos
// CHECK:           gpu.barrier
// CHECK:         }
// CHECK:         %[[ISKV:.*]] = arith.cmpi eq, %[[R]], %c2{{.*}} : index
// CHECK:         scf.if %[[ISKV]] {
// CHECK:           arith.remui %{{.*}}, %{{.*}}
// CHECK:           math.cos
// CHECK:           gpu.barrier
// CHECK:         }
// CHECK:         gpu.return
func.func @step(%qkv: tensor<?x256xf32> {qtf.input = "tokens"}, %kv: !kv, %pos: tensor<?xi32> {qtf.input = "positions"}, %seq: tensor<?xi32> {qtf.input = "token_seq"}, %bt: tensor<?x?xi32> {qtf.input = "block_table"}) -> (tensor<?x4x32xf32>, !kv) {
  %wq = qtf.weight ["q_norm"] : tensor<32xbf16>
  %wk = qtf.weight ["k_norm"] : tensor<32xbf16>
  %0:2 = qkernel.launch @kernels::@qk0_kv_write(%qkv, %wq, %pos, %wk, %kv, %seq, %bt) : (tensor<?x256xf32>, tensor<32xbf16>, tensor<?xi32>, tensor<32xbf16>, !kv, tensor<?xi32>, tensor<?x?xi32>) -> (tensor<?x4x32xf32>, !kv)
  return %0#0, %0#1 : tensor<?x4x32xf32>, !kv
}
module @kernels {
  func.func @qk0_kv_write(%arg0: tensor<?x256xf32>, %arg1: tensor<32xbf16>, %arg2: tensor<?xi32>, %arg3: tensor<32xbf16>, %arg4: !kv, %arg5: tensor<?xi32>, %arg6: tensor<?x?xi32>) -> (tensor<?x4x32xf32>, !kv) attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<kv_write>} {
    %0:3 = qtf.split %arg0 [128, 64, 64] : tensor<?x256xf32> -> tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>
    %1 = qtf.reshape %0#0 : tensor<?x128xf32> -> tensor<?x4x32xf32>
    %2 = qtf.rms_norm %1, %arg1 {epsilon = 1.0e-6 : f64} : tensor<?x4x32xf32>, tensor<32xbf16> -> tensor<?x4x32xf32>
    %3 = qtf.rope %2, %arg2 {rotary_dim = 32 : i64, theta = 1.000000e+06 : f64} : tensor<?x4x32xf32>, tensor<?xi32> -> tensor<?x4x32xf32>
    %4 = qtf.reshape %0#1 : tensor<?x64xf32> -> tensor<?x2x32xf32>
    %5 = qtf.rms_norm %4, %arg3 {epsilon = 1.0e-6 : f64} : tensor<?x2x32xf32>, tensor<32xbf16> -> tensor<?x2x32xf32>
    %6 = qtf.rope %5, %arg2 {rotary_dim = 32 : i64, theta = 1.000000e+06 : f64} : tensor<?x2x32xf32>, tensor<?xi32> -> tensor<?x2x32xf32>
    %7 = qtf.reshape %0#2 : tensor<?x64xf32> -> tensor<?x2x32xf32>
    %8 = qtf.kv_cache_write %arg4[1], %6, %7, %arg2, %arg5, %arg6 : !kv, tensor<?x2x32xf32>, tensor<?x2x32xf32>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>
    return %3, %8 : tensor<?x4x32xf32>, !kv
  }
}
