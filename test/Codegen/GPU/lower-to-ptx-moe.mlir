// REQUIRES: ptxas
// RUN: qwen-opt %s --qwen-select-schedule=target=cuda --qwen-gpu-lower-kernels --qwen-gpu-lower-to-nvvm > %t.mlir
// RUN: %python %S/extract-ptx.py < %t.mlir > %t.ptx
// RUN: ptxas -arch=sm_90 -O3 -v %t.ptx -o %t.cubin 2>&1 | FileCheck %s --check-prefix=PTXAS
// RUN: ptxas -arch=sm_90 -O3 -v %t.ptx -o %t.cubin 2>&1 | FileCheck %s --check-prefix=NOSPILL

// Grouped experts kernels at small sizes, the input of simt-numerics-moe.test
// (which lowers them with 64-thread blocks so the routing-table scan takes
// several chunks): f32 weights with 16 choices of 8 experts per token (many
// slots per expert: full and partial blocks of 8, over two parts), bf16
// with 2 choices of 16 experts (most experts get no slot; rows of 30 and 10
// take 2-wide vectors) and f16 with rows of 1528, where x and h rows of 8
// slots no longer fit in shared memory and blocks hold 4 slots.

// PTXAS-DAG:   Compiling entry function 'qk0_experts' for 'sm_90'
// PTXAS-DAG:   Compiling entry function 'qk1_experts' for 'sm_90'
// PTXAS-DAG:   Compiling entry function 'qk2_experts' for 'sm_90'
// NOSPILL-NOT: error
// NOSPILL-NOT: {{[1-9][0-9]*}} bytes spill
// NOSPILL-NOT: {{[1-9][0-9]*}} bytes stack frame

module {
  func.func @step(%arg0: tensor<?x32xf32> {qtf.input = "tokens"}, %arg1: tensor<?x16xi32> {qtf.input = "tokens"}, %arg2: tensor<?x16xf32> {qtf.input = "tokens"}, %arg3: tensor<?x30xf32> {qtf.input = "tokens"}, %arg4: tensor<?x2xi32> {qtf.input = "tokens"}, %arg5: tensor<?x2xf32> {qtf.input = "tokens"}, %arg6: tensor<?x1528xf32> {qtf.input = "tokens"}, %arg7: tensor<?x4xi32> {qtf.input = "tokens"}, %arg8: tensor<?x4xf32> {qtf.input = "tokens"}) -> (tensor<?x16x32xf32>, tensor<?x2x30xf32>, tensor<?x4x1528xf32>) {
    %0 = qtf.weight ["model.layers.0.mlp.experts.gate_up_proj"] : tensor<256x32xf32>
    %1 = qtf.weight ["model.layers.0.mlp.experts.down_proj"] : tensor<256x16xf32>
    %2 = qkernel.launch @kernels::@qk0_experts(%arg0, %arg1, %arg2, %0, %1) : (tensor<?x32xf32>, tensor<?x16xi32>, tensor<?x16xf32>, tensor<256x32xf32>, tensor<256x16xf32>) -> tensor<?x16x32xf32>
    %3 = qtf.weight ["model.layers.1.mlp.experts.gate_up_proj"] : tensor<320x30xbf16>
    %4 = qtf.weight ["model.layers.1.mlp.experts.down_proj"] : tensor<480x10xbf16>
    %5 = qkernel.launch @kernels::@qk1_experts(%arg3, %arg4, %arg5, %3, %4) : (tensor<?x30xf32>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<320x30xbf16>, tensor<480x10xbf16>) -> tensor<?x2x30xf32>
    %6 = qtf.weight ["model.layers.2.mlp.experts.gate_up_proj"] : tensor<32x1528xf16>
    %7 = qtf.weight ["model.layers.2.mlp.experts.down_proj"] : tensor<3056x8xf16>
    %8 = qkernel.launch @kernels::@qk2_experts(%arg6, %arg7, %arg8, %6, %7) : (tensor<?x1528xf32>, tensor<?x4xi32>, tensor<?x4xf32>, tensor<32x1528xf16>, tensor<3056x8xf16>) -> tensor<?x4x1528xf32>
    return %2, %5, %8 : tensor<?x16x32xf32>, tensor<?x2x30xf32>, tensor<?x4x1528xf32>
  }
  module @kernels {
    func.func @qk0_experts(%arg0: tensor<?x32xf32>, %arg1: tensor<?x16xi32>, %arg2: tensor<?x16xf32>, %arg3: tensor<256x32xf32>, %arg4: tensor<256x16xf32>) -> tensor<?x16x32xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<experts>} {
      %0 = qtf.moe_expert_ffn %arg0, %arg1, %arg2, %arg3, %arg4 {intermediate_size = 16 : i64, num_experts = 8 : i64} : tensor<?x32xf32>, tensor<?x16xi32>, tensor<?x16xf32>, tensor<256x32xf32>, tensor<256x16xf32> -> tensor<?x16x32xf32>
      return %0 : tensor<?x16x32xf32>
    }
    func.func @qk1_experts(%arg0: tensor<?x30xf32>, %arg1: tensor<?x2xi32>, %arg2: tensor<?x2xf32>, %arg3: tensor<320x30xbf16>, %arg4: tensor<480x10xbf16>) -> tensor<?x2x30xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<experts>} {
      %0 = qtf.moe_expert_ffn %arg0, %arg1, %arg2, %arg3, %arg4 {intermediate_size = 10 : i64, num_experts = 16 : i64} : tensor<?x30xf32>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<320x30xbf16>, tensor<480x10xbf16> -> tensor<?x2x30xf32>
      return %0 : tensor<?x2x30xf32>
    }
    func.func @qk2_experts(%arg0: tensor<?x1528xf32>, %arg1: tensor<?x4xi32>, %arg2: tensor<?x4xf32>, %arg3: tensor<32x1528xf16>, %arg4: tensor<3056x8xf16>) -> tensor<?x4x1528xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<experts>} {
      %0 = qtf.moe_expert_ffn %arg0, %arg1, %arg2, %arg3, %arg4 {intermediate_size = 8 : i64, num_experts = 2 : i64} : tensor<?x1528xf32>, tensor<?x4xi32>, tensor<?x4xf32>, tensor<32x1528xf16>, tensor<3056x8xf16> -> tensor<?x4x1528xf32>
      return %0 : tensor<?x4x1528xf32>
    }
  }
}
