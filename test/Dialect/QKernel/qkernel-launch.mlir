// RUN: qwen-opt %s | qwen-opt | FileCheck %s

// #qkernel.launch and #qkernel.variant print as they parse, with the fields
// a launch does not have left out; the fields may be given in any order.

// CHECK-LABEL: @cpu
// CHECK-SAME:  launch = #qkernel.launch<grid = [T, 4]>
func.func private @cpu() attributes {launch = #qkernel.launch<grid = [T, 4]>}

// CHECK-LABEL: @symbols
// CHECK-SAME:  launch = #qkernel.launch<grid = [T, B, P, R, 1]>
func.func private @symbols() attributes {launch = #qkernel.launch<grid = [T, B, P, R, 1]>}

// CHECK-LABEL: @gpu
// CHECK-SAME:  launch = #qkernel.launch<grid = [B, 8], block = 256, shared = 0>
func.func private @gpu() attributes {launch = #qkernel.launch<grid = [B, 8], block = 256, shared = 0>}

// CHECK-LABEL: @gpu_default_shared
// CHECK-SAME:  launch = #qkernel.launch<grid = [8], block = 1024, shared = 0>
func.func private @gpu_default_shared() attributes {launch = #qkernel.launch<grid = [8], block = 1024>}

// CHECK-LABEL: @programmatic
// CHECK-SAME:  launch = #qkernel.launch<grid = [T], block = 32, shared = 49152, programmatic>
func.func private @programmatic() attributes {launch = #qkernel.launch<grid = [T], programmatic, shared = 49152, block = 32>}

// CHECK-LABEL: @decode_one_split
// CHECK-SAME:  launch = #qkernel.launch<grid = [T, 4], block = 256, shared = 1056, decode = <"k_decode", grid = [B, 4], block = 128, shared = 64>, max_splits = 1, partial_floats = 8>
func.func private @decode_one_split() attributes {launch = #qkernel.launch<grid = [T, 4], block = 256, shared = 1056, decode = <"k_decode", grid = [B, 4], block = 128, shared = 64>, max_splits = 1, partial_floats = 8>}

// CHECK-LABEL: @decode_split
// CHECK-SAME:  launch = #qkernel.launch<grid = [T, 4], block = 256, shared = 1056, decode = <"k_decode", grid = [B, 4], block = 128, shared = 64>, max_splits = 16, partial_floats = 130, combine = <"k_decode_combine", grid = [B, 4], block = 128, shared = 0>, split_keys = 64, programmatic>
func.func private @decode_split() attributes {launch = #qkernel.launch<grid = [T, 4], block = 256, shared = 1056, decode = <"k_decode", grid = [B, 4], block = 128, shared = 64>, max_splits = 16, partial_floats = 130, combine = <"k_decode_combine", grid = [B, 4], block = 128, shared = 0>, split_keys = 64, programmatic>}

// CHECK-LABEL: @variant
// CHECK-SAME:  sampler = #qkernel.variant<"qk_argmax", grid = [R], block = 1024, shared = 256>
func.func private @variant() attributes {sampler = #qkernel.variant<"qk_argmax", grid = [R], block = 1024, shared = 256>}

// CHECK-LABEL: @kinds
// CHECK-SAME:  kinds = [#qkernel.kind<matmul>, #qkernel.kind<rows>, #qkernel.kind<attention>, #qkernel.kind<kv_write>, #qkernel.kind<embedding>, #qkernel.kind<elementwise>, #qkernel.kind<router>, #qkernel.kind<experts>, #qkernel.kind<conv>, #qkernel.kind<delta_rule>, #qkernel.kind<gated_norm>, #qkernel.kind<gemm_pack>]
func.func private @kinds() attributes {kinds = [#qkernel.kind<matmul>, #qkernel.kind<rows>, #qkernel.kind<attention>, #qkernel.kind<kv_write>, #qkernel.kind<embedding>, #qkernel.kind<elementwise>, #qkernel.kind<router>, #qkernel.kind<experts>, #qkernel.kind<conv>, #qkernel.kind<delta_rule>, #qkernel.kind<gated_norm>, #qkernel.kind<gemm_pack>]}

// CHECK-LABEL: @sampler
// CHECK-SAME:  qkernel.sampler = {argmax = #qkernel.variant<"qk_argmax", grid = [R], block = 1024, shared = 256>, topk = #qkernel.variant<"qk_topk", grid = [R], block = 1024, shared = 4228>, topk_count = 256 : i64}
func.func private @sampler() attributes {qkernel.sampler = {argmax = #qkernel.variant<"qk_argmax", grid = [R], block = 1024, shared = 256>, topk = #qkernel.variant<"qk_topk", grid = [R], block = 1024, shared = 4228>, topk_count = 256 : i64}}
