// RUN: qwen-opt %s --split-input-file --qwen-gpu-narrow-gemm-inputs | FileCheck %s
// RUN: qwen-opt %s --split-input-file --qwen-gpu-narrow-gemm-inputs --qwen-select-schedule=target=cuda --qwen-gpu-lower-kernels | FileCheck %s --check-prefix=LOWER

// A norm whose result only feeds bf16 GEMMs (one of them through a row
// gather) stores it in bf16: its body ends in arith.truncf, its launches
// return bf16, and the matmul kernels take bf16 activations (through the
// gather too). The silu_mul kernel also feeds an f32-weight GEMM: it stays
// f32, and so does the bf16 GEMM it feeds (it keeps its pack).
// CHECK-LABEL: func.func @step
// CHECK:       %[[N:.*]] = qkernel.launch @kernels::@qk0_rows(%arg0, %{{.*}}) : (tensor<?x64xf32>, tensor<64xbf16>) -> tensor<?x64xbf16>
// CHECK:       qkernel.launch @kernels::@qk1_matmul(%[[N]], %{{.*}}) : (tensor<?x64xbf16>, tensor<128x64xbf16>) -> tensor<?x128xf32>
// CHECK:       %[[M:.*]] = qkernel.launch @kernels::@qk2_elementwise({{.*}}) -> tensor<?x64xf32>
// CHECK:       qkernel.launch @kernels::@qk3_matmul(%[[M]], %{{.*}}) : (tensor<?x64xf32>, tensor<64x64xbf16>) -> tensor<?x64xf32>
// CHECK:       qkernel.launch @kernels::@qk4_matmul(%[[M]], %{{.*}}) : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
// CHECK:       %[[F:.*]] = qkernel.launch @kernels::@qk0_rows(%{{.*}}, %{{.*}}) : (tensor<?x64xf32>, tensor<64xbf16>) -> tensor<?x64xbf16>
// CHECK:       qkernel.launch @kernels::@qk5_matmul(%[[F]], %arg1, %{{.*}}) : (tensor<?x64xbf16>, tensor<?xi32>, tensor<1000x64xbf16>) -> tensor<?x1000xf32>
// CHECK:       func.func @qk0_rows(%{{.*}}: tensor<?x64xf32>, %{{.*}}: tensor<64xbf16>) -> tensor<?x64xbf16>
// CHECK:         %[[NORM:.*]] = qtf.rms_norm
// CHECK:         %[[STORED:.*]] = arith.truncf %[[NORM]] : tensor<?x64xf32> to tensor<?x64xbf16>
// CHECK:         return %[[STORED]] : tensor<?x64xbf16>
// CHECK:       func.func @qk1_matmul(%{{.*}}: tensor<?x64xbf16>, %{{.*}}: tensor<128x64xbf16>) -> tensor<?x128xf32>
// CHECK:         qtf.linear %{{.*}} : tensor<?x64xbf16>, tensor<128x64xbf16> -> tensor<?x128xf32>
// CHECK:       func.func @qk2_elementwise({{.*}}) -> tensor<?x64xf32>
// CHECK-NOT:     arith.truncf
// CHECK:       func.func @qk3_matmul(%{{.*}}: tensor<?x64xf32>
// CHECK:       func.func @qk5_matmul(%{{.*}}: tensor<?x64xbf16>, %{{.*}}: tensor<?xi32>, %{{.*}}: tensor<1000x64xbf16>)
// CHECK:         qtf.gather_rows %{{.*}} : tensor<?x64xbf16>, tensor<?xi32> -> tensor<?x64xbf16>

// Lowered: the norm kernel rounds as it stores (bf16 bits as i16), the
// plain GEMM has no pack, the gathering one a pack that only gathers
// (bf16 in, bf16 out), and the GEMM behind the f32 silu_mul keeps its
// converting pack.
// LOWER-LABEL: func.func @step
// LOWER-NOT:   @qk1_matmul_pack
// LOWER:       qkernel.launch @kernels::@qk1_matmul(
// LOWER-SAME:    a_dtype = "bf16"
// LOWER:       qkernel.launch @kernels::@qk3_matmul_pack({{.*}} : (tensor<?x64xf32>) -> tensor<?x64xbf16>
// LOWER:       qkernel.launch @kernels::@qk5_matmul_pack({{.*}} : (tensor<?x64xbf16>, tensor<?xi32>) -> tensor<?x64xbf16>
// LOWER:       gpu.func @qk0_rows(
// LOWER:         arith.truncf %{{.*}} : vector<{{[0-9]+}}xf32> to vector<{{[0-9]+}}xbf16>
// LOWER:         vector.store %{{.*}} {alignment = 8 : i64} : memref<?xi16>, vector<4xi16>
func.func @step(%x: tensor<?x64xf32> {qtf.input = "tokens"}, %rows: tensor<?xi32> {qtf.input = "logit_rows"}) -> (tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x1000xf32>) {
  %nw = qtf.weight ["norm"] : tensor<64xbf16>
  %n = qkernel.launch @kernels::@qk0_rows(%x, %nw) : (tensor<?x64xf32>, tensor<64xbf16>) -> tensor<?x64xf32>
  %w1 = qtf.weight ["w1"] : tensor<128x64xbf16>
  %0 = qkernel.launch @kernels::@qk1_matmul(%n, %w1) : (tensor<?x64xf32>, tensor<128x64xbf16>) -> tensor<?x128xf32>
  %m = qkernel.launch @kernels::@qk2_elementwise(%x, %x) : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  %w3 = qtf.weight ["w3"] : tensor<64x64xbf16>
  %1 = qkernel.launch @kernels::@qk3_matmul(%m, %w3) : (tensor<?x64xf32>, tensor<64x64xbf16>) -> tensor<?x64xf32>
  %w4 = qtf.weight ["w4"] : tensor<64x64xf32>
  %2 = qkernel.launch @kernels::@qk4_matmul(%m, %w4) : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  %f = qkernel.launch @kernels::@qk0_rows(%1, %nw) : (tensor<?x64xf32>, tensor<64xbf16>) -> tensor<?x64xf32>
  %we = qtf.weight ["embed"] : tensor<1000x64xbf16>
  %3 = qkernel.launch @kernels::@qk5_matmul(%f, %rows, %we) : (tensor<?x64xf32>, tensor<?xi32>, tensor<1000x64xbf16>) -> tensor<?x1000xf32>
  return %0, %1, %2, %3 : tensor<?x128xf32>, tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x1000xf32>
}
module @kernels {
  func.func @qk0_rows(%x: tensor<?x64xf32>, %w: tensor<64xbf16>) -> tensor<?x64xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<rows>} {
    %0 = qtf.rms_norm %x, %w {epsilon = 1.0e-6 : f64} : tensor<?x64xf32>, tensor<64xbf16> -> tensor<?x64xf32>
    return %0 : tensor<?x64xf32>
  }
  func.func @qk1_matmul(%x: tensor<?x64xf32>, %w: tensor<128x64xbf16>) -> tensor<?x128xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
    %0 = qtf.linear %x, %w : tensor<?x64xf32>, tensor<128x64xbf16> -> tensor<?x128xf32>
    return %0 : tensor<?x128xf32>
  }
  func.func @qk2_elementwise(%g: tensor<?x64xf32>, %u: tensor<?x64xf32>) -> tensor<?x64xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<elementwise>} {
    %0 = qtf.silu_mul %g, %u : tensor<?x64xf32>
    return %0 : tensor<?x64xf32>
  }
  func.func @qk3_matmul(%x: tensor<?x64xf32>, %w: tensor<64x64xbf16>) -> tensor<?x64xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
    %0 = qtf.linear %x, %w : tensor<?x64xf32>, tensor<64x64xbf16> -> tensor<?x64xf32>
    return %0 : tensor<?x64xf32>
  }
  func.func @qk4_matmul(%x: tensor<?x64xf32>, %w: tensor<64x64xf32>) -> tensor<?x64xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
    %0 = qtf.linear %x, %w : tensor<?x64xf32>, tensor<64x64xf32> -> tensor<?x64xf32>
    return %0 : tensor<?x64xf32>
  }
  func.func @qk5_matmul(%x: tensor<?x64xf32>, %rows: tensor<?xi32>, %w: tensor<1000x64xbf16>) -> tensor<?x1000xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
    %0 = qtf.gather_rows %x[%rows] : tensor<?x64xf32>, tensor<?xi32> -> tensor<?x64xf32>
    %1 = qtf.linear %0, %w : tensor<?x64xf32>, tensor<1000x64xbf16> -> tensor<?x1000xf32>
    return %1 : tensor<?x1000xf32>
  }
}

// -----

// A result that also feeds a non-GEMM kernel (here the residual add of the
// next kernel) stays f32 for every launch of its kernel.
// CHECK-LABEL: func.func @step
// CHECK:       qkernel.launch @kernels::@qk0_rows({{.*}}) -> tensor<?x64xf32>
// CHECK-NOT:   arith.truncf
func.func @step(%x: tensor<?x64xf32> {qtf.input = "tokens"}) -> (tensor<?x128xf32>, tensor<?x64xf32>) {
  %nw = qtf.weight ["norm"] : tensor<64xbf16>
  %n = qkernel.launch @kernels::@qk0_rows(%x, %nw) : (tensor<?x64xf32>, tensor<64xbf16>) -> tensor<?x64xf32>
  %w1 = qtf.weight ["w1"] : tensor<128x64xbf16>
  %0 = qkernel.launch @kernels::@qk1_matmul(%n, %w1) : (tensor<?x64xf32>, tensor<128x64xbf16>) -> tensor<?x128xf32>
  %s = qkernel.launch @kernels::@qk2_elementwise(%n, %x) : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  return %0, %s : tensor<?x128xf32>, tensor<?x64xf32>
}
module @kernels {
  func.func @qk0_rows(%x: tensor<?x64xf32>, %w: tensor<64xbf16>) -> tensor<?x64xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<rows>} {
    %0 = qtf.rms_norm %x, %w {epsilon = 1.0e-6 : f64} : tensor<?x64xf32>, tensor<64xbf16> -> tensor<?x64xf32>
    return %0 : tensor<?x64xf32>
  }
  func.func @qk1_matmul(%x: tensor<?x64xf32>, %w: tensor<128x64xbf16>) -> tensor<?x128xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
    %0 = qtf.linear %x, %w : tensor<?x64xf32>, tensor<128x64xbf16> -> tensor<?x128xf32>
    return %0 : tensor<?x128xf32>
  }
  func.func @qk2_elementwise(%a: tensor<?x64xf32>, %b: tensor<?x64xf32>) -> tensor<?x64xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<elementwise>} {
    %0 = qtf.add %a, %b : tensor<?x64xf32>
    return %0 : tensor<?x64xf32>
  }
}
