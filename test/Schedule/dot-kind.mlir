// RUN: qwen-opt %s --qwen-select-schedule="vector-width=16 cpu-features=avx512f,avx512bf16 bf16-activations=split" | FileCheck %s --check-prefix=SPLIT
// RUN: qwen-opt %s --qwen-select-schedule="vector-width=16 cpu-features=avx512f,avx512bf16 bf16-activations=round" | FileCheck %s --check-prefix=ROUND
// RUN: qwen-opt %s --qwen-select-schedule="vector-width=16 cpu-features=avx512f" | FileCheck %s --check-prefix=NOBF16
// off: the same FMA tiles as without the feature.
// RUN: qwen-opt %s --qwen-select-schedule="vector-width=16 cpu-features=avx512f,avx512bf16 bf16-activations=off" | FileCheck %s --check-prefix=NOBF16
// auto (the default) rounds as round here: no kernel feeds logits or a router
// (dot-kind-auto.mlir has those).
// RUN: qwen-opt %s --qwen-select-schedule="vector-width=16 cpu-features=avx512f,avx512bf16" | FileCheck %s --check-prefix=ROUND
// RUN: qwen-opt %s --qwen-select-schedule="vector-width=16 cpu-features=avx512f,avx512bf16,avx512vl bf16-activations=split" | FileCheck %s --check-prefix=VL

// The dot kind of CPU matmul and experts tiles, from the target's features
// and the operand types. bf16 weights on an AVX512-BF16 target: with split
// the one-token (decode) tiles dot the f32 activations as
// bf16 hi + lo (decode_dot) while the 4-token (prefill) tiles keep f32 FMAs
// (dot); with round every tile dots rounded activations (no decode_dot: as
// dot). f32 / f16 weights, a target without avx512bf16, or a reduction length
// that the 512-bit dot does not fit (48: the narrower forms need avx512vl)
// keep FMAs. bf16 activations are exact in bf16: round on every tile.

// SPLIT-LABEL: func.func @bf16_weights(
// SPLIT-SAME:  #qkernel.schedule<target = cpu, grain = 8, vector_width = 16, tile = [4, 2], dot = fma, decode_tile = [4, 1], decode_dot = avx512_bf16_split, panel = {{[0-9]+}}, prefill_tile = [4, 4], prefill_tokens = 16>
// SPLIT-LABEL: func.func @f32_weights(
// SPLIT-SAME:  #qkernel.schedule<target = cpu, grain = 8, vector_width = 16, tile = [4, 2], dot = fma, decode_tile = [4, 1], panel = {{[0-9]+}}, prefill_tile = [4, 4], prefill_tokens = 16>
// SPLIT-LABEL: func.func @f16_weights(
// SPLIT-SAME:  #qkernel.schedule<target = cpu, grain = 8, vector_width = 16, tile = [4, 2], dot = fma, decode_tile = [4, 1], panel = {{[0-9]+}}, prefill_tile = [4, 4], prefill_tokens = 16>
// SPLIT-LABEL: func.func @k48(
// SPLIT-SAME:  #qkernel.schedule<target = cpu, grain = 8, vector_width = 16, tile = [4, 2], dot = fma, decode_tile = [4, 1], panel = {{[0-9]+}}, prefill_tile = [4, 4], prefill_tokens = 16>
// SPLIT-LABEL: func.func @bf16_activations(
// SPLIT-SAME:  #qkernel.schedule<target = cpu, grain = 8, vector_width = 16, tile = [4, 2], dot = avx512_bf16_round, decode_tile = [4, 1], panel = {{[0-9]+}}, prefill_tile = [6, 64], prefill_tokens = 16>
// SPLIT-LABEL: func.func @experts(
// SPLIT-SAME:  #qkernel.schedule<target = cpu, grain = 1, vector_width = 16, tile = [4, 64, 64], dot = fma, decode_dot = avx512_bf16_split, panel = 32, prefill_tile = [4, 4], prefill_tokens = 16>
// SPLIT-LABEL: func.func @rows(
// SPLIT-SAME:  #qkernel.schedule<target = cpu, grain = 1, vector_width = 16>

// ROUND-LABEL: func.func @bf16_weights(
// ROUND-SAME:  #qkernel.schedule<target = cpu, grain = 8, vector_width = 16, tile = [4, 2], dot = avx512_bf16_round, decode_tile = [4, 1], panel = {{[0-9]+}}, prefill_tile = [6, 64], prefill_tokens = 16>
// ROUND-LABEL: func.func @f32_weights(
// ROUND-SAME:  dot = fma, decode_tile = [4, 1], panel = {{[0-9]+}}, prefill_tile = [4, 4], prefill_tokens = 16>
// ROUND-LABEL: func.func @f16_weights(
// ROUND-SAME:  dot = fma, decode_tile = [4, 1], panel = {{[0-9]+}}, prefill_tile = [4, 4], prefill_tokens = 16>
// ROUND-LABEL: func.func @k48(
// ROUND-SAME:  dot = fma, decode_tile = [4, 1], panel = {{[0-9]+}}, prefill_tile = [4, 4], prefill_tokens = 16>
// ROUND-LABEL: func.func @bf16_activations(
// ROUND-SAME:  dot = avx512_bf16_round, decode_tile = [4, 1], panel = {{[0-9]+}}, prefill_tile = [6, 64], prefill_tokens = 16>
// ROUND-LABEL: func.func @experts(
// ROUND-SAME:  tile = [4, 64, 64], dot = avx512_bf16_round, panel = 32, prefill_tile = [4, 4], prefill_tokens = 16>

// NOBF16-NOT:  avx512_bf16
// NOBF16-LABEL: func.func @bf16_weights(
// NOBF16-SAME:  dot = fma, decode_tile = [4, 1], panel = {{[0-9]+}}, prefill_tile = [4, 4], prefill_tokens = 16>
// NOBF16-LABEL: func.func @experts(
// NOBF16-SAME:  tile = [4, 64, 64], dot = fma, panel = 32, prefill_tile = [4, 4], prefill_tokens = 16>
// NOBF16-NOT:  avx512_bf16

// With avx512vl the 256-bit dot fits a reduction of 48.
// VL-LABEL: func.func @k48(
// VL-SAME:  dot = fma, decode_tile = [4, 1], decode_dot = avx512_bf16_split, panel = {{[0-9]+}}, prefill_tile = [4, 4], prefill_tokens = 16>

module {
  module @kernels {
    func.func @bf16_weights(%x: tensor<?x64xf32>, %w: tensor<40x64xbf16>) -> tensor<?x40xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.linear %x, %w : tensor<?x64xf32>, tensor<40x64xbf16> -> tensor<?x40xf32>
      return %0 : tensor<?x40xf32>
    }
    func.func @f32_weights(%x: tensor<?x64xf32>, %w: tensor<40x64xf32>) -> tensor<?x40xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.linear %x, %w : tensor<?x64xf32>, tensor<40x64xf32> -> tensor<?x40xf32>
      return %0 : tensor<?x40xf32>
    }
    func.func @f16_weights(%x: tensor<?x64xf32>, %w: tensor<40x64xf16>) -> tensor<?x40xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.linear %x, %w : tensor<?x64xf32>, tensor<40x64xf16> -> tensor<?x40xf32>
      return %0 : tensor<?x40xf32>
    }
    func.func @k48(%x: tensor<?x48xf32>, %w: tensor<40x48xbf16>) -> tensor<?x40xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.linear %x, %w : tensor<?x48xf32>, tensor<40x48xbf16> -> tensor<?x40xf32>
      return %0 : tensor<?x40xf32>
    }
    func.func @bf16_activations(%x: tensor<?x64xbf16>, %w: tensor<40x64xbf16>) -> tensor<?x40xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.linear %x, %w : tensor<?x64xbf16>, tensor<40x64xbf16> -> tensor<?x40xf32>
      return %0 : tensor<?x40xf32>
    }
    func.func @experts(%x: tensor<?x64xf32>, %ids: tensor<?x2xi32>, %w: tensor<?x2xf32>, %gu: tensor<512x64xbf16>, %down: tensor<512x32xbf16>) -> tensor<?x2x64xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<experts>} {
      %0 = qtf.moe_expert_ffn %x, %ids, %w, %gu, %down {intermediate_size = 32 : i64, num_experts = 8 : i64} : tensor<?x64xf32>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<512x64xbf16>, tensor<512x32xbf16> -> tensor<?x2x64xf32>
      return %0 : tensor<?x2x64xf32>
    }
    func.func @rows(%x: tensor<?x64xf32>) -> tensor<?x64xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<elementwise>} {
      %0 = qtf.add %x, %x : tensor<?x64xf32>
      return %0 : tensor<?x64xf32>
    }
  }
}
