// RUN: qwen-opt %s --pass-pipeline="builtin.module(func.func(qwen-fusion-form-kernel-regions),qwen-fusion-outline-kernels)" | FileCheck %s

// The vision tower's ops (Qwen3VisionBuilder): the position-embedding blend,
// layer_norm, rotary_embedding, segment_attention and gelu are kernels of
// their own; the patch embedding's residual add joins its matmul; merge_rows
// is a view cloned into the merger's matmul, which reads the norm's rows.
// CHECK-LABEL: func.func @vision
// CHECK:       qkernel.launch @kernels::@[[GATHER:qk[0-9]+_weighted_gather]]
// CHECK:       qkernel.launch @kernels::@[[PATCH:qk[0-9]+_matmul]]
// CHECK:       qkernel.launch @kernels::@{{qk[0-9]+_layer_norm}}
// CHECK:       qkernel.launch @kernels::@{{qk[0-9]+_rotary}}
// CHECK:       qkernel.launch @kernels::@{{qk[0-9]+_segment_attention}}
// CHECK:       qkernel.launch @kernels::@{{qk[0-9]+_gelu}}
// CHECK:       qkernel.launch @kernels::@[[MERGER:qk[0-9]+_matmul]]
// CHECK-NOT:   qtf.merge_rows
// CHECK:       return
// CHECK:       func.func @[[PATCH]]
// CHECK:         qtf.linear
// CHECK-NEXT:    qtf.add
// CHECK:       func.func @[[MERGER]]
// CHECK:         qtf.merge_rows {{.*}} {factor = 4 : i64} : tensor<?x64xf32> -> tensor<?x256xf32>
// CHECK-NEXT:    qtf.linear
func.func @vision(%pixels: tensor<?x1536xf32> {qtf.input = "pixel_values"},
                  %idx: tensor<?x4xi32> {qtf.input = "pos_indices"},
                  %w4: tensor<?x4xf32> {qtf.input = "pos_weights"},
                  %cos: tensor<?x8xf32> {qtf.input = "rope_cos"},
                  %sin: tensor<?x8xf32> {qtf.input = "rope_sin"},
                  %bounds: tensor<?x2xi32> {qtf.input = "segment_bounds"}) -> tensor<?x256xf32> {
  %pw = qtf.weight ["patch.weight"] : tensor<64x1536xf32>
  %pb = qtf.weight ["patch.bias"] : tensor<64xf32>
  %x0 = qtf.linear %pixels, %pw bias %pb : tensor<?x1536xf32>, tensor<64x1536xf32>, tensor<64xf32> -> tensor<?x64xf32>
  %table = qtf.weight ["pos_embed.weight"] : tensor<256x64xf32>
  %pos = qtf.weighted_gather %table[%idx], %w4 : tensor<256x64xf32>, tensor<?x4xi32>, tensor<?x4xf32> -> tensor<?x64xf32>
  %x = qtf.add %x0, %pos : tensor<?x64xf32>
  %nw = qtf.weight ["n.weight"] : tensor<64xf32>
  %nb = qtf.weight ["n.bias"] : tensor<64xf32>
  %xn = qtf.layer_norm %x, %nw, %nb {epsilon = 1.0e-6 : f64} : tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32> -> tensor<?x64xf32>
  %q = qtf.reshape %xn : tensor<?x64xf32> -> tensor<?x4x16xf32>
  %qr = qtf.rotary_embedding %q, %cos, %sin : tensor<?x4x16xf32>, tensor<?x8xf32>, tensor<?x8xf32> -> tensor<?x4x16xf32>
  %o = qtf.segment_attention %qr, %qr, %qr, %bounds {scale = 0.25 : f64} : tensor<?x4x16xf32>, tensor<?x4x16xf32>, tensor<?x4x16xf32>, tensor<?x2xi32> -> tensor<?x4x16xf32>
  %o2 = qtf.reshape %o : tensor<?x4x16xf32> -> tensor<?x64xf32>
  %g = qtf.gelu %o2 {approximation = #qtf.gelu_approximation<tanh>} : tensor<?x64xf32>
  %m = qtf.merge_rows %g {factor = 4 : i64} : tensor<?x64xf32> -> tensor<?x256xf32>
  %f1 = qtf.weight ["fc1"] : tensor<256x256xf32>
  %h = qtf.linear %m, %f1 : tensor<?x256xf32>, tensor<256x256xf32> -> tensor<?x256xf32>
  return %h : tensor<?x256xf32>
}
