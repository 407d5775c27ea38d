// RUN: qwen-opt %s --split-input-file --qwen-select-schedule=target=cpu --qwen-cpu-lower-kernels | FileCheck %s

// router: one item per token; f32 softmax, top-k by repeated argmax, int32 ids.
// CHECK-LABEL: func.func @step
// CHECK:       qkernel.launch @kernels::@qk0_router{{.*}}grid = [T]
// CHECK:       func.func @qk0_router
// CHECK:         arith.maximumf
// CHECK:         math.exp
// CHECK:         arith.cmpf ogt
// CHECK:         arith.index_cast %{{.*}} : index to i32
func.func @step(%logits: tensor<?x8xf32> {qtf.input = "tokens"}) -> (tensor<?x2xi32>, tensor<?x2xf32>) {
  %0:2 = qkernel.launch @kernels::@qk0_router(%logits) : (tensor<?x8xf32>) -> (tensor<?x2xi32>, tensor<?x2xf32>)
  return %0#0, %0#1 : tensor<?x2xi32>, tensor<?x2xf32>
}
module @kernels {
  func.func @qk0_router(%logits: tensor<?x8xf32>) -> (tensor<?x2xi32>, tensor<?x2xf32>) attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<router>} {
    %ids, %w = qtf.moe_router %logits {top_k = 2 : i64, normalize} : tensor<?x8xf32> -> tensor<?x2xi32>, tensor<?x2xf32>
    return %ids, %w : tensor<?x2xi32>, tensor<?x2xf32>
  }
}

// -----

// experts: one item per expert, scanning the routing table and running the
// SwiGLU on blocks of matched slots (a block of 4, then the rest one by one).
// CHECK-LABEL: func.func @step
// CHECK:       qkernel.launch @kernels::@qk0_experts{{.*}}grid = [8]
// CHECK:       func.func @qk0_experts
// CHECK:         memref.alloca() : memref<4xindex>
// CHECK:         scf.for {{.*}} iter_args
// CHECK:           arith.cmpi eq
// CHECK:           scf.if
// CHECK:             vector.fma
func.func @step(%x: tensor<?x32xf32> {qtf.input = "tokens"}, %ids: tensor<?x2xi32>, %w: tensor<?x2xf32>) -> tensor<?x2x32xf32> {
  %gu = qtf.weight ["gu"] : tensor<256x32xbf16>
  %d = qtf.weight ["d"] : tensor<256x16xbf16>
  %0 = qkernel.launch @kernels::@qk0_experts(%x, %ids, %w, %gu, %d) : (tensor<?x32xf32>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<256x32xbf16>, tensor<256x16xbf16>) -> tensor<?x2x32xf32>
  return %0 : tensor<?x2x32xf32>
}
module @kernels {
  func.func @qk0_experts(%x: tensor<?x32xf32>, %ids: tensor<?x2xi32>, %w: tensor<?x2xf32>, %gu: tensor<256x32xbf16>, %d: tensor<256x16xbf16>) -> tensor<?x2x32xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<experts>} {
    %0 = qtf.moe_expert_ffn %x, %ids, %w, %gu, %d {num_experts = 8 : i64, intermediate_size = 16 : i64} : tensor<?x32xf32>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<256x32xbf16>, tensor<256x16xbf16> -> tensor<?x2x32xf32>
    return %0 : tensor<?x2x32xf32>
  }
}
