// RUN: qwen-opt %s --split-input-file --qwen-select-schedule=target=cuda --qwen-gpu-lower-kernels | FileCheck %s
// RUN: qwen-opt %s --split-input-file --qwen-select-schedule="target=cuda attention-threads=128" --qwen-gpu-lower-kernels | FileCheck %s --check-prefix=T128

// attention, head_dim 128: one block per (token, query head). The block
// first finds its role from token_seq / positions (block-uniform scalar
// loads): a token alone in its run (decode), or whose query tile would hold
// one token, takes the per-token walk; the first token of a run, or one at a
// position multiple of Q = 32, leads a query tile of up to 32 tokens; the
// other tokens of a run do nothing (their leader computes them). The scan
// for the tile's length is a scalar loop with no barrier.
//
// Per-token walk: 32 lanes share a key (one vector<4xf32> each, a coalesced
// 512-byte row), so 256 threads make 8 groups walking positions g, g + 8,
// ... with their own online softmax; the q.k dot is reduced over the 32
// lanes with 5 xor shuffles. The loop bound is block-uniform (every shuffle
// has its whole warp): positions past the context are clamped for the loads
// and masked out with selects. The 8 partial states merge through shared
// memory.
//
// Query tile: 8 lanes per query (4 vectors each: q and the accumulator in
// registers), 32 groups = Q. The n query rows go through the shared row one
// at a time (loop of n, block-uniform); then K = 32 keys and values at a time
// are staged in shared memory (2 x 32 x 128 f32 = 32 KiB, clamped to the
// tile's last position) and every group walks them in order (3 shuffles per
// key), masking keys past its own query's position. The loop over the query
// rows (through the shared row, one rms_norm -> rope chain for both paths)
// runs n times for a tile, once for the per-token walk, not at all for the
// other tokens of a run. Shared: 4672 bytes of
// the per-token walk + 32768.
//
// Every attention kernel also gets its decode variant qk0_attention_decode
// (grid [T, kv_heads], 128 threads), recorded as the `decode` of its #qkernel.launch;
// lower-kernels-attention-decode.mlir checks its body.
!kv = !qtf.kv_cache<layers = 2, kv_heads = 2, head_dim = 128, page_size = 16, f32>
// CHECK-LABEL: func.func @step
// CHECK:       qkernel.launch @kernels::@qk0_attention
// CHECK-SAME:    launch = #qkernel.launch<grid = [T, 4], block = 256, shared = 37440, decode = <"qk0_attention_decode", grid = [T, 2], block = 128, shared = 17152>, max_splits = 32, partial_floats = 528, combine = <"qk0_attention_decode_combine", grid = [T, 4], block = 128, shared = 0>, split_keys = 64>
// CHECK:       gpu.func @qk0_attention
// CHECK-SAME:    workgroup(%[[Q:.*]] : memref<128xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %[[MAX:.*]] : memref<8xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %[[SUM:.*]] : memref<8xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %[[ACC:.*]] : memref<1024xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %[[KEYS:.*]] : memref<4096xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %[[VALUES:.*]] : memref<4096xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64})
// The role: leads = first of its run or position % 32 == 0; n by a scan.
// CHECK:         %[[OFFSET:.*]] = arith.remui %{{.*}}, %c32
// CHECK:         %[[LEADS:.*]] = arith.ori
// CHECK:         %[[N:.*]]:2 = scf.for {{.*}} -> (index, i1) {
// CHECK-NOT:       gpu.barrier
// CHECK:         }
// CHECK:         %[[SINGLE:.*]] = arith.cmpi eq, %[[N]]#0, %c1
// CHECK:         %[[PERTOKEN:.*]] = arith.andi %[[LEADS]], %[[SINGLE]]
// CHECK:         %[[TILED:.*]] = arith.andi %[[LEADS]]
// The query rows: the tile's n (each group keeps its own: 4 vectors of 8
// lanes), or the per-token walk's one, left in the shared row.
// CHECK:         %[[ROWS:.*]] = arith.select %[[TILED]], %[[N]]#0
// CHECK:         %[[TQ:.*]]:4 = scf.for %{{.*}} = %{{.*}} to %[[ROWS]] step %{{.*}} iter_args({{.*}}) -> (vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>) {
// CHECK:           gpu.barrier
// CHECK-COUNT-4:   vector.load %[[Q]]
// CHECK:           gpu.barrier
// CHECK:         scf.if %[[PERTOKEN]] {
// CHECK:           %[[QV:.*]] = vector.load %[[Q]]
// CHECK:           %[[GROUPS:.*]] = arith.constant 8 : index
// CHECK:           scf.for %{{.*}} = %{{.*}} to %{{.*}} step %[[GROUPS]] iter_args(%{{.*}} = %{{.*}}, %{{.*}} = %{{.*}}, %{{.*}} = %{{.*}}) -> (f32, f32, vector<4xf32>)
// CHECK:             %[[VALID:.*]] = arith.cmpi ult
// CHECK:             arith.minui
// CHECK:             vector.load %{{.*}} {alignment = 16 : i64} : memref<?xf32>, vector<4xf32>
// CHECK:             vector.fma %[[QV]]
// CHECK:             vector.reduction <add>
// CHECK-COUNT-5:     {{gpu.shuffle xor|gpu.subgroup_reduce}}
// CHECK:             arith.maximumf
// CHECK:             math.exp
// CHECK:             math.exp
// CHECK:             arith.select %[[VALID]]
// CHECK:             arith.select %[[VALID]]
// CHECK:             vector.fma
// CHECK:             arith.select %[[VALID]]
// CHECK:           memref.store %{{.*}}, %[[MAX]]
// CHECK:           memref.store %{{.*}}, %[[SUM]]
// CHECK:           vector.store %{{.*}}, %[[ACC]]
// CHECK:           gpu.barrier
// CHECK:           scf.for
// CHECK:             memref.load %[[MAX]]
// CHECK:             arith.maximumf
// CHECK:           scf.for
// CHECK:             math.exp
// CHECK:             math.fma
// CHECK:             math.fma
// CHECK:           arith.divf
// CHECK:         scf.if %[[TILED]] {
// CHECK:           scf.for %{{.*}} = %{{.*}} to %{{.*}} step %c32{{.*}} iter_args({{.*}}) -> (f32, f32, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>) {
// CHECK:             scf.for %{{.*}} = %thread_id_x to %c1024{{.*}} step %c256
// CHECK:               arith.minui
// CHECK:               vector.store %{{.*}}, %[[KEYS]]
// CHECK:               vector.store %{{.*}}, %[[VALUES]]
// CHECK:             gpu.barrier
// CHECK:             scf.for %{{.*}} = %{{.*}} to %c32{{.*}} step %c1{{.*}} iter_args
// CHECK:               %[[CAUSAL:.*]] = arith.cmpi ule
// CHECK:               vector.load %[[KEYS]]
// CHECK:               vector.fma %[[TQ]]#0
// CHECK-COUNT-3:       vector.load %[[KEYS]]
// CHECK:               vector.reduction <add>
// CHECK-COUNT-3:       {{gpu.shuffle xor|gpu.subgroup_reduce}}
// CHECK-NOT:           {{gpu.shuffle|gpu.subgroup_reduce}}
// CHECK:               arith.maximumf
// CHECK:               arith.select %[[CAUSAL]]
// CHECK:               arith.select %[[CAUSAL]]
// CHECK:               vector.load %[[VALUES]]
// CHECK:               vector.fma
// CHECK:               arith.select %[[CAUSAL]]
// CHECK:             gpu.barrier
// CHECK:           scf.if
// CHECK:             arith.divf
// CHECK-COUNT-4:     vector.store %{{.*}} : memref<?xf32>, vector<4xf32>
// T128:        launch = #qkernel.launch<grid = [T, 4], block = 128, shared = 35360, decode = <"qk0_attention_decode", grid = [T, 2], block = 128, shared = 17152>, max_splits = 32, partial_floats = 528, combine = <"qk0_attention_decode_combine", grid = [T, 4], block = 128, shared = 0>, split_keys = 64>
func.func @step(%q: tensor<?x4x128xf32> {qtf.input = "tokens"}, %kv: !kv, %pos: tensor<?xi32> {qtf.input = "positions"}, %seq: tensor<?xi32> {qtf.input = "token_seq"}, %bt: tensor<?x?xi32> {qtf.input = "block_table"}) -> tensor<?x4x128xf32> {
  %0 = qkernel.launch @kernels::@qk0_attention(%q, %kv, %pos, %seq, %bt) : (tensor<?x4x128xf32>, !kv, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>) -> tensor<?x4x128xf32>
  return %0 : tensor<?x4x128xf32>
}
module @kernels {
  func.func @qk0_attention(%q: tensor<?x4x128xf32>, %kv: !kv, %pos: tensor<?xi32>, %seq: tensor<?xi32>, %bt: tensor<?x?xi32>) -> tensor<?x4x128xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<attention>} {
    %0 = qtf.paged_attention %q, %kv[1], %pos, %seq, %bt {scale = 0.0883883476 : f64} : tensor<?x4x128xf32>, !kv, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x4x128xf32>
    return %0 : tensor<?x4x128xf32>
  }
}

// -----

// head_dim 32: 8 vectors, so groups of 8 lanes (3 shuffles), 32 groups.
!kv = !qtf.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, page_size = 16, f32>
// CHECK-LABEL: func.func @step
// CHECK:       launch = #qkernel.launch<grid = [T, 4], block = 256, shared = 
// CHECK:       gpu.func @qk0_attention
// CHECK:         scf.for
// CHECK:           vector.reduction <add>
// CHECK-NEXT:      gpu.subgroup_reduce add %{{.*}} cluster(size = 2, stride = 4) : (f32) -> f32
// CHECK-NEXT:      gpu.subgroup_reduce add %{{.*}} cluster(size = 2, stride = 2) : (f32) -> f32
// CHECK-NEXT:      gpu.subgroup_reduce add %{{.*}} cluster(size = 2) : (f32) -> f32
// CHECK-NOT:       {{gpu.shuffle|gpu.subgroup_reduce}}
// CHECK:           arith.maximumf
func.func @step(%q: tensor<?x4x32xf32> {qtf.input = "tokens"}, %kv: !kv, %pos: tensor<?xi32> {qtf.input = "positions"}, %seq: tensor<?xi32> {qtf.input = "token_seq"}, %bt: tensor<?x?xi32> {qtf.input = "block_table"}) -> tensor<?x4x32xf32> {
  %0 = qkernel.launch @kernels::@qk0_attention(%q, %kv, %pos, %seq, %bt) : (tensor<?x4x32xf32>, !kv, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>) -> tensor<?x4x32xf32>
  return %0 : tensor<?x4x32xf32>
}
module @kernels {
  func.func @qk0_attention(%q: tensor<?x4x32xf32>, %kv: !kv, %pos: tensor<?xi32>, %seq: tensor<?xi32>, %bt: tensor<?x?xi32>) -> tensor<?x4x32xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<attention>} {
    %0 = qtf.paged_attention %q, %kv[0], %pos, %seq, %bt {scale = 0.17677669529663687 : f64} : tensor<?x4x32xf32>, !kv, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x4x32xf32>
    return %0 : tensor<?x4x32xf32>
  }
}
