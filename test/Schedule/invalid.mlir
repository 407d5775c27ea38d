// RUN: qwen-opt %s --split-input-file -verify-diagnostics

// expected-error @+1 {{cpu vector_width must be at most 16, got 32}}
func.func private @f() attributes {qkernel.schedule = #qkernel.schedule<target = cpu, grain = 1, vector_width = 32>}

// -----

// expected-error @+1 {{vector_width must be a power of two, got 12}}
func.func private @f() attributes {qkernel.schedule = #qkernel.schedule<target = cpu, grain = 1, vector_width = 12>}

// -----

// expected-error @+1 {{cpu schedule needs a positive grain}}
func.func private @f() attributes {qkernel.schedule = #qkernel.schedule<target = cpu, vector_width = 8>}

// -----

// expected-error @+1 {{threads, lanes and tensor_cores are cuda parameters}}
func.func private @f() attributes {qkernel.schedule = #qkernel.schedule<target = cpu, grain = 1, threads = 256>}

// -----

// expected-error @+1 {{tile sizes must be positive}}
func.func private @f() attributes {qkernel.schedule = #qkernel.schedule<target = cpu, grain = 8, tile = [4, 0]>}

// -----

// expected-error @+1 {{stages must be at least 1}}
func.func private @f() attributes {qkernel.schedule = #qkernel.schedule<target = cpu, grain = 8, stages = 0>}

// -----

// expected-error @+1 {{cuda threads must be a multiple of 32 in [32, 1024], got 48}}
func.func private @f() attributes {qkernel.schedule = #qkernel.schedule<target = cuda, threads = 48>}

// -----

// expected-error @+1 {{cuda threads must be a multiple of 32 in [32, 1024], got 2048}}
func.func private @f() attributes {qkernel.schedule = #qkernel.schedule<target = cuda, threads = 2048>}

// -----

// expected-error @+1 {{cuda vector_width must be at most 4 (16-byte loads), got 8}}
func.func private @f() attributes {qkernel.schedule = #qkernel.schedule<target = cuda, threads = 256, vector_width = 8>}

// -----

// expected-error @+1 {{grain, dot and decode_dot are cpu parameters}}
func.func private @f() attributes {qkernel.schedule = #qkernel.schedule<target = cuda, threads = 256, dot = fma>}

// -----

// The AVX512-BF16 dot kinds are CPU instructions too.
// expected-error @+1 {{grain, dot and decode_dot are cpu parameters}}
func.func private @f() attributes {qkernel.schedule = #qkernel.schedule<target = cuda, threads = 256, decode_dot = avx512_bf16_split>}

// -----

// expected-error @+1 {{decode_dot needs a dot}}
func.func private @f() attributes {qkernel.schedule = #qkernel.schedule<target = cpu, grain = 8, decode_dot = avx512_bf16_split>}

// -----

// expected-error @+1 {{lanes must be a power of two of at most 32 (one warp)}}
func.func private @f() attributes {qkernel.schedule = #qkernel.schedule<target = cuda, threads = 256, lanes = 64>}

// -----

// expected-error @+1 {{cuda decode_threads must be a multiple of 32 in [32, 1024]}}
func.func private @f() attributes {qkernel.schedule = #qkernel.schedule<target = cuda, threads = 256, decode_threads = 100>}

// -----

// expected-error @+1 {{combine_threads needs splits of at least 2}}
func.func private @f() attributes {qkernel.schedule = #qkernel.schedule<target = cuda, threads = 256, combine_threads = 128>}

// -----

// expected-error @+1 {{splits must not be negative}}
func.func private @f() attributes {qkernel.schedule = #qkernel.schedule<target = cuda, threads = 256, splits = -1>}

// -----

// expected-error @+1 {{decode_lanes must not exceed decode_threads}}
func.func private @f() attributes {qkernel.schedule = #qkernel.schedule<target = cuda, threads = 256, decode_lanes = 8>}

// -----

// expected-error @+1 {{row_widths must be [length, width] pairs}}
func.func private @f() attributes {qkernel.schedule = #qkernel.schedule<target = cpu, grain = 1, vector_width = 8, row_widths = [10]>}

// -----

// expected-error @+1 {{row_widths: width 4 must be a power of two of at most 16 that divides its length 10}}
func.func private @f() attributes {qkernel.schedule = #qkernel.schedule<target = cpu, grain = 1, vector_width = 8, row_widths = [10, 4]>}

// -----

// expected-error @+1 {{row_widths: width 8 must be a power of two of at most 4 that divides its length 64}}
func.func private @f() attributes {qkernel.schedule = #qkernel.schedule<target = cuda, threads = 256, row_widths = [64, 8]>}

// -----

// expected-error @+1 {{split_keys needs splits of at least 2}}
func.func private @f() attributes {qkernel.schedule = #qkernel.schedule<target = cuda, threads = 256, split_keys = 64>}
