// RUN: qwen-opt %s | qwen-opt | FileCheck %s

// Parameters at their defaults are not printed; everything else round-trips.
// CHECK: qkernel.schedule = #qkernel.schedule<target = cpu, grain = 8, vector_width = 16, tile = [4, 2], dot = fma, decode_tile = [1, 4]>
func.func private @cpu_matmul() attributes {qkernel.schedule = #qkernel.schedule<target = cpu, grain = 8, vector_width = 16, tile = [4, 2], stages = 1, dot = fma, decode_tile = [1, 4]>}
// CHECK: qkernel.schedule = #qkernel.schedule<target = cpu, grain = 1, vector_width = 8>
func.func private @cpu_rows() attributes {qkernel.schedule = #qkernel.schedule<target = cpu, grain = 1, vector_width = 8>}
// CHECK: qkernel.schedule = #qkernel.schedule<target = cuda, threads = 256, vector_width = 4, lanes = 32, tile = [32, 32], tile_lanes = 8, stages = 2, tensor_cores = true, decode_threads = 128, decode_lanes = 8, decode_tile = [4], splits = 32, combine_threads = 128>
func.func private @cuda_all() attributes {qkernel.schedule = #qkernel.schedule<target = cuda, threads = 256, vector_width = 4, lanes = 32, tile = [32, 32], tile_lanes = 8, stages = 2, tensor_cores = true, decode_threads = 128, decode_lanes = 8, decode_tile = [4], splits = 32, combine_threads = 128>}

// CHECK: qkernel.schedule = #qkernel.schedule<target = cpu, grain = 1, vector_width = 16, tile = [1], row_widths = [10, 2, 5, 1]>
func.func private @cpu_row_widths() attributes {qkernel.schedule = #qkernel.schedule<target = cpu, grain = 1, vector_width = 16, tile = [1], row_widths = [10, 2, 5, 1]>}
// CHECK: qkernel.schedule = #qkernel.schedule<target = cuda, threads = 128, vector_width = 4, splits = 32, combine_threads = 64, split_keys = 64>
func.func private @cuda_split_keys() attributes {qkernel.schedule = #qkernel.schedule<target = cuda, threads = 128, vector_width = 4, splits = 32, combine_threads = 64, split_keys = 64>}

// CHECK: qkernel.schedule = #qkernel.schedule<target = cpu, grain = 8, vector_width = 16, tile = [4, 2], dot = fma, decode_tile = [1, 4], panel = 40, prefill_tile = [4, 4], prefill_tokens = 16>
func.func private @cpu_matmul_blocked_prefill() attributes {qkernel.schedule = #qkernel.schedule<target = cpu, grain = 8, vector_width = 16, tile = [4, 2], dot = fma, decode_tile = [1, 4], panel = 40, prefill_tile = [4, 4], prefill_tokens = 16>}
