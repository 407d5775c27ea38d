// RUN: qwen-opt %s | qwen-opt | FileCheck %s

// One vision block and the patch merger, as models/qwen3/Qwen3VisionBuilder emits them.
// CHECK-LABEL: func.func @vision
func.func @vision(%pixels: tensor<?x1536xf32>, %idx: tensor<?x4xi32>, %w4: tensor<?x4xf32>,
                  %cos: tensor<?x8xf32>, %sin: tensor<?x8xf32>, %bounds: tensor<?x2xi32>)
    -> tensor<?x96xf32> {
  %pw = qtf.weight ["model.visual.patch_embed.proj.weight"] : tensor<64x1536xf32>
  %pb = qtf.weight ["model.visual.patch_embed.proj.bias"] : tensor<64xf32>
  %x0 = qtf.linear %pixels, %pw bias %pb : tensor<?x1536xf32>, tensor<64x1536xf32>, tensor<64xf32> -> tensor<?x64xf32>
  %table = qtf.weight ["model.visual.pos_embed.weight"] : tensor<256x64xf32>
  // CHECK: qtf.weighted_gather %{{.*}}[%{{.*}}], %{{.*}} : tensor<256x64xf32>, tensor<?x4xi32>, tensor<?x4xf32> -> tensor<?x64xf32>
  %pos = qtf.weighted_gather %table[%idx], %w4 : tensor<256x64xf32>, tensor<?x4xi32>, tensor<?x4xf32> -> tensor<?x64xf32>
  %x = qtf.add %x0, %pos : tensor<?x64xf32>
  %nw = qtf.weight ["n.weight"] : tensor<64xf32>
  %nb = qtf.weight ["n.bias"] : tensor<64xf32>
  // CHECK: qtf.layer_norm %{{.*}}, %{{.*}}, %{{.*}} {epsilon = 9.9999999999999995E-7 : f64}
  %xn = qtf.layer_norm %x, %nw, %nb {epsilon = 1.0e-6 : f64} : tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32> -> tensor<?x64xf32>
  %q = qtf.reshape %xn : tensor<?x64xf32> -> tensor<?x4x16xf32>
  // CHECK: qtf.rotary_embedding %{{.*}}, %{{.*}}, %{{.*}} : tensor<?x4x16xf32>, tensor<?x8xf32>, tensor<?x8xf32> -> tensor<?x4x16xf32>
  %qr = qtf.rotary_embedding %q, %cos, %sin : tensor<?x4x16xf32>, tensor<?x8xf32>, tensor<?x8xf32> -> tensor<?x4x16xf32>
  // CHECK: qtf.segment_attention {{.*}} {scale = 2.500000e-01 : f64}
  %o = qtf.segment_attention %qr, %qr, %q, %bounds {scale = 0.25 : f64} : tensor<?x4x16xf32>, tensor<?x4x16xf32>, tensor<?x4x16xf32>, tensor<?x2xi32> -> tensor<?x4x16xf32>
  %o2 = qtf.reshape %o : tensor<?x4x16xf32> -> tensor<?x64xf32>
  // CHECK: qtf.gelu %{{.*}} {approximation = #qtf.gelu_approximation<tanh>} : tensor<?x64xf32>
  %g = qtf.gelu %o2 {approximation = #qtf.gelu_approximation<tanh>} : tensor<?x64xf32>
  // CHECK: qtf.merge_rows %{{.*}} {factor = 4 : i64} : tensor<?x64xf32> -> tensor<?x256xf32>
  %m = qtf.merge_rows %g {factor = 4 : i64} : tensor<?x64xf32> -> tensor<?x256xf32>
  %f1 = qtf.weight ["fc1"] : tensor<256x256xf32>
  %h = qtf.linear %m, %f1 : tensor<?x256xf32>, tensor<256x256xf32> -> tensor<?x256xf32>
  // CHECK: qtf.gelu %{{.*}} {approximation = #qtf.gelu_approximation<erf>}
  %he = qtf.gelu %h {approximation = #qtf.gelu_approximation<erf>} : tensor<?x256xf32>
  %f2 = qtf.weight ["fc2"] : tensor<96x256xf32>
  %out = qtf.linear %he, %f2 : tensor<?x256xf32>, tensor<96x256xf32> -> tensor<?x96xf32>
  return %out : tensor<?x96xf32>
}
