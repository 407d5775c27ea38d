// REQUIRES: ptxas
// RUN: qwen-opt %s --qwen-select-schedule=target=cuda --qwen-gpu-lower-kernels --qwen-gpu-lower-to-nvvm > %t.mlir
// RUN: %python %S/extract-ptx.py < %t.mlir > %t.ptx
// RUN: ptxas -arch=sm_90a -O3 -v %t.ptx -o %t.cubin 2>&1 | FileCheck %s --check-prefix=PTXAS
// RUN: ptxas -arch=sm_90a -O3 -v %t.ptx -o %t.cubin 2>&1 | FileCheck %s --check-prefix=NOSPILL

// Block-wise FP8 grouped experts kernels, the input of
// simt-numerics-moe-fp8.test: f8E4M3FN gate_up / down weights with one f32
// scale per block of each expert matrix. qk0: 8 x 16 blocks that divide
// every matrix (4 choices of 8 experts). qk1: 16 x 32 blocks with ragged
// last blocks in rows (I = 24, H = 48) and columns (H = 48 = 32 + 16,
// I = 24 < 32), so the gate and up grids of an expert (2 block rows each)
// and the down grid (3) do not line up with a flat row / block division.

// PTXAS-DAG:   Compiling entry function 'qk0_experts' for 'sm_90a'
// PTXAS-DAG:   Compiling entry function 'qk1_experts' for 'sm_90a'
// NOSPILL-NOT: error
// NOSPILL-NOT: {{[1-9][0-9]*}} bytes spill
// NOSPILL-NOT: {{[1-9][0-9]*}} bytes stack frame

module {
  func.func @step(%arg0: tensor<?x32xf32> {qtf.input = "tokens"}, %arg1: tensor<?x4xi32> {qtf.input = "tokens"}, %arg2: tensor<?x4xf32> {qtf.input = "tokens"}, %arg3: tensor<?x48xf32> {qtf.input = "tokens"}, %arg4: tensor<?x2xi32> {qtf.input = "tokens"}, %arg5: tensor<?x2xf32> {qtf.input = "tokens"}) -> (tensor<?x4x32xf32>, tensor<?x2x48xf32>) {
    %0 = qtf.weight ["model.layers.0.mlp.experts.gate_up_proj"] : tensor<256x32xf8E4M3FN>
    %1 = qtf.weight ["model.layers.0.mlp.experts.gate_up_proj_scale_inv"] : tensor<32x2xf32>
    %2 = qtf.weight ["model.layers.0.mlp.experts.down_proj"] : tensor<256x16xf8E4M3FN>
    %3 = qtf.weight ["model.layers.0.mlp.experts.down_proj_scale_inv"] : tensor<32x1xf32>
    %4 = qkernel.launch @kernels::@qk0_experts(%arg0, %arg1, %arg2, %0, %1, %2, %3) : (tensor<?x32xf32>, tensor<?x4xi32>, tensor<?x4xf32>, tensor<256x32xf8E4M3FN>, tensor<32x2xf32>, tensor<256x16xf8E4M3FN>, tensor<32x1xf32>) -> tensor<?x4x32xf32>
    %5 = qtf.weight ["model.layers.1.mlp.experts.gate_up_proj"] : tensor<192x48xf8E4M3FN>
    %6 = qtf.weight ["model.layers.1.mlp.experts.gate_up_proj_scale_inv"] : tensor<16x2xf32>
    %7 = qtf.weight ["model.layers.1.mlp.experts.down_proj"] : tensor<192x24xf8E4M3FN>
    %8 = qtf.weight ["model.layers.1.mlp.experts.down_proj_scale_inv"] : tensor<12x1xf32>
    %9 = qkernel.launch @kernels::@qk1_experts(%arg3, %arg4, %arg5, %5, %6, %7, %8) : (tensor<?x48xf32>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<192x48xf8E4M3FN>, tensor<16x2xf32>, tensor<192x24xf8E4M3FN>, tensor<12x1xf32>) -> tensor<?x2x48xf32>
    return %4, %9 : tensor<?x4x32xf32>, tensor<?x2x48xf32>
  }
  module @kernels {
    func.func @qk0_experts(%arg0: tensor<?x32xf32>, %arg1: tensor<?x4xi32>, %arg2: tensor<?x4xf32>, %arg3: tensor<256x32xf8E4M3FN>, %arg4: tensor<32x2xf32>, %arg5: tensor<256x16xf8E4M3FN>, %arg6: tensor<32x1xf32>) -> tensor<?x4x32xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<experts>} {
      %0 = qtf.moe_expert_ffn %arg0, %arg1, %arg2, %arg3 scale(%arg4 : tensor<32x2xf32>), %arg5 scale(%arg6 : tensor<32x1xf32>) {intermediate_size = 16 : i64, num_experts = 8 : i64, weight_block = array<i64: 8, 16>} : tensor<?x32xf32>, tensor<?x4xi32>, tensor<?x4xf32>, tensor<256x32xf8E4M3FN>, tensor<256x16xf8E4M3FN> -> tensor<?x4x32xf32>
      return %0 : tensor<?x4x32xf32>
    }
    func.func @qk1_experts(%arg0: tensor<?x48xf32>, %arg1: tensor<?x2xi32>, %arg2: tensor<?x2xf32>, %arg3: tensor<192x48xf8E4M3FN>, %arg4: tensor<16x2xf32>, %arg5: tensor<192x24xf8E4M3FN>, %arg6: tensor<12x1xf32>) -> tensor<?x2x48xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<experts>} {
      %0 = qtf.moe_expert_ffn %arg0, %arg1, %arg2, %arg3 scale(%arg4 : tensor<16x2xf32>), %arg5 scale(%arg6 : tensor<12x1xf32>) {intermediate_size = 24 : i64, num_experts = 4 : i64, weight_block = array<i64: 16, 32>} : tensor<?x48xf32>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<192x48xf8E4M3FN>, tensor<192x24xf8E4M3FN> -> tensor<?x2x48xf32>
      return %0 : tensor<?x2x48xf32>
    }
  }
}
