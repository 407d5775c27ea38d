// RUN: qwen-opt %s --qwen-select-schedule="target=cpu vector-width=16 cpu-features=avx512f,avx512bf16 bf16-activations=round" | FileCheck %s
// RUN: qwen-opt %s --qwen-select-schedule="target=cpu vector-width=16 cpu-features=avx512f,avx512bf16,avx512vl bf16-activations=round" | FileCheck %s --check-prefix=VL

// bf16 weights dotted by 16-lane vdpbf16ps take the packed prefill layout
// (BlockedMatmul.cpp): register tiles of 6 tokens x 64 weight rows (6 x 4
// accumulators of 16 rows each, 4 packed weight vectors and the activation
// broadcasts in AVX-512's 32 registers), panels of whole 64-row tiles whose
// bf16 weights fit 256 KiB, at least one tile.
//
// Qwen3-0.6B: gate/up (6144 x 1024) and q/k/v (4096 x 1024) 128-row panels,
// o_proj (1024 x 2048) 64 rows, down (1024 x 3072) 64 rows (42 by bytes,
// raised to a whole tile: 384 KiB, still in a Zen 4 core's 1 MiB L2); a
// matrix smaller than a tile is one tile-sized panel. A reduction length the
// 16-lane dot does not fit (k = 48: 8 lanes with avx512vl) keeps the 4 x 4
// tiles, as do f32 weights (fma) and rows longer than 4096 (the packed
// panel is stack scratch: at most 512 KiB).

// CHECK-LABEL: func.func @gate_up_6144x1024(
// CHECK-SAME:  dot = avx512_bf16_round, decode_tile = [4, 1], panel = 128, prefill_tile = [6, 64], prefill_tokens = 16>
// CHECK-LABEL: func.func @qkv_4096x1024(
// CHECK-SAME:  panel = 128, prefill_tile = [6, 64], prefill_tokens = 16>
// CHECK-LABEL: func.func @o_proj_1024x2048(
// CHECK-SAME:  panel = 64, prefill_tile = [6, 64], prefill_tokens = 16>
// CHECK-LABEL: func.func @down_1024x3072(
// CHECK-SAME:  panel = 64, prefill_tile = [6, 64], prefill_tokens = 16>
// CHECK-LABEL: func.func @small_40x64(
// CHECK-SAME:  panel = 64, prefill_tile = [6, 64], prefill_tokens = 16>
// CHECK-LABEL: func.func @long_rows_1024x6144(
// CHECK-SAME:  dot = avx512_bf16_round, decode_tile = [1, 1], panel = 20, prefill_tile = [4, 4], prefill_tokens = 16>
// CHECK-LABEL: func.func @f32_down_1024x3072(
// CHECK-SAME:  dot = fma, decode_tile = [1, 1], panel = 20, prefill_tile = [4, 4], prefill_tokens = 16>

// VL-LABEL: func.func @k48_40x48(
// VL-SAME:  dot = avx512_bf16_round, decode_tile = [4, 1], panel = 40, prefill_tile = [4, 4], prefill_tokens = 16>

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
    func.func @o_proj_1024x2048(%x: tensor<?x2048xf32>, %w: tensor<1024x2048xbf16>, %r: tensor<?x1024xf32>) -> tensor<?x1024xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.linear %x, %w : tensor<?x2048xf32>, tensor<1024x2048xbf16> -> tensor<?x1024xf32>
      %1 = qtf.add %0, %r : tensor<?x1024xf32>
      return %1 : tensor<?x1024xf32>
    }
    func.func @down_1024x3072(%x: tensor<?x3072xf32>, %w: tensor<1024x3072xbf16>, %r: tensor<?x1024xf32>) -> tensor<?x1024xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.linear %x, %w : tensor<?x3072xf32>, tensor<1024x3072xbf16> -> tensor<?x1024xf32>
      %1 = qtf.add %0, %r : tensor<?x1024xf32>
      return %1 : tensor<?x1024xf32>
    }
    func.func @small_40x64(%x: tensor<?x64xf32>, %w: tensor<40x64xbf16>) -> tensor<?x40xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.linear %x, %w : tensor<?x64xf32>, tensor<40x64xbf16> -> tensor<?x40xf32>
      return %0 : tensor<?x40xf32>
    }
    func.func @long_rows_1024x6144(%x: tensor<?x6144xf32>, %w: tensor<1024x6144xbf16>) -> tensor<?x1024xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.linear %x, %w : tensor<?x6144xf32>, tensor<1024x6144xbf16> -> tensor<?x1024xf32>
      return %0 : tensor<?x1024xf32>
    }
    func.func @f32_down_1024x3072(%x: tensor<?x3072xf32>, %w: tensor<1024x3072xf32>) -> tensor<?x1024xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.linear %x, %w : tensor<?x3072xf32>, tensor<1024x3072xf32> -> tensor<?x1024xf32>
      return %0 : tensor<?x1024xf32>
    }
    func.func @k48_40x48(%x: tensor<?x48xf32>, %w: tensor<40x48xbf16>) -> tensor<?x40xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.linear %x, %w : tensor<?x48xf32>, tensor<40x48xbf16> -> tensor<?x40xf32>
      return %0 : tensor<?x40xf32>
    }
  }
}
