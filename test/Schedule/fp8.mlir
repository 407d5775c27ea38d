// RUN: qwen-opt %s --qwen-select-schedule="vector-width=16 cpu-features=avx512f,avx512bf16,avx512vl bf16-activations=split" | FileCheck %s
// RUN: qwen-opt %s --qwen-select-schedule="vector-width=16 cpu-features=avx512f,avx512bf16,avx512vl bf16-activations=round" | FileCheck %s
// RUN: qwen-opt %s --qwen-select-schedule="vector-width=8 cpu-features=avx2,fma" | FileCheck %s --check-prefix=AVX2

// Block-wise FP8 weights: the CPU matmul widens the bytes to f32 in
// registers, scales them per block and multiplies with f32 FMAs, on every
// tile, whatever bf16 dots the target has (an e4m3 value is exact in bf16,
// but its scaled value is not: the bf16 dot would round HF's dequantized
// weight).
// CHECK-LABEL: func.func @fp8_weights(
// CHECK-SAME:  #qkernel.schedule<target = cpu, grain = 8, vector_width = 16, tile = [4, 2], dot = fma, decode_tile = [4, 1], panel = {{[0-9]+}}, prefill_tile = [4, 4], prefill_tokens = 16>
// CHECK-NOT:   decode_dot
// AVX2-LABEL:  func.func @fp8_weights(
// AVX2-SAME:   #qkernel.schedule<target = cpu, grain = 8, vector_width = 8, tile = [4, 2], dot = fma, decode_tile = [4, 1], panel = {{[0-9]+}}, prefill_tile = [4, 2], prefill_tokens = 16>

module {
  module @kernels {
    func.func @fp8_weights(%x: tensor<?x256xf32>, %w: tensor<256x256xf8E4M3FN>, %s: tensor<2x2xf32>) -> tensor<?x256xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.linear %x, %w scale(%s : tensor<2x2xf32>) {weight_block = array<i64: 128, 128>} : tensor<?x256xf32>, tensor<256x256xf8E4M3FN> -> tensor<?x256xf32>
      return %0 : tensor<?x256xf32>
    }
  }
}
