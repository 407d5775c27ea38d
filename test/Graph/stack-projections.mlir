// RUN: qwen-opt %s --split-input-file --pass-pipeline="builtin.module(func.func(qwen-graph-stack-projections))" | FileCheck %s

// q, k and v read the same input: one linear over the stacked weight.
// CHECK-LABEL: func.func @qkv
// CHECK-DAG:   %[[W:.+]] = qtf.weight ["q.weight", "k.weight", "v.weight"] : tensor<96x32xbf16>
// CHECK:       %[[L:.+]] = qtf.linear %{{.*}}, %[[W]] : tensor<?x32xf32>, tensor<96x32xbf16> -> tensor<?x96xf32>
// CHECK:       %[[S:.+]]:3 = qtf.split %[[L]] [64, 16, 16]
// CHECK:       return %[[S]]#0, %[[S]]#1, %[[S]]#2
func.func @qkv(%x: tensor<?x32xf32>) -> (tensor<?x64xf32>, tensor<?x16xf32>, tensor<?x16xf32>) {
  %wq = qtf.weight ["q.weight"] : tensor<64x32xbf16>
  %wk = qtf.weight ["k.weight"] : tensor<16x32xbf16>
  %wv = qtf.weight ["v.weight"] : tensor<16x32xbf16>
  %q = qtf.linear %x, %wq : tensor<?x32xf32>, tensor<64x32xbf16> -> tensor<?x64xf32>
  %k = qtf.linear %x, %wk : tensor<?x32xf32>, tensor<16x32xbf16> -> tensor<?x16xf32>
  %v = qtf.linear %x, %wv : tensor<?x32xf32>, tensor<16x32xbf16> -> tensor<?x16xf32>
  return %q, %k, %v : tensor<?x64xf32>, tensor<?x16xf32>, tensor<?x16xf32>
}

// -----

// Biases are stacked the same way.
// CHECK-LABEL: func.func @with_bias
// CHECK-DAG:   %[[W:.+]] = qtf.weight ["a.weight", "b.weight"] : tensor<48x32xf16>
// CHECK-DAG:   %[[B:.+]] = qtf.weight ["a.bias", "b.bias"] : tensor<48xf16>
// CHECK:       qtf.linear %{{.*}}, %[[W]] bias %[[B]]
func.func @with_bias(%x: tensor<?x32xf32>) -> (tensor<?x32xf32>, tensor<?x16xf32>) {
  %wa = qtf.weight ["a.weight"] : tensor<32x32xf16>
  %ba = qtf.weight ["a.bias"] : tensor<32xf16>
  %wb = qtf.weight ["b.weight"] : tensor<16x32xf16>
  %bb = qtf.weight ["b.bias"] : tensor<16xf16>
  %a = qtf.linear %x, %wa bias %ba : tensor<?x32xf32>, tensor<32x32xf16>, tensor<32xf16> -> tensor<?x32xf32>
  %b = qtf.linear %x, %wb bias %bb : tensor<?x32xf32>, tensor<16x32xf16>, tensor<16xf16> -> tensor<?x16xf32>
  return %a, %b : tensor<?x32xf32>, tensor<?x16xf32>
}

// -----

// Different weight dtypes or different inputs are left alone.
// CHECK-LABEL: func.func @not_stackable
// CHECK-NOT:   qtf.split
// CHECK-COUNT-3: qtf.linear
func.func @not_stackable(%x: tensor<?x32xf32>, %y: tensor<?x32xf32>) -> (tensor<?x16xf32>, tensor<?x16xf32>, tensor<?x16xf32>) {
  %w1 = qtf.weight ["a"] : tensor<16x32xbf16>
  %w2 = qtf.weight ["b"] : tensor<16x32xf32>
  %w3 = qtf.weight ["c"] : tensor<16x32xbf16>
  %a = qtf.linear %x, %w1 : tensor<?x32xf32>, tensor<16x32xbf16> -> tensor<?x16xf32>
  %b = qtf.linear %x, %w2 : tensor<?x32xf32>, tensor<16x32xf32> -> tensor<?x16xf32>
  %c = qtf.linear %y, %w3 : tensor<?x32xf32>, tensor<16x32xbf16> -> tensor<?x16xf32>
  return %a, %b, %c : tensor<?x16xf32>, tensor<?x16xf32>, tensor<?x16xf32>
}

// -----

// Block-wise FP8 q|k|v whose row counts are multiples of the block rows:
// the weights stack and so do their scales.
// CHECK-LABEL: func.func @fp8_qkv
// CHECK-DAG:   %[[W:.+]] = qtf.weight ["q.weight", "k.weight", "v.weight"] : tensor<128x64xf8E4M3FN>
// CHECK-DAG:   %[[S:.+]] = qtf.weight ["q.weight_scale_inv", "k.weight_scale_inv", "v.weight_scale_inv"] : tensor<4x2xf32>
// CHECK:       %[[L:.+]] = qtf.linear %{{.*}}, %[[W]] scale(%[[S]] : tensor<4x2xf32>) {weight_block = array<i64: 32, 32>} : tensor<?x64xf32>, tensor<128x64xf8E4M3FN> -> tensor<?x128xf32>
// CHECK:       qtf.split %[[L]] [64, 32, 32]
func.func @fp8_qkv(%x: tensor<?x64xf32>) -> (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>) {
  %wq = qtf.weight ["q.weight"] : tensor<64x64xf8E4M3FN>
  %sq = qtf.weight ["q.weight_scale_inv"] : tensor<2x2xf32>
  %wk = qtf.weight ["k.weight"] : tensor<32x64xf8E4M3FN>
  %sk = qtf.weight ["k.weight_scale_inv"] : tensor<1x2xf32>
  %wv = qtf.weight ["v.weight"] : tensor<32x64xf8E4M3FN>
  %sv = qtf.weight ["v.weight_scale_inv"] : tensor<1x2xf32>
  %q = qtf.linear %x, %wq scale(%sq : tensor<2x2xf32>) {weight_block = array<i64: 32, 32>} : tensor<?x64xf32>, tensor<64x64xf8E4M3FN> -> tensor<?x64xf32>
  %k = qtf.linear %x, %wk scale(%sk : tensor<1x2xf32>) {weight_block = array<i64: 32, 32>} : tensor<?x64xf32>, tensor<32x64xf8E4M3FN> -> tensor<?x32xf32>
  %v = qtf.linear %x, %wv scale(%sv : tensor<1x2xf32>) {weight_block = array<i64: 32, 32>} : tensor<?x64xf32>, tensor<32x64xf8E4M3FN> -> tensor<?x32xf32>
  return %q, %k, %v : tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>
}

// -----

// gate|up of 48 rows in blocks of 32: a stacked block would mix rows of the
// two sources, so both stay apart.
// CHECK-LABEL: func.func @fp8_ragged
// CHECK-NOT:   qtf.split
// CHECK:       qtf.linear %{{.*}}, %{{.*}} scale(%{{.*}} : tensor<2x2xf32>)
// CHECK:       qtf.linear %{{.*}}, %{{.*}} scale(%{{.*}} : tensor<2x2xf32>)
func.func @fp8_ragged(%x: tensor<?x64xf32>) -> (tensor<?x48xf32>, tensor<?x48xf32>) {
  %wg = qtf.weight ["gate.weight"] : tensor<48x64xf8E4M3FN>
  %sg = qtf.weight ["gate.weight_scale_inv"] : tensor<2x2xf32>
  %wu = qtf.weight ["up.weight"] : tensor<48x64xf8E4M3FN>
  %su = qtf.weight ["up.weight_scale_inv"] : tensor<2x2xf32>
  %g = qtf.linear %x, %wg scale(%sg : tensor<2x2xf32>) {weight_block = array<i64: 32, 32>} : tensor<?x64xf32>, tensor<48x64xf8E4M3FN> -> tensor<?x48xf32>
  %u = qtf.linear %x, %wu scale(%su : tensor<2x2xf32>) {weight_block = array<i64: 32, 32>} : tensor<?x64xf32>, tensor<48x64xf8E4M3FN> -> tensor<?x48xf32>
  return %g, %u : tensor<?x48xf32>, tensor<?x48xf32>
}
