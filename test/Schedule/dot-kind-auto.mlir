// RUN: qwen-opt %s --qwen-select-schedule="vector-width=16 cpu-features=avx512f,avx512bf16" | FileCheck %s
// RUN: qwen-opt %s --qwen-select-schedule="vector-width=16 cpu-features=avx512f,avx512bf16 bf16-activations=off" | FileCheck %s --check-prefix=OFF
// RUN: qwen-opt %s --qwen-select-schedule="vector-width=16 cpu-features=avx512f" | FileCheck %s --check-prefix=OFF
// RUN: qwen-opt %s --qwen-select-schedule="vector-width=16 cpu-features=avx512f,avx512bf16 bf16-activations=round" | FileCheck %s --check-prefix=ROUND

// bf16-activations=auto (the default) on an AVX512-BF16 target: the
// decoder's bf16 GEMMs (here the projection and the experts) round their f32
// activations to bf16 on every tile, while the kernels whose results decide
// the logits (the matmul @step returns: the lm_head) or the routing (the
// matmul a router kernel reads) keep f32 FMAs. @step then records that the
// artifact rounds (qkernel.gemm_activations, the manifest's
// target.gemm_activations). Without the feature, or with off, nothing rounds
// and @step records nothing; round rounds every GEMM.

// CHECK-LABEL: func.func @step(
// CHECK-SAME:  qkernel.gemm_activations = bf16
// CHECK-LABEL: func.func @proj(
// CHECK-SAME:  dot = avx512_bf16_round, decode_tile = [4, 1], panel
// CHECK-LABEL: func.func @gate(
// CHECK-SAME:  dot = fma, decode_tile = [4, 1], panel
// CHECK-LABEL: func.func @experts(
// CHECK-SAME:  tile = [4, 64, 64], dot = avx512_bf16_round, panel
// CHECK-LABEL: func.func @lm_head(
// CHECK-SAME:  dot = fma, decode_tile = [4, 1], panel

// OFF-NOT:     gemm_activations
// OFF-NOT:     avx512_bf16

// ROUND-LABEL: func.func @step(
// ROUND-SAME:  qkernel.gemm_activations = bf16
// ROUND-LABEL: func.func @proj(
// ROUND-SAME:  dot = avx512_bf16_round,
// ROUND-LABEL: func.func @gate(
// ROUND-SAME:  dot = avx512_bf16_round,
// ROUND-LABEL: func.func @experts(
// ROUND-SAME:  dot = avx512_bf16_round, panel
// ROUND-LABEL: func.func @lm_head(
// ROUND-SAME:  dot = avx512_bf16_round,

module {
  func.func @step(%x: tensor<?x64xf32>, %rows: tensor<?xi32>, %wp: tensor<64x64xbf16>, %wg: tensor<8x64xbf16>, %gu: tensor<512x64xbf16>, %down: tensor<512x32xbf16>, %wl: tensor<512x64xbf16>) -> tensor<?x512xf32> {
    %h = qkernel.launch @kernels::@proj(%x, %wp) : (tensor<?x64xf32>, tensor<64x64xbf16>) -> tensor<?x64xf32>
    %logits = qkernel.launch @kernels::@gate(%h, %wg) : (tensor<?x64xf32>, tensor<8x64xbf16>) -> tensor<?x8xf32>
    %ids, %weights = qkernel.launch @kernels::@router(%logits) : (tensor<?x8xf32>) -> (tensor<?x2xi32>, tensor<?x2xf32>)
    %e = qkernel.launch @kernels::@experts(%h, %ids, %weights, %gu, %down) : (tensor<?x64xf32>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<512x64xbf16>, tensor<512x32xbf16>) -> tensor<?x2x64xf32>
    %out = qkernel.launch @kernels::@lm_head(%h, %rows, %wl) : (tensor<?x64xf32>, tensor<?xi32>, tensor<512x64xbf16>) -> tensor<?x512xf32>
    return %out : tensor<?x512xf32>
  }
  module @kernels {
    func.func @proj(%x: tensor<?x64xf32>, %w: tensor<64x64xbf16>) -> tensor<?x64xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.linear %x, %w : tensor<?x64xf32>, tensor<64x64xbf16> -> tensor<?x64xf32>
      return %0 : tensor<?x64xf32>
    }
    func.func @gate(%x: tensor<?x64xf32>, %w: tensor<8x64xbf16>) -> tensor<?x8xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.linear %x, %w : tensor<?x64xf32>, tensor<8x64xbf16> -> tensor<?x8xf32>
      return %0 : tensor<?x8xf32>
    }
    func.func @router(%x: tensor<?x8xf32>) -> (tensor<?x2xi32>, tensor<?x2xf32>) attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<router>} {
      %ids, %weights = qtf.moe_router %x {normalize, top_k = 2 : i64} : tensor<?x8xf32> -> tensor<?x2xi32>, tensor<?x2xf32>
      return %ids, %weights : tensor<?x2xi32>, tensor<?x2xf32>
    }
    func.func @experts(%x: tensor<?x64xf32>, %ids: tensor<?x2xi32>, %w: tensor<?x2xf32>, %gu: tensor<512x64xbf16>, %down: tensor<512x32xbf16>) -> tensor<?x2x64xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<experts>} {
      %0 = qtf.moe_expert_ffn %x, %ids, %w, %gu, %down {intermediate_size = 32 : i64, num_experts = 8 : i64} : tensor<?x64xf32>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<512x64xbf16>, tensor<512x32xbf16> -> tensor<?x2x64xf32>
      return %0 : tensor<?x2x64xf32>
    }
    func.func @lm_head(%x: tensor<?x64xf32>, %rows: tensor<?xi32>, %w: tensor<512x64xbf16>) -> tensor<?x512xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.gather_rows %x[%rows] : tensor<?x64xf32>, tensor<?xi32> -> tensor<?x64xf32>
      %1 = qtf.linear %0, %w : tensor<?x64xf32>, tensor<512x64xbf16> -> tensor<?x512xf32>
      return %1 : tensor<?x512xf32>
    }
  }
}
