// REQUIRES: ptxas
// RUN: qwen-opt %s --qwen-select-schedule=target=cuda --qwen-gpu-lower-kernels --qwen-gpu-lower-to-nvvm > %t.mlir
// RUN: %python %S/extract-ptx.py < %t.mlir > %t.ptx
// RUN: ptxas -arch=sm_90 -O3 -v %t.ptx -o %t.cubin 2>&1 | FileCheck %s --check-prefix=PTXAS
// RUN: ptxas -arch=sm_90 -O3 -v %t.ptx -o %t.cubin 2>&1 | FileCheck %s --check-prefix=NOSPILL
// RUN: ptxas -arch=sm_90 -O3 -v %t.ptx -o %t.cubin 2>&1 | FileCheck %s --check-prefix=SMEM

// Hybrid-model kernels at the sizes of released checkpoints (Qwen3-Next /
// Qwen3.5: linear key and value heads of 128, 512 routed experts with top
// 10, attention heads of 256 with 64 MRoPE dims in sections [11, 11, 10]),
// where register pressure is real: the delta rule keeps 32 state rows per
// thread in registers with 4 lanes per value column (512 threads, at most
// 128 registers each) through both its recurrent (decode) and chunked
// (prefill, chunks of 16 tokens in 36288 bytes of static shared memory)
// paths, or, with value heads of 256 (1024 threads would be needed), keeps
// the state in memory; the router holds 16 experts per lane.
// ptxas assembles every entry for sm_90 without spills. The same module is
// the input of simt-numerics-large.test.

// PTXAS-DAG:   Compiling entry function 'qk0_delta_rule' for 'sm_90'
// PTXAS-DAG:   Compiling entry function 'qk1_delta_rule' for 'sm_90'
// PTXAS-DAG:   Compiling entry function 'qk2_gated_norm' for 'sm_90'
// PTXAS-DAG:   Compiling entry function 'qk3_router' for 'sm_90'
// PTXAS-DAG:   Compiling entry function 'qk4_rows' for 'sm_90'
// NOSPILL-NOT: error
// NOSPILL-NOT: {{[1-9][0-9]*}} bytes spill
// NOSPILL-NOT: {{[1-9][0-9]*}} bytes stack frame
// The register delta rule with its chunk buffer (chunks of 16 tokens): 512
// threads need at most 128 registers each (101 at the time of writing).
// SMEM:        Compiling entry function 'qk0_delta_rule' for 'sm_90'
// SMEM:        Function properties for qk0_delta_rule
// SMEM-NEXT:     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// SMEM-NEXT:   Used {{([0-9]|[0-9][0-9]|1[01][0-9]|12[0-8])}} registers, used 1 barriers, 36288 bytes smem

!sa = !qtf.linear_state<layers = 1, conv_channels = 1024, conv_window = 3, heads = 4, key_dim = 128, value_dim = 128, f32>
!sb = !qtf.linear_state<layers = 1, conv_channels = 768, conv_window = 3, heads = 2, key_dim = 128, value_dim = 256, f32>
module {
  func.func @step(%arg0: tensor<?x1024xf32> {qtf.input = "tokens"}, %arg1: tensor<?x8xf32> {qtf.input = "tokens"}, %arg2: tensor<?x768xf32> {qtf.input = "tokens"}, %arg3: tensor<?x4xf32> {qtf.input = "tokens"}, %arg4: tensor<?x512xf32> {qtf.input = "tokens"}, %arg5: tensor<?x512xf32> {qtf.input = "tokens"}, %arg6: tensor<?x3xi32> {qtf.input = "mrope_positions"}, %arg7: tensor<?xi32> {qtf.input = "token_seq"}, %arg8: tensor<?xi32> {qtf.input = "state_slots"}, %arg9: !sa, %arg10: !sb) -> (tensor<?x4x128xf32>, tensor<?x2x256xf32>, tensor<?x4x128xf32>, tensor<?x10xi32>, tensor<?x10xf32>, tensor<?x2x256xf32>, !sa, !sb) {
    %0 = qtf.weight ["model.layers.0.linear_attn.A_log"] : tensor<4xf32>
    %1 = qtf.weight ["model.layers.0.linear_attn.dt_bias"] : tensor<4xf32>
    %2:2 = qkernel.launch @kernels::@qk0_delta_rule(%arg0, %arg1, %arg9, %0, %1, %arg7, %arg8) : (tensor<?x1024xf32>, tensor<?x8xf32>, !sa, tensor<4xf32>, tensor<4xf32>, tensor<?xi32>, tensor<?xi32>) -> (tensor<?x4x128xf32>, !sa)
    %3 = qtf.weight ["model.layers.1.linear_attn.A_log"] : tensor<2xf32>
    %4 = qtf.weight ["model.layers.1.linear_attn.dt_bias"] : tensor<2xf32>
    %5:2 = qkernel.launch @kernels::@qk1_delta_rule(%arg2, %arg3, %arg10, %3, %4, %arg7, %arg8) : (tensor<?x768xf32>, tensor<?x4xf32>, !sb, tensor<2xf32>, tensor<2xf32>, tensor<?xi32>, tensor<?xi32>) -> (tensor<?x2x256xf32>, !sb)
    %6 = qtf.weight ["model.layers.0.linear_attn.norm.weight"] : tensor<128xf32>
    %7 = qkernel.launch @kernels::@qk2_gated_norm(%arg4, %2#0, %6) : (tensor<?x512xf32>, tensor<?x4x128xf32>, tensor<128xf32>) -> tensor<?x4x128xf32>
    %8:2 = qkernel.launch @kernels::@qk3_router(%arg5) : (tensor<?x512xf32>) -> (tensor<?x10xi32>, tensor<?x10xf32>)
    %9 = qtf.weight ["model.layers.3.self_attn.q_norm.weight"] : tensor<256xbf16>
    %10 = qkernel.launch @kernels::@qk4_rows(%arg5, %9, %arg6) : (tensor<?x512xf32>, tensor<256xbf16>, tensor<?x3xi32>) -> tensor<?x2x256xf32>
    return %2#0, %5#0, %7, %8#0, %8#1, %10, %2#1, %5#1 : tensor<?x4x128xf32>, tensor<?x2x256xf32>, tensor<?x4x128xf32>, tensor<?x10xi32>, tensor<?x10xf32>, tensor<?x2x256xf32>, !sa, !sb
  }
  module @kernels {
    func.func @qk0_delta_rule(%arg0: tensor<?x1024xf32>, %arg1: tensor<?x8xf32>, %arg2: !sa, %arg3: tensor<4xf32>, %arg4: tensor<4xf32>, %arg5: tensor<?xi32>, %arg6: tensor<?xi32>) -> (tensor<?x4x128xf32>, !sa) attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<delta_rule>} {
      %0:3 = qtf.split %arg0 [256, 256, 512] : tensor<?x1024xf32> -> tensor<?x256xf32>, tensor<?x256xf32>, tensor<?x512xf32>
      %1 = qtf.reshape %0#0 : tensor<?x256xf32> -> tensor<?x2x128xf32>
      %2 = qtf.reshape %0#1 : tensor<?x256xf32> -> tensor<?x2x128xf32>
      %3 = qtf.reshape %0#2 : tensor<?x512xf32> -> tensor<?x4x128xf32>
      %4:2 = qtf.split %arg1 [4, 4] : tensor<?x8xf32> -> tensor<?x4xf32>, tensor<?x4xf32>
      %result, %new_state = qtf.gated_delta_rule %arg2[0], %1, %2, %3, %4#1, %4#0, %arg3, %arg4, %arg5, %arg6 {scale = 0.088388347648318440 : f64} : !sa, tensor<?x2x128xf32>, tensor<?x2x128xf32>, tensor<?x4x128xf32>, tensor<?x4xf32>, tensor<?x4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<?xi32>, tensor<?xi32> -> tensor<?x4x128xf32>
      return %result, %new_state : tensor<?x4x128xf32>, !sa
    }
    func.func @qk1_delta_rule(%arg0: tensor<?x768xf32>, %arg1: tensor<?x4xf32>, %arg2: !sb, %arg3: tensor<2xf32>, %arg4: tensor<2xf32>, %arg5: tensor<?xi32>, %arg6: tensor<?xi32>) -> (tensor<?x2x256xf32>, !sb) attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<delta_rule>} {
      %0:3 = qtf.split %arg0 [128, 128, 512] : tensor<?x768xf32> -> tensor<?x128xf32>, tensor<?x128xf32>, tensor<?x512xf32>
      %1 = qtf.reshape %0#0 : tensor<?x128xf32> -> tensor<?x1x128xf32>
      %2 = qtf.reshape %0#1 : tensor<?x128xf32> -> tensor<?x1x128xf32>
      %3 = qtf.reshape %0#2 : tensor<?x512xf32> -> tensor<?x2x256xf32>
      %4:2 = qtf.split %arg1 [2, 2] : tensor<?x4xf32> -> tensor<?x2xf32>, tensor<?x2xf32>
      %result, %new_state = qtf.gated_delta_rule %arg2[0], %1, %2, %3, %4#1, %4#0, %arg3, %arg4, %arg5, %arg6 {scale = 0.088388347648318440 : f64} : !sb, tensor<?x1x128xf32>, tensor<?x1x128xf32>, tensor<?x2x256xf32>, tensor<?x2xf32>, tensor<?x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<?xi32>, tensor<?xi32> -> tensor<?x2x256xf32>
      return %result, %new_state : tensor<?x2x256xf32>, !sb
    }
    func.func @qk2_gated_norm(%arg0: tensor<?x512xf32>, %arg1: tensor<?x4x128xf32>, %arg2: tensor<128xf32>) -> tensor<?x4x128xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<gated_norm>} {
      %0 = qtf.reshape %arg0 : tensor<?x512xf32> -> tensor<?x4x128xf32>
      %1 = qtf.gated_rms_norm %arg1, %0, %arg2 {epsilon = 9.9999999999999995E-7 : f64} : tensor<?x4x128xf32>, tensor<?x4x128xf32>, tensor<128xf32> -> tensor<?x4x128xf32>
      return %1 : tensor<?x4x128xf32>
    }
    func.func @qk3_router(%arg0: tensor<?x512xf32>) -> (tensor<?x10xi32>, tensor<?x10xf32>) attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<router>} {
      %ids, %weights = qtf.moe_router %arg0 {normalize, top_k = 10 : i64} : tensor<?x512xf32> -> tensor<?x10xi32>, tensor<?x10xf32>
      return %ids, %weights : tensor<?x10xi32>, tensor<?x10xf32>
    }
    func.func @qk4_rows(%arg0: tensor<?x512xf32>, %arg1: tensor<256xbf16>, %arg2: tensor<?x3xi32>) -> tensor<?x2x256xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<rows>} {
      %0 = qtf.reshape %arg0 : tensor<?x512xf32> -> tensor<?x2x256xf32>
      %1 = qtf.rms_norm %0, %arg1 {epsilon = 9.9999999999999995E-7 : f64, zero_centered} : tensor<?x2x256xf32>, tensor<256xbf16> -> tensor<?x2x256xf32>
      %2 = qtf.rope %1, %arg2 {mrope_section = array<i64: 11, 11, 10>, rotary_dim = 64 : i64, theta = 1.000000e+07 : f64} : tensor<?x2x256xf32>, tensor<?x3xi32> -> tensor<?x2x256xf32>
      return %2 : tensor<?x2x256xf32>
    }
  }
}
