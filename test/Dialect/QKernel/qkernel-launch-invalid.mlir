// RUN: qwen-opt %s -split-input-file -verify-diagnostics

// expected-error @+1 {{grid symbol 'N' is not a step size (T, B, P or R)}}
func.func private @symbol() attributes {launch = #qkernel.launch<grid = [N, 4]>}

// -----

// expected-error @+1 {{grid factors must be step symbols or positive integers, got 0 : i64}}
func.func private @zero() attributes {launch = #qkernel.launch<grid = [T, 0]>}

// -----

// expected-error @+1 {{grid must have at least one factor}}
func.func private @empty() attributes {launch = #qkernel.launch<grid = []>}

// -----

// expected-error @+1 {{block must have 1 to 1024 threads, got 2048}}
func.func private @threads() attributes {launch = #qkernel.launch<grid = [T], block = 2048, shared = 0>}

// -----

// expected-error @+1 {{shared memory must be 0 to 49152 bytes (static, sm_90), got 49153}}
func.func private @shared() attributes {launch = #qkernel.launch<grid = [T], block = 256, shared = 49153>}

// -----

// expected-error @+1 {{a launch without block threads (CPU) has only a grid}}
func.func private @cpu_programmatic() attributes {launch = #qkernel.launch<grid = [T], programmatic>}

// -----

// expected-error @+1 {{max_splits = 16 needs a combine variant}}
func.func private @no_combine() attributes {launch = #qkernel.launch<grid = [T], block = 256, shared = 0, decode = <"d", grid = [B], block = 128, shared = 0>, max_splits = 16, partial_floats = 8>}

// -----

// expected-error @+1 {{a combine variant and split_keys need max_splits > 1}}
func.func private @useless_combine() attributes {launch = #qkernel.launch<grid = [T], block = 256, shared = 0, decode = <"d", grid = [B], block = 128, shared = 0>, max_splits = 1, partial_floats = 8, combine = <"c", grid = [B], block = 32, shared = 0>>}

// -----

// expected-error @+1 {{a decode variant needs max_splits >= 1 and partial_floats >= 1}}
func.func private @no_splits() attributes {launch = #qkernel.launch<grid = [T], block = 256, shared = 0, decode = <"d", grid = [B], block = 128, shared = 0>>}

// -----

// expected-error @+1 {{max_splits, partial_floats, combine and split_keys need a decode variant}}
func.func private @no_decode() attributes {launch = #qkernel.launch<grid = [T], block = 256, shared = 0, max_splits = 4>}

// -----

// expected-error @+1 {{block must have 1 to 1024 threads, got 0}}
func.func private @variant_block() attributes {launch = #qkernel.launch<grid = [T], block = 256, shared = 0, decode = <"d", grid = [B], block = 0, shared = 0>, max_splits = 1, partial_floats = 8>}

// -----

// expected-error @+1 {{a kernel variant needs a kernel name}}
func.func private @variant_name() attributes {sampler = #qkernel.variant<"", grid = [R], block = 32, shared = 0>}

// -----

// expected-error @+1 {{unknown launch field 'threads'}}
func.func private @field() attributes {launch = #qkernel.launch<grid = [T], threads = 4>}

// -----

// expected-error @+1 {{'block' appears twice}}
func.func private @twice() attributes {launch = #qkernel.launch<grid = [T], block = 4, block = 8>}

// -----

// expected-error @+2 {{expected ::qwen::qkernel::KernelKind to be one of: matmul, rows}}
// expected-error @+1 {{failed to parse QKernel_KernelKindAttr parameter 'value'}}
func.func private @kind() attributes {kind = #qkernel.kind<scan>}

// -----

// expected-error @+1 {{'func.func' op 'qkernel.kind' must be a #qkernel.kind, got "rows"}}
func.func private @string_kind() attributes {qkernel.kind = "rows"}

// -----

// expected-error @+1 {{'func.func' op 'qkernel.sampler' must be {argmax = #qkernel.variant<...>, topk = #qkernel.variant<...>, topk_count = N > 0}}}
func.func private @sampler() attributes {qkernel.sampler = {argmax = #qkernel.variant<"qk_argmax", grid = [R], block = 32, shared = 0>, topk = {kernel = "qk_topk"}, topk_count = 256}}

// -----

// expected-error @+1 {{max_splits = 16 needs split_keys >= 1}}
func.func private @no_split_keys() attributes {launch = #qkernel.launch<grid = [T], block = 256, shared = 0, decode = <"d", grid = [B], block = 128, shared = 0>, max_splits = 16, partial_floats = 8, combine = <"c", grid = [B], block = 32, shared = 0>>}

// -----

// expected-error @+1 {{a combine variant and split_keys need max_splits > 1}}
func.func private @useless_split_keys() attributes {launch = #qkernel.launch<grid = [T], block = 256, shared = 0, decode = <"d", grid = [B], block = 128, shared = 0>, max_splits = 1, partial_floats = 8, split_keys = 64>}
