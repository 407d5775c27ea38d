// RUN: qwen-opt %s --split-input-file --qwen-cpu-lower-kernels --verify-diagnostics | FileCheck %s

// The CPU attention kernel takes its blocking from the kernel's
// #qkernel.schedule, never re-deriving it: tile = [query heads per work
// item, keys per block, value vectors per pass]. The grid has one item per (token, tile[0] heads);
// a block's scores are one vector of tile[1] (= the head row's vector
// width) lanes, summed from the keys' partial dots by log2(tile[1]) levels
// of shuffles.

// -----

// One head per item (4 items a token), blocks of 8 keys: a 3-level tree (7
// pairs of shuffles of vector<8xf32>), a vector exp per head and block
// (polynomial: no vector math.exp left); V in one pass of tile[2] = 2
// vectors (the head row's two), their accumulators carried over the keys.
!kv = !qtf.kv_cache<layers = 2, kv_heads = 2, head_dim = 16, page_size = 16, f32>
// CHECK-LABEL: func.func @step
// CHECK:       qkernel.launch @kernels::@qk0_attention{{.*}}grid = [T, 4]
// CHECK:       func.func @qk0_attention
// CHECK-COUNT-14: vector.shuffle {{.*}} : vector<8xf32>, vector<8xf32>
// CHECK-NOT:   vector.shuffle
// CHECK:       vector.create_mask {{.*}} : vector<8xi1>
// CHECK-NOT:   math.exp {{.*}} : vector
// CHECK:       scf.for {{.*}} -> (vector<8xf32>, vector<8xf32>) {
// CHECK:       return
func.func @step(%q: tensor<?x4x16xf32> {qtf.input = "tokens"}, %kv: !kv, %pos: tensor<?xi32> {qtf.input = "positions"}, %seq: tensor<?xi32> {qtf.input = "token_seq"}, %bt: tensor<?x?xi32> {qtf.input = "block_table"}) -> tensor<?x4x16xf32> {
  %0 = qkernel.launch @kernels::@qk0_attention(%q, %kv, %pos, %seq, %bt) : (tensor<?x4x16xf32>, !kv, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>) -> tensor<?x4x16xf32>
  return %0 : tensor<?x4x16xf32>
}
module @kernels {
  func.func @qk0_attention(%q: tensor<?x4x16xf32>, %kv: !kv, %pos: tensor<?xi32>, %seq: tensor<?xi32>, %bt: tensor<?x?xi32>) -> tensor<?x4x16xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<attention>, qkernel.schedule = #qkernel.schedule<target = cpu, grain = 1, vector_width = 8, tile = [1, 8, 2]>} {
    %0 = qtf.paged_attention %q, %kv[1], %pos, %seq, %bt {scale = 0.25 : f64} : tensor<?x4x16xf32>, !kv, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x4x16xf32>
    return %0 : tensor<?x4x16xf32>
  }
}

// -----

// A whole GQA group (2 heads) per item, blocks of 16 keys: 2 items a token,
// a 4-level tree per head (15 pairs of shuffles each).
!kv = !qtf.kv_cache<layers = 2, kv_heads = 2, head_dim = 16, page_size = 16, f32>
// CHECK-LABEL: func.func @step
// CHECK:       qkernel.launch @kernels::@qk0_attention{{.*}}grid = [T, 2]
// CHECK:       func.func @qk0_attention
// CHECK-COUNT-60: vector.shuffle {{.*}} : vector<16xf32>, vector<16xf32>
// CHECK-NOT:   vector.shuffle
// CHECK:       return
func.func @step(%q: tensor<?x4x16xf32> {qtf.input = "tokens"}, %kv: !kv, %pos: tensor<?xi32> {qtf.input = "positions"}, %seq: tensor<?xi32> {qtf.input = "token_seq"}, %bt: tensor<?x?xi32> {qtf.input = "block_table"}) -> tensor<?x4x16xf32> {
  %0 = qkernel.launch @kernels::@qk0_attention(%q, %kv, %pos, %seq, %bt) : (tensor<?x4x16xf32>, !kv, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>) -> tensor<?x4x16xf32>
  return %0 : tensor<?x4x16xf32>
}
module @kernels {
  func.func @qk0_attention(%q: tensor<?x4x16xf32>, %kv: !kv, %pos: tensor<?xi32>, %seq: tensor<?xi32>, %bt: tensor<?x?xi32>) -> tensor<?x4x16xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<attention>, qkernel.schedule = #qkernel.schedule<target = cpu, grain = 1, vector_width = 16, tile = [2, 16, 1]>} {
    %0 = qtf.paged_attention %q, %kv[1], %pos, %seq, %bt {scale = 0.25 : f64} : tensor<?x4x16xf32>, !kv, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x4x16xf32>
    return %0 : tensor<?x4x16xf32>
  }
}

// -----

// tile[0] must divide the GQA group and tile[1] be the head row's width.
!kv = !qtf.kv_cache<layers = 2, kv_heads = 2, head_dim = 16, page_size = 16, f32>
func.func @step(%q: tensor<?x4x16xf32> {qtf.input = "tokens"}, %kv: !kv, %pos: tensor<?xi32> {qtf.input = "positions"}, %seq: tensor<?xi32> {qtf.input = "token_seq"}, %bt: tensor<?x?xi32> {qtf.input = "block_table"}) -> tensor<?x4x16xf32> {
  %0 = qkernel.launch @kernels::@qk0_attention(%q, %kv, %pos, %seq, %bt) : (tensor<?x4x16xf32>, !kv, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>) -> tensor<?x4x16xf32>
  return %0 : tensor<?x4x16xf32>
}
module @kernels {
  // expected-error @below {{attention schedule needs tile = [query heads per item dividing the GQA group, keys per block = the head row's vector width 8, value vectors per pass dividing 2]}}
  func.func @qk0_attention(%q: tensor<?x4x16xf32>, %kv: !kv, %pos: tensor<?xi32>, %seq: tensor<?xi32>, %bt: tensor<?x?xi32>) -> tensor<?x4x16xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<attention>, qkernel.schedule = #qkernel.schedule<target = cpu, grain = 1, vector_width = 8, tile = [2, 16, 2]>} {
    %0 = qtf.paged_attention %q, %kv[1], %pos, %seq, %bt {scale = 0.25 : f64} : tensor<?x4x16xf32>, !kv, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x4x16xf32>
    return %0 : tensor<?x4x16xf32>
  }
}
