// RUN: qwen-opt %s -split-input-file -verify-diagnostics | FileCheck %s

// Block-wise FP8: an f8E4M3FN weight, its f32 block scales [ceil(N/br),
// ceil(K/bc)] and the block; ragged last blocks (96 = 64 + 32) round up.
// CHECK-LABEL: func.func @fp8_linear
// CHECK: qtf.linear %{{.*}}, %{{.*}} scale(%{{.*}} : tensor<2x2xf32>) bias %{{.*}} {weight_block = array<i64: 64, 64>} : tensor<?x96xf32>, tensor<96x96xf8E4M3FN>, tensor<96xf32> -> tensor<?x96xf32>
func.func @fp8_linear(%x: tensor<?x96xf32>) -> tensor<?x96xf32> {
  %w = qtf.weight ["l.weight"] : tensor<96x96xf8E4M3FN>
  %s = qtf.weight ["l.weight_scale_inv"] : tensor<2x2xf32>
  %b = qtf.weight ["l.bias"] : tensor<96xf32>
  %y = qtf.linear %x, %w scale(%s : tensor<2x2xf32>) bias %b {weight_block = array<i64: 64, 64>}
       : tensor<?x96xf32>, tensor<96x96xf8E4M3FN>, tensor<96xf32> -> tensor<?x96xf32>
  return %y : tensor<?x96xf32>
}

// -----

func.func @fp8_without_scale(%x: tensor<?x64xf32>, %w: tensor<32x64xf8E4M3FN>) {
  // expected-error @+1 {{'qtf.linear' op an f8E4M3FN weight needs a block scale operand}}
  %y = qtf.linear %x, %w : tensor<?x64xf32>, tensor<32x64xf8E4M3FN> -> tensor<?x32xf32>
  return
}

// -----

func.func @scale_without_fp8(%x: tensor<?x64xf32>, %w: tensor<32x64xbf16>, %s: tensor<1x1xf32>) {
  // expected-error @+1 {{'qtf.linear' op a block scale operand needs an f8E4M3FN weight, got 'bf16'}}
  %y = qtf.linear %x, %w scale(%s : tensor<1x1xf32>) {weight_block = array<i64: 128, 128>} : tensor<?x64xf32>, tensor<32x64xbf16> -> tensor<?x32xf32>
  return
}

// -----

func.func @fp8_without_block(%x: tensor<?x64xf32>, %w: tensor<32x64xf8E4M3FN>, %s: tensor<1x1xf32>) {
  // expected-error @+1 {{'qtf.linear' op weight_block is required with a block scale and only with it}}
  %y = qtf.linear %x, %w scale(%s : tensor<1x1xf32>) : tensor<?x64xf32>, tensor<32x64xf8E4M3FN> -> tensor<?x32xf32>
  return
}

// -----

func.func @block_without_fp8(%x: tensor<?x64xf32>, %w: tensor<32x64xbf16>) {
  // expected-error @+1 {{'qtf.linear' op weight_block is required with a block scale and only with it}}
  %y = qtf.linear %x, %w {weight_block = array<i64: 128, 128>} : tensor<?x64xf32>, tensor<32x64xbf16> -> tensor<?x32xf32>
  return
}

// -----

func.func @bad_block(%x: tensor<?x64xf32>, %w: tensor<32x64xf8E4M3FN>, %s: tensor<1x1xf32>) {
  // expected-error @+1 {{'qtf.linear' op weight_block must be two positive sizes [rows, columns]}}
  %y = qtf.linear %x, %w scale(%s : tensor<1x1xf32>) {weight_block = array<i64: 0, 128>} : tensor<?x64xf32>, tensor<32x64xf8E4M3FN> -> tensor<?x32xf32>
  return
}

// -----

func.func @scale_shape(%x: tensor<?x96xf32>, %w: tensor<96x96xf8E4M3FN>, %s: tensor<1x2xf32>) {
  // expected-error @+1 {{'qtf.linear' op block scale shape [1, 2] does not match 'tensor<96x96xf8E4M3FN>' in blocks of 64x64, which needs [2, 2]}}
  %y = qtf.linear %x, %w scale(%s : tensor<1x2xf32>) {weight_block = array<i64: 64, 64>} : tensor<?x96xf32>, tensor<96x96xf8E4M3FN> -> tensor<?x96xf32>
  return
}

// -----

func.func @fp8_activations(%x: tensor<?x64xf8E4M3FN>, %w: tensor<32x64xf8E4M3FN>, %s: tensor<1x1xf32>) {
  // expected-error @+1 {{'qtf.linear' op fp8 is a weight format only; input and result must be wider floats}}
  %y = qtf.linear %x, %w scale(%s : tensor<1x1xf32>) {weight_block = array<i64: 128, 128>} : tensor<?x64xf8E4M3FN>, tensor<32x64xf8E4M3FN> -> tensor<?x32xf32>
  return
}

// -----

func.func @fp8_weight_rank() {
  // expected-error @+1 {{'qtf.weight' op an f8E4M3FN weight must be 2-D [out, in] (block-wise FP8)}}
  %w = qtf.weight ["e.weight"] : tensor<2x32x64xf8E4M3FN>
  return
}
