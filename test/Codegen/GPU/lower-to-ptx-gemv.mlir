// REQUIRES: ptxas
// RUN: qwen-opt %s --qwen-select-schedule="target=cuda gpu-gemv=generated" --qwen-gpu-lower-kernels | FileCheck %s --check-prefix=LOWER
// RUN: qwen-opt %s --qwen-select-schedule=target=cuda --qwen-gpu-lower-kernels | FileCheck %s --check-prefix=DEFAULT
// RUN: qwen-opt %s --qwen-select-schedule="target=cuda gpu-gemv=generated" --qwen-gpu-lower-kernels --qwen-gpu-lower-to-nvvm > %t.mlir
// RUN: %python %S/extract-ptx.py < %t.mlir > %t.ptx
// RUN: ptxas -arch=sm_90a -O3 -v %t.ptx -o %t.cubin 2>&1 | FileCheck %s --check-prefix=PTXAS

// bf16 / f16 / f32 GEMMs with --gpu-gemv=generated: each stays a cuBLASLt
// call and gets the generated GEMV (GemvKernel.cpp) as its decode variant,
// which the runtime runs on decode-only steps of at most 8 rows: a warp per
// output column (4 warps a block), 16-byte weight loads, 4 rows per pass,
// the cuBLASLt entry's epilogue. simt-numerics-gemv.test checks numerics.
//
// qk0: bf16 weights, f32 activations (cuBLASLt's pack rounds them; the GEMV
// reads them as they are): 8-wide bf16 loads, 64 blocks for 256 columns.
// LOWER-LABEL: func.func @step
// LOWER:       qkernel.launch @kernels::@qk0_matmul_pack(%arg0)
// LOWER:       qkernel.launch @kernels::@qk0_matmul(%{{.*}}, %{{.*}}, %arg0) {cublaslt = {{{.*}}decode = #qkernel.variant<"qk0_matmul_decode", grid = [64], block = 128, shared = 0>, decode_args = array<i64: 2, 1, 3>, decode_max_rows = 8 : i64,
// qk1: f16 weights and bias (f32 output: cuBLASLt's bias is widened to f32,
// so no decode variant: its buffer changes dtype), residual.
// LOWER:       qkernel.launch @kernels::@qk1_matmul(
// LOWER-NOT:   decode =
// LOWER-SAME:  residual = true
// qk2: f32 weights with an f32 bias and the residual: 4-wide loads.
// LOWER:       qkernel.launch @kernels::@qk2_matmul(%arg2, %{{.*}}, %{{.*}}, %arg3) {cublaslt = {{{.*}}decode = #qkernel.variant<"qk2_matmul_decode", grid = [10], block = 128, shared = 0>, decode_args = array<i64: 0, 1, 2, 3, 4>, decode_max_rows = 8 : i64,
// (qk4, the f16 GEMM without bias, has one too.)
// qk3: the logits rows are gathered (R rows, rows[t] of x): the GEMV reads
// the row ids too (decode_args: x, rows, weight, result), not the pack.
// LOWER:       qkernel.launch @kernels::@qk3_matmul(%{{.*}}, %{{.*}}, %arg0, %arg4) {cublaslt = {{{.*}}decode = #qkernel.variant<"qk3_matmul_decode", grid = [16], block = 128, shared = 0>, decode_args = array<i64: 2, 3, 1, 4>, decode_max_rows = 8 : i64, gather_rows = true
// LOWER:       gpu.module @qwen_kernels
// LOWER:         gpu.func @qk0_matmul_decode(
// LOWER:           vector.load %{{.*}} {alignment = 16 : i64} : memref<?xi16>, vector<8xi16>
// LOWER:           vector.reduction <add>
// LOWER:           {{gpu.shuffle  xor|gpu.subgroup_reduce}}
// LOWER:         gpu.func @qk2_matmul_decode(
// LOWER:           vector.load %{{.*}} {alignment = 16 : i64} : memref<?xf32>, vector<4xf32>
// LOWER:           vector.reduction <add>
// LOWER:           {{gpu.shuffle  xor|gpu.subgroup_reduce}}
// LOWER:         gpu.func @qk3_matmul_decode(
// LOWER:           memref.load %{{.*}} : memref<?xi32>
// LOWER:           vector.load %{{.*}} {alignment = 16 : i64} : memref<?xi16>, vector<8xi16>

// The default (gpu-gemv=cublaslt) has no decode variant.
// DEFAULT-NOT: decode =
// DEFAULT-NOT: _decode

// PTXAS-DAG: Compiling entry function 'qk0_matmul_decode' for 'sm_90a'
// PTXAS-DAG: Compiling entry function 'qk2_matmul_decode' for 'sm_90a'
// PTXAS-DAG: Compiling entry function 'qk4_matmul_decode' for 'sm_90a'
// PTXAS-DAG: Compiling entry function 'qk3_matmul_decode' for 'sm_90a'
// PTXAS-NOT: {{[1-9][0-9]*}} bytes spill

func.func @step(%arg0: tensor<?x512xf32> {qtf.input = "tokens"}, %arg1: tensor<?x96xf32> {qtf.input = "positions"}, %arg2: tensor<?x32xf32> {qtf.input = "token_seq"}, %arg3: tensor<?x40xf32> {qtf.input = "block_table"}, %arg4: tensor<?xi32> {qtf.input = "logit_rows"}) -> (tensor<?x256xf32>, tensor<?x48xf32>, tensor<?x40xf32>, tensor<?x64xf32>) attributes {qkernel.buffers = [{symbol = "T", type = tensor<?x256xf32>}, {symbol = "T", type = tensor<?x48xf32>}, {symbol = "T", type = tensor<?x40xf32>}, {symbol = "R", type = tensor<?x64xf32>}]} {
  %w0 = qtf.weight ["w0"] : tensor<256x512xbf16>
  %0 = qkernel.launch @kernels::@qk0_matmul(%arg0, %w0) {result_buffers = array<i64: 0>} : (tensor<?x512xf32>, tensor<256x512xbf16>) -> tensor<?x256xf32>
  %w1 = qtf.weight ["w1"] : tensor<48x96xf16>
  %b1 = qtf.weight ["b1"] : tensor<48xf16>
  %r1 = qkernel.launch @kernels::@qk4_matmul(%arg1, %w1) {result_buffers = array<i64: 1>} : (tensor<?x96xf32>, tensor<48x96xf16>) -> tensor<?x48xf32>
  %1 = qkernel.launch @kernels::@qk1_matmul(%arg1, %w1, %b1, %r1) {result_buffers = array<i64: 1>} : (tensor<?x96xf32>, tensor<48x96xf16>, tensor<48xf16>, tensor<?x48xf32>) -> tensor<?x48xf32>
  %w2 = qtf.weight ["w2"] : tensor<40x32xf32>
  %b2 = qtf.weight ["b2"] : tensor<40xf32>
  %2 = qkernel.launch @kernels::@qk2_matmul(%arg2, %w2, %b2, %arg3) {result_buffers = array<i64: 2>} : (tensor<?x32xf32>, tensor<40x32xf32>, tensor<40xf32>, tensor<?x40xf32>) -> tensor<?x40xf32>
  %w3 = qtf.weight ["w3"] : tensor<64x512xbf16>
  %3 = qkernel.launch @kernels::@qk3_matmul(%arg0, %arg4, %w3) {result_buffers = array<i64: 3>} : (tensor<?x512xf32>, tensor<?xi32>, tensor<64x512xbf16>) -> tensor<?x64xf32>
  return %0, %1, %2, %3 : tensor<?x256xf32>, tensor<?x48xf32>, tensor<?x40xf32>, tensor<?x64xf32>
}
module @kernels {
  func.func @qk0_matmul(%x: tensor<?x512xf32>, %w: tensor<256x512xbf16>) -> tensor<?x256xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
    %0 = qtf.linear %x, %w : tensor<?x512xf32>, tensor<256x512xbf16> -> tensor<?x256xf32>
    return %0 : tensor<?x256xf32>
  }
  func.func @qk1_matmul(%x: tensor<?x96xf32>, %w: tensor<48x96xf16>, %b: tensor<48xf16>, %r: tensor<?x48xf32>) -> tensor<?x48xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
    %0 = qtf.linear %x, %w bias %b : tensor<?x96xf32>, tensor<48x96xf16>, tensor<48xf16> -> tensor<?x48xf32>
    %1 = qtf.add %0, %r : tensor<?x48xf32>
    return %1 : tensor<?x48xf32>
  }
  func.func @qk2_matmul(%x: tensor<?x32xf32>, %w: tensor<40x32xf32>, %b: tensor<40xf32>, %r: tensor<?x40xf32>) -> tensor<?x40xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
    %0 = qtf.linear %x, %w bias %b : tensor<?x32xf32>, tensor<40x32xf32>, tensor<40xf32> -> tensor<?x40xf32>
    %1 = qtf.add %r, %0 : tensor<?x40xf32>
    return %1 : tensor<?x40xf32>
  }
  func.func @qk3_matmul(%x: tensor<?x512xf32>, %rows: tensor<?xi32>, %w: tensor<64x512xbf16>) -> tensor<?x64xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
    %0 = qtf.gather_rows %x[%rows] : tensor<?x512xf32>, tensor<?xi32> -> tensor<?x512xf32>
    %1 = qtf.linear %0, %w : tensor<?x512xf32>, tensor<64x512xbf16> -> tensor<?x64xf32>
    return %1 : tensor<?x64xf32>
  }
  func.func @qk4_matmul(%x: tensor<?x96xf32>, %w: tensor<48x96xf16>) -> tensor<?x48xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
    %0 = qtf.linear %x, %w : tensor<?x96xf32>, tensor<48x96xf16> -> tensor<?x48xf32>
    return %0 : tensor<?x48xf32>
  }
}
