// RUN: qwen-opt %s --qwen-select-schedule=target=cuda --qwen-gpu-lower-kernels | FileCheck %s

// The decode variant NAME_decode of every attention kernel (AttentionKernel.cpp):
// same ABI as NAME, grid [T, kv_heads], 128 threads. The block of (token,
// kv head) computes all `group` query heads of the kv head: each key and
// value row is loaded once per lane group and used for every head. L_d lanes
// per key, each with 4 vectors of the head (8 lanes at head 128: 3 xor
// shuffles per head and key), so G' = 128 / L_d lane groups (16 at head 128)
// walk 16 keys at a time; one online softmax per head (q and the f32
// accumulator in registers), the G' partial states merged through shared
// memory. At most 64 accumulator floats per lane: 4 heads (16 floats each)
// per pass over the keys. The same module is an input of
// simt-numerics-attention-decode.test.
//
// qk0: head 128, 4 query heads over 1 kv head (group 4), f32 cache: one
// pass of 4 heads. Shared: query row 128 + maxes 16 x 4 + sums 16 x 4 +
// partials 16 x 4 x 128 floats.
// qk1: head 256, 8 query heads over 2 kv heads (group 4), bf16 cache: 16
// lanes per key, 8 groups, one pass of 4 heads.
// CHECK-LABEL: func.func @step
// CHECK:       qkernel.launch @kernels::@qk0_attention
// CHECK-SAME:    launch = #qkernel.launch<grid = [T, 4], block = 256, shared = 37440, decode = <"qk0_attention_decode", grid = [T, 1], block = 128, shared = 33792>, max_splits = 32, partial_floats = 528, combine = <"qk0_attention_decode_combine", grid = [T, 4], block = 128, shared = 0>, split_keys = 64>
// CHECK:       qkernel.launch @kernels::@qk1_attention
// CHECK-SAME:    launch = #qkernel.launch<grid = [T, 8], block = 256, shared = 42048, decode = <"qk1_attention_decode", grid = [T, 2], block = 128, shared = 34048>, max_splits = 32, partial_floats = 2080, combine = <"qk1_attention_decode_combine", grid = [T, 8], block = 128, shared = 0>, split_keys = 64>
// CHECK:       gpu.module @qwen_kernels
// CHECK:       gpu.func @qk0_attention(
// The same slots: 5 pointers for the arguments (the cache is two), one for
// the result, then T, B, P, R.
// CHECK:       gpu.func @qk0_attention_decode(%{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64)
// CHECK-SAME:    workgroup(%[[Q:.*]] : memref<128xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %[[MAX:.*]] : memref<64xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %[[SUM:.*]] : memref<64xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %[[ACC:.*]] : memref<8192xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64})
// CHECK-SAME:    kernel attributes {known_block_size = array<i32: 128, 1, 1>}
// The 4 query rows of the kv head through the shared row, each lane keeping
// its 4 vectors of every row.
// CHECK:         %[[QV:.*]]:16 = scf.for %{{.*}} = %{{.*}} to %c4{{.*}} step %c1{{.*}} iter_args({{.*}}) -> (vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>) {
// CHECK:           gpu.barrier
// CHECK-COUNT-4:   vector.load %[[Q]]
// CHECK-COUNT-16:  arith.select
// CHECK:           gpu.barrier
// The walk: 16 lane groups, 4 key and 4 value loads per key, then 4 heads
// (4 FMAs, 3 shuffles and an online-softmax update each).
// CHECK:         %[[S:.*]]:24 = scf.for %{{.*}} = %{{.*}} to %{{.*}} step %c16{{.*}} iter_args({{.*}}) -> (f32, f32, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, f32, f32, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, f32, f32, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, f32, f32, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>) {
// CHECK:           %[[VALID:.*]] = arith.cmpi ult
// CHECK:           arith.minui
// CHECK-COUNT-8:   vector.load %{{.*}} {alignment = 16 : i64} : memref<?xf32>, vector<4xf32>
// CHECK-NOT:       vector.load
// CHECK:           vector.fma %[[QV]]#0
// CHECK:           vector.fma %[[QV]]#3
// CHECK-COUNT-3:   {{gpu.shuffle xor|gpu.subgroup_reduce}}
// CHECK:           arith.select %[[VALID]]
// CHECK:           vector.fma %[[QV]]#4
// CHECK-COUNT-3:   {{gpu.shuffle xor|gpu.subgroup_reduce}}
// CHECK:           vector.fma %[[QV]]#8
// CHECK-COUNT-3:   {{gpu.shuffle xor|gpu.subgroup_reduce}}
// CHECK:           vector.fma %[[QV]]#12
// CHECK:           vector.fma %[[QV]]#15
// CHECK-COUNT-3:   {{gpu.shuffle xor|gpu.subgroup_reduce}}
// CHECK-NOT:       {{gpu.shuffle|gpu.subgroup_reduce}}
// CHECK:           scf.yield
// Merge: the 16 x 4 partial states through shared memory, out = acc / l.
// CHECK:         scf.if
// CHECK-COUNT-4:   memref.store %{{.*}}, %[[MAX]]
// CHECK:         vector.store %[[S]]#2, %[[ACC]]
// CHECK:         vector.store %[[S]]#5, %[[ACC]]
// CHECK:         vector.store %[[S]]#8, %[[ACC]]
// CHECK:         vector.store %[[S]]#23, %[[ACC]]
// CHECK:         gpu.barrier
// CHECK:         scf.for %{{.*}} = %thread_id_x to %c512{{.*}} step %c128
// CHECK:           memref.load %[[MAX]]
// CHECK:           math.fma
// CHECK:           arith.divf
// CHECK-NOT:     gpu.barrier
// CHECK:         gpu.return
// qk1 (group 4, head 256): 16 lanes per key (4 shuffles for each of the 4
// heads), 8 groups, one pass.
// CHECK:       gpu.func @qk1_attention_decode(
// CHECK-SAME:    known_block_size = array<i32: 128, 1, 1>
// CHECK:         scf.for {{.*}} -> (vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>) {
// CHECK:         scf.for {{.*}} step %c8{{.*}} -> (f32, f32, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, f32, f32,
// CHECK-COUNT-16:  {{gpu.shuffle xor|gpu.subgroup_reduce}}
// CHECK-NOT:       {{gpu.shuffle|gpu.subgroup_reduce}}
// CHECK:           scf.yield
// CHECK:         gpu.barrier
// CHECK-NOT:     scf.for {{.*}} -> (f32, f32,
// CHECK:         gpu.return
!kv0 = !qtf.kv_cache<layers = 2, kv_heads = 1, head_dim = 128, page_size = 16, f32>
!kv1 = !qtf.kv_cache<layers = 2, kv_heads = 2, head_dim = 256, page_size = 16, bf16>
module {
  func.func @step(%arg0: tensor<?xi32> {qtf.input = "positions"}, %arg1: tensor<?xi32> {qtf.input = "token_seq"}, %arg2: tensor<?x?xi32> {qtf.input = "block_table"}, %arg3: tensor<?x4x128xf32> {qtf.input = "tokens"}, %arg4: !kv0, %arg5: tensor<?x8x256xf32> {qtf.input = "tokens"}, %arg6: !kv1) -> (tensor<?x4x128xf32>, tensor<?x8x256xf32>) {
    %r0 = qkernel.launch @kernels::@qk0_attention(%arg3, %arg4, %arg0, %arg1, %arg2) : (tensor<?x4x128xf32>, !kv0, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>) -> tensor<?x4x128xf32>
    %r1 = qkernel.launch @kernels::@qk1_attention(%arg5, %arg6, %arg0, %arg1, %arg2) : (tensor<?x8x256xf32>, !kv1, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>) -> tensor<?x8x256xf32>
    return %r0, %r1 : tensor<?x4x128xf32>, tensor<?x8x256xf32>
  }
  module @kernels {
    func.func @qk0_attention(%arg0: tensor<?x4x128xf32>, %arg1: !kv0, %arg2: tensor<?xi32>, %arg3: tensor<?xi32>, %arg4: tensor<?x?xi32>) -> tensor<?x4x128xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<attention>} {
      %a = qtf.paged_attention %arg0, %arg1[1], %arg2, %arg3, %arg4 {scale = 0.08838834764831845 : f64} : tensor<?x4x128xf32>, !kv0, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x4x128xf32>
      return %a : tensor<?x4x128xf32>
    }
    func.func @qk1_attention(%arg0: tensor<?x8x256xf32>, %arg1: !kv1, %arg2: tensor<?xi32>, %arg3: tensor<?xi32>, %arg4: tensor<?x?xi32>) -> tensor<?x8x256xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<attention>} {
      %a = qtf.paged_attention %arg0, %arg1[0], %arg2, %arg3, %arg4 {scale = 0.06250000000000000 : f64} : tensor<?x8x256xf32>, !kv1, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x8x256xf32>
      return %a : tensor<?x8x256xf32>
    }
  }
}
