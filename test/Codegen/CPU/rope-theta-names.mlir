// RUN: qwen-opt %s --qwen-select-schedule=target=cpu --qwen-cpu-lower-kernels | FileCheck %s

// Each theta gets its own inverse-frequency table: an integral theta keeps its
// readable name, any other is named by its bits. Thetas 10000 and 10000.5 used
// to share one table, and an infinite theta was cast to int64_t (issue 20).
// CHECK-DAG: memref.global "private" constant @qwen_inv_freq_16_10000 : memref<8xf32>
// CHECK-DAG: memref.global "private" constant @qwen_inv_freq_16_x40C3884000000000 : memref<8xf32>
// CHECK-DAG: memref.global "private" constant @qwen_inv_freq_16_x7FF0000000000000 : memref<8xf32>
func.func @step(%x: tensor<?x4x16xf32> {qtf.input = "tokens"}, %pos: tensor<?xi32> {qtf.input = "positions"}) -> (tensor<?x4x16xf32>, tensor<?x4x16xf32>, tensor<?x4x16xf32>) {
  %0 = qkernel.launch @kernels::@qk0_rows(%x, %pos) : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  %1 = qkernel.launch @kernels::@qk1_rows(%x, %pos) : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  %2 = qkernel.launch @kernels::@qk2_rows(%x, %pos) : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  return %0, %1, %2 : tensor<?x4x16xf32>, tensor<?x4x16xf32>, tensor<?x4x16xf32>
}
module @kernels {
  func.func @qk0_rows(%x: tensor<?x4x16xf32>, %pos: tensor<?xi32>) -> tensor<?x4x16xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<rows>} {
    %r = qtf.rope %x, %pos {theta = 1.0e4 : f64, rotary_dim = 16 : i64} : tensor<?x4x16xf32>, tensor<?xi32> -> tensor<?x4x16xf32>
    return %r : tensor<?x4x16xf32>
  }
  func.func @qk1_rows(%x: tensor<?x4x16xf32>, %pos: tensor<?xi32>) -> tensor<?x4x16xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<rows>} {
    %r = qtf.rope %x, %pos {theta = 10000.5 : f64, rotary_dim = 16 : i64} : tensor<?x4x16xf32>, tensor<?xi32> -> tensor<?x4x16xf32>
    return %r : tensor<?x4x16xf32>
  }
  func.func @qk2_rows(%x: tensor<?x4x16xf32>, %pos: tensor<?xi32>) -> tensor<?x4x16xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<rows>} {
    %r = qtf.rope %x, %pos {theta = 0x7FF0000000000000 : f64, rotary_dim = 16 : i64} : tensor<?x4x16xf32>, tensor<?xi32> -> tensor<?x4x16xf32>
    return %r : tensor<?x4x16xf32>
  }
}
