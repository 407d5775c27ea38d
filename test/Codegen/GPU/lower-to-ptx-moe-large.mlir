// REQUIRES: ptxas
// RUN: qwen-opt %s --qwen-select-schedule=target=cuda --qwen-gpu-lower-kernels | FileCheck %s --check-prefix=GEOMETRY
// RUN: qwen-opt %s --qwen-select-schedule=target=cuda --qwen-gpu-lower-kernels --qwen-gpu-lower-to-nvvm > %t.mlir
// RUN: %python %S/extract-ptx.py < %t.mlir > %t.ptx
// RUN: ptxas -arch=sm_90 -O3 -v %t.ptx -o %t.cubin 2>&1 | FileCheck %s --check-prefix=PTXAS
// RUN: ptxas -arch=sm_90 -O3 -v %t.ptx -o %t.cubin 2>&1 | FileCheck %s --check-prefix=NOSPILL

// The grouped experts kernel at the sizes of released checkpoints, where
// shared memory and register pressure are real: Qwen3-30B-A3B (hidden 2048,
// moe_intermediate 768, 128 experts, top 8; bf16 and f16 weights) and
// Qwen3.5-35B-A3B (hidden 2048, moe_intermediate 512, 256 experts, top 8;
// bf16 and f16 weights). Blocks of 4 gathered slots: x [4, 2048] and
// h [4, I] in shared memory with the slot queue (4 + 256) and 8 warp counts:
// (4 * (2048 + 768) + 268) * 4 = 46128 and (4 * (2048 + 512) + 268) * 4 =
// 42032 bytes; the grid aims at 512 blocks: [128, 4] and [256, 2]. ptxas
// assembles every entry for sm_90 without spills.

// GEOMETRY: qkernel.launch @kernels::@qk0_experts
// GEOMETRY-SAME: launch = #qkernel.launch<grid = [128, 4], block = 256, shared = 46128>
// GEOMETRY: qkernel.launch @kernels::@qk1_experts
// GEOMETRY-SAME: launch = #qkernel.launch<grid = [128, 4], block = 256, shared = 46128>
// GEOMETRY: qkernel.launch @kernels::@qk2_experts
// GEOMETRY-SAME: launch = #qkernel.launch<grid = [256, 2], block = 256, shared = 42032>
// GEOMETRY: qkernel.launch @kernels::@qk3_experts
// GEOMETRY-SAME: launch = #qkernel.launch<grid = [256, 2], block = 256, shared = 42032>

// PTXAS-DAG:   Compiling entry function 'qk0_experts' for 'sm_90'
// PTXAS-DAG:   Compiling entry function 'qk1_experts' for 'sm_90'
// PTXAS-DAG:   Compiling entry function 'qk2_experts' for 'sm_90'
// PTXAS-DAG:   Compiling entry function 'qk3_experts' for 'sm_90'
// NOSPILL-NOT: error
// NOSPILL-NOT: {{[1-9][0-9]*}} bytes spill
// NOSPILL-NOT: {{[1-9][0-9]*}} bytes stack frame

module {
  func.func @step(%arg0: tensor<?x2048xf32> {qtf.input = "tokens"}, %arg1: tensor<?x8xi32> {qtf.input = "tokens"}, %arg2: tensor<?x8xf32> {qtf.input = "tokens"}) -> (tensor<?x8x2048xf32>, tensor<?x8x2048xf32>, tensor<?x8x2048xf32>, tensor<?x8x2048xf32>) {
    %0 = qtf.weight ["model.layers.0.mlp.experts.gate_up_proj"] : tensor<196608x2048xbf16>
    %1 = qtf.weight ["model.layers.0.mlp.experts.down_proj"] : tensor<262144x768xbf16>
    %2 = qkernel.launch @kernels::@qk0_experts(%arg0, %arg1, %arg2, %0, %1) : (tensor<?x2048xf32>, tensor<?x8xi32>, tensor<?x8xf32>, tensor<196608x2048xbf16>, tensor<262144x768xbf16>) -> tensor<?x8x2048xf32>
    %3 = qtf.weight ["model.layers.1.mlp.experts.gate_up_proj"] : tensor<196608x2048xf16>
    %4 = qtf.weight ["model.layers.1.mlp.experts.down_proj"] : tensor<262144x768xf16>
    %5 = qkernel.launch @kernels::@qk1_experts(%arg0, %arg1, %arg2, %3, %4) : (tensor<?x2048xf32>, tensor<?x8xi32>, tensor<?x8xf32>, tensor<196608x2048xf16>, tensor<262144x768xf16>) -> tensor<?x8x2048xf32>
    %6 = qtf.weight ["model.language_model.layers.0.mlp.experts.gate_up_proj"] : tensor<262144x2048xbf16>
    %7 = qtf.weight ["model.language_model.layers.0.mlp.experts.down_proj"] : tensor<524288x512xbf16>
    %8 = qkernel.launch @kernels::@qk2_experts(%arg0, %arg1, %arg2, %6, %7) : (tensor<?x2048xf32>, tensor<?x8xi32>, tensor<?x8xf32>, tensor<262144x2048xbf16>, tensor<524288x512xbf16>) -> tensor<?x8x2048xf32>
    %9 = qtf.weight ["model.language_model.layers.1.mlp.experts.gate_up_proj"] : tensor<262144x2048xf16>
    %10 = qtf.weight ["model.language_model.layers.1.mlp.experts.down_proj"] : tensor<524288x512xf16>
    %11 = qkernel.launch @kernels::@qk3_experts(%arg0, %arg1, %arg2, %9, %10) : (tensor<?x2048xf32>, tensor<?x8xi32>, tensor<?x8xf32>, tensor<262144x2048xf16>, tensor<524288x512xf16>) -> tensor<?x8x2048xf32>
    return %2, %5, %8, %11 : tensor<?x8x2048xf32>, tensor<?x8x2048xf32>, tensor<?x8x2048xf32>, tensor<?x8x2048xf32>
  }
  module @kernels {
    func.func @qk0_experts(%arg0: tensor<?x2048xf32>, %arg1: tensor<?x8xi32>, %arg2: tensor<?x8xf32>, %arg3: tensor<196608x2048xbf16>, %arg4: tensor<262144x768xbf16>) -> tensor<?x8x2048xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<experts>} {
      %0 = qtf.moe_expert_ffn %arg0, %arg1, %arg2, %arg3, %arg4 {intermediate_size = 768 : i64, num_experts = 128 : i64} : tensor<?x2048xf32>, tensor<?x8xi32>, tensor<?x8xf32>, tensor<196608x2048xbf16>, tensor<262144x768xbf16> -> tensor<?x8x2048xf32>
      return %0 : tensor<?x8x2048xf32>
    }
    func.func @qk1_experts(%arg0: tensor<?x2048xf32>, %arg1: tensor<?x8xi32>, %arg2: tensor<?x8xf32>, %arg3: tensor<196608x2048xf16>, %arg4: tensor<262144x768xf16>) -> tensor<?x8x2048xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<experts>} {
      %0 = qtf.moe_expert_ffn %arg0, %arg1, %arg2, %arg3, %arg4 {intermediate_size = 768 : i64, num_experts = 128 : i64} : tensor<?x2048xf32>, tensor<?x8xi32>, tensor<?x8xf32>, tensor<196608x2048xf16>, tensor<262144x768xf16> -> tensor<?x8x2048xf32>
      return %0 : tensor<?x8x2048xf32>
    }
    func.func @qk2_experts(%arg0: tensor<?x2048xf32>, %arg1: tensor<?x8xi32>, %arg2: tensor<?x8xf32>, %arg3: tensor<262144x2048xbf16>, %arg4: tensor<524288x512xbf16>) -> tensor<?x8x2048xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<experts>} {
      %0 = qtf.moe_expert_ffn %arg0, %arg1, %arg2, %arg3, %arg4 {intermediate_size = 512 : i64, num_experts = 256 : i64} : tensor<?x2048xf32>, tensor<?x8xi32>, tensor<?x8xf32>, tensor<262144x2048xbf16>, tensor<524288x512xbf16> -> tensor<?x8x2048xf32>
      return %0 : tensor<?x8x2048xf32>
    }
    func.func @qk3_experts(%arg0: tensor<?x2048xf32>, %arg1: tensor<?x8xi32>, %arg2: tensor<?x8xf32>, %arg3: tensor<262144x2048xf16>, %arg4: tensor<524288x512xf16>) -> tensor<?x8x2048xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<experts>} {
      %0 = qtf.moe_expert_ffn %arg0, %arg1, %arg2, %arg3, %arg4 {intermediate_size = 512 : i64, num_experts = 256 : i64} : tensor<?x2048xf32>, tensor<?x8xi32>, tensor<?x8xf32>, tensor<262144x2048xf16>, tensor<524288x512xf16> -> tensor<?x8x2048xf32>
      return %0 : tensor<?x8x2048xf32>
    }
  }
}
