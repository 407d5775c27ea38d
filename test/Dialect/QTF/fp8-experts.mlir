// RUN: qwen-opt %s -split-input-file -verify-diagnostics | FileCheck %s

// Block-wise FP8 experts: f8E4M3FN gate_up / down with one block grid per
// expert matrix: gate_up_scale [E * 2 * ceil(I/br), ceil(H/bc)] (I = 24 in
// blocks of 16: 2 block rows per gate and per up matrix), down_scale
// [E * ceil(H/br), ceil(I/bc)] (H = 48: 3 block rows, I = 24 < 32: 1 column).
// CHECK-LABEL: func.func @fp8_experts
// CHECK: qtf.moe_expert_ffn %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} scale(%{{.*}} : tensor<16x2xf32>), %{{.*}} scale(%{{.*}} : tensor<12x1xf32>) {intermediate_size = 24 : i64, num_experts = 4 : i64, weight_block = array<i64: 16, 32>}
func.func @fp8_experts(%x: tensor<?x48xf32>, %ids: tensor<?x2xi32>, %w: tensor<?x2xf32>) -> tensor<?x2x48xf32> {
  %gu = qtf.weight ["e.gate_up_proj"] : tensor<192x48xf8E4M3FN>
  %gus = qtf.weight ["e.gate_up_proj_scale_inv"] : tensor<16x2xf32>
  %d = qtf.weight ["e.down_proj"] : tensor<192x24xf8E4M3FN>
  %ds = qtf.weight ["e.down_proj_scale_inv"] : tensor<12x1xf32>
  %y = qtf.moe_expert_ffn %x, %ids, %w, %gu scale(%gus : tensor<16x2xf32>), %d scale(%ds : tensor<12x1xf32>)
       {intermediate_size = 24 : i64, num_experts = 4 : i64, weight_block = array<i64: 16, 32>}
       : tensor<?x48xf32>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<192x48xf8E4M3FN>, tensor<192x24xf8E4M3FN> -> tensor<?x2x48xf32>
  return %y : tensor<?x2x48xf32>
}

// -----

func.func @fp8_experts_without_scales(%x: tensor<?x48xf32>, %ids: tensor<?x2xi32>, %w: tensor<?x2xf32>,
                                      %gu: tensor<192x48xf8E4M3FN>, %d: tensor<192x24xf8E4M3FN>) {
  // expected-error @+1 {{block-wise FP8 experts need f8E4M3FN gate_up and down weights, both scales and weight_block}}
  %y = qtf.moe_expert_ffn %x, %ids, %w, %gu, %d {intermediate_size = 24 : i64, num_experts = 4 : i64}
       : tensor<?x48xf32>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<192x48xf8E4M3FN>, tensor<192x24xf8E4M3FN> -> tensor<?x2x48xf32>
  return
}

// -----

func.func @fp8_experts_flat_scale_grid(%x: tensor<?x48xf32>, %ids: tensor<?x2xi32>, %w: tensor<?x2xf32>,
                                       %gu: tensor<192x48xf8E4M3FN>, %gus: tensor<12x2xf32>,
                                       %d: tensor<192x24xf8E4M3FN>, %ds: tensor<12x1xf32>) {
  // A grid over the stacked rows (192 / 16 = 12) is not one per matrix.
  // expected-error @+1 {{gate_up_scale shape [12, 2] does not match 8 matrices of 24x48 in blocks of 16x32, which needs [16, 2]}}
  %y = qtf.moe_expert_ffn %x, %ids, %w, %gu scale(%gus : tensor<12x2xf32>), %d scale(%ds : tensor<12x1xf32>)
       {intermediate_size = 24 : i64, num_experts = 4 : i64, weight_block = array<i64: 16, 32>}
       : tensor<?x48xf32>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<192x48xf8E4M3FN>, tensor<192x24xf8E4M3FN> -> tensor<?x2x48xf32>
  return
}

// -----

func.func @fp8_experts_scale_on_bf16(%x: tensor<?x48xf32>, %ids: tensor<?x2xi32>, %w: tensor<?x2xf32>,
                                     %gu: tensor<192x48xbf16>, %gus: tensor<16x2xf32>,
                                     %d: tensor<192x24xbf16>, %ds: tensor<12x1xf32>) {
  // expected-error @+1 {{block-wise FP8 experts need f8E4M3FN gate_up and down weights}}
  %y = qtf.moe_expert_ffn %x, %ids, %w, %gu scale(%gus : tensor<16x2xf32>), %d scale(%ds : tensor<12x1xf32>)
       {intermediate_size = 24 : i64, num_experts = 4 : i64, weight_block = array<i64: 16, 32>}
       : tensor<?x48xf32>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<192x48xbf16>, tensor<192x24xbf16> -> tensor<?x2x48xf32>
  return
}
