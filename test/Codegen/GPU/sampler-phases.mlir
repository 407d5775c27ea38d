// RUN: qwen-opt %s --split-input-file --qwen-select-schedule=target=cuda --qwen-gpu-lower-kernels --mlir-print-debuginfo --mlir-print-local-scope | FileCheck %s

// The sampler's kernels are emitted as named phases (KernelPhase: a NameLoc
// "<kernel>.<phase>" on every op of the phase, nested phases nested):
//   qk_argmax: scan (each thread's best over its columns), warp_merge (xor
//     shuffles), block_merge (the warps' pairs through shared memory), store;
//   qk_topk: init, bound, radix_select (one scf.if per pass, two barriers
//     each), gather (the entries at or above the threshold into C slots),
//     sort (bitonic), store.
// (Softmax, top-p and the draw run on the host, on qk_topk's candidates.)

// -----

// vocab 1001, odd: scalar loads, 1024 threads, 32 warps merged in shared memory; qk_topk: 2 id bytes, 6 radix passes.
// CHECK-LABEL: gpu.func @qk_argmax(
// CHECK:         arith.cmpf ogt, {{.*}} loc("argmax.scan"
// CHECK:         gpu.shuffle {{.*}} loc("argmax.warp_merge"
// CHECK:         gpu.barrier loc("argmax.block_merge"
// CHECK:         arith.fptosi {{.*}} loc("argmax.store"("argmax.block_merge"
// CHECK:         memref.store {{.*}} loc("argmax.store"("argmax.block_merge"
// CHECK-LABEL: gpu.func @qk_topk(
// CHECK:         memref.store {{.*}} loc("topk.init"
// CHECK:         arith.cmpf ogt, {{.*}} loc("topk.bound"
// CHECK:         gpu.barrier loc("topk.bound"
// CHECK-COUNT-12: gpu.barrier loc("topk.radix_select"
// CHECK-NOT:     gpu.barrier loc("topk.radix_select"
// CHECK:         memref.atomic_rmw addf {{.*}} loc("topk.gather"
// CHECK:         gpu.barrier loc("topk.gather"
// CHECK:         arith.xori {{.*}} loc("topk.sort"
// CHECK:         gpu.barrier loc("topk.sort"
// CHECK:         arith.fptosi {{.*}} loc("topk.store"
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

// vocab 1000, vectors of 4, 256 threads; qk_topk: 6 radix passes.
// CHECK-LABEL: gpu.func @qk_argmax(
// CHECK:         arith.cmpf ogt, {{.*}} loc("argmax.scan"
// CHECK:         gpu.shuffle {{.*}} loc("argmax.warp_merge"
// CHECK:         gpu.barrier loc("argmax.block_merge"
// CHECK:         arith.fptosi {{.*}} loc("argmax.store"("argmax.block_merge"
// CHECK:         memref.store {{.*}} loc("argmax.store"("argmax.block_merge"
// CHECK-LABEL: gpu.func @qk_topk(
// CHECK:         memref.store {{.*}} loc("topk.init"
// CHECK:         arith.cmpf ogt, {{.*}} loc("topk.bound"
// CHECK:         gpu.barrier loc("topk.bound"
// CHECK-COUNT-12: gpu.barrier loc("topk.radix_select"
// CHECK-NOT:     gpu.barrier loc("topk.radix_select"
// CHECK:         memref.atomic_rmw addf {{.*}} loc("topk.gather"
// CHECK:         gpu.barrier loc("topk.gather"
// CHECK:         arith.xori {{.*}} loc("topk.sort"
// CHECK:         gpu.barrier loc("topk.sort"
// CHECK:         arith.fptosi {{.*}} loc("topk.store"
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

// vocab 151936, Qwen3's vocab: strides of 4 vectors, 1024 threads; qk_topk: 3 id bytes, 7 radix passes.
// CHECK-LABEL: gpu.func @qk_argmax(
// CHECK:         arith.cmpf ogt, {{.*}} loc("argmax.scan"
// CHECK:         gpu.shuffle {{.*}} loc("argmax.warp_merge"
// CHECK:         gpu.barrier loc("argmax.block_merge"
// CHECK:         arith.fptosi {{.*}} loc("argmax.store"("argmax.block_merge"
// CHECK:         memref.store {{.*}} loc("argmax.store"("argmax.block_merge"
// CHECK-LABEL: gpu.func @qk_topk(
// CHECK:         memref.store {{.*}} loc("topk.init"
// CHECK:         arith.cmpf ogt, {{.*}} loc("topk.bound"
// CHECK:         gpu.barrier loc("topk.bound"
// CHECK-COUNT-14: gpu.barrier loc("topk.radix_select"
// CHECK-NOT:     gpu.barrier loc("topk.radix_select"
// CHECK:         memref.atomic_rmw addf {{.*}} loc("topk.gather"
// CHECK:         gpu.barrier loc("topk.gather"
// CHECK:         arith.xori {{.*}} loc("topk.sort"
// CHECK:         gpu.barrier loc("topk.sort"
// CHECK:         arith.fptosi {{.*}} loc("topk.store"
func.func @step(%x: tensor<?x64xf32> {qtf.input = "tokens"}, %rows: tensor<?xi32> {qtf.input = "logit_rows"}) -> tensor<?x151936xf32> {
  %w = qtf.weight ["lm_head"] : tensor<151936x64xf32>
  %0 = qkernel.launch @kernels::@qk0_matmul(%x, %rows, %w) : (tensor<?x64xf32>, tensor<?xi32>, tensor<151936x64xf32>) -> tensor<?x151936xf32>
  return %0 : tensor<?x151936xf32>
}
module @kernels {
  func.func @qk0_matmul(%arg0: tensor<?x64xf32>, %arg1: tensor<?xi32>, %arg2: tensor<151936x64xf32>) -> tensor<?x151936xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
    %0 = qtf.gather_rows %arg0[%arg1] : tensor<?x64xf32>, tensor<?xi32> -> tensor<?x64xf32>
    %1 = qtf.linear %0, %arg2 : tensor<?x64xf32>, tensor<151936x64xf32> -> tensor<?x151936xf32>
    return %1 : tensor<?x151936xf32>
  }
}
