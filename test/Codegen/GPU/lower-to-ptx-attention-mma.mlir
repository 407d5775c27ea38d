// REQUIRES: ptxas
// RUN: qwen-opt %s --qwen-select-schedule="target=cuda gpu-attention=mma" --qwen-gpu-lower-kernels | FileCheck %s --check-prefix=GEOMETRY
// RUN: qwen-opt %s --qwen-select-schedule="target=cuda gpu-attention=mma" --qwen-gpu-lower-kernels --qwen-gpu-lower-to-nvvm > %t.mlir
// RUN: %python %S/extract-ptx.py < %t.mlir > %t.ptx
// RUN: FileCheck %s --check-prefix=PTX < %t.ptx
// RUN: ptxas -arch=sm_90a -O3 -v %t.ptx -o %t.cubin > %t.log 2>&1
// RUN: FileCheck %s --check-prefix=PTXAS < %t.log
// RUN: FileCheck %s --check-prefix=NOSPILL < %t.log

// Paged attention with prefill query tiles on tensor cores
// (qwen-select-schedule gpu-attention=mma; passes/Codegen/GPU/AttentionMma.cpp):
// bf16 caches at head_dim 128 (4 query heads over 2 kv heads), 64 (8 over
// 2) and 256 (Qwen3.5 full attention, 2 over 1), an f16 cache at 128, an f32
// cache at 128 (keeps the CUDA-core tile: 256 threads, no mma) and a head
// of 64 whose query comes through a fused rms_norm -> rope chain. A tensor-
// core kernel has 128 threads (4 warps of 16 query rows, Q = 64) and one
// staging buffer [2K][head_dim + 8] of the cache dtype (K keys, then K
// values; the 64 query rows first): 64 x 72 x 2 x 2 = 18432 bytes at head 64,
// 34816 at 128, 33792 (K = 32) at 256, plus the per-token walk's f32 rows.
// Upstream convert-nvgpu-to-nvvm (in qwen-gpu-lower-to-nvvm) lowers the
// nvgpu.ldmatrix x4 fragments (Q; two k-steps of K; two n-tiles of V with
// .trans); mma.sync is nvvm.mma.sync m16n8k16 with f32 accumulators. ptxas
// assembles every entry for sm_90a without spills; at the time of writing
// 188 registers at head 128, 154 at 64, 253 at 256 (the 128 f32
// accumulators of a 16 x 256 output tile per warp). simt-numerics-attention-mma.test checks the numerics with
// this module.

// GEOMETRY: qkernel.launch @kernels::@qk0_attention
// GEOMETRY-SAME: launch = #qkernel.launch<grid = [T, 4], block = 128, shared = 37408, decode = <"qk0_attention_decode", grid = [T, 2], block = 128,
// GEOMETRY: qkernel.launch @kernels::@qk1_attention
// GEOMETRY-SAME: launch = #qkernel.launch<grid = [T, 8], block = 128, shared = 20800, decode = <"qk1_attention_decode", grid = [T, 2], block = 128,
// GEOMETRY: qkernel.launch @kernels::@qk2_attention
// GEOMETRY-SAME: launch = #qkernel.launch<grid = [T, 2], block = 128, shared = 38944, decode = <"qk2_attention_decode", grid = [T, 1], block = 128,
// GEOMETRY: qkernel.launch @kernels::@qk3_attention
// GEOMETRY-SAME: launch = #qkernel.launch<grid = [T, 2], block = 128, shared = 37408, decode = <"qk3_attention_decode", grid = [T, 1], block = 128,
// GEOMETRY: qkernel.launch @kernels::@qk4_attention
// GEOMETRY-SAME: launch = #qkernel.launch<grid = [T, 2], block = 256, shared = 37440, decode = <"qk4_attention_decode", grid = [T, 1], block = 128,
// GEOMETRY: qkernel.launch @kernels::@qk5_attention
// GEOMETRY-SAME: launch = #qkernel.launch<grid = [T, 2], block = 128, shared = 20816, decode = <"qk5_attention_decode", grid = [T, 1], block = 128,

// PTX:       .target sm_90
// PTX-LABEL: .visible .entry qk0_attention(
// PTX:         .shared .align 16 .b8 {{.*}}[34816];
// PTX:         ldmatrix.sync.aligned.m8n8.x4.shared.b16
// PTX:         ldmatrix.sync.aligned.m8n8.x4.shared.b16
// PTX:         mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32
// PTX:         ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16
// PTX:         mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32
// PTX-LABEL: .visible .entry qk3_attention(
// PTX:         mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32
// PTX-LABEL: .visible .entry qk4_attention(
// PTX-NOT:     mma.sync
// PTX-LABEL: .visible .entry qk4_attention_decode(

// NOSPILL-NOT: {{[1-9][0-9]*}} bytes spill

// PTXAS:       Function properties for qk5_attention{{$}}
// PTXAS-NEXT:    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// PTXAS-NEXT:  Used {{[0-9]+}} registers, used 1 barriers, 20816 bytes smem
// PTXAS:       Function properties for qk4_attention{{$}}
// PTXAS-NEXT:    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// PTXAS-NEXT:  Used {{[0-9]+}} registers, used 1 barriers, 37440 bytes smem
// PTXAS:       Function properties for qk3_attention{{$}}
// PTXAS-NEXT:    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// PTXAS-NEXT:  Used {{[0-9]+}} registers, used 1 barriers, 37408 bytes smem
// PTXAS:       Function properties for qk2_attention{{$}}
// PTXAS-NEXT:    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// PTXAS-NEXT:  Used {{[0-9]+}} registers, used 1 barriers, 38944 bytes smem
// PTXAS:       Function properties for qk1_attention{{$}}
// PTXAS-NEXT:    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// PTXAS-NEXT:  Used {{[0-9]+}} registers, used 1 barriers, 20800 bytes smem
// PTXAS:       Function properties for qk0_attention{{$}}
// PTXAS-NEXT:    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// PTXAS-NEXT:  Used {{[0-9]+}} registers, used 1 barriers, 37408 bytes smem

!kv0 = !qtf.kv_cache<layers = 2, kv_heads = 2, head_dim = 128, page_size = 16, bf16>
!kv1 = !qtf.kv_cache<layers = 2, kv_heads = 2, head_dim = 64, page_size = 16, bf16>
!kv2 = !qtf.kv_cache<layers = 2, kv_heads = 1, head_dim = 256, page_size = 16, bf16>
!kv3 = !qtf.kv_cache<layers = 2, kv_heads = 1, head_dim = 128, page_size = 16, f16>
!kv4 = !qtf.kv_cache<layers = 2, kv_heads = 1, head_dim = 128, page_size = 16, f32>
!kv5 = !qtf.kv_cache<layers = 2, kv_heads = 1, head_dim = 64, page_size = 16, bf16>

module {
  func.func @step(%arg0: tensor<?xi32> {qtf.input = "positions"}, %arg1: tensor<?xi32> {qtf.input = "token_seq"}, %arg2: tensor<?x?xi32> {qtf.input = "block_table"}, %arg3: tensor<?x4x128xf32> {qtf.input = "tokens"}, %arg4: !kv0, %arg5: tensor<?x8x64xf32> {qtf.input = "tokens"}, %arg6: !kv1, %arg7: tensor<?x2x256xf32> {qtf.input = "tokens"}, %arg8: !kv2, %arg9: tensor<?x2x128xf32> {qtf.input = "tokens"}, %arg10: !kv3, %arg11: tensor<?x2x128xf32> {qtf.input = "tokens"}, %arg12: !kv4, %arg13: tensor<?x2x64xf32> {qtf.input = "tokens"}, %arg14: !kv5) -> (tensor<?x4x128xf32>, tensor<?x8x64xf32>, tensor<?x2x256xf32>, tensor<?x2x128xf32>, tensor<?x2x128xf32>, tensor<?x2x64xf32>) {
    %r0 = qkernel.launch @kernels::@qk0_attention(%arg3, %arg4, %arg0, %arg1, %arg2) : (tensor<?x4x128xf32>, !kv0, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>) -> tensor<?x4x128xf32>
    %r1 = qkernel.launch @kernels::@qk1_attention(%arg5, %arg6, %arg0, %arg1, %arg2) : (tensor<?x8x64xf32>, !kv1, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>) -> tensor<?x8x64xf32>
    %r2 = qkernel.launch @kernels::@qk2_attention(%arg7, %arg8, %arg0, %arg1, %arg2) : (tensor<?x2x256xf32>, !kv2, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>) -> tensor<?x2x256xf32>
    %r3 = qkernel.launch @kernels::@qk3_attention(%arg9, %arg10, %arg0, %arg1, %arg2) : (tensor<?x2x128xf32>, !kv3, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>) -> tensor<?x2x128xf32>
    %r4 = qkernel.launch @kernels::@qk4_attention(%arg11, %arg12, %arg0, %arg1, %arg2) : (tensor<?x2x128xf32>, !kv4, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>) -> tensor<?x2x128xf32>
    %w5 = qtf.weight ["model.layers.0.self_attn.q_norm.weight"] : tensor<64xbf16>
    %r5 = qkernel.launch @kernels::@qk5_attention(%arg13, %w5, %arg14, %arg0, %arg1, %arg2) : (tensor<?x2x64xf32>, tensor<64xbf16>, !kv5, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>) -> tensor<?x2x64xf32>
    return %r0, %r1, %r2, %r3, %r4, %r5 : tensor<?x4x128xf32>, tensor<?x8x64xf32>, tensor<?x2x256xf32>, tensor<?x2x128xf32>, tensor<?x2x128xf32>, tensor<?x2x64xf32>
  }
  module @kernels {
    func.func @qk0_attention(%arg0: tensor<?x4x128xf32>, %arg1: !kv0, %arg2: tensor<?xi32>, %arg3: tensor<?xi32>, %arg4: tensor<?x?xi32>) -> tensor<?x4x128xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<attention>} {
      %a = qtf.paged_attention %arg0, %arg1[1], %arg2, %arg3, %arg4 {scale = 0.08838834764831843 : f64} : tensor<?x4x128xf32>, !kv0, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x4x128xf32>
      return %a : tensor<?x4x128xf32>
    }
    func.func @qk1_attention(%arg0: tensor<?x8x64xf32>, %arg1: !kv1, %arg2: tensor<?xi32>, %arg3: tensor<?xi32>, %arg4: tensor<?x?xi32>) -> tensor<?x8x64xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<attention>} {
      %a = qtf.paged_attention %arg0, %arg1[1], %arg2, %arg3, %arg4 {scale = 0.12500000000000000 : f64} : tensor<?x8x64xf32>, !kv1, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x8x64xf32>
      return %a : tensor<?x8x64xf32>
    }
    func.func @qk2_attention(%arg0: tensor<?x2x256xf32>, %arg1: !kv2, %arg2: tensor<?xi32>, %arg3: tensor<?xi32>, %arg4: tensor<?x?xi32>) -> tensor<?x2x256xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<attention>} {
      %a = qtf.paged_attention %arg0, %arg1[1], %arg2, %arg3, %arg4 {scale = 0.06250000000000000 : f64} : tensor<?x2x256xf32>, !kv2, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x2x256xf32>
      return %a : tensor<?x2x256xf32>
    }
    func.func @qk3_attention(%arg0: tensor<?x2x128xf32>, %arg1: !kv3, %arg2: tensor<?xi32>, %arg3: tensor<?xi32>, %arg4: tensor<?x?xi32>) -> tensor<?x2x128xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<attention>} {
      %a = qtf.paged_attention %arg0, %arg1[1], %arg2, %arg3, %arg4 {scale = 0.08838834764831843 : f64} : tensor<?x2x128xf32>, !kv3, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x2x128xf32>
      return %a : tensor<?x2x128xf32>
    }
    func.func @qk4_attention(%arg0: tensor<?x2x128xf32>, %arg1: !kv4, %arg2: tensor<?xi32>, %arg3: tensor<?xi32>, %arg4: tensor<?x?xi32>) -> tensor<?x2x128xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<attention>} {
      %a = qtf.paged_attention %arg0, %arg1[1], %arg2, %arg3, %arg4 {scale = 0.08838834764831843 : f64} : tensor<?x2x128xf32>, !kv4, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x2x128xf32>
      return %a : tensor<?x2x128xf32>
    }
    func.func @qk5_attention(%arg0: tensor<?x2x64xf32>, %arg1: tensor<64xbf16>, %arg2: !kv5, %arg3: tensor<?xi32>, %arg4: tensor<?xi32>, %arg5: tensor<?x?xi32>) -> tensor<?x2x64xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<attention>} {
      %0 = qtf.rms_norm %arg0, %arg1 {epsilon = 9.9999999999999995E-7 : f64} : tensor<?x2x64xf32>, tensor<64xbf16> -> tensor<?x2x64xf32>
      %1 = qtf.rope %0, %arg3 {rotary_dim = 64 : i64, theta = 1.000000e+06 : f64} : tensor<?x2x64xf32>, tensor<?xi32> -> tensor<?x2x64xf32>
      %a = qtf.paged_attention %1, %arg2[1], %arg3, %arg4, %arg5 {scale = 0.12500000000000000 : f64} : tensor<?x2x64xf32>, !kv5, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x2x64xf32>
      return %a : tensor<?x2x64xf32>
    }
  }
}
