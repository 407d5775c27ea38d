// RUN: qwen-opt %s --qwen-cpu-lower-kernels -verify-diagnostics

// A schedule whose bf16 dot kind the operands cannot take (f32 weights) is
// an error, not a silent fallback to FMAs.
func.func @step(%x: tensor<?x64xf32> {qtf.input = "tokens"}) -> tensor<?x40xf32> {
  %w = qtf.weight ["w"] : tensor<40x64xf32>
  %0 = qkernel.launch @kernels::@qk0_matmul(%x, %w) : (tensor<?x64xf32>, tensor<40x64xf32>) -> tensor<?x40xf32>
  return %0 : tensor<?x40xf32>
}
module @kernels {
  // expected-error @+1 {{dot kind avx512_bf16_split needs bf16 weights, f32 or bf16 activations and a reduction length the bf16 dot fits, got 'f32' x 'f32' over 64}}
  func.func @qk0_matmul(%x: tensor<?x64xf32>, %w: tensor<40x64xf32>) -> tensor<?x40xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>, qkernel.schedule = #qkernel.schedule<target = cpu, grain = 8, vector_width = 16, tile = [4, 2], dot = fma, decode_tile = [1, 4], decode_dot = avx512_bf16_split>} {
    %0 = qtf.linear %x, %w : tensor<?x64xf32>, tensor<40x64xf32> -> tensor<?x40xf32>
    return %0 : tensor<?x40xf32>
  }
}
