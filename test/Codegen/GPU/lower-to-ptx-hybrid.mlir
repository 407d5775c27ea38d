// REQUIRES: ptxas
// RUN: qwen-opt %s --qwen-select-schedule=target=cuda --qwen-gpu-lower-kernels --qwen-gpu-lower-to-nvvm > %t.mlir
// RUN: %python %S/extract-ptx.py < %t.mlir > %t.ptx
// RUN: FileCheck %s --check-prefix=PTX < %t.ptx
// RUN: ptxas -arch=sm_90 -O3 -v %t.ptx -o %t.cubin 2>&1 | FileCheck %s --check-prefix=PTXAS
// RUN: ptxas -arch=sm_90 -O3 -v %t.ptx -o %t.cubin 2>&1 | FileCheck %s --check-prefix=NOSPILL

// The kernels of a tiny Qwen3.5-MoE (qwen-compile --emit=mlir
// --stop-after-stage=planned of a config with hidden 32, layers [linear,
// full], 2 / 4 linear key / value heads of 64 / 16, conv kernel 4, MRoPE
// sections [2, 1, 1] on 8 of 32 rotary dims, 8 experts top-2 + a shared
// expert, bf16): every kernel kind of a hybrid model (conv, delta_rule with
// its state column split over 2 lanes, gated_norm, router, experts,
// sigmoid_mul with a full and a one-column gate, moe_combine + residual,
// MRoPE in rows and kv_write) goes through NVVM to PTX in process, and
// ptxas assembles every entry for sm_90 without spills. The same module is
// the input of simt-numerics-hybrid.test.

// PTX:         .version 8.0
// PTX-NEXT:    .target sm_90
// PTX-NOT:     .extern
// PTX:         .visible .entry qk0_embedding(
// PTX:         .visible .entry qk3_conv(
// Slots: projection, conv windows, recurrent states, weight, token_seq,
// state_slots, result; then the four sizes.
// PTX-COUNT-7:   .param .u64 .ptr .align 1 qk3_conv_param_{{[0-9]+}},
// PTX-COUNT-3:   .param .u64 qk3_conv_param_{{[0-9]+}},
// PTX-NEXT:      .param .u64 qk3_conv_param_10
// PTX-NEXT:    )
// PTX:           ld.global.b16
// PTX:           fma.rn.f32
// PTX:         .visible .entry qk4_delta_rule(
// PTX:           .shared .align 16 .b8 __wg_qk4_delta_rule_0[256];
// PTX:           .shared .align 16 .b8 __wg_qk4_delta_rule_1[256];
// PTX:           shfl.sync.bfly.b32
// PTX:           sqrt.rn.f32
// PTX:           bar.sync
// PTX:           ld.shared.b32
// PTX:           fma.rn.f32
// PTX:         .visible .entry qk5_gated_norm(
// PTX:           ld.global.v4.b32
// PTX:           sqrt.rn.f32
// PTX:         .visible .entry qk8_router(
// PTX:           shfl.sync.bfly.b32
// PTX:         .visible .entry qk9_experts(
// PTX:           bar.sync
// PTX-DAG:       ld.global.v4.b16
// PTX-DAG:       shfl.sync.bfly.b32
// PTX:         .visible .entry qk12_elementwise(
// PTX:         .visible .entry qk13_elementwise(
// PTX:         .visible .entry qk16_rows(
// PTX:         .visible .entry qk17_kv_write(
// PTX:         .visible .entry qk18_attention(
// PTX:         .visible .entry qk19_elementwise(

// PTXAS-DAG:   Compiling entry function 'qk0_embedding' for 'sm_90'
// PTXAS-DAG:   Compiling entry function 'qk1_rows' for 'sm_90'
// PTXAS-DAG:   Compiling entry function 'qk2_matmul_pack' for 'sm_90'
// PTXAS-DAG:   Compiling entry function 'qk3_conv' for 'sm_90'
// PTXAS-DAG:   Compiling entry function 'qk4_delta_rule' for 'sm_90'
// PTXAS-DAG:   Compiling entry function 'qk5_gated_norm' for 'sm_90'
// PTXAS-DAG:   Compiling entry function 'qk6_matmul_pack' for 'sm_90'
// PTXAS-DAG:   Compiling entry function 'qk7_matmul_pack' for 'sm_90'
// PTXAS-DAG:   Compiling entry function 'qk8_router' for 'sm_90'
// PTXAS-DAG:   Compiling entry function 'qk9_experts' for 'sm_90'
// PTXAS-DAG:   Compiling entry function 'qk10_elementwise' for 'sm_90'
// PTXAS-DAG:   Compiling entry function 'qk11_matmul_pack' for 'sm_90'
// PTXAS-DAG:   Compiling entry function 'qk12_elementwise' for 'sm_90'
// PTXAS-DAG:   Compiling entry function 'qk13_elementwise' for 'sm_90'
// PTXAS-DAG:   Compiling entry function 'qk14_elementwise' for 'sm_90'
// PTXAS-DAG:   Compiling entry function 'qk15_matmul_pack' for 'sm_90'
// PTXAS-DAG:   Compiling entry function 'qk16_rows' for 'sm_90'
// PTXAS-DAG:   Compiling entry function 'qk17_kv_write' for 'sm_90'
// PTXAS-DAG:   Compiling entry function 'qk18_attention' for 'sm_90'
// PTXAS-DAG:   Compiling entry function 'qk19_elementwise' for 'sm_90'
// PTXAS-DAG:   Compiling entry function 'qk20_matmul_pack' for 'sm_90'
// PTXAS-DAG:   Compiling entry function 'qk21_matmul_pack' for 'sm_90'
// NOSPILL-NOT: error
// NOSPILL-NOT: {{[1-9][0-9]*}} bytes spill
// NOSPILL-NOT: {{[1-9][0-9]*}} bytes stack frame

module {
  func.func @step(%arg0: tensor<?xi32> {qtf.input = "tokens"}, %arg1: tensor<?xi32> {qtf.input = "positions"}, %arg2: tensor<?xi32> {qtf.input = "token_seq"}, %arg3: tensor<?x?xi32> {qtf.input = "block_table"}, %arg4: tensor<?xi32> {qtf.input = "logit_rows"}, %arg5: tensor<?x3xi32> {qtf.input = "mrope_positions"}, %arg6: tensor<?xi32> {qtf.input = "state_slots"}, %arg7: !qtf.kv_cache<layers = 1, kv_heads = 1, head_dim = 32, page_size = 16, f32>, %arg8: !qtf.linear_state<layers = 1, conv_channels = 320, conv_window = 3, heads = 4, key_dim = 64, value_dim = 16, f32>) -> (tensor<?x64xf32>, !qtf.kv_cache<layers = 1, kv_heads = 1, head_dim = 32, page_size = 16, f32>, !qtf.linear_state<layers = 1, conv_channels = 320, conv_window = 3, heads = 4, key_dim = 64, value_dim = 16, f32>) attributes {qkernel.buffers = [{symbol = "T", type = tensor<?x32xf32>}, {symbol = "T", type = tensor<?x32xf32>}, {symbol = "T", type = tensor<?x392xf32>}, {symbol = "T", type = tensor<?x320xf32>}, {symbol = "T", type = tensor<?x4x16xf32>}, {symbol = "T", type = tensor<?x4x16xf32>}, {symbol = "T", type = tensor<?x57xf32>}, {symbol = "T", type = tensor<?x2xi32>}, {symbol = "T", type = tensor<?x2xf32>}, {symbol = "T", type = tensor<?x2x32xf32>}, {symbol = "T", type = tensor<?x24xf32>}, {symbol = "T", type = tensor<?x32xf32>}, {symbol = "T", type = tensor<?x192xf32>}, {symbol = "T", type = tensor<?x2x32xf32>}, {symbol = "T", type = tensor<?x64xf32>}, {symbol = "R", type = tensor<?x64xf32>}]} {
    %0 = qtf.weight ["model.language_model.embed_tokens.weight"] : tensor<64x32xbf16>
    %1 = qkernel.launch @kernels::@qk0_embedding(%0, %arg0) {result_buffers = array<i64: 0>} : (tensor<64x32xbf16>, tensor<?xi32>) -> tensor<?x32xf32>
    %2 = qtf.weight ["model.language_model.layers.0.input_layernorm.weight"] : tensor<32xbf16>
    %3 = qkernel.launch @kernels::@qk1_rows(%1, %2) {result_buffers = array<i64: 1>} : (tensor<?x32xf32>, tensor<32xbf16>) -> tensor<?x32xf32>
    %4 = qtf.weight ["model.language_model.layers.0.linear_attn.in_proj_qkv.weight", "model.language_model.layers.0.linear_attn.in_proj_z.weight", "model.language_model.layers.0.linear_attn.in_proj_b.weight", "model.language_model.layers.0.linear_attn.in_proj_a.weight"] : tensor<392x32xbf16>
    %5 = qkernel.launch @kernels::@qk2_matmul(%3, %4) {result_buffers = array<i64: 2>} : (tensor<?x32xf32>, tensor<392x32xbf16>) -> tensor<?x392xf32>
    %6 = qtf.weight ["model.language_model.layers.0.linear_attn.conv1d.weight"] : tensor<320x4xbf16>
    %7:2 = qkernel.launch @kernels::@qk3_conv(%5, %arg8, %6, %arg2, %arg6) {result_buffers = array<i64: 3, -1>} : (tensor<?x392xf32>, !qtf.linear_state<layers = 1, conv_channels = 320, conv_window = 3, heads = 4, key_dim = 64, value_dim = 16, f32>, tensor<320x4xbf16>, tensor<?xi32>, tensor<?xi32>) -> (tensor<?x320xf32>, !qtf.linear_state<layers = 1, conv_channels = 320, conv_window = 3, heads = 4, key_dim = 64, value_dim = 16, f32>)
    %8 = qtf.weight ["model.language_model.layers.0.linear_attn.A_log"] : tensor<4xf32>
    %9 = qtf.weight ["model.language_model.layers.0.linear_attn.dt_bias"] : tensor<4xf32>
    %10:2 = qkernel.launch @kernels::@qk4_delta_rule(%7#0, %5, %7#1, %8, %9, %arg2, %arg6) {result_buffers = array<i64: 4, -1>} : (tensor<?x320xf32>, tensor<?x392xf32>, !qtf.linear_state<layers = 1, conv_channels = 320, conv_window = 3, heads = 4, key_dim = 64, value_dim = 16, f32>, tensor<4xf32>, tensor<4xf32>, tensor<?xi32>, tensor<?xi32>) -> (tensor<?x4x16xf32>, !qtf.linear_state<layers = 1, conv_channels = 320, conv_window = 3, heads = 4, key_dim = 64, value_dim = 16, f32>)
    %11 = qtf.weight ["model.language_model.layers.0.linear_attn.norm.weight"] : tensor<16xf32>
    %12 = qkernel.launch @kernels::@qk5_gated_norm(%5, %10#0, %11) {result_buffers = array<i64: 5>} : (tensor<?x392xf32>, tensor<?x4x16xf32>, tensor<16xf32>) -> tensor<?x4x16xf32>
    %13 = qtf.weight ["model.language_model.layers.0.linear_attn.out_proj.weight"] : tensor<32x64xbf16>
    %14 = qkernel.launch @kernels::@qk6_matmul(%12, %13, %1) {result_buffers = array<i64: 1>} : (tensor<?x4x16xf32>, tensor<32x64xbf16>, tensor<?x32xf32>) -> tensor<?x32xf32>
    %15 = qtf.weight ["model.language_model.layers.0.post_attention_layernorm.weight"] : tensor<32xbf16>
    %16 = qkernel.launch @kernels::@qk1_rows(%14, %15) {result_buffers = array<i64: 0>} : (tensor<?x32xf32>, tensor<32xbf16>) -> tensor<?x32xf32>
    %17 = qtf.weight ["model.language_model.layers.0.mlp.gate.weight", "model.language_model.layers.0.mlp.shared_expert.gate_proj.weight", "model.language_model.layers.0.mlp.shared_expert.up_proj.weight", "model.language_model.layers.0.mlp.shared_expert_gate.weight"] : tensor<57x32xbf16>
    %18 = qkernel.launch @kernels::@qk7_matmul(%16, %17) {result_buffers = array<i64: 6>} : (tensor<?x32xf32>, tensor<57x32xbf16>) -> tensor<?x57xf32>
    %19:2 = qkernel.launch @kernels::@qk8_router(%18) {result_buffers = array<i64: 7, 8>} : (tensor<?x57xf32>) -> (tensor<?x2xi32>, tensor<?x2xf32>)
    %20 = qtf.weight ["model.language_model.layers.0.mlp.experts.gate_up_proj"] : tensor<256x32xbf16>
    %21 = qtf.weight ["model.language_model.layers.0.mlp.experts.down_proj"] : tensor<256x16xbf16>
    %22 = qkernel.launch @kernels::@qk9_experts(%16, %19#0, %19#1, %20, %21) {result_buffers = array<i64: 9>} : (tensor<?x32xf32>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<256x32xbf16>, tensor<256x16xbf16>) -> tensor<?x2x32xf32>
    %23 = qkernel.launch @kernels::@qk10_elementwise(%18) {result_buffers = array<i64: 10>} : (tensor<?x57xf32>) -> tensor<?x24xf32>
    %24 = qtf.weight ["model.language_model.layers.0.mlp.shared_expert.down_proj.weight"] : tensor<32x24xbf16>
    %25 = qkernel.launch @kernels::@qk11_matmul(%23, %24) {result_buffers = array<i64: 0>} : (tensor<?x24xf32>, tensor<32x24xbf16>) -> tensor<?x32xf32>
    %26 = qkernel.launch @kernels::@qk12_elementwise(%18, %25) {result_buffers = array<i64: 11>} : (tensor<?x57xf32>, tensor<?x32xf32>) -> tensor<?x32xf32>
    %27 = qkernel.launch @kernels::@qk13_elementwise(%22, %26) {result_buffers = array<i64: 0>} : (tensor<?x2x32xf32>, tensor<?x32xf32>) -> tensor<?x32xf32>
    %28 = qkernel.launch @kernels::@qk14_elementwise(%14, %27) {result_buffers = array<i64: 11>} : (tensor<?x32xf32>, tensor<?x32xf32>) -> tensor<?x32xf32>
    %29 = qtf.weight ["model.language_model.layers.1.input_layernorm.weight"] : tensor<32xbf16>
    %30 = qkernel.launch @kernels::@qk1_rows(%28, %29) {result_buffers = array<i64: 0>} : (tensor<?x32xf32>, tensor<32xbf16>) -> tensor<?x32xf32>
    %31 = qtf.weight ["model.language_model.layers.1.self_attn.q_proj.weight[0:32]", "model.language_model.layers.1.self_attn.q_proj.weight[64:96]", "model.language_model.layers.1.self_attn.q_proj.weight[32:64]", "model.language_model.layers.1.self_attn.q_proj.weight[96:128]", "model.language_model.layers.1.self_attn.k_proj.weight", "model.language_model.layers.1.self_attn.v_proj.weight"] : tensor<192x32xbf16>
    %32 = qkernel.launch @kernels::@qk15_matmul(%30, %31) {result_buffers = array<i64: 12>} : (tensor<?x32xf32>, tensor<192x32xbf16>) -> tensor<?x192xf32>
    %33 = qtf.weight ["model.language_model.layers.1.self_attn.q_norm.weight"] : tensor<32xbf16>
    %34 = qkernel.launch @kernels::@qk16_rows(%32, %33, %arg5) {result_buffers = array<i64: 9>} : (tensor<?x192xf32>, tensor<32xbf16>, tensor<?x3xi32>) -> tensor<?x2x32xf32>
    %35 = qtf.weight ["model.language_model.layers.1.self_attn.k_norm.weight"] : tensor<32xbf16>
    %36 = qkernel.launch @kernels::@qk17_kv_write(%32, %35, %arg5, %arg7, %arg1, %arg2, %arg3) {result_buffers = array<i64: -1>} : (tensor<?x192xf32>, tensor<32xbf16>, tensor<?x3xi32>, !qtf.kv_cache<layers = 1, kv_heads = 1, head_dim = 32, page_size = 16, f32>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>) -> !qtf.kv_cache<layers = 1, kv_heads = 1, head_dim = 32, page_size = 16, f32>
    %37 = qkernel.launch @kernels::@qk18_attention(%34, %36, %arg1, %arg2, %arg3) {result_buffers = array<i64: 13>} : (tensor<?x2x32xf32>, !qtf.kv_cache<layers = 1, kv_heads = 1, head_dim = 32, page_size = 16, f32>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>) -> tensor<?x2x32xf32>
    %38 = qkernel.launch @kernels::@qk19_elementwise(%37, %32) {result_buffers = array<i64: 14>} : (tensor<?x2x32xf32>, tensor<?x192xf32>) -> tensor<?x64xf32>
    %39 = qtf.weight ["model.language_model.layers.1.self_attn.o_proj.weight"] : tensor<32x64xbf16>
    %40 = qkernel.launch @kernels::@qk20_matmul(%38, %39, %28) {result_buffers = array<i64: 0>} : (tensor<?x64xf32>, tensor<32x64xbf16>, tensor<?x32xf32>) -> tensor<?x32xf32>
    %41 = qtf.weight ["model.language_model.layers.1.post_attention_layernorm.weight"] : tensor<32xbf16>
    %42 = qkernel.launch @kernels::@qk1_rows(%40, %41) {result_buffers = array<i64: 1>} : (tensor<?x32xf32>, tensor<32xbf16>) -> tensor<?x32xf32>
    %43 = qtf.weight ["model.language_model.layers.1.mlp.gate.weight", "model.language_model.layers.1.mlp.shared_expert.gate_proj.weight", "model.language_model.layers.1.mlp.shared_expert.up_proj.weight", "model.language_model.layers.1.mlp.shared_expert_gate.weight"] : tensor<57x32xbf16>
    %44 = qkernel.launch @kernels::@qk7_matmul(%42, %43) {result_buffers = array<i64: 6>} : (tensor<?x32xf32>, tensor<57x32xbf16>) -> tensor<?x57xf32>
    %45:2 = qkernel.launch @kernels::@qk8_router(%44) {result_buffers = array<i64: 7, 8>} : (tensor<?x57xf32>) -> (tensor<?x2xi32>, tensor<?x2xf32>)
    %46 = qtf.weight ["model.language_model.layers.1.mlp.experts.gate_up_proj"] : tensor<256x32xbf16>
    %47 = qtf.weight ["model.language_model.layers.1.mlp.experts.down_proj"] : tensor<256x16xbf16>
    %48 = qkernel.launch @kernels::@qk9_experts(%42, %45#0, %45#1, %46, %47) {result_buffers = array<i64: 9>} : (tensor<?x32xf32>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<256x32xbf16>, tensor<256x16xbf16>) -> tensor<?x2x32xf32>
    %49 = qkernel.launch @kernels::@qk10_elementwise(%44) {result_buffers = array<i64: 10>} : (tensor<?x57xf32>) -> tensor<?x24xf32>
    %50 = qtf.weight ["model.language_model.layers.1.mlp.shared_expert.down_proj.weight"] : tensor<32x24xbf16>
    %51 = qkernel.launch @kernels::@qk11_matmul(%49, %50) {result_buffers = array<i64: 1>} : (tensor<?x24xf32>, tensor<32x24xbf16>) -> tensor<?x32xf32>
    %52 = qkernel.launch @kernels::@qk12_elementwise(%44, %51) {result_buffers = array<i64: 11>} : (tensor<?x57xf32>, tensor<?x32xf32>) -> tensor<?x32xf32>
    %53 = qkernel.launch @kernels::@qk13_elementwise(%48, %52) {result_buffers = array<i64: 1>} : (tensor<?x2x32xf32>, tensor<?x32xf32>) -> tensor<?x32xf32>
    %54 = qkernel.launch @kernels::@qk14_elementwise(%40, %53) {result_buffers = array<i64: 11>} : (tensor<?x32xf32>, tensor<?x32xf32>) -> tensor<?x32xf32>
    %55 = qtf.weight ["model.language_model.norm.weight"] : tensor<32xbf16>
    %56 = qkernel.launch @kernels::@qk1_rows(%54, %55) {result_buffers = array<i64: 0>} : (tensor<?x32xf32>, tensor<32xbf16>) -> tensor<?x32xf32>
    %57 = qtf.weight ["lm_head.weight"] : tensor<64x32xbf16>
    %58 = qkernel.launch @kernels::@qk21_matmul(%56, %arg4, %57) {result_buffers = array<i64: 15>} : (tensor<?x32xf32>, tensor<?xi32>, tensor<64x32xbf16>) -> tensor<?x64xf32>
    return %58, %36, %10#1 : tensor<?x64xf32>, !qtf.kv_cache<layers = 1, kv_heads = 1, head_dim = 32, page_size = 16, f32>, !qtf.linear_state<layers = 1, conv_channels = 320, conv_window = 3, heads = 4, key_dim = 64, value_dim = 16, f32>
  }
  module @kernels {
    func.func @qk0_embedding(%arg0: tensor<64x32xbf16>, %arg1: tensor<?xi32>) -> tensor<?x32xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<embedding>} {
      %0 = qtf.embedding %arg0[%arg1] : tensor<64x32xbf16>, tensor<?xi32> -> tensor<?x32xf32>
      return %0 : tensor<?x32xf32>
    }
    func.func @qk1_rows(%arg0: tensor<?x32xf32>, %arg1: tensor<32xbf16>) -> tensor<?x32xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<rows>} {
      %0 = qtf.rms_norm %arg0, %arg1 {epsilon = 9.9999999999999995E-7 : f64, zero_centered} : tensor<?x32xf32>, tensor<32xbf16> -> tensor<?x32xf32>
      return %0 : tensor<?x32xf32>
    }
    func.func @qk2_matmul(%arg0: tensor<?x32xf32>, %arg1: tensor<392x32xbf16>) -> tensor<?x392xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.linear %arg0, %arg1 : tensor<?x32xf32>, tensor<392x32xbf16> -> tensor<?x392xf32>
      return %0 : tensor<?x392xf32>
    }
    func.func @qk3_conv(%arg0: tensor<?x392xf32>, %arg1: !qtf.linear_state<layers = 1, conv_channels = 320, conv_window = 3, heads = 4, key_dim = 64, value_dim = 16, f32>, %arg2: tensor<320x4xbf16>, %arg3: tensor<?xi32>, %arg4: tensor<?xi32>) -> (tensor<?x320xf32>, !qtf.linear_state<layers = 1, conv_channels = 320, conv_window = 3, heads = 4, key_dim = 64, value_dim = 16, f32>) attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<conv>} {
      %0:4 = qtf.split %arg0 [320, 64, 4, 4] : tensor<?x392xf32> -> tensor<?x320xf32>, tensor<?x64xf32>, tensor<?x4xf32>, tensor<?x4xf32>
      %result, %new_state = qtf.causal_conv1d %arg1[0], %0#0, %arg2, %arg3, %arg4 : <layers = 1, conv_channels = 320, conv_window = 3, heads = 4, key_dim = 64, value_dim = 16, f32>, tensor<?x320xf32>, tensor<320x4xbf16>, tensor<?xi32>, tensor<?xi32> -> tensor<?x320xf32>
      return %result, %new_state : tensor<?x320xf32>, !qtf.linear_state<layers = 1, conv_channels = 320, conv_window = 3, heads = 4, key_dim = 64, value_dim = 16, f32>
    }
    func.func @qk4_delta_rule(%arg0: tensor<?x320xf32>, %arg1: tensor<?x392xf32>, %arg2: !qtf.linear_state<layers = 1, conv_channels = 320, conv_window = 3, heads = 4, key_dim = 64, value_dim = 16, f32>, %arg3: tensor<4xf32>, %arg4: tensor<4xf32>, %arg5: tensor<?xi32>, %arg6: tensor<?xi32>) -> (tensor<?x4x16xf32>, !qtf.linear_state<layers = 1, conv_channels = 320, conv_window = 3, heads = 4, key_dim = 64, value_dim = 16, f32>) attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<delta_rule>} {
      %0:3 = qtf.split %arg0 [128, 128, 64] : tensor<?x320xf32> -> tensor<?x128xf32>, tensor<?x128xf32>, tensor<?x64xf32>
      %1 = qtf.reshape %0#0 : tensor<?x128xf32> -> tensor<?x2x64xf32>
      %2 = qtf.reshape %0#1 : tensor<?x128xf32> -> tensor<?x2x64xf32>
      %3 = qtf.reshape %0#2 : tensor<?x64xf32> -> tensor<?x4x16xf32>
      %4:4 = qtf.split %arg1 [320, 64, 4, 4] : tensor<?x392xf32> -> tensor<?x320xf32>, tensor<?x64xf32>, tensor<?x4xf32>, tensor<?x4xf32>
      %result, %new_state = qtf.gated_delta_rule %arg2[0], %1, %2, %3, %4#3, %4#2, %arg3, %arg4, %arg5, %arg6 {scale = 1.250000e-01 : f64} : <layers = 1, conv_channels = 320, conv_window = 3, heads = 4, key_dim = 64, value_dim = 16, f32>, tensor<?x2x64xf32>, tensor<?x2x64xf32>, tensor<?x4x16xf32>, tensor<?x4xf32>, tensor<?x4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<?xi32>, tensor<?xi32> -> tensor<?x4x16xf32>
      return %result, %new_state : tensor<?x4x16xf32>, !qtf.linear_state<layers = 1, conv_channels = 320, conv_window = 3, heads = 4, key_dim = 64, value_dim = 16, f32>
    }
    func.func @qk5_gated_norm(%arg0: tensor<?x392xf32>, %arg1: tensor<?x4x16xf32>, %arg2: tensor<16xf32>) -> tensor<?x4x16xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<gated_norm>} {
      %0:4 = qtf.split %arg0 [320, 64, 4, 4] : tensor<?x392xf32> -> tensor<?x320xf32>, tensor<?x64xf32>, tensor<?x4xf32>, tensor<?x4xf32>
      %1 = qtf.reshape %0#1 : tensor<?x64xf32> -> tensor<?x4x16xf32>
      %2 = qtf.gated_rms_norm %arg1, %1, %arg2 {epsilon = 9.9999999999999995E-7 : f64} : tensor<?x4x16xf32>, tensor<?x4x16xf32>, tensor<16xf32> -> tensor<?x4x16xf32>
      return %2 : tensor<?x4x16xf32>
    }
    func.func @qk6_matmul(%arg0: tensor<?x4x16xf32>, %arg1: tensor<32x64xbf16>, %arg2: tensor<?x32xf32>) -> tensor<?x32xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.reshape %arg0 : tensor<?x4x16xf32> -> tensor<?x64xf32>
      %1 = qtf.linear %0, %arg1 : tensor<?x64xf32>, tensor<32x64xbf16> -> tensor<?x32xf32>
      %2 = qtf.add %arg2, %1 : tensor<?x32xf32>
      return %2 : tensor<?x32xf32>
    }
    func.func @qk7_matmul(%arg0: tensor<?x32xf32>, %arg1: tensor<57x32xbf16>) -> tensor<?x57xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.linear %arg0, %arg1 : tensor<?x32xf32>, tensor<57x32xbf16> -> tensor<?x57xf32>
      return %0 : tensor<?x57xf32>
    }
    func.func @qk8_router(%arg0: tensor<?x57xf32>) -> (tensor<?x2xi32>, tensor<?x2xf32>) attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<router>} {
      %0:4 = qtf.split %arg0 [8, 24, 24, 1] : tensor<?x57xf32> -> tensor<?x8xf32>, tensor<?x24xf32>, tensor<?x24xf32>, tensor<?x1xf32>
      %ids, %weights = qtf.moe_router %0#0 {normalize, top_k = 2 : i64} : tensor<?x8xf32> -> tensor<?x2xi32>, tensor<?x2xf32>
      return %ids, %weights : tensor<?x2xi32>, tensor<?x2xf32>
    }
    func.func @qk9_experts(%arg0: tensor<?x32xf32>, %arg1: tensor<?x2xi32>, %arg2: tensor<?x2xf32>, %arg3: tensor<256x32xbf16>, %arg4: tensor<256x16xbf16>) -> tensor<?x2x32xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<experts>} {
      %0 = qtf.moe_expert_ffn %arg0, %arg1, %arg2, %arg3, %arg4 {intermediate_size = 16 : i64, num_experts = 8 : i64} : tensor<?x32xf32>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<256x32xbf16>, tensor<256x16xbf16> -> tensor<?x2x32xf32>
      return %0 : tensor<?x2x32xf32>
    }
    func.func @qk10_elementwise(%arg0: tensor<?x57xf32>) -> tensor<?x24xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<elementwise>} {
      %0:4 = qtf.split %arg0 [8, 24, 24, 1] : tensor<?x57xf32> -> tensor<?x8xf32>, tensor<?x24xf32>, tensor<?x24xf32>, tensor<?x1xf32>
      %1 = qtf.silu_mul %0#1, %0#2 : tensor<?x24xf32>
      return %1 : tensor<?x24xf32>
    }
    func.func @qk11_matmul(%arg0: tensor<?x24xf32>, %arg1: tensor<32x24xbf16>) -> tensor<?x32xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.linear %arg0, %arg1 : tensor<?x24xf32>, tensor<32x24xbf16> -> tensor<?x32xf32>
      return %0 : tensor<?x32xf32>
    }
    func.func @qk12_elementwise(%arg0: tensor<?x57xf32>, %arg1: tensor<?x32xf32>) -> tensor<?x32xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<elementwise>} {
      %0:4 = qtf.split %arg0 [8, 24, 24, 1] : tensor<?x57xf32> -> tensor<?x8xf32>, tensor<?x24xf32>, tensor<?x24xf32>, tensor<?x1xf32>
      %1 = qtf.sigmoid_mul %arg1, %0#3 : tensor<?x32xf32>, tensor<?x1xf32>
      return %1 : tensor<?x32xf32>
    }
    func.func @qk13_elementwise(%arg0: tensor<?x2x32xf32>, %arg1: tensor<?x32xf32>) -> tensor<?x32xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<elementwise>} {
      %0 = qtf.moe_combine %arg0 : tensor<?x2x32xf32> -> tensor<?x32xf32>
      %1 = qtf.add %0, %arg1 : tensor<?x32xf32>
      return %1 : tensor<?x32xf32>
    }
    func.func @qk14_elementwise(%arg0: tensor<?x32xf32>, %arg1: tensor<?x32xf32>) -> tensor<?x32xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<elementwise>} {
      %0 = qtf.add %arg0, %arg1 : tensor<?x32xf32>
      return %0 : tensor<?x32xf32>
    }
    func.func @qk15_matmul(%arg0: tensor<?x32xf32>, %arg1: tensor<192x32xbf16>) -> tensor<?x192xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.linear %arg0, %arg1 : tensor<?x32xf32>, tensor<192x32xbf16> -> tensor<?x192xf32>
      return %0 : tensor<?x192xf32>
    }
    func.func @qk16_rows(%arg0: tensor<?x192xf32>, %arg1: tensor<32xbf16>, %arg2: tensor<?x3xi32>) -> tensor<?x2x32xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<rows>} {
      %0:4 = qtf.split %arg0 [64, 64, 32, 32] : tensor<?x192xf32> -> tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>
      %1 = qtf.reshape %0#0 : tensor<?x64xf32> -> tensor<?x2x32xf32>
      %2 = qtf.rms_norm %1, %arg1 {epsilon = 9.9999999999999995E-7 : f64, zero_centered} : tensor<?x2x32xf32>, tensor<32xbf16> -> tensor<?x2x32xf32>
      %3 = qtf.rope %2, %arg2 {mrope_section = array<i64: 2, 1, 1>, rotary_dim = 8 : i64, theta = 1.000000e+07 : f64} : tensor<?x2x32xf32>, tensor<?x3xi32> -> tensor<?x2x32xf32>
      return %3 : tensor<?x2x32xf32>
    }
    func.func @qk17_kv_write(%arg0: tensor<?x192xf32>, %arg1: tensor<32xbf16>, %arg2: tensor<?x3xi32>, %arg3: !qtf.kv_cache<layers = 1, kv_heads = 1, head_dim = 32, page_size = 16, f32>, %arg4: tensor<?xi32>, %arg5: tensor<?xi32>, %arg6: tensor<?x?xi32>) -> !qtf.kv_cache<layers = 1, kv_heads = 1, head_dim = 32, page_size = 16, f32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<kv_write>} {
      %0:4 = qtf.split %arg0 [64, 64, 32, 32] : tensor<?x192xf32> -> tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>
      %1 = qtf.reshape %0#2 : tensor<?x32xf32> -> tensor<?x1x32xf32>
      %2 = qtf.rms_norm %1, %arg1 {epsilon = 9.9999999999999995E-7 : f64, zero_centered} : tensor<?x1x32xf32>, tensor<32xbf16> -> tensor<?x1x32xf32>
      %3 = qtf.rope %2, %arg2 {mrope_section = array<i64: 2, 1, 1>, rotary_dim = 8 : i64, theta = 1.000000e+07 : f64} : tensor<?x1x32xf32>, tensor<?x3xi32> -> tensor<?x1x32xf32>
      %4 = qtf.reshape %0#3 : tensor<?x32xf32> -> tensor<?x1x32xf32>
      %5 = qtf.kv_cache_write %arg3[0], %3, %4, %arg4, %arg5, %arg6 : <layers = 1, kv_heads = 1, head_dim = 32, page_size = 16, f32>, tensor<?x1x32xf32>, tensor<?x1x32xf32>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>
      return %5 : !qtf.kv_cache<layers = 1, kv_heads = 1, head_dim = 32, page_size = 16, f32>
    }
    func.func @qk18_attention(%arg0: tensor<?x2x32xf32>, %arg1: !qtf.kv_cache<layers = 1, kv_heads = 1, head_dim = 32, page_size = 16, f32>, %arg2: tensor<?xi32>, %arg3: tensor<?xi32>, %arg4: tensor<?x?xi32>) -> tensor<?x2x32xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<attention>} {
      %0 = qtf.paged_attention %arg0, %arg1[0], %arg2, %arg3, %arg4 {scale = 0.17677669529663687 : f64} : tensor<?x2x32xf32>, <layers = 1, kv_heads = 1, head_dim = 32, page_size = 16, f32>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x2x32xf32>
      return %0 : tensor<?x2x32xf32>
    }
    func.func @qk19_elementwise(%arg0: tensor<?x2x32xf32>, %arg1: tensor<?x192xf32>) -> tensor<?x64xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<elementwise>} {
      %0 = qtf.reshape %arg0 : tensor<?x2x32xf32> -> tensor<?x64xf32>
      %1:4 = qtf.split %arg1 [64, 64, 32, 32] : tensor<?x192xf32> -> tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>
      %2 = qtf.sigmoid_mul %0, %1#1 : tensor<?x64xf32>, tensor<?x64xf32>
      return %2 : tensor<?x64xf32>
    }
    func.func @qk20_matmul(%arg0: tensor<?x64xf32>, %arg1: tensor<32x64xbf16>, %arg2: tensor<?x32xf32>) -> tensor<?x32xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.linear %arg0, %arg1 : tensor<?x64xf32>, tensor<32x64xbf16> -> tensor<?x32xf32>
      %1 = qtf.add %arg2, %0 : tensor<?x32xf32>
      return %1 : tensor<?x32xf32>
    }
    func.func @qk21_matmul(%arg0: tensor<?x32xf32>, %arg1: tensor<?xi32>, %arg2: tensor<64x32xbf16>) -> tensor<?x64xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.gather_rows %arg0[%arg1] : tensor<?x32xf32>, tensor<?xi32> -> tensor<?x32xf32>
      %1 = qtf.linear %0, %arg2 : tensor<?x32xf32>, tensor<64x32xbf16> -> tensor<?x64xf32>
      return %1 : tensor<?x64xf32>
    }
  }
}
