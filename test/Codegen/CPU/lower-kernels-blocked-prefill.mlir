// RUN: qwen-opt %s --qwen-select-schedule="target=cpu vector-width=16" --qwen-cpu-lower-kernels | FileCheck %s
// RUN: qwen-opt %s --qwen-select-schedule="target=cpu vector-width=8" --qwen-cpu-lower-kernels | FileCheck %s --check-prefix=AVX2

// The cache-blocked prefill (BlockedMatmul.cpp): a step of >= 16 tokens
// (`prefill_tokens`) walks the thread's weight rows [begin * 8, end * 8) in
// panels of `panel` (here the whole 40-row matrix), each panel token block
// by token block in 4 x 4 register tiles (16 f32 FMA accumulators over k).
// The tile's 16 sums are vector.reduction's ordered sums, bit for bit, taken
// 16 lanes at a time: 4 shuffle stages transpose the accumulators (64
// shuffles), then 16 adds sum the columns in lane order (the vdpbf16ps
// tiles of bf16-activations=round likewise, lower-kernels-bf16-dot.mlir).
// Leftover weight rows
// and tokens take smaller tiles; shorter steps the per-item path (else).
// CHECK-LABEL: func.func @qk0_matmul
// CHECK:          arith.cmpi sge, %{{.*}}, %c16 : index
// CHECK-NEXT:     scf.if
// CHECK:          scf.for %[[N0:.*]] = %{{.*}} to %{{.*}} step %c40
// CHECK:          scf.for %{{.*}} step %c4
// CHECK:          scf.for %{{.*}} = %[[N0]] to %{{.*}} step %c4
// CHECK:          scf.for {{.*}} -> (vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>)
// CHECK-COUNT-16: vector.fma
// CHECK-NOT:      vector.reduction
// CHECK-COUNT-64: vector.shuffle {{.*}} : vector<16xf32>, vector<16xf32>
// CHECK-COUNT-16: arith.addf {{.*}} : vector<16xf32>
// CHECK-COUNT-16: vector.extract
// CHECK:          } else {
// CHECK:          vector.fma
// CHECK:          vector.reduction <add>

// Eight lanes (AVX2) take 4 x 2 tiles: 8 accumulators, 3 shuffle stages.
// AVX2-LABEL: func.func @qk0_matmul
// AVX2:          scf.if
// AVX2:          scf.for %{{.*}} step %c40
// AVX2-COUNT-8:  vector.fma {{.*}} : vector<8xf32>
// AVX2-COUNT-24: vector.shuffle {{.*}} : vector<8xf32>, vector<8xf32>
// AVX2-COUNT-8:  arith.addf {{.*}} : vector<8xf32>
// AVX2:          } else {
func.func @step(%x: tensor<?x64xf32> {qtf.input = "tokens"}) -> tensor<?x40xf32> {
  %w = qtf.weight ["w"] : tensor<40x64xbf16>
  %0 = qkernel.launch @kernels::@qk0_matmul(%x, %w) : (tensor<?x64xf32>, tensor<40x64xbf16>) -> tensor<?x40xf32>
  return %0 : tensor<?x40xf32>
}
module @kernels {
  func.func @qk0_matmul(%x: tensor<?x64xf32>, %w: tensor<40x64xbf16>) -> tensor<?x40xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
    %0 = qtf.linear %x, %w : tensor<?x64xf32>, tensor<40x64xbf16> -> tensor<?x40xf32>
    return %0 : tensor<?x40xf32>
  }
}
