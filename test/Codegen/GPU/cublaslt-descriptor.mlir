// RUN: qwen-opt %s --split-input-file --qwen-select-schedule=target=cuda --qwen-gpu-lower-kernels | FileCheck %s
// RUN: qwen-opt %s --split-input-file --qwen-select-schedule=target=cuda --qwen-gpu-lower-kernels="convert-gemm-inputs=false" | FileCheck %s --check-prefix=NOCONV

// Matmul regions generate no GPU code: each launch records a cuBLASLt
// descriptor D[m, n] = A[m, k] * B[n, k]^T (+ bias) (+ C), row-major.
// bf16 weights: the f32 activations are first rounded to bf16 by a
// generated pack kernel (cuBLASLt wants A and B of one type), whose result
// is the A operand; its buffer is added to the step's buffer table and
// shared by the packs of equal shape. The matmul kernel becomes a
// declaration with the GEMM's operand types.
// CHECK-LABEL: func.func @step
// CHECK-SAME:    qkernel.buffers = [{symbol = "T", type = tensor<?x64xf32>}, {symbol = "T", type = tensor<?x256xf32>}, {symbol = "T", type = tensor<?x384xf32>}, {gemm_pack, symbol = "T", type = tensor<?x64xbf16>}]
// CHECK:       %[[A0:.*]] = qkernel.launch @kernels::@qk0_matmul_pack(%arg0)
// CHECK-SAME:    launch = #qkernel.launch<grid = [T], block = 32, shared = 0>, result_buffers = array<i64: 3>
// CHECK-SAME:    (tensor<?x64xf32>) -> tensor<?x64xbf16>
// CHECK:       qkernel.launch @kernels::@qk0_matmul(%[[A0]], %{{[0-9]+}})
// CHECK-SAME:    cublaslt = {a_arg = 0 : i64, a_dtype = "bf16", a_offset = 0 : i64, b_arg = 1 : i64, b_dtype = "bf16", b_offset = 0 : i64, bias = false, compute = "f32", d_dtype = "f32", gather_rows = false, k = 64 : i64, lda = 64 : i64, ldb = 64 : i64, ldd = 256 : i64, m = "T", n = 256 : i64, prologue = @kernels::@qk0_matmul_pack, residual = false}
// CHECK-SAME:    result_buffers = array<i64: 1>
// CHECK-SAME:    (tensor<?x64xbf16>, tensor<256x64xbf16>) -> tensor<?x256xf32>
// CHECK:       qkernel.launch @kernels::@qk1_matmul_pack(%arg0) {{.*}}result_buffers = array<i64: 3>
// CHECK:       module @kernels
// CHECK:         func.func private @qk0_matmul_pack(tensor<?x64xf32>) -> (tensor<?x64xbf16> {qkernel.symbol = "T"}) attributes {qkernel.gpu_module = "qwen_kernels", qkernel.kernel, qkernel.kind = #qkernel.kind<gemm_pack>}
// CHECK:         func.func private @qk0_matmul(tensor<?x64xbf16>, tensor<256x64xbf16>) -> (tensor<?x256xf32> {qkernel.symbol = "T"}) attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>, qkernel.library = "cublaslt"}
// CHECK:       gpu.module @qwen_kernels
// CHECK:         gpu.func @qk0_matmul_pack(%{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64)
// CHECK:           vector.load %{{.*}} {alignment = 16 : i64} : memref<?xf32>, vector<4xf32>
// CHECK:           arith.truncf %{{.*}} : vector<4xf32> to vector<4xbf16>
// CHECK:           arith.bitcast %{{.*}} : vector<4xbf16> to vector<4xi16>
// CHECK:           vector.store %{{.*}} {alignment = 8 : i64} : memref<?xi16>, vector<4xi16>
// CHECK-NOT:     gpu.func @qk0_matmul(
// NOCONV-LABEL: func.func @step
// NOCONV-NOT:   _pack
// NOCONV:       qkernel.launch @kernels::@qk0_matmul(%arg0, %{{.*}}) {cublaslt = {a_arg = 0 : i64, a_dtype = "f32", a_offset = 0 : i64, b_arg = 1 : i64, b_dtype = "bf16"
func.func @step(%x: tensor<?x64xf32> {qtf.input = "tokens"}) -> (tensor<?x256xf32>, tensor<?x384xf32>) attributes {qkernel.buffers = [{symbol = "T", type = tensor<?x64xf32>}, {symbol = "T", type = tensor<?x256xf32>}, {symbol = "T", type = tensor<?x384xf32>}]} {
  %w = qtf.weight ["qkv"] : tensor<256x64xbf16>
  %0 = qkernel.launch @kernels::@qk0_matmul(%x, %w) {result_buffers = array<i64: 1>} : (tensor<?x64xf32>, tensor<256x64xbf16>) -> tensor<?x256xf32>
  %u = qtf.weight ["gate_up"] : tensor<384x64xbf16>
  %1 = qkernel.launch @kernels::@qk1_matmul(%x, %u) {result_buffers = array<i64: 2>} : (tensor<?x64xf32>, tensor<384x64xbf16>) -> tensor<?x384xf32>
  return %0, %1 : tensor<?x256xf32>, tensor<?x384xf32>
}
module @kernels {
  func.func @qk0_matmul(%x: tensor<?x64xf32>, %w: tensor<256x64xbf16>) -> tensor<?x256xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
    %0 = qtf.linear %x, %w : tensor<?x64xf32>, tensor<256x64xbf16> -> tensor<?x256xf32>
    return %0 : tensor<?x256xf32>
  }
  func.func @qk1_matmul(%x: tensor<?x64xf32>, %w: tensor<384x64xbf16>) -> tensor<?x384xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
    %0 = qtf.linear %x, %w : tensor<?x64xf32>, tensor<384x64xbf16> -> tensor<?x384xf32>
    return %0 : tensor<?x384xf32>
  }
}

// -----

// o_proj with the residual epilogue: A reads the attention output through a
// reshape (packed to bf16), C is the residual stream with ldc = 64 and
// beta = 1 (D may differ from C).
// CHECK-LABEL: func.func @step
// CHECK:       %[[A:.*]] = qkernel.launch @kernels::@qk0_matmul_pack(%arg0) {{.*}} : (tensor<?x4x32xf32>) -> tensor<?x128xbf16>
// CHECK:       qkernel.launch @kernels::@qk0_matmul(%[[A]], %{{.*}}, %arg1) {cublaslt = {a_arg = 0 : i64, a_dtype = "bf16", a_offset = 0 : i64, b_arg = 1 : i64, b_dtype = "bf16", b_offset = 0 : i64, bias = false, c_arg = 2 : i64, c_dtype = "f32", c_offset = 0 : i64, compute = "f32", d_dtype = "f32", gather_rows = false, k = 128 : i64, lda = 128 : i64, ldb = 128 : i64, ldc = 64 : i64, ldd = 64 : i64, m = "T", n = 64 : i64, prologue = @kernels::@qk0_matmul_pack, residual = true}}
// NOCONV-LABEL: func.func @step
// NOCONV:       qkernel.launch @kernels::@qk0_matmul(%arg0, %{{.*}}, %arg1) {cublaslt = {a_arg = 0 : i64, a_dtype = "f32", a_offset = 0 : i64, b_arg = 1 : i64, b_dtype = "bf16", b_offset = 0 : i64, bias = false, c_arg = 2 : i64, c_dtype = "f32", c_offset = 0 : i64, compute = "f32", d_dtype = "f32", gather_rows = false, k = 128 : i64, lda = 128 : i64
func.func @step(%attn: tensor<?x4x32xf32> {qtf.input = "tokens"}, %res: tensor<?x64xf32> {qtf.input = "positions"}) -> tensor<?x64xf32> {
  %w = qtf.weight ["o_proj"] : tensor<64x128xbf16>
  %0 = qkernel.launch @kernels::@qk0_matmul(%attn, %w, %res) : (tensor<?x4x32xf32>, tensor<64x128xbf16>, tensor<?x64xf32>) -> tensor<?x64xf32>
  return %0 : tensor<?x64xf32>
}
module @kernels {
  func.func @qk0_matmul(%arg0: tensor<?x4x32xf32>, %arg1: tensor<64x128xbf16>, %arg2: tensor<?x64xf32>) -> tensor<?x64xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
    %0 = qtf.reshape %arg0 : tensor<?x4x32xf32> -> tensor<?x128xf32>
    %1 = qtf.linear %0, %arg1 : tensor<?x128xf32>, tensor<64x128xbf16> -> tensor<?x64xf32>
    %2 = qtf.add %arg2, %1 : tensor<?x64xf32>
    return %2 : tensor<?x64xf32>
  }
}

// -----

// lm_head on the logit rows: the gather becomes part of the pack kernel
// (grid over R), and the GEMM has m = "R".
// CHECK-LABEL: func.func @step
// CHECK:       %[[A:.*]] = qkernel.launch @kernels::@qk0_matmul_pack(%arg0, %arg1) {{.*}}launch = #qkernel.launch<grid = [R], block{{.*}} : (tensor<?x64xf32>, tensor<?xi32>) -> tensor<?x64xbf16>
// CHECK:       qkernel.launch @kernels::@qk0_matmul(%[[A]], %{{.*}}) {cublaslt = {a_arg = 0 : i64, {{.*}}gather_rows = true, k = 64 : i64, lda = 64 : i64, ldb = 64 : i64, ldd = 1000 : i64, m = "R", n = 1000 : i64
// CHECK:       gpu.func @qk0_matmul_pack
// CHECK:         %[[ROW:.*]] = memref.load %{{.*}} : memref<?xi32>
// CHECK:         arith.index_cast %[[ROW]] : i32 to index
// CHECK:         vector.load
// CHECK:         arith.truncf
// NOCONV-LABEL: func.func @step
// NOCONV:       qkernel.launch @kernels::@qk0_matmul_pack(%arg0, %arg1) {{.*}} -> tensor<?x64xf32>
// NOCONV:       a_dtype = "f32"
func.func @step(%x: tensor<?x64xf32> {qtf.input = "tokens"}, %rows: tensor<?xi32> {qtf.input = "logit_rows"}) -> tensor<?x1000xf32> {
  %w = qtf.weight ["embed"] : tensor<1000x64xbf16>
  %0 = qkernel.launch @kernels::@qk0_matmul(%x, %rows, %w) : (tensor<?x64xf32>, tensor<?xi32>, tensor<1000x64xbf16>) -> tensor<?x1000xf32>
  return %0 : tensor<?x1000xf32>
}
module @kernels {
  func.func @qk0_matmul(%arg0: tensor<?x64xf32>, %arg1: tensor<?xi32>, %arg2: tensor<1000x64xbf16>) -> tensor<?x1000xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
    %0 = qtf.gather_rows %arg0[%arg1] : tensor<?x64xf32>, tensor<?xi32> -> tensor<?x64xf32>
    %1 = qtf.linear %0, %arg2 : tensor<?x64xf32>, tensor<1000x64xbf16> -> tensor<?x1000xf32>
    return %1 : tensor<?x1000xf32>
  }
}

// -----

// f32 weights with a bias, on a split view of the activations: no pack; A
// is read in place at column 16 of 48-wide rows (a_offset, lda).
// CHECK-LABEL: func.func @step
// CHECK-NOT:   _pack
// CHECK:       qkernel.launch @kernels::@qk0_matmul(%arg0, %{{.*}}, %{{.*}}) {cublaslt = {a_arg = 0 : i64, a_dtype = "f32", a_offset = 16 : i64, b_arg = 1 : i64, b_dtype = "f32", b_offset = 0 : i64, bias = true, bias_arg = 2 : i64, bias_dtype = "f32", bias_offset = 0 : i64, compute = "f32", d_dtype = "f32", gather_rows = false, k = 32 : i64, lda = 48 : i64, ldb = 32 : i64, ldd = 8 : i64, m = "T", n = 8 : i64, residual = false}}
// NOCONV-LABEL: func.func @step
// NOCONV:       a_offset = 16 : i64
func.func @step(%x: tensor<?x48xf32> {qtf.input = "tokens"}) -> tensor<?x8xf32> {
  %w = qtf.weight ["w"] : tensor<8x32xf32>
  %b = qtf.weight ["b"] : tensor<8xf32>
  %0 = qkernel.launch @kernels::@qk0_matmul(%x, %w, %b) : (tensor<?x48xf32>, tensor<8x32xf32>, tensor<8xf32>) -> tensor<?x8xf32>
  return %0 : tensor<?x8xf32>
}
module @kernels {
  func.func @qk0_matmul(%x: tensor<?x48xf32>, %w: tensor<8x32xf32>, %b: tensor<8xf32>) -> tensor<?x8xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
    %a, %c = qtf.split %x [16, 32] : tensor<?x48xf32> -> tensor<?x16xf32>, tensor<?x32xf32>
    %0 = qtf.linear %c, %w bias %b : tensor<?x32xf32>, tensor<8x32xf32>, tensor<8xf32> -> tensor<?x8xf32>
    return %0 : tensor<?x8xf32>
  }
}

// -----

// f16 weights with an f16 bias and an f32 output: cuBLASLt takes the bias
// only in D's dtype or f32, so the bias weight is declared f32 (the runtime
// converts it at load) and the descriptor says so.
// CHECK-LABEL: func.func @step
// CHECK:       %[[B:.*]] = qtf.weight ["b"] : tensor<8xf32>
// CHECK:       qkernel.launch @kernels::@qk0_matmul({{.*}}, %[[B]]) {cublaslt = {{{.*}}bias = true, bias_arg = 2 : i64, bias_dtype = "f32", bias_offset = 0 : i64, compute = "f32", d_dtype = "f32"
// CHECK-SAME:    -> tensor<?x8xf32>
// NOCONV-LABEL: func.func @step
// NOCONV:       bias_dtype = "f32"
func.func @step(%x: tensor<?x32xf16> {qtf.input = "tokens"}) -> tensor<?x8xf32> {
  %w = qtf.weight ["w"] : tensor<8x32xf16>
  %b = qtf.weight ["b"] : tensor<8xf16>
  %0 = qkernel.launch @kernels::@qk0_matmul(%x, %w, %b) : (tensor<?x32xf16>, tensor<8x32xf16>, tensor<8xf16>) -> tensor<?x8xf32>
  return %0 : tensor<?x8xf32>
}
module @kernels {
  func.func @qk0_matmul(%x: tensor<?x32xf16>, %w: tensor<8x32xf16>, %b: tensor<8xf16>) -> tensor<?x8xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
    %0 = qtf.linear %x, %w bias %b : tensor<?x32xf16>, tensor<8x32xf16>, tensor<8xf16> -> tensor<?x8xf32>
    return %0 : tensor<?x8xf32>
  }
}
