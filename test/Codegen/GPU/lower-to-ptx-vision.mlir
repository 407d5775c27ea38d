// The vision program of the tiny Qwen3.5 vision case (test/data/vision_tower/qwen35_f32) after
// the `outlined` stage (qwen-compile --vision --stop-after-stage=outlined --emit=mlir), with @vision
// renamed @step and the text model left out: the input of simt-numerics-vision.test.
// RUN: qwen-opt %s --qwen-select-schedule=target=cuda --qwen-gpu-lower-kernels --qwen-gpu-lower-to-nvvm > %t.mlir
// RUN: %python %S/extract-ptx.py < %t.mlir > %t.ptx
// RUN: ptxas -arch=sm_90 -O3 %t.ptx -o %t.cubin
// REQUIRES: ptxas
module {
  func.func @step(%arg0: tensor<?x1536xf32> {qtf.input = "pixel_values"}, %arg1: tensor<?x4xi32> {qtf.input = "pos_indices"}, %arg2: tensor<?x4xf32> {qtf.input = "pos_weights"}, %arg3: tensor<?x8xf32> {qtf.input = "rope_cos"}, %arg4: tensor<?x8xf32> {qtf.input = "rope_sin"}, %arg5: tensor<?x2xi32> {qtf.input = "segment_bounds"}) -> (tensor<?x32xf32> {qtf.output = "vision_embeddings"}) {
    %0 = qtf.weight ["model.visual.patch_embed.proj.weight"] : tensor<64x1536xf32>
    %1 = qtf.weight ["model.visual.patch_embed.proj.bias"] : tensor<64xf32>
    %2 = qtf.weight ["model.visual.pos_embed.weight"] : tensor<2304x64xf32>
    %3 = qkernel.launch @kernels::@qk17_weighted_gather(%2, %arg1, %arg2) : (tensor<2304x64xf32>, tensor<?x4xi32>, tensor<?x4xf32>) -> tensor<?x64xf32>
    %4 = qkernel.launch @kernels::@qk18_matmul(%arg0, %0, %1, %3) : (tensor<?x1536xf32>, tensor<64x1536xf32>, tensor<64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
    %5 = qtf.weight ["model.visual.blocks.0.norm1.weight"] : tensor<64xf32>
    %6 = qtf.weight ["model.visual.blocks.0.norm1.bias"] : tensor<64xf32>
    %7 = qkernel.launch @kernels::@qk19_layer_norm(%4, %5, %6) : (tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    %8 = qtf.weight ["model.visual.blocks.0.attn.qkv.weight"] : tensor<192x64xf32>
    %9 = qtf.weight ["model.visual.blocks.0.attn.qkv.bias"] : tensor<192xf32>
    %10 = qkernel.launch @kernels::@qk20_matmul(%7, %8, %9) : (tensor<?x64xf32>, tensor<192x64xf32>, tensor<192xf32>) -> tensor<?x192xf32>
    %11 = qkernel.launch @kernels::@qk21_rotary(%10, %arg3, %arg4) : (tensor<?x192xf32>, tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x4x16xf32>
    %12 = qkernel.launch @kernels::@qk22_rotary(%10, %arg3, %arg4) : (tensor<?x192xf32>, tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x4x16xf32>
    %13 = qkernel.launch @kernels::@qk23_segment_attention(%10, %11, %12, %arg5) : (tensor<?x192xf32>, tensor<?x4x16xf32>, tensor<?x4x16xf32>, tensor<?x2xi32>) -> tensor<?x4x16xf32>
    %14 = qtf.weight ["model.visual.blocks.0.attn.proj.weight"] : tensor<64x64xf32>
    %15 = qtf.weight ["model.visual.blocks.0.attn.proj.bias"] : tensor<64xf32>
    %16 = qkernel.launch @kernels::@qk24_matmul(%13, %14, %15, %4) : (tensor<?x4x16xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
    %17 = qtf.weight ["model.visual.blocks.0.norm2.weight"] : tensor<64xf32>
    %18 = qtf.weight ["model.visual.blocks.0.norm2.bias"] : tensor<64xf32>
    %19 = qkernel.launch @kernels::@qk19_layer_norm(%16, %17, %18) : (tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    %20 = qtf.weight ["model.visual.blocks.0.mlp.linear_fc1.weight"] : tensor<96x64xf32>
    %21 = qtf.weight ["model.visual.blocks.0.mlp.linear_fc1.bias"] : tensor<96xf32>
    %22 = qkernel.launch @kernels::@qk25_matmul(%19, %20, %21) : (tensor<?x64xf32>, tensor<96x64xf32>, tensor<96xf32>) -> tensor<?x96xf32>
    %23 = qkernel.launch @kernels::@qk26_gelu(%22) : (tensor<?x96xf32>) -> tensor<?x96xf32>
    %24 = qtf.weight ["model.visual.blocks.0.mlp.linear_fc2.weight"] : tensor<64x96xf32>
    %25 = qtf.weight ["model.visual.blocks.0.mlp.linear_fc2.bias"] : tensor<64xf32>
    %26 = qkernel.launch @kernels::@qk27_matmul(%23, %24, %25, %16) : (tensor<?x96xf32>, tensor<64x96xf32>, tensor<64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
    %27 = qtf.weight ["model.visual.blocks.1.norm1.weight"] : tensor<64xf32>
    %28 = qtf.weight ["model.visual.blocks.1.norm1.bias"] : tensor<64xf32>
    %29 = qkernel.launch @kernels::@qk19_layer_norm(%26, %27, %28) : (tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    %30 = qtf.weight ["model.visual.blocks.1.attn.qkv.weight"] : tensor<192x64xf32>
    %31 = qtf.weight ["model.visual.blocks.1.attn.qkv.bias"] : tensor<192xf32>
    %32 = qkernel.launch @kernels::@qk20_matmul(%29, %30, %31) : (tensor<?x64xf32>, tensor<192x64xf32>, tensor<192xf32>) -> tensor<?x192xf32>
    %33 = qkernel.launch @kernels::@qk21_rotary(%32, %arg3, %arg4) : (tensor<?x192xf32>, tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x4x16xf32>
    %34 = qkernel.launch @kernels::@qk22_rotary(%32, %arg3, %arg4) : (tensor<?x192xf32>, tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x4x16xf32>
    %35 = qkernel.launch @kernels::@qk23_segment_attention(%32, %33, %34, %arg5) : (tensor<?x192xf32>, tensor<?x4x16xf32>, tensor<?x4x16xf32>, tensor<?x2xi32>) -> tensor<?x4x16xf32>
    %36 = qtf.weight ["model.visual.blocks.1.attn.proj.weight"] : tensor<64x64xf32>
    %37 = qtf.weight ["model.visual.blocks.1.attn.proj.bias"] : tensor<64xf32>
    %38 = qkernel.launch @kernels::@qk24_matmul(%35, %36, %37, %26) : (tensor<?x4x16xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
    %39 = qtf.weight ["model.visual.blocks.1.norm2.weight"] : tensor<64xf32>
    %40 = qtf.weight ["model.visual.blocks.1.norm2.bias"] : tensor<64xf32>
    %41 = qkernel.launch @kernels::@qk19_layer_norm(%38, %39, %40) : (tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    %42 = qtf.weight ["model.visual.blocks.1.mlp.linear_fc1.weight"] : tensor<96x64xf32>
    %43 = qtf.weight ["model.visual.blocks.1.mlp.linear_fc1.bias"] : tensor<96xf32>
    %44 = qkernel.launch @kernels::@qk25_matmul(%41, %42, %43) : (tensor<?x64xf32>, tensor<96x64xf32>, tensor<96xf32>) -> tensor<?x96xf32>
    %45 = qkernel.launch @kernels::@qk26_gelu(%44) : (tensor<?x96xf32>) -> tensor<?x96xf32>
    %46 = qtf.weight ["model.visual.blocks.1.mlp.linear_fc2.weight"] : tensor<64x96xf32>
    %47 = qtf.weight ["model.visual.blocks.1.mlp.linear_fc2.bias"] : tensor<64xf32>
    %48 = qkernel.launch @kernels::@qk27_matmul(%45, %46, %47, %38) : (tensor<?x96xf32>, tensor<64x96xf32>, tensor<64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
    %49 = qtf.weight ["model.visual.merger.norm.weight"] : tensor<64xf32>
    %50 = qtf.weight ["model.visual.merger.norm.bias"] : tensor<64xf32>
    %51 = qkernel.launch @kernels::@qk19_layer_norm(%48, %49, %50) : (tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    %52 = qtf.weight ["model.visual.merger.linear_fc1.weight"] : tensor<256x256xf32>
    %53 = qtf.weight ["model.visual.merger.linear_fc1.bias"] : tensor<256xf32>
    %54 = qkernel.launch @kernels::@qk28_matmul(%51, %52, %53) : (tensor<?x64xf32>, tensor<256x256xf32>, tensor<256xf32>) -> tensor<?x256xf32>
    %55 = qkernel.launch @kernels::@qk29_gelu(%54) : (tensor<?x256xf32>) -> tensor<?x256xf32>
    %56 = qtf.weight ["model.visual.merger.linear_fc2.weight"] : tensor<32x256xf32>
    %57 = qtf.weight ["model.visual.merger.linear_fc2.bias"] : tensor<32xf32>
    %58 = qkernel.launch @kernels::@qk30_matmul(%55, %56, %57) : (tensor<?x256xf32>, tensor<32x256xf32>, tensor<32xf32>) -> tensor<?x32xf32>
    return %58 : tensor<?x32xf32>
  }
  module @kernels {
    func.func @qk17_weighted_gather(%arg0: tensor<2304x64xf32>, %arg1: tensor<?x4xi32>, %arg2: tensor<?x4xf32>) -> tensor<?x64xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<weighted_gather>} {
      %0 = qtf.weighted_gather %arg0[%arg1], %arg2 : tensor<2304x64xf32>, tensor<?x4xi32>, tensor<?x4xf32> -> tensor<?x64xf32>
      return %0 : tensor<?x64xf32>
    }
    func.func @qk18_matmul(%arg0: tensor<?x1536xf32>, %arg1: tensor<64x1536xf32>, %arg2: tensor<64xf32>, %arg3: tensor<?x64xf32>) -> tensor<?x64xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.linear %arg0, %arg1 bias %arg2 : tensor<?x1536xf32>, tensor<64x1536xf32>, tensor<64xf32> -> tensor<?x64xf32>
      %1 = qtf.add %0, %arg3 : tensor<?x64xf32>
      return %1 : tensor<?x64xf32>
    }
    func.func @qk19_layer_norm(%arg0: tensor<?x64xf32>, %arg1: tensor<64xf32>, %arg2: tensor<64xf32>) -> tensor<?x64xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<layer_norm>} {
      %0 = qtf.layer_norm %arg0, %arg1, %arg2 {epsilon = 9.9999999999999995E-7 : f64} : tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32> -> tensor<?x64xf32>
      return %0 : tensor<?x64xf32>
    }
    func.func @qk20_matmul(%arg0: tensor<?x64xf32>, %arg1: tensor<192x64xf32>, %arg2: tensor<192xf32>) -> tensor<?x192xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.linear %arg0, %arg1 bias %arg2 : tensor<?x64xf32>, tensor<192x64xf32>, tensor<192xf32> -> tensor<?x192xf32>
      return %0 : tensor<?x192xf32>
    }
    func.func @qk21_rotary(%arg0: tensor<?x192xf32>, %arg1: tensor<?x8xf32>, %arg2: tensor<?x8xf32>) -> tensor<?x4x16xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<rotary>} {
      %0:3 = qtf.split %arg0 [64, 64, 64] : tensor<?x192xf32> -> tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x64xf32>
      %1 = qtf.reshape %0#0 : tensor<?x64xf32> -> tensor<?x4x16xf32>
      %2 = qtf.rotary_embedding %1, %arg1, %arg2 : tensor<?x4x16xf32>, tensor<?x8xf32>, tensor<?x8xf32> -> tensor<?x4x16xf32>
      return %2 : tensor<?x4x16xf32>
    }
    func.func @qk22_rotary(%arg0: tensor<?x192xf32>, %arg1: tensor<?x8xf32>, %arg2: tensor<?x8xf32>) -> tensor<?x4x16xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<rotary>} {
      %0:3 = qtf.split %arg0 [64, 64, 64] : tensor<?x192xf32> -> tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x64xf32>
      %1 = qtf.reshape %0#1 : tensor<?x64xf32> -> tensor<?x4x16xf32>
      %2 = qtf.rotary_embedding %1, %arg1, %arg2 : tensor<?x4x16xf32>, tensor<?x8xf32>, tensor<?x8xf32> -> tensor<?x4x16xf32>
      return %2 : tensor<?x4x16xf32>
    }
    func.func @qk23_segment_attention(%arg0: tensor<?x192xf32>, %arg1: tensor<?x4x16xf32>, %arg2: tensor<?x4x16xf32>, %arg3: tensor<?x2xi32>) -> tensor<?x4x16xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<segment_attention>} {
      %0:3 = qtf.split %arg0 [64, 64, 64] : tensor<?x192xf32> -> tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x64xf32>
      %1 = qtf.reshape %0#2 : tensor<?x64xf32> -> tensor<?x4x16xf32>
      %2 = qtf.segment_attention %arg1, %arg2, %1, %arg3 {scale = 2.500000e-01 : f64} : tensor<?x4x16xf32>, tensor<?x4x16xf32>, tensor<?x4x16xf32>, tensor<?x2xi32> -> tensor<?x4x16xf32>
      return %2 : tensor<?x4x16xf32>
    }
    func.func @qk24_matmul(%arg0: tensor<?x4x16xf32>, %arg1: tensor<64x64xf32>, %arg2: tensor<64xf32>, %arg3: tensor<?x64xf32>) -> tensor<?x64xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.reshape %arg0 : tensor<?x4x16xf32> -> tensor<?x64xf32>
      %1 = qtf.linear %0, %arg1 bias %arg2 : tensor<?x64xf32>, tensor<64x64xf32>, tensor<64xf32> -> tensor<?x64xf32>
      %2 = qtf.add %arg3, %1 : tensor<?x64xf32>
      return %2 : tensor<?x64xf32>
    }
    func.func @qk25_matmul(%arg0: tensor<?x64xf32>, %arg1: tensor<96x64xf32>, %arg2: tensor<96xf32>) -> tensor<?x96xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.linear %arg0, %arg1 bias %arg2 : tensor<?x64xf32>, tensor<96x64xf32>, tensor<96xf32> -> tensor<?x96xf32>
      return %0 : tensor<?x96xf32>
    }
    func.func @qk26_gelu(%arg0: tensor<?x96xf32>) -> tensor<?x96xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<gelu>} {
      %0 = qtf.gelu %arg0 {approximation = #qtf.gelu_approximation<tanh>} : tensor<?x96xf32>
      return %0 : tensor<?x96xf32>
    }
    func.func @qk27_matmul(%arg0: tensor<?x96xf32>, %arg1: tensor<64x96xf32>, %arg2: tensor<64xf32>, %arg3: tensor<?x64xf32>) -> tensor<?x64xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.linear %arg0, %arg1 bias %arg2 : tensor<?x96xf32>, tensor<64x96xf32>, tensor<64xf32> -> tensor<?x64xf32>
      %1 = qtf.add %arg3, %0 : tensor<?x64xf32>
      return %1 : tensor<?x64xf32>
    }
    func.func @qk28_matmul(%arg0: tensor<?x64xf32>, %arg1: tensor<256x256xf32>, %arg2: tensor<256xf32>) -> tensor<?x256xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.merge_rows %arg0 {factor = 4 : i64} : tensor<?x64xf32> -> tensor<?x256xf32>
      %1 = qtf.linear %0, %arg1 bias %arg2 : tensor<?x256xf32>, tensor<256x256xf32>, tensor<256xf32> -> tensor<?x256xf32>
      return %1 : tensor<?x256xf32>
    }
    func.func @qk29_gelu(%arg0: tensor<?x256xf32>) -> tensor<?x256xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<gelu>} {
      %0 = qtf.gelu %arg0 {approximation = #qtf.gelu_approximation<erf>} : tensor<?x256xf32>
      return %0 : tensor<?x256xf32>
    }
    func.func @qk30_matmul(%arg0: tensor<?x256xf32>, %arg1: tensor<32x256xf32>, %arg2: tensor<32xf32>) -> tensor<?x32xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<matmul>} {
      %0 = qtf.linear %arg0, %arg1 bias %arg2 : tensor<?x256xf32>, tensor<32x256xf32>, tensor<32xf32> -> tensor<?x32xf32>
      return %0 : tensor<?x32xf32>
    }
  }
}
