// RUN: qwen-opt %s --split-input-file --qwen-select-schedule=target=cuda --qwen-gpu-lower-kernels --mlir-print-debuginfo --mlir-print-local-scope | FileCheck %s

// The GPU mixture-of-experts kernels are emitted as named phases
// (KernelPhase: a NameLoc "<kernel>.<phase>" on every op of the phase,
// nested phases nested): the router's softmax, top_k and (when
// renormalizing) normalize; the experts' gather (the routing-table scan,
// holding every full slot block), load_x, gate_up with silu_mul, down with
// scatter, then the last, partial block.

// -----

// router, 128 experts, top 8, renormalized (Qwen3-MoE).
// CHECK-LABEL: gpu.func @qk0_router(
// CHECK:         {{gpu.shuffle|gpu.subgroup_reduce}} {{.*}} loc("router.softmax"
// CHECK:         math.exp {{.*}} loc("router.softmax"
// CHECK:         arith.divf {{.*}} loc("router.softmax"
// CHECK:         arith.cmpf ogt, {{.*}} loc("router.top_k"
// CHECK:         {{gpu.shuffle|gpu.subgroup_reduce}} {{.*}} loc("router.top_k"
// CHECK:         arith.divf {{.*}} loc("router.normalize"
func.func @step(%l: tensor<?x128xf32> {qtf.input = "tokens"}) -> (tensor<?x8xi32>, tensor<?x8xf32>) {
  %0:2 = qkernel.launch @kernels::@qk0_router(%l) : (tensor<?x128xf32>) -> (tensor<?x8xi32>, tensor<?x8xf32>)
  return %0#0, %0#1 : tensor<?x8xi32>, tensor<?x8xf32>
}
module @kernels {
  func.func @qk0_router(%arg0: tensor<?x128xf32>) -> (tensor<?x8xi32>, tensor<?x8xf32>) attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<router>} {
    %ids, %weights = qtf.moe_router %arg0 {normalize, top_k = 8 : i64} : tensor<?x128xf32> -> tensor<?x8xi32>, tensor<?x8xf32>
    return %ids, %weights : tensor<?x8xi32>, tensor<?x8xf32>
  }
}

// -----

// router, 40 experts, top 2, not renormalized.
// CHECK-LABEL: gpu.func @qk0_router(
// CHECK:         {{gpu.shuffle|gpu.subgroup_reduce}} {{.*}} loc("router.softmax"
// CHECK:         math.exp {{.*}} loc("router.softmax"
// CHECK:         arith.divf {{.*}} loc("router.softmax"
// CHECK:         arith.cmpf ogt, {{.*}} loc("router.top_k"
// CHECK:         {{gpu.shuffle|gpu.subgroup_reduce}} {{.*}} loc("router.top_k"
// CHECK-NOT:     router.normalize
func.func @step(%l: tensor<?x40xf32> {qtf.input = "tokens"}) -> (tensor<?x2xi32>, tensor<?x2xf32>) {
  %0:2 = qkernel.launch @kernels::@qk0_router(%l) : (tensor<?x40xf32>) -> (tensor<?x2xi32>, tensor<?x2xf32>)
  return %0#0, %0#1 : tensor<?x2xi32>, tensor<?x2xf32>
}
module @kernels {
  func.func @qk0_router(%arg0: tensor<?x40xf32>) -> (tensor<?x2xi32>, tensor<?x2xf32>) attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<router>} {
    %ids, %weights = qtf.moe_router %arg0 {top_k = 2 : i64} : tensor<?x40xf32> -> tensor<?x2xi32>, tensor<?x2xf32>
    return %ids, %weights : tensor<?x2xi32>, tensor<?x2xf32>
  }
}

// -----

// experts, 8 experts of hidden 64, intermediate 32, top 2.
// CHECK-LABEL: gpu.func @qk0_experts(
// CHECK:         arith.cmpi eq, {{.*}} loc("experts.gather"
// CHECK:         {{gpu.shuffle|gpu.subgroup_reduce}} {{.*}} loc("experts.gather"
// CHECK:         vector.load {{.*}} loc("experts.load_x"("experts.gather"
// CHECK:         vector.fma {{.*}} loc("experts.gate_up"("experts.gather"
// CHECK:         math.exp {{.*}} loc("experts.silu_mul"("experts.gate_up"("experts.gather"
// CHECK:         vector.fma {{.*}} loc("experts.down"("experts.gather"
// CHECK:         arith.mulf {{.*}} loc("experts.scatter"("experts.down"("experts.gather"
// The last, partial block.
// CHECK:         vector.fma {{.*}} loc("experts.gate_up"
// CHECK:         arith.mulf {{.*}} loc("experts.scatter"("experts.down"
func.func @step(%x: tensor<?x64xf32> {qtf.input = "tokens"}, %ids: tensor<?x2xi32> {qtf.input = "tokens"}, %w: tensor<?x2xf32> {qtf.input = "tokens"}) -> tensor<?x2x64xf32> {
  %gu = qtf.weight ["experts.gate_up_proj"] : tensor<512x64xbf16>
  %d = qtf.weight ["experts.down_proj"] : tensor<512x32xbf16>
  %0 = qkernel.launch @kernels::@qk0_experts(%x, %ids, %w, %gu, %d) : (tensor<?x64xf32>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<512x64xbf16>, tensor<512x32xbf16>) -> tensor<?x2x64xf32>
  return %0 : tensor<?x2x64xf32>
}
module @kernels {
  func.func @qk0_experts(%arg0: tensor<?x64xf32>, %arg1: tensor<?x2xi32>, %arg2: tensor<?x2xf32>, %arg3: tensor<512x64xbf16>, %arg4: tensor<512x32xbf16>) -> tensor<?x2x64xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<experts>} {
    %0 = qtf.moe_expert_ffn %arg0, %arg1, %arg2, %arg3, %arg4 {intermediate_size = 32 : i64, num_experts = 8 : i64} : tensor<?x64xf32>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<512x64xbf16>, tensor<512x32xbf16> -> tensor<?x2x64xf32>
    return %0 : tensor<?x2x64xf32>
  }
}

// -----

// experts, 128 experts of hidden 2048, intermediate 768, top 8 (Qwen3-30B-A3B).
// CHECK-LABEL: gpu.func @qk0_experts(
// CHECK:         arith.cmpi eq, {{.*}} loc("experts.gather"
// CHECK:         {{gpu.shuffle|gpu.subgroup_reduce}} {{.*}} loc("experts.gather"
// CHECK:         vector.load {{.*}} loc("experts.load_x"("experts.gather"
// CHECK:         vector.fma {{.*}} loc("experts.gate_up"("experts.gather"
// CHECK:         math.exp {{.*}} loc("experts.silu_mul"("experts.gate_up"("experts.gather"
// CHECK:         vector.fma {{.*}} loc("experts.down"("experts.gather"
// CHECK:         arith.mulf {{.*}} loc("experts.scatter"("experts.down"("experts.gather"
// The last, partial block.
// CHECK:         vector.fma {{.*}} loc("experts.gate_up"
// CHECK:         arith.mulf {{.*}} loc("experts.scatter"("experts.down"
func.func @step(%x: tensor<?x2048xf32> {qtf.input = "tokens"}, %ids: tensor<?x8xi32> {qtf.input = "tokens"}, %w: tensor<?x8xf32> {qtf.input = "tokens"}) -> tensor<?x8x2048xf32> {
  %gu = qtf.weight ["experts.gate_up_proj"] : tensor<196608x2048xbf16>
  %d = qtf.weight ["experts.down_proj"] : tensor<262144x768xbf16>
  %0 = qkernel.launch @kernels::@qk0_experts(%x, %ids, %w, %gu, %d) : (tensor<?x2048xf32>, tensor<?x8xi32>, tensor<?x8xf32>, tensor<196608x2048xbf16>, tensor<262144x768xbf16>) -> tensor<?x8x2048xf32>
  return %0 : tensor<?x8x2048xf32>
}
module @kernels {
  func.func @qk0_experts(%arg0: tensor<?x2048xf32>, %arg1: tensor<?x8xi32>, %arg2: tensor<?x8xf32>, %arg3: tensor<196608x2048xbf16>, %arg4: tensor<262144x768xbf16>) -> tensor<?x8x2048xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<experts>} {
    %0 = qtf.moe_expert_ffn %arg0, %arg1, %arg2, %arg3, %arg4 {intermediate_size = 768 : i64, num_experts = 128 : i64} : tensor<?x2048xf32>, tensor<?x8xi32>, tensor<?x8xf32>, tensor<196608x2048xbf16>, tensor<262144x768xbf16> -> tensor<?x8x2048xf32>
    return %0 : tensor<?x8x2048xf32>
  }
}
