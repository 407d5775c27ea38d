// RUN: qwen-opt %s --qwen-select-schedule="vector-width=16 cpu-features=avx512f,avx512bf16 bf16-activations=round" --qwen-cpu-lower-kernels --mlir-print-debuginfo --mlir-print-local-scope | FileCheck %s

// The CPU experts kernel of a step of at least prefill_tokens (16) tokens
// takes the grouped path (GroupedExperts.cpp): the slots routed to the
// expert are gathered in groups (64 here), the group's input rows are
// rounded to bf16 once (experts.group_rows), the gate / up panels are walked
// in 4 x 4 vdpbf16ps tiles, the SwiGLU rows are rounded once, then the down
// panels; the last, partial group follows the scan. Shorter steps take the
// blocks of 4 slots, whose last partial block is one tile of its size
// (3, 2 or 1 slots).

// CHECK-LABEL: func.func @qk0_experts(
// CHECK:         %[[GROUPED:.*]] = arith.cmpi sge, %{{.*}}, %c16
// CHECK:         scf.if %[[GROUPED]] {
// CHECK:           arith.cmpi eq, {{.*}} loc("experts.gather"
// CHECK:           arith.truncf {{.*}} vector<32xf32> to vector<32xbf16> loc("experts.group_rows"("experts.gather"
// CHECK:           x86vector.avx512.dot {{.*}} loc("experts.gate_up"("experts.gather"
// CHECK:           math.exp {{.*}} loc("experts.silu_mul"("experts.gate_up"("experts.gather"
// CHECK:           arith.truncf {{.*}} loc("experts.group_rows"("experts.gather"
// CHECK:           x86vector.avx512.dot {{.*}} loc("experts.down"("experts.gather"
// CHECK:           arith.mulf {{.*}} loc("experts.scatter"("experts.down"("experts.gather"
// The last, partial group.
// CHECK:           x86vector.avx512.dot {{.*}} loc("experts.gate_up"
// CHECK:           arith.mulf {{.*}} loc("experts.scatter"("experts.down"
// CHECK:         } else {
// CHECK:           %[[PENDING:[0-9]+]] = scf.for {{.*}} -> (index) {
// CHECK:           arith.cmpi eq, {{.*}} loc("experts.gather"
// CHECK:           x86vector.avx512.dot {{.*}} loc("experts.gate_up"("experts.gather"
// CHECK:           arith.mulf {{.*}} loc("experts.scatter"("experts.down"("experts.gather"
// The partial block (the slots the scan left): one tile of 1, 2 or 3 slots.
// CHECK:           %[[ONE:.*]] = arith.cmpi eq, %[[PENDING]], %c1
// CHECK:           scf.if %[[ONE]] {
// CHECK:             x86vector.avx512.dot {{.*}} loc("experts.gate_up"
// CHECK:           %[[TWO:.*]] = arith.cmpi eq, %[[PENDING]], %c2
// CHECK:           scf.if %[[TWO]] {
// CHECK:             x86vector.avx512.dot {{.*}} loc("experts.gate_up"
// CHECK:           %[[THREE:.*]] = arith.cmpi eq, %[[PENDING]], %c3
// CHECK:           scf.if %[[THREE]] {
// CHECK:             x86vector.avx512.dot {{.*}} loc("experts.gate_up"
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
