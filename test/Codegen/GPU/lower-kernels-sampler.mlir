// RUN: qwen-opt %s --split-input-file --qwen-select-schedule=target=cuda --qwen-gpu-lower-kernels | FileCheck %s

// The sampler's qk_argmax and qk_topk are added to gpu.module @qwen_kernels
// for @step's output logits [R, vocab] f32, with the common ABI (logits, ids,
// T, B, P, R; qk_topk: logits, top_logits, top_ids, T, B, P, R), and their
// launch geometry is recorded on @step (the CUDA manifest's "sampler"
// field). vocab 1001 is odd: scalar loads, 1024 threads (1001 columns), one
// (value, index) pair per warp in shared memory (256 bytes). qk_topk: 256
// candidates per row; two 256-bin histograms, a slot counter, the 256 sorted
// (logit, id) slots and one f32 per warp: 4228 bytes.

// CHECK-LABEL: func.func @step
// CHECK-SAME:  qkernel.sampler = {argmax = #qkernel.variant<"qk_argmax", grid = [R], block = 1024, shared = 256>, topk = #qkernel.variant<"qk_topk", grid = [R], block = 1024, shared = 4228>, topk_count = 256 : i64}
// CHECK:       gpu.module @qwen_kernels
// CHECK:       gpu.func @qk_argmax(%{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64) workgroup(%{{.*}} : memref<64xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}) kernel attributes {known_block_size = array<i32: 1024, 1, 1>}
// CHECK:         gpu.block_id
// CHECK:         scf.for
// CHECK:           memref.load %{{.*}} : memref<?xf32>
// CHECK:           arith.cmpf ogt
// CHECK:           arith.cmpf oeq
// CHECK:         {{gpu.shuffle xor|gpu.subgroup_reduce}}
// CHECK:         gpu.barrier
// CHECK:         arith.fptosi %{{.*}} : f32 to i32
// CHECK:         memref.store %{{.*}} : memref<?xi32>
// CHECK:         gpu.return
// CHECK:       gpu.func @qk_topk(%{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64) workgroup(%{{.*}} : memref<256xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %{{.*}} : memref<256xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %{{.*}} : memref<1xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %{{.*}} : memref<256xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %{{.*}} : memref<256xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %{{.*}} : memref<32xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}) kernel attributes {known_block_size = array<i32: 1024, 1, 1>}
// The bound: group maxima (4 lanes), their block minimum.
// CHECK:         scf.for
// CHECK:           arith.cmpf ogt
// CHECK:         {{gpu.shuffle xor|gpu.subgroup_reduce}}
// CHECK:         gpu.barrier
// Radix passes: histogram atomics, the scan of the bins by every warp.
// CHECK:         scf.if
// CHECK:           scf.for
// CHECK:             arith.bitcast %{{.*}} : f32 to i32
// CHECK:             memref.atomic_rmw addf
// CHECK:           gpu.barrier
// CHECK:           {{gpu.shuffle xor|gpu.subgroup_reduce}}
// CHECK:           gpu.barrier
// CHECK:           scf.yield
// The slots, the bitonic sort, the stores.
// CHECK:         memref.atomic_rmw addf
// CHECK:         gpu.barrier
// CHECK:         arith.xori
// CHECK:         gpu.barrier
// CHECK:         memref.store %{{.*}} : memref<?xf32>
// CHECK:         memref.store %{{.*}} : memref<?xi32>
// CHECK:         gpu.return
func.func @step(%x: tensor<?x64xf32> {qtf.input = "tokens"}, %rows: tensor<?xi32> {qtf.input = "logit_rows"}) -> tensor<?x1001xf32> {
  %w = qtf.weight ["lm_head"] : tensor<1001x64xf32>
  %0 = qkernel.launch @kernels::@qk0_matmul(%x, %rows, %w) : (tensor<?x64xf32>, tensor<?xi32>, tensor<1001x64xf32>) -> tensor<?x1001xf32>
  return %0 : tensor<?x1001xf32>
}
module @kernels {
  func.func @qk0_matmul(%arg0: tensor<?x64xf32>, %arg1: tensor<?xi32>, %arg2: tensor<1001x64xf32>) -> tensor<?x1001xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
    %0 = qtf.gather_rows %arg0[%arg1] : tensor<?x64xf32>, tensor<?xi32> -> tensor<?x64xf32>
    %1 = qtf.linear %0, %arg2 : tensor<?x64xf32>, tensor<1001x64xf32> -> tensor<?x1001xf32>
    return %1 : tensor<?x1001xf32>
  }
}

// -----

// vocab 1000: 16-byte loads (250 vectors), 256 threads, 8 warps (qk_topk
// keeps 1024 threads at every vocab).
// CHECK-LABEL: func.func @step
// CHECK-SAME:  qkernel.sampler = {argmax = #qkernel.variant<"qk_argmax", grid = [R], block = 256, shared = 64>, topk = #qkernel.variant<"qk_topk", grid = [R], block = 1024, shared = 4228>, topk_count = 256 : i64}
// CHECK:       gpu.func @qk_argmax(%{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64) workgroup(%{{.*}} : memref<16xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}) kernel attributes {known_block_size = array<i32: 256, 1, 1>}
// CHECK:         vector.load %{{.*}} : memref<?xf32>, vector<4xf32>
// CHECK:       gpu.func @qk_topk({{.*}}kernel attributes {known_block_size = array<i32: 1024, 1, 1>}
// CHECK:         vector.load %{{.*}} : memref<?xf32>, vector<4xf32>
func.func @step(%x: tensor<?x64xf32> {qtf.input = "tokens"}, %rows: tensor<?xi32> {qtf.input = "logit_rows"}) -> tensor<?x1000xf32> {
  %w = qtf.weight ["lm_head"] : tensor<1000x64xf32>
  %0 = qkernel.launch @kernels::@qk0_matmul(%x, %rows, %w) : (tensor<?x64xf32>, tensor<?xi32>, tensor<1000x64xf32>) -> tensor<?x1000xf32>
  return %0 : tensor<?x1000xf32>
}
module @kernels {
  func.func @qk0_matmul(%arg0: tensor<?x64xf32>, %arg1: tensor<?xi32>, %arg2: tensor<1000x64xf32>) -> tensor<?x1000xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
    %0 = qtf.gather_rows %arg0[%arg1] : tensor<?x64xf32>, tensor<?xi32> -> tensor<?x64xf32>
    %1 = qtf.linear %0, %arg2 : tensor<?x64xf32>, tensor<1000x64xf32> -> tensor<?x1000xf32>
    return %1 : tensor<?x1000xf32>
  }
}

// -----

// vocab 50: 8-byte loads, one warp, no shared memory. Logits of every token
// (no logit_rows): the grid follows the output's rows, ["T"]. qk_topk: 1024
// threads, 206 of its 256 slots stay padding.
// CHECK-LABEL: func.func @step
// CHECK-SAME:  qkernel.sampler = {argmax = #qkernel.variant<"qk_argmax", grid = [T], block = 32, shared = 0>, topk = #qkernel.variant<"qk_topk", grid = [T], block = 1024, shared = 4228>, topk_count = 256 : i64}
// CHECK:       gpu.func @qk_argmax(%{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64) kernel attributes {known_block_size = array<i32: 32, 1, 1>}
// CHECK:         vector.load %{{.*}} : memref<?xf32>, vector<2xf32>
// CHECK-NOT:     gpu.barrier
// CHECK:         gpu.return
// CHECK:       gpu.func @qk_topk({{.*}}kernel attributes {known_block_size = array<i32: 1024, 1, 1>}
// CHECK:         vector.load %{{.*}} : memref<?xf32>, vector<2xf32>
func.func @step(%x: tensor<?x64xf32> {qtf.input = "tokens"}) -> tensor<?x50xf32> {
  %w = qtf.weight ["lm_head"] : tensor<50x64xf32>
  %0 = qkernel.launch @kernels::@qk0_matmul(%x, %w) : (tensor<?x64xf32>, tensor<50x64xf32>) -> tensor<?x50xf32>
  return %0 : tensor<?x50xf32>
}
module @kernels {
  func.func @qk0_matmul(%arg0: tensor<?x64xf32>, %arg1: tensor<50x64xf32>) -> tensor<?x50xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
    %0 = qtf.linear %arg0, %arg1 : tensor<?x64xf32>, tensor<50x64xf32> -> tensor<?x50xf32>
    return %0 : tensor<?x50xf32>
  }
}
