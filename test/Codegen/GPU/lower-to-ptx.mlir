// REQUIRES: ptxas
// RUN: qwen-opt %s --qwen-select-schedule=target=cuda --qwen-gpu-lower-kernels --qwen-gpu-lower-to-nvvm > %t.mlir
// RUN: FileCheck %s --check-prefix=BINARY < %t.mlir
// RUN: %python %S/extract-ptx.py < %t.mlir > %t.ptx
// RUN: FileCheck %s --check-prefix=PTX < %t.ptx
// RUN: ptxas -arch=sm_90 -O3 -v %t.ptx -o %t.cubin 2>&1 | FileCheck %s --check-prefix=PTXAS
// RUN: ptxas -arch=sm_90 -O3 -v %t.ptx -o %t.cubin 2>&1 | FileCheck %s --check-prefix=NOSPILL

// The real kernels of models/checkpoints/qwen3-demo (qwen-compile
// --emit=mlir --stop-after-stage=planned), trimmed to layer 0 plus the final
// norm and the lm_head: every GPU kernel family goes through NVVM to PTX in
// process (libdevice linked: no extern math functions left), and ptxas
// assembles every entry for sm_90 without spills, the sampler's qk_argmax
// over the 151936 logits of a row and the attention's decode variant
// qk5_attention_decode (grid [T, kv_heads], 128 threads) included.

// BINARY:      qkernel.launch @kernels::@qk0_embedding
// BINARY:      module @kernels
// BINARY:      gpu.binary @qwen_kernels [#gpu.object<#nvvm.target<O = 3, chip = "sm_90", features = "+ptx80">, properties = {{.*}}, assembly = "

// PTX:         .version 8.0
// PTX-NEXT:    .target sm_90
// PTX-NOT:     .extern
// PTX:         .visible .entry qk0_embedding(
// PTX-COUNT-3:   .param .u64 .ptr .align 1 qk0_embedding_param_{{[0-9]}},
// PTX-COUNT-3:   .param .u64 qk0_embedding_param_{{[0-9]}},
// PTX-NEXT:      .param .u64 qk0_embedding_param_6
// PTX-NEXT:    )
// PTX:           ld.global.v4.b16
// PTX:           st.global.v4.b32
// PTX:         .visible .entry qk1_rows(
// PTX:           .shared .align 16 .b8 __wg_qk1_rows_0[256];
// PTX:           shfl.sync.bfly.b32
// PTX:           sqrt.rn.f32
// PTX:           rcp.rn.f32
// PTX:         .visible .entry qk2_matmul_pack(
// PTX:           cvt.rn.bf16x2.f32
// PTX:         .visible .entry qk3_rows(
// PTX:         .visible .entry qk4_kv_write(
// PTX:         .visible .entry qk5_attention(
// PTX:           bar.sync
// PTX:           shfl.sync.bfly.b32
// PTX:         .visible .entry qk5_attention_decode(
// PTX:         .maxntid 128, 1, 1
// PTX:           shfl.sync.bfly.b32
// PTX:           bar.sync
// PTX:         .visible .entry qk6_matmul_pack(
// PTX:         .visible .entry qk7_rows(
// PTX:         .visible .entry qk8_matmul_pack(
// PTX:         .visible .entry qk9_elementwise(
// PTX:         .visible .entry qk10_matmul_pack(
// PTX:         .visible .entry qk21_rows(
// PTX:         .visible .entry qk22_matmul_pack(
// PTX:         .visible .entry qk_argmax(
// PTX:         .maxntid 1024, 1, 1
// PTX:           ld.global.v4.b32
// PTX:           shfl.sync.bfly.b32

// PTXAS-DAG:   Compiling entry function 'qk0_embedding' for 'sm_90'
// PTXAS-DAG:   Compiling entry function 'qk1_rows' for 'sm_90'
// PTXAS-DAG:   Compiling entry function 'qk2_matmul_pack' for 'sm_90'
// PTXAS-DAG:   Compiling entry function 'qk3_rows' for 'sm_90'
// PTXAS-DAG:   Compiling entry function 'qk4_kv_write' for 'sm_90'
// PTXAS-DAG:   Compiling entry function 'qk5_attention' for 'sm_90'
// PTXAS-DAG:   Compiling entry function 'qk5_attention_decode' for 'sm_90'
// PTXAS-DAG:   Compiling entry function 'qk6_matmul_pack' for 'sm_90'
// PTXAS-DAG:   Compiling entry function 'qk7_rows' for 'sm_90'
// PTXAS-DAG:   Compiling entry function 'qk8_matmul_pack' for 'sm_90'
// PTXAS-DAG:   Compiling entry function 'qk9_elementwise' for 'sm_90'
// PTXAS-DAG:   Compiling entry function 'qk10_matmul_pack' for 'sm_90'
// PTXAS-DAG:   Compiling entry function 'qk21_rows' for 'sm_90'
// PTXAS-DAG:   Compiling entry function 'qk22_matmul_pack' for 'sm_90'
// PTXAS-DAG:   Compiling entry function 'qk_argmax' for 'sm_90'
// NOSPILL-NOT: error
// NOSPILL-NOT: {{[1-9][0-9]*}} bytes spill
// NOSPILL-NOT: {{[1-9][0-9]*}} bytes stack frame

module {
  func.func @step(%arg0: tensor<?xi32> {qtf.input = "tokens"}, %arg1: tensor<?xi32> {qtf.input = "positions"}, %arg2: tensor<?xi32> {qtf.input = "token_seq"}, %arg3: tensor<?x?xi32> {qtf.input = "block_table"}, %arg4: tensor<?xi32> {qtf.input = "logit_rows"}, %arg5: !qtf.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, page_size = 16, f32>) -> (tensor<?x151936xf32>, !qtf.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, page_size = 16, f32>) attributes {qkernel.buffers = [{symbol = "T", type = tensor<?x64xf32>}, {symbol = "T", type = tensor<?x64xf32>}, {symbol = "T", type = tensor<?x256xf32>}, {symbol = "T", type = tensor<?x4x32xf32>}, {symbol = "T", type = tensor<?x4x32xf32>}, {symbol = "T", type = tensor<?x384xf32>}, {symbol = "T", type = tensor<?x192xf32>}, {symbol = "R", type = tensor<?x151936xf32>}]} {
    %0 = qtf.weight ["model.embed_tokens.weight"] : tensor<151936x64xbf16>
    %1 = qkernel.launch @kernels::@qk0_embedding(%0, %arg0) {result_buffers = array<i64: 0>} : (tensor<151936x64xbf16>, tensor<?xi32>) -> tensor<?x64xf32>
    %2 = qtf.weight ["model.layers.0.input_layernorm.weight"] : tensor<64xbf16>
    %3 = qkernel.launch @kernels::@qk1_rows(%1, %2) {result_buffers = array<i64: 1>} : (tensor<?x64xf32>, tensor<64xbf16>) -> tensor<?x64xf32>
    %4 = qtf.weight ["model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.k_proj.weight", "model.layers.0.self_attn.v_proj.weight"] : tensor<256x64xbf16>
    %5 = qkernel.launch @kernels::@qk2_matmul(%3, %4) {result_buffers = array<i64: 2>} : (tensor<?x64xf32>, tensor<256x64xbf16>) -> tensor<?x256xf32>
    %6 = qtf.weight ["model.layers.0.self_attn.q_norm.weight"] : tensor<32xbf16>
    %7 = qkernel.launch @kernels::@qk3_rows(%5, %6, %arg1) {result_buffers = array<i64: 3>} : (tensor<?x256xf32>, tensor<32xbf16>, tensor<?xi32>) -> tensor<?x4x32xf32>
    %8 = qtf.weight ["model.layers.0.self_attn.k_norm.weight"] : tensor<32xbf16>
    %9 = qkernel.launch @kernels::@qk4_kv_write(%5, %8, %arg1, %arg5, %arg2, %arg3) {result_buffers = array<i64: -1>} : (tensor<?x256xf32>, tensor<32xbf16>, tensor<?xi32>, !qtf.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, page_size = 16, f32>, tensor<?xi32>, tensor<?x?xi32>) -> !qtf.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, page_size = 16, f32>
    %10 = qkernel.launch @kernels::@qk5_attention(%7, %9, %arg1, %arg2, %arg3) {result_buffers = array<i64: 4>} : (tensor<?x4x32xf32>, !qtf.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, page_size = 16, f32>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>) -> tensor<?x4x32xf32>
    %11 = qtf.weight ["model.layers.0.self_attn.o_proj.weight"] : tensor<64x128xbf16>
    %12 = qkernel.launch @kernels::@qk6_matmul(%10, %11, %1) {result_buffers = array<i64: 1>} : (tensor<?x4x32xf32>, tensor<64x128xbf16>, tensor<?x64xf32>) -> tensor<?x64xf32>
    %13 = qtf.weight ["model.layers.0.post_attention_layernorm.weight"] : tensor<64xbf16>
    %14 = qkernel.launch @kernels::@qk7_rows(%12, %13) {result_buffers = array<i64: 0>} : (tensor<?x64xf32>, tensor<64xbf16>) -> tensor<?x64xf32>
    %15 = qtf.weight ["model.layers.0.mlp.gate_proj.weight", "model.layers.0.mlp.up_proj.weight"] : tensor<384x64xbf16>
    %16 = qkernel.launch @kernels::@qk8_matmul(%14, %15) {result_buffers = array<i64: 5>} : (tensor<?x64xf32>, tensor<384x64xbf16>) -> tensor<?x384xf32>
    %17 = qkernel.launch @kernels::@qk9_elementwise(%16) {result_buffers = array<i64: 6>} : (tensor<?x384xf32>) -> tensor<?x192xf32>
    %18 = qtf.weight ["model.layers.0.mlp.down_proj.weight"] : tensor<64x192xbf16>
    %19 = qkernel.launch @kernels::@qk10_matmul(%17, %18, %12) {result_buffers = array<i64: 0>} : (tensor<?x192xf32>, tensor<64x192xbf16>, tensor<?x64xf32>) -> tensor<?x64xf32>
    %38 = qtf.weight ["model.norm.weight"] : tensor<64xbf16>
    %39 = qkernel.launch @kernels::@qk21_rows(%19, %38) {result_buffers = array<i64: 1>} : (tensor<?x64xf32>, tensor<64xbf16>) -> tensor<?x64xf32>
    %40 = qkernel.launch @kernels::@qk22_matmul(%39, %arg4, %0) {result_buffers = array<i64: 7>} : (tensor<?x64xf32>, tensor<?xi32>, tensor<151936x64xbf16>) -> tensor<?x151936xf32>
    return %40, %9 : tensor<?x151936xf32>, !qtf.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, page_size = 16, f32>
  }
  module @kernels {
    func.func @qk0_embedding(%arg0: tensor<151936x64xbf16>, %arg1: tensor<?xi32>) -> tensor<?x64xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<embedding>} {
      %0 = qtf.embedding %arg0[%arg1] : tensor<151936x64xbf16>, tensor<?xi32> -> tensor<?x64xf32>
      return %0 : tensor<?x64xf32>
    }
    func.func @qk1_rows(%arg0: tensor<?x64xf32>, %arg1: tensor<64xbf16>) -> tensor<?x64xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<rows>} {
      %0 = qtf.rms_norm %arg0, %arg1 {epsilon = 9.9999999999999995E-7 : f64} : tensor<?x64xf32>, tensor<64xbf16> -> tensor<?x64xf32>
      return %0 : tensor<?x64xf32>
    }
    func.func @qk2_matmul(%arg0: tensor<?x64xf32>, %arg1: tensor<256x64xbf16>) -> tensor<?x256xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.linear %arg0, %arg1 : tensor<?x64xf32>, tensor<256x64xbf16> -> tensor<?x256xf32>
      return %0 : tensor<?x256xf32>
    }
    func.func @qk3_rows(%arg0: tensor<?x256xf32>, %arg1: tensor<32xbf16>, %arg2: tensor<?xi32>) -> tensor<?x4x32xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<rows>} {
      %0:3 = qtf.split %arg0 [128, 64, 64] : tensor<?x256xf32> -> tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>
      %1 = qtf.reshape %0#0 : tensor<?x128xf32> -> tensor<?x4x32xf32>
      %2 = qtf.rms_norm %1, %arg1 {epsilon = 9.9999999999999995E-7 : f64} : tensor<?x4x32xf32>, tensor<32xbf16> -> tensor<?x4x32xf32>
      %3 = qtf.rope %2, %arg2 {rotary_dim = 32 : i64, theta = 1.000000e+06 : f64} : tensor<?x4x32xf32>, tensor<?xi32> -> tensor<?x4x32xf32>
      return %3 : tensor<?x4x32xf32>
    }
    func.func @qk4_kv_write(%arg0: tensor<?x256xf32>, %arg1: tensor<32xbf16>, %arg2: tensor<?xi32>, %arg3: !qtf.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, page_size = 16, f32>, %arg4: tensor<?xi32>, %arg5: tensor<?x?xi32>) -> !qtf.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, page_size = 16, f32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<kv_write>} {
      %0:3 = qtf.split %arg0 [128, 64, 64] : tensor<?x256xf32> -> tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>
      %1 = qtf.reshape %0#1 : tensor<?x64xf32> -> tensor<?x2x32xf32>
      %2 = qtf.rms_norm %1, %arg1 {epsilon = 9.9999999999999995E-7 : f64} : tensor<?x2x32xf32>, tensor<32xbf16> -> tensor<?x2x32xf32>
      %3 = qtf.rope %2, %arg2 {rotary_dim = 32 : i64, theta = 1.000000e+06 : f64} : tensor<?x2x32xf32>, tensor<?xi32> -> tensor<?x2x32xf32>
      %4 = qtf.reshape %0#2 : tensor<?x64xf32> -> tensor<?x2x32xf32>
      %5 = qtf.kv_cache_write %arg3[0], %3, %4, %arg2, %arg4, %arg5 : <layers = 2, kv_heads = 2, head_dim = 32, page_size = 16, f32>, tensor<?x2x32xf32>, tensor<?x2x32xf32>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>
      return %5 : !qtf.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, page_size = 16, f32>
    }
    func.func @qk5_attention(%arg0: tensor<?x4x32xf32>, %arg1: !qtf.kv_cache<layers = 2, kv_heads = 2, head_dim = 32, page_size = 16, f32>, %arg2: tensor<?xi32>, %arg3: tensor<?xi32>, %arg4: tensor<?x?xi32>) -> tensor<?x4x32xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<attention>} {
      %0 = qtf.paged_attention %arg0, %arg1[0], %arg2, %arg3, %arg4 {scale = 0.17677669529663687 : f64} : tensor<?x4x32xf32>, <layers = 2, kv_heads = 2, head_dim = 32, page_size = 16, f32>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x4x32xf32>
      return %0 : tensor<?x4x32xf32>
    }
    func.func @qk6_matmul(%arg0: tensor<?x4x32xf32>, %arg1: tensor<64x128xbf16>, %arg2: tensor<?x64xf32>) -> tensor<?x64xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.reshape %arg0 : tensor<?x4x32xf32> -> tensor<?x128xf32>
      %1 = qtf.linear %0, %arg1 : tensor<?x128xf32>, tensor<64x128xbf16> -> tensor<?x64xf32>
      %2 = qtf.add %arg2, %1 : tensor<?x64xf32>
      return %2 : tensor<?x64xf32>
    }
    func.func @qk7_rows(%arg0: tensor<?x64xf32>, %arg1: tensor<64xbf16>) -> tensor<?x64xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<rows>} {
      %0 = qtf.rms_norm %arg0, %arg1 {epsilon = 9.9999999999999995E-7 : f64} : tensor<?x64xf32>, tensor<64xbf16> -> tensor<?x64xf32>
      return %0 : tensor<?x64xf32>
    }
    func.func @qk8_matmul(%arg0: tensor<?x64xf32>, %arg1: tensor<384x64xbf16>) -> tensor<?x384xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.linear %arg0, %arg1 : tensor<?x64xf32>, tensor<384x64xbf16> -> tensor<?x384xf32>
      return %0 : tensor<?x384xf32>
    }
    func.func @qk9_elementwise(%arg0: tensor<?x384xf32>) -> tensor<?x192xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<elementwise>} {
      %0:2 = qtf.split %arg0 [192, 192] : tensor<?x384xf32> -> tensor<?x192xf32>, tensor<?x192xf32>
      %1 = qtf.silu_mul %0#0, %0#1 : tensor<?x192xf32>
      return %1 : tensor<?x192xf32>
    }
    func.func @qk10_matmul(%arg0: tensor<?x192xf32>, %arg1: tensor<64x192xbf16>, %arg2: tensor<?x64xf32>) -> tensor<?x64xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.linear %arg0, %arg1 : tensor<?x192xf32>, tensor<64x192xbf16> -> tensor<?x64xf32>
      %1 = qtf.add %arg2, %0 : tensor<?x64xf32>
      return %1 : tensor<?x64xf32>
    }
    func.func @qk21_rows(%arg0: tensor<?x64xf32>, %arg1: tensor<64xbf16>) -> tensor<?x64xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<rows>} {
      %0 = qtf.rms_norm %arg0, %arg1 {epsilon = 9.9999999999999995E-7 : f64} : tensor<?x64xf32>, tensor<64xbf16> -> tensor<?x64xf32>
      return %0 : tensor<?x64xf32>
    }
    func.func @qk22_matmul(%arg0: tensor<?x64xf32>, %arg1: tensor<?xi32>, %arg2: tensor<151936x64xbf16>) -> tensor<?x151936xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.gather_rows %arg0[%arg1] : tensor<?x64xf32>, tensor<?xi32> -> tensor<?x64xf32>
      %1 = qtf.linear %0, %arg2 : tensor<?x64xf32>, tensor<151936x64xbf16> -> tensor<?x151936xf32>
      return %1 : tensor<?x151936xf32>
    }
  }
}
