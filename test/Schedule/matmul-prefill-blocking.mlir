// RUN: qwen-opt %s --qwen-select-schedule="target=cpu vector-width=16" | FileCheck %s --check-prefix=CPU16
// RUN: qwen-opt %s --qwen-select-schedule="target=cpu vector-width=8" | FileCheck %s --check-prefix=CPU8

// The cache-blocked prefill of the CPU matmul (steps of >= 16 tokens): a
// thread's weight rows in panels of at most 256 KiB of weights, walked in
// register tiles of 4 tokens x 4 weight rows (AVX-512; 4 x 2 with AVX2's 16
// registers). The panel follows the weights' row bytes, not the prompt: the
// activation rows stream through L1 once per panel whatever the token count
// (128 or 512), so one schedule serves every prefill length.
//
// Qwen3-0.6B: the fused gate/up (6144 x 1024) and q/k/v (4096 x 1024)
// projections take 128-row panels (256 KiB of bf16), the down projection
// (1024 x 3072) 40 rows (240 KiB; 42 rounded down to whole tiles), the tied
// lm_head (151936 x 1024) 128 rows; f32 weights half as many rows; FP8
// weights twice as many; a matrix smaller than a panel is one panel.

// CPU16-LABEL: func.func @gate_up_6144x1024(
// CPU16-SAME:  panel = 128, prefill_tile = [4, 4], prefill_tokens = 16>
// CPU16-LABEL: func.func @qkv_4096x1024(
// CPU16-SAME:  panel = 128, prefill_tile = [4, 4], prefill_tokens = 16>
// CPU16-LABEL: func.func @down_1024x3072(
// CPU16-SAME:  panel = 40, prefill_tile = [4, 4], prefill_tokens = 16>
// CPU16-LABEL: func.func @lm_head_151936x1024(
// CPU16-SAME:  panel = 128, prefill_tile = [4, 4], prefill_tokens = 16>
// CPU16-LABEL: func.func @f32_down_1024x3072(
// CPU16-SAME:  panel = 20, prefill_tile = [4, 4], prefill_tokens = 16>
// CPU16-LABEL: func.func @fp8_down_1024x3072(
// CPU16-SAME:  panel = 84, prefill_tile = [4, 4], prefill_tokens = 16>
// CPU16-LABEL: func.func @small_40x64(
// CPU16-SAME:  panel = 40, prefill_tile = [4, 4], prefill_tokens = 16>

// CPU8-LABEL: func.func @gate_up_6144x1024(
// CPU8-SAME:  panel = 128, prefill_tile = [4, 2], prefill_tokens = 16>
// CPU8-LABEL: func.func @qkv_4096x1024(
// CPU8-SAME:  panel = 128, prefill_tile = [4, 2], prefill_tokens = 16>
// CPU8-LABEL: func.func @down_1024x3072(
// CPU8-SAME:  panel = 42, prefill_tile = [4, 2], prefill_tokens = 16>
// CPU8-LABEL: func.func @lm_head_151936x1024(
// CPU8-SAME:  panel = 128, prefill_tile = [4, 2], prefill_tokens = 16>

module {
  module @kernels {
    func.func @gate_up_6144x1024(%x: tensor<?x1024xf32>, %w: tensor<6144x1024xbf16>) -> tensor<?x6144xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.linear %x, %w : tensor<?x1024xf32>, tensor<6144x1024xbf16> -> tensor<?x6144xf32>
      return %0 : tensor<?x6144xf32>
    }
    func.func @qkv_4096x1024(%x: tensor<?x1024xf32>, %w: tensor<4096x1024xbf16>) -> tensor<?x4096xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.linear %x, %w : tensor<?x1024xf32>, tensor<4096x1024xbf16> -> tensor<?x4096xf32>
      return %0 : tensor<?x4096xf32>
    }
    func.func @down_1024x3072(%x: tensor<?x3072xf32>, %w: tensor<1024x3072xbf16>, %r: tensor<?x1024xf32>) -> tensor<?x1024xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.linear %x, %w : tensor<?x3072xf32>, tensor<1024x3072xbf16> -> tensor<?x1024xf32>
      %1 = qtf.add %0, %r : tensor<?x1024xf32>
      return %1 : tensor<?x1024xf32>
    }
    func.func @lm_head_151936x1024(%x: tensor<?x1024xf32>, %w: tensor<151936x1024xbf16>) -> tensor<?x151936xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.linear %x, %w : tensor<?x1024xf32>, tensor<151936x1024xbf16> -> tensor<?x151936xf32>
      return %0 : tensor<?x151936xf32>
    }
    func.func @f32_down_1024x3072(%x: tensor<?x3072xf32>, %w: tensor<1024x3072xf32>) -> tensor<?x1024xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.linear %x, %w : tensor<?x3072xf32>, tensor<1024x3072xf32> -> tensor<?x1024xf32>
      return %0 : tensor<?x1024xf32>
    }
    func.func @fp8_down_1024x3072(%x: tensor<?x3072xf32>, %w: tensor<1024x3072xf8E4M3FN>, %s: tensor<8x24xf32>) -> tensor<?x1024xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.linear %x, %w scale(%s : tensor<8x24xf32>) {weight_block = array<i64: 128, 128>} : tensor<?x3072xf32>, tensor<1024x3072xf8E4M3FN> -> tensor<?x1024xf32>
      return %0 : tensor<?x1024xf32>
    }
    func.func @small_40x64(%x: tensor<?x64xf32>, %w: tensor<40x64xbf16>) -> tensor<?x40xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.linear %x, %w : tensor<?x64xf32>, tensor<40x64xbf16> -> tensor<?x40xf32>
      return %0 : tensor<?x40xf32>
    }
  }
}
