// REQUIRES: ptxas
// RUN: qwen-opt %s --qwen-select-schedule=target=cuda --qwen-gpu-lower-kernels | FileCheck %s --check-prefix=LOWER
// RUN: qwen-opt %s --qwen-select-schedule=target=cuda --qwen-gpu-lower-kernels --qwen-gpu-lower-to-nvvm > %t.mlir
// RUN: %python %S/extract-ptx.py < %t.mlir > %t.ptx
// RUN: ptxas -arch=sm_90a -O3 -v %t.ptx -o %t.cubin 2>&1 | FileCheck %s --check-prefix=PTXAS

// Matmuls over block-wise FP8 weights (f8E4M3FN codes, one f32 scale per
// weight_block) on CUDA; simt-numerics-fp8.test checks their numerics.
//
// qk0 (128 x 128 blocks, K = 512): cuBLASLt's block-scaled FP8 GEMM. Its
// pack quantizes the activations as HF's act_quant (a warp of 4-wide
// vectors per 128 columns: amax by xor shuffles, scale = amax / 448, codes
// rounded to nearest even), writing the codes and the scales [K/128][T]; the
// descriptor names both scale tensors. Its decode variant (decode steps of
// at most 8 rows) is the generated kernel on the f32 activations, with the
// source's signature: decode_args picks x (4), the weight (3), its scales
// (2) and the result (5, after the arguments) from the GEMM's arguments.
// LOWER-LABEL: func.func @step
// LOWER-SAME:    {gemm_pack, symbol = "T", type = tensor<?x512xf8E4M3FN>}, {gemm_pack, symbol = "T", type = tensor<?x4xf32>}]
// LOWER:       %[[P:.*]]:2 = qkernel.launch @kernels::@qk0_matmul_pack(%arg0) {launch = #qkernel.launch<grid = [T], block = 128, shared = 0>, result_buffers = array<i64: 2, 3>} : (tensor<?x512xf32>) -> (tensor<?x512xf8E4M3FN>, tensor<?x4xf32>)
// LOWER:       qkernel.launch @kernels::@qk0_matmul(%[[P]]#0, %[[P]]#1, %[[S0:.*]], %[[W0:.*]], %arg0) {cublaslt = {a_arg = 0 : i64, a_dtype = "f8e4m3", a_offset = 0 : i64, a_scale_arg = 1 : i64, a_scale_offset = 0 : i64, b_arg = 3 : i64, b_dtype = "f8e4m3", b_offset = 0 : i64, b_scale_arg = 2 : i64, b_scale_offset = 0 : i64, bias = false, compute = "f32", d_dtype = "f32", decode = #qkernel.variant<"qk0_matmul_decode", grid = [64], block = 128, shared = 0>, decode_args = array<i64: 4, 3, 2, 5>, decode_max_rows = 8 : i64, gather_rows = false, k = 512 : i64, lda = 512 : i64, ldb = 512 : i64, ldb_scale = 4 : i64, ldd = 256 : i64, m = "T", n = 256 : i64, prologue = @kernels::@qk0_matmul_pack, residual = false}
// LOWER-SAME:    (tensor<?x512xf8E4M3FN>, tensor<?x4xf32>, tensor<2x4xf32>, tensor<256x512xf8E4M3FN>, tensor<?x512xf32>) -> tensor<?x256xf32>
// qk1 (32 x 48 blocks, K = 96, with the residual): the generated kernel,
// a warp per output column (80 columns: 20 blocks of 4 warps), 4 rows per
// pass, 16-byte weight loads.
// LOWER:       qkernel.launch @kernels::@qk1_matmul(%arg1, %{{.*}}, %{{.*}}, %arg2) {launch = #qkernel.launch<grid = [20], block = 128, shared = 0>
// LOWER:       gpu.module @qwen_kernels
// LOWER:         gpu.func @qk0_matmul_pack(
// LOWER:           vector.reduction <maxnumf>
// LOWER:           {{gpu.shuffle  xor|gpu.subgroup_reduce}}
// LOWER:           arith.divf %{{.*}} : f32
// LOWER:           arith.divf %{{.*}} : vector<4xf32>
// LOWER:           math.roundeven %{{.*}} : vector<4xf32>
// LOWER:           vector.store %{{.*}} {alignment = 4 : i64} : memref<?xi8>, vector<4xi8>
// LOWER:         gpu.func @qk0_matmul_decode(
// LOWER:           vector.load %{{.*}} {alignment = 16 : i64} : memref<?xi8>, vector<16xi8>
// LOWER:           vector.reduction <add>
// LOWER:           {{gpu.shuffle  xor|gpu.subgroup_reduce}}
// LOWER:         gpu.func @qk1_matmul(
// LOWER:           vector.load %{{.*}} {alignment = 16 : i64} : memref<?xi8>, vector<16xi8>
// LOWER:           vector.reduction <add>
// LOWER:           {{gpu.shuffle  xor|gpu.subgroup_reduce}}

// PTXAS-DAG: Compiling entry function 'qk0_matmul_pack' for 'sm_90a'
// PTXAS-DAG: Compiling entry function 'qk0_matmul_decode' for 'sm_90a'
// PTXAS-DAG: Compiling entry function 'qk1_matmul' for 'sm_90a'
// PTXAS-NOT: {{[1-9][0-9]*}} bytes spill

func.func @step(%x: tensor<?x512xf32> {qtf.input = "tokens"}, %h: tensor<?x96xf32> {qtf.input = "positions"}, %r: tensor<?x80xf32> {qtf.input = "token_seq"}) -> (tensor<?x256xf32>, tensor<?x80xf32>) attributes {qkernel.buffers = [{symbol = "T", type = tensor<?x256xf32>}, {symbol = "T", type = tensor<?x80xf32>}]} {
  %w0 = qtf.weight ["w0"] : tensor<256x512xf8E4M3FN>
  %s0 = qtf.weight ["s0"] : tensor<2x4xf32>
  %0 = qkernel.launch @kernels::@qk0_matmul(%x, %w0, %s0) {result_buffers = array<i64: 0>} : (tensor<?x512xf32>, tensor<256x512xf8E4M3FN>, tensor<2x4xf32>) -> tensor<?x256xf32>
  %w1 = qtf.weight ["w1"] : tensor<80x96xf8E4M3FN>
  %s1 = qtf.weight ["s1"] : tensor<3x2xf32>
  %1 = qkernel.launch @kernels::@qk1_matmul(%h, %w1, %s1, %r) {result_buffers = array<i64: 1>} : (tensor<?x96xf32>, tensor<80x96xf8E4M3FN>, tensor<3x2xf32>, tensor<?x80xf32>) -> tensor<?x80xf32>
  return %0, %1 : tensor<?x256xf32>, tensor<?x80xf32>
}
module @kernels {
  func.func @qk0_matmul(%x: tensor<?x512xf32>, %w: tensor<256x512xf8E4M3FN>, %s: tensor<2x4xf32>) -> tensor<?x256xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
    %0 = qtf.linear %x, %w scale(%s : tensor<2x4xf32>) {weight_block = array<i64: 128, 128>} : tensor<?x512xf32>, tensor<256x512xf8E4M3FN> -> tensor<?x256xf32>
    return %0 : tensor<?x256xf32>
  }
  func.func @qk1_matmul(%x: tensor<?x96xf32>, %w: tensor<80x96xf8E4M3FN>, %s: tensor<3x2xf32>, %r: tensor<?x80xf32>) -> tensor<?x80xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
    %0 = qtf.linear %x, %w scale(%s : tensor<3x2xf32>) {weight_block = array<i64: 32, 48>} : tensor<?x96xf32>, tensor<80x96xf8E4M3FN> -> tensor<?x80xf32>
    %1 = qtf.add %r, %0 : tensor<?x80xf32>
    return %1 : tensor<?x80xf32>
  }
}
