// REQUIRES: ptxas
// RUN: qwen-opt %s --qwen-select-schedule=target=cuda --qwen-gpu-lower-kernels | FileCheck %s --check-prefix=GEOMETRY
// RUN: qwen-opt %s --qwen-select-schedule=target=cuda --qwen-gpu-lower-kernels --qwen-gpu-lower-to-nvvm > %t.mlir
// RUN: %python %S/extract-ptx.py < %t.mlir > %t.ptx
// RUN: ptxas -arch=sm_90 -O3 -v %t.ptx -o %t.cubin > %t.log 2>&1
// RUN: FileCheck %s --check-prefix=PTXAS < %t.log
// RUN: FileCheck %s --check-prefix=NOSPILL < %t.log

// Paged attention at the head sizes of released checkpoints, with f32, bf16
// and f16 KV caches: heads of 128 (Qwen3: 4 query heads over 2 kv heads,
// 4 over 1, 2 over 1), of 64 (8 over 2, 2 over 2), of 256 (Qwen3.5 full
// attention) and a head of 32 whose query comes through a fused rms_norm ->
// rope chain. Every kernel has both paths: the per-token walk (decode) and
// the query tile (prefill; AttentionKernel.cpp): Q = 32 queries per tile
// (8 lanes each) and K = 32 staged keys at head 128, Q = 32 / K = 64 at head
// 64, Q = 16 (16 lanes each) / K = 16 at head 256, Q = 32 / K = 64 at head 32.
// Static shared memory stays under 48 KiB and ptxas assembles every entry
// for sm_90 without spills (under 80 registers; 72 at head 128 at the
// time of writing). The chained kernel keeps 28 bytes of local memory: the
// array of libdevice's sinf / cosf slow-path argument reduction in the rope,
// which stays in memory now that the chain runs in the loop over the tile's
// query rows (no register is spilled). The same module is the input of
// simt-numerics-attention.test.
//
// Each kernel also has its decode variant qkN_attention_decode (grid [T,
// kv_heads], 128 threads; AttentionKernel.cpp), recorded as the `decode` of
// its #qkernel.launch: 8 lanes per key at head 128 (16 keys in flight per block),
// all query heads of a group in one pass over the keys, so the registers
// grow with the group: 200 at head 128 / 64 with group 4, 110-123 with group
// 2, 62 at head 32, under ptxas' 255 (the decode grid is small, occupancy
// is not the limit); 103 for the chained head 32, whose rope keeps
// libdevice's 32-byte reduction array in local memory; no spill and no
// stack frame otherwise, 8-34 KiB of shared memory; and its split-K merge qkN_attention_decode_combine (no
// shared memory, 32 registers; 62 at head 32). simt-numerics-attention-decode.test
// checks their numerics.

// GEOMETRY: qkernel.launch @kernels::@qk0_attention
// GEOMETRY-SAME: launch = #qkernel.launch<grid = [T, 4], block = 256, shared = 37440, decode = <"qk0_attention_decode", grid = [T, 2], block = 128, shared = 17152>, max_splits = 32, partial_floats = 528, combine = <"qk0_attention_decode_combine", grid = [T, 4], block = 128, shared = 0>, split_keys = 64>
// GEOMETRY: qkernel.launch @kernels::@qk1_attention
// GEOMETRY-SAME: launch = #qkernel.launch<grid = [T, 4], block = 256, shared = 37440, decode = <"qk1_attention_decode", grid = [T, 1], block = 128, shared = 33792>, max_splits = 32, partial_floats = 528, combine = <"qk1_attention_decode_combine", grid = [T, 4], block = 128, shared = 0>, split_keys = 64>
// GEOMETRY: qkernel.launch @kernels::@qk2_attention
// GEOMETRY-SAME: launch = #qkernel.launch<grid = [T, 2], block = 256, shared = 37440, decode = <"qk2_attention_decode", grid = [T, 1], block = 128, shared = 17152>, max_splits = 32, partial_floats = 264, combine = <"qk2_attention_decode_combine", grid = [T, 2], block = 128, shared = 0>, split_keys = 64>
// GEOMETRY: qkernel.launch @kernels::@qk3_attention
// GEOMETRY-SAME: launch = #qkernel.launch<grid = [T, 8], block = 256, shared = 37248, decode = <"qk3_attention_decode", grid = [T, 2], block = 128, shared = 34048>, max_splits = 32, partial_floats = 544, combine = <"qk3_attention_decode_combine", grid = [T, 8], block = 64, shared = 0>, split_keys = 64>
// GEOMETRY: qkernel.launch @kernels::@qk4_attention
// GEOMETRY-SAME: launch = #qkernel.launch<grid = [T, 2], block = 256, shared = 37248, decode = <"qk4_attention_decode", grid = [T, 2], block = 128, shared = 8704>, max_splits = 32, partial_floats = 136, combine = <"qk4_attention_decode_combine", grid = [T, 2], block = 64, shared = 0>, split_keys = 64>
// GEOMETRY: qkernel.launch @kernels::@qk5_attention
// GEOMETRY-SAME: launch = #qkernel.launch<grid = [T, 2], block = 256, shared = 42048, decode = <"qk5_attention_decode", grid = [T, 1], block = 128, shared = 17536>, max_splits = 32, partial_floats = 520, combine = <"qk5_attention_decode_combine", grid = [T, 2], block = 128, shared = 0>, split_keys = 64>
// GEOMETRY: qkernel.launch @kernels::@qk6_attention
// GEOMETRY-SAME: launch = #qkernel.launch<grid = [T, 2], block = 256, shared = 20896, decode = <"qk6_attention_decode", grid = [T, 1], block = 128, shared = 17552>, max_splits = 32, partial_floats = 72, combine = <"qk6_attention_decode_combine", grid = [T, 2], block = 32, shared = 0>, split_keys = 64>

// PTXAS:       Function properties for qk6_attention_decode_combine
// PTXAS-NEXT:    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// PTXAS:       Function properties for qk6_attention_decode{{$}}
// PTXAS-NEXT:    {{[0-9]+}} bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// PTXAS-NEXT:  Used {{([1-9][0-9]?|1[0-9][0-9]|2[0-4][0-9])}} registers, {{.*}} 17552 bytes smem
// PTXAS:       Function properties for qk6_attention
// PTXAS-NEXT:    {{[0-9]+}} bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// PTXAS-NEXT:  Used {{[1-7]?[0-9]}} registers, {{.*}} 20896 bytes smem
// PTXAS:       Function properties for qk5_attention_decode{{$}}
// PTXAS-NEXT:    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// PTXAS-NEXT:  Used {{([1-9][0-9]?|1[0-9][0-9]|2[0-4][0-9])}} registers, {{.*}} 17536 bytes smem
// PTXAS:       Function properties for qk5_attention
// PTXAS-NEXT:    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// PTXAS-NEXT:  Used {{[1-7]?[0-9]}} registers, {{.*}} 42048 bytes smem
// PTXAS:       Function properties for qk4_attention_decode{{$}}
// PTXAS-NEXT:    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// PTXAS-NEXT:  Used {{([1-9][0-9]?|1[0-9][0-9]|2[0-4][0-9])}} registers, {{.*}} 8704 bytes smem
// PTXAS:       Function properties for qk4_attention
// PTXAS-NEXT:    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// PTXAS-NEXT:  Used {{[1-7]?[0-9]}} registers, {{.*}} 37248 bytes smem
// PTXAS:       Function properties for qk3_attention_decode{{$}}
// PTXAS-NEXT:    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// PTXAS-NEXT:  Used {{([1-9][0-9]?|1[0-9][0-9]|2[0-4][0-9])}} registers, {{.*}} 34048 bytes smem
// PTXAS:       Function properties for qk3_attention
// PTXAS-NEXT:    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// PTXAS-NEXT:  Used {{[1-7]?[0-9]}} registers, {{.*}} 37248 bytes smem
// PTXAS:       Function properties for qk2_attention_decode{{$}}
// PTXAS-NEXT:    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// PTXAS-NEXT:  Used {{([1-9][0-9]?|1[0-9][0-9]|2[0-4][0-9])}} registers, {{.*}} 17152 bytes smem
// PTXAS:       Function properties for qk2_attention
// PTXAS-NEXT:    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// PTXAS-NEXT:  Used {{[1-7]?[0-9]}} registers, {{.*}} 37440 bytes smem
// PTXAS:       Function properties for qk1_attention_decode{{$}}
// PTXAS-NEXT:    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// PTXAS-NEXT:  Used {{([1-9][0-9]?|1[0-9][0-9]|2[0-4][0-9])}} registers, {{.*}} 33792 bytes smem
// PTXAS:       Function properties for qk1_attention
// PTXAS-NEXT:    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// PTXAS-NEXT:  Used {{[1-7]?[0-9]}} registers, {{.*}} 37440 bytes smem
// PTXAS:       Function properties for qk0_attention_decode{{$}}
// PTXAS-NEXT:    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// PTXAS-NEXT:  Used {{([1-9][0-9]?|1[0-9][0-9]|2[0-4][0-9])}} registers, {{.*}} 17152 bytes smem
// PTXAS:       Function properties for qk0_attention
// PTXAS-NEXT:    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// PTXAS-NEXT:  Used {{[1-7]?[0-9]}} registers, {{.*}} 37440 bytes smem
// NOSPILL-NOT: error
// NOSPILL-NOT: {{[1-9][0-9]*}} bytes spill

!kv0 = !qtf.kv_cache<layers = 2, kv_heads = 2, head_dim = 128, page_size = 16, f32>
!kv1 = !qtf.kv_cache<layers = 2, kv_heads = 1, head_dim = 128, page_size = 16, bf16>
!kv2 = !qtf.kv_cache<layers = 2, kv_heads = 1, head_dim = 128, page_size = 16, f16>
!kv3 = !qtf.kv_cache<layers = 2, kv_heads = 2, head_dim = 64, page_size = 16, bf16>
!kv4 = !qtf.kv_cache<layers = 2, kv_heads = 2, head_dim = 64, page_size = 16, f32>
!kv5 = !qtf.kv_cache<layers = 2, kv_heads = 1, head_dim = 256, page_size = 16, bf16>
!kv6 = !qtf.kv_cache<layers = 2, kv_heads = 1, head_dim = 32, page_size = 16, f16>
module {
  func.func @step(%arg0: tensor<?xi32> {qtf.input = "positions"}, %arg1: tensor<?xi32> {qtf.input = "token_seq"}, %arg2: tensor<?x?xi32> {qtf.input = "block_table"}, %arg3: tensor<?x4x128xf32> {qtf.input = "tokens"}, %arg4: !kv0, %arg5: tensor<?x4x128xf32> {qtf.input = "tokens"}, %arg6: !kv1, %arg7: tensor<?x2x128xf32> {qtf.input = "tokens"}, %arg8: !kv2, %arg9: tensor<?x8x64xf32> {qtf.input = "tokens"}, %arg10: !kv3, %arg11: tensor<?x2x64xf32> {qtf.input = "tokens"}, %arg12: !kv4, %arg13: tensor<?x2x256xf32> {qtf.input = "tokens"}, %arg14: !kv5, %arg15: tensor<?x2x32xf32> {qtf.input = "tokens"}, %arg16: !kv6) -> (tensor<?x4x128xf32>, tensor<?x4x128xf32>, tensor<?x2x128xf32>, tensor<?x8x64xf32>, tensor<?x2x64xf32>, tensor<?x2x256xf32>, tensor<?x2x32xf32>) {
    %r0 = qkernel.launch @kernels::@qk0_attention(%arg3, %arg4, %arg0, %arg1, %arg2) : (tensor<?x4x128xf32>, !kv0, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>) -> tensor<?x4x128xf32>
    %r1 = qkernel.launch @kernels::@qk1_attention(%arg5, %arg6, %arg0, %arg1, %arg2) : (tensor<?x4x128xf32>, !kv1, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>) -> tensor<?x4x128xf32>
    %r2 = qkernel.launch @kernels::@qk2_attention(%arg7, %arg8, %arg0, %arg1, %arg2) : (tensor<?x2x128xf32>, !kv2, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>) -> tensor<?x2x128xf32>
    %r3 = qkernel.launch @kernels::@qk3_attention(%arg9, %arg10, %arg0, %arg1, %arg2) : (tensor<?x8x64xf32>, !kv3, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>) -> tensor<?x8x64xf32>
    %r4 = qkernel.launch @kernels::@qk4_attention(%arg11, %arg12, %arg0, %arg1, %arg2) : (tensor<?x2x64xf32>, !kv4, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>) -> tensor<?x2x64xf32>
    %r5 = qkernel.launch @kernels::@qk5_attention(%arg13, %arg14, %arg0, %arg1, %arg2) : (tensor<?x2x256xf32>, !kv5, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>) -> tensor<?x2x256xf32>
    %106 = qtf.weight ["model.layers.0.self_attn.q_norm.weight"] : tensor<32xbf16>
    %r6 = qkernel.launch @kernels::@qk6_attention(%arg15, %106, %arg16, %arg0, %arg1, %arg2) : (tensor<?x2x32xf32>, tensor<32xbf16>, !kv6, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>) -> tensor<?x2x32xf32>
    return %r0, %r1, %r2, %r3, %r4, %r5, %r6 : tensor<?x4x128xf32>, tensor<?x4x128xf32>, tensor<?x2x128xf32>, tensor<?x8x64xf32>, tensor<?x2x64xf32>, tensor<?x2x256xf32>, tensor<?x2x32xf32>
  }
  module @kernels {
    func.func @qk0_attention(%arg0: tensor<?x4x128xf32>, %arg1: !kv0, %arg2: tensor<?xi32>, %arg3: tensor<?xi32>, %arg4: tensor<?x?xi32>) -> tensor<?x4x128xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<attention>} {
      %a = qtf.paged_attention %arg0, %arg1[1], %arg2, %arg3, %arg4 {scale = 0.08838834764831845 : f64} : tensor<?x4x128xf32>, !kv0, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x4x128xf32>
      return %a : tensor<?x4x128xf32>
    }
    func.func @qk1_attention(%arg0: tensor<?x4x128xf32>, %arg1: !kv1, %arg2: tensor<?xi32>, %arg3: tensor<?xi32>, %arg4: tensor<?x?xi32>) -> tensor<?x4x128xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<attention>} {
      %a = qtf.paged_attention %arg0, %arg1[1], %arg2, %arg3, %arg4 {scale = 0.08838834764831845 : f64} : tensor<?x4x128xf32>, !kv1, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x4x128xf32>
      return %a : tensor<?x4x128xf32>
    }
    func.func @qk2_attention(%arg0: tensor<?x2x128xf32>, %arg1: !kv2, %arg2: tensor<?xi32>, %arg3: tensor<?xi32>, %arg4: tensor<?x?xi32>) -> tensor<?x2x128xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<attention>} {
      %a = qtf.paged_attention %arg0, %arg1[1], %arg2, %arg3, %arg4 {scale = 0.08838834764831845 : f64} : tensor<?x2x128xf32>, !kv2, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x2x128xf32>
      return %a : tensor<?x2x128xf32>
    }
    func.func @qk3_attention(%arg0: tensor<?x8x64xf32>, %arg1: !kv3, %arg2: tensor<?xi32>, %arg3: tensor<?xi32>, %arg4: tensor<?x?xi32>) -> tensor<?x8x64xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<attention>} {
      %a = qtf.paged_attention %arg0, %arg1[1], %arg2, %arg3, %arg4 {scale = 0.12500000000000000 : f64} : tensor<?x8x64xf32>, !kv3, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x8x64xf32>
      return %a : tensor<?x8x64xf32>
    }
    func.func @qk4_attention(%arg0: tensor<?x2x64xf32>, %arg1: !kv4, %arg2: tensor<?xi32>, %arg3: tensor<?xi32>, %arg4: tensor<?x?xi32>) -> tensor<?x2x64xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<attention>} {
      %a = qtf.paged_attention %arg0, %arg1[1], %arg2, %arg3, %arg4 {scale = 0.12500000000000000 : f64} : tensor<?x2x64xf32>, !kv4, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x2x64xf32>
      return %a : tensor<?x2x64xf32>
    }
    func.func @qk5_attention(%arg0: tensor<?x2x256xf32>, %arg1: !kv5, %arg2: tensor<?xi32>, %arg3: tensor<?xi32>, %arg4: tensor<?x?xi32>) -> tensor<?x2x256xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<attention>} {
      %a = qtf.paged_attention %arg0, %arg1[1], %arg2, %arg3, %arg4 {scale = 0.06250000000000000 : f64} : tensor<?x2x256xf32>, !kv5, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x2x256xf32>
      return %a : tensor<?x2x256xf32>
    }
    func.func @qk6_attention(%arg0: tensor<?x2x32xf32>, %arg1: tensor<32xbf16>, %arg2: !kv6, %arg3: tensor<?xi32>, %arg4: tensor<?xi32>, %arg5: tensor<?x?xi32>) -> tensor<?x2x32xf32> attributes {qkernel.kernel, qkernel.kind = #qkernel.kind<attention>} {
      %0 = qtf.rms_norm %arg0, %arg1 {epsilon = 9.9999999999999995E-7 : f64} : tensor<?x2x32xf32>, tensor<32xbf16> -> tensor<?x2x32xf32>
      %1 = qtf.rope %0, %arg3 {rotary_dim = 32 : i64, theta = 1.000000e+06 : f64} : tensor<?x2x32xf32>, tensor<?xi32> -> tensor<?x2x32xf32>
      %a = qtf.paged_attention %1, %arg2[1], %arg3, %arg4, %arg5 {scale = 0.17677669529663689 : f64} : tensor<?x2x32xf32>, !kv6, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x2x32xf32>
      return %a : tensor<?x2x32xf32>
    }
  }
}
