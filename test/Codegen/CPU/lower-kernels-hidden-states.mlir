// RUN: qwen-opt %s --qwen-select-schedule=target=cpu --qwen-cpu-lower-kernels | FileCheck %s
// RUN: qwen-opt %s --qwen-select-schedule=target=cuda --qwen-gpu-lower-kernels | FileCheck %s --check-prefix=GPU

// Hidden-state outputs: the final norm of the selected rows. Row r of the
// result reads row rows[r] of the input (a gather_rows prologue of the rows
// kernel); the grid is the R selected rows.
// CHECK-LABEL: func.func @step
// CHECK:       qkernel.launch @kernels::@qk0_rows{{.*}}grid = [R, 1]
// CHECK:       func.func @qk0_rows(%{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: i64, %{{.*}}: i64)
// CHECK:         %[[ROW:.*]] = memref.load %{{.*}}[%{{.*}}] : memref<?xi32>
// CHECK:         %[[SRC:.*]] = arith.index_cast %[[ROW]] : i32 to index
// CHECK:         arith.muli %[[SRC]], %c64
// CHECK:         vector.fma
// CHECK:         math.rsqrt
// GPU:         qkernel.launch @kernels::@qk0_rows{{.*}}launch = #qkernel.launch<grid = [R], block
// GPU:         gpu.func @qk0_rows
// GPU:           memref.load %{{.*}} : memref<?xi32>
// GPU:           gpu.shuffle xor
func.func @step(%x: tensor<?x64xf32> {qtf.input = "tokens"}, %rows: tensor<?xi32> {qtf.input = "logit_rows"}) -> tensor<?x64xf32> {
  %w = qtf.weight ["norm.weight"] : tensor<64xf32>
  %0 = qkernel.launch @kernels::@qk0_rows(%x, %rows, %w) : (tensor<?x64xf32>, tensor<?xi32>, tensor<64xf32>) -> tensor<?x64xf32>
  return %0 : tensor<?x64xf32>
}
module @kernels {
  func.func @qk0_rows(%x: tensor<?x64xf32>, %rows: tensor<?xi32>, %w: tensor<64xf32>) -> tensor<?x64xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<rows>} {
    %g = qtf.gather_rows %x[%rows] : tensor<?x64xf32>, tensor<?xi32> -> tensor<?x64xf32>
    %n = qtf.rms_norm %g, %w {epsilon = 1.0e-6 : f64} : tensor<?x64xf32>, tensor<64xf32> -> tensor<?x64xf32>
    return %n : tensor<?x64xf32>
  }
}
