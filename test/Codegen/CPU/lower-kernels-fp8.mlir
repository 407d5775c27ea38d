// RUN: qwen-opt %s --qwen-select-schedule="vector-width=16 cpu-features=avx512f,avx512bf16 bf16-activations=split" --qwen-cpu-lower-kernels | FileCheck %s
// RUN: qwen-opt %s --qwen-select-schedule="vector-width=16 cpu-features=avx512f" --qwen-cpu-lower-kernels | qwen-opt --pass-pipeline="builtin.module(builtin.module(qwen-cpu-lower-to-llvm))" | FileCheck %s --check-prefix=LLVM

// A block-wise FP8 matmul (K = 96 in blocks of 64: one whole column block
// and a ragged one of 32). The weight bytes are loaded as i8 vectors and
// widened with integer ops (sign-extend, << 20, & 0x87f00000 = -2014314496,
// bitcast) to value * 2^-120, then multiplied by the block's scale * 2^120
// (2^120 = 1.329228e+36), one scale load per block and weight row, and
// reduced with f32 FMAs (no bf16 dots, whatever the target has). The
// prefill tile (4 tokens x 2 rows) comes first, then the decode tile (1 x 4).
// CHECK-LABEL: func.func @qk0_matmul
// CHECK-NOT:     x86vector
// CHECK:         scf.for
// CHECK:           memref.load %{{.*}} : memref<?xf32>
// CHECK:           arith.mulf %{{.*}}, %{{.*}} : f32
// CHECK:           scf.for
// CHECK:             vector.load %{{.*}} : memref<?xi8>, vector<16xi8>
// CHECK:             arith.extsi %{{.*}} : vector<16xi8> to vector<16xi32>
// CHECK:             arith.shli %{{.*}}, %{{.*}} : vector<16xi32>
// CHECK:             arith.andi %{{.*}}, %{{.*}} : vector<16xi32>
// CHECK:             arith.bitcast %{{.*}} : vector<16xi32> to vector<16xf32>
// CHECK:             vector.broadcast %{{.*}} : f32 to vector<16xf32>
// CHECK:             arith.mulf %{{.*}} : vector<16xf32>
// CHECK-COUNT-8:     vector.fma
// CHECK:         vector.reduction <add>
// CHECK-NOT:     x86vector
// CHECK:         return

// LLVM-LABEL: llvm.func @qk0_matmul
// LLVM-NOT:     f8E4M3FN
// LLVM:         llvm.load %{{.*}} : !llvm.ptr -> vector<16xi8>
// LLVM:         llvm.sext %{{.*}} : vector<16xi8> to vector<16xi32>
// LLVM:         llvm.intr.fmuladd
func.func @step(%x: tensor<?x96xf32> {qtf.input = "tokens"}) -> tensor<?x40xf32> {
  %w = qtf.weight ["w"] : tensor<40x96xf8E4M3FN>
  %s = qtf.weight ["w_scale_inv"] : tensor<1x2xf32>
  %0 = qkernel.launch @kernels::@qk0_matmul(%x, %w, %s) : (tensor<?x96xf32>, tensor<40x96xf8E4M3FN>, tensor<1x2xf32>) -> tensor<?x40xf32>
  return %0 : tensor<?x40xf32>
}
module @kernels {
  func.func @qk0_matmul(%x: tensor<?x96xf32>, %w: tensor<40x96xf8E4M3FN>, %s: tensor<1x2xf32>) -> tensor<?x40xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
    %0 = qtf.linear %x, %w scale(%s : tensor<1x2xf32>) {weight_block = array<i64: 64, 64>} : tensor<?x96xf32>, tensor<40x96xf8E4M3FN> -> tensor<?x40xf32>
    return %0 : tensor<?x40xf32>
  }
}
