// RUN: qwen-opt %s --split-input-file -verify-diagnostics

// The blocked-prefill fields of #qkernel.schedule (cpu matmul): a panel,
// a [tokens, weight rows] register tile whose weight rows divide the panel,
// and a token threshold of at least a tile; all three or none.

// A complete one verifies (test/Schedule/roundtrip.mlir prints it back).
func.func private @ok() attributes {qkernel.schedule = #qkernel.schedule<target = cpu, grain = 8, vector_width = 16, tile = [4, 2], dot = fma, decode_tile = [1, 4], panel = 40, prefill_tile = [4, 4], prefill_tokens = 16>}

// -----

// expected-error @+1 {{the blocked prefill needs a dot, a panel, prefill_tile = [tokens, weight rows] whose weight rows divide the panel, and prefill_tokens of at least a tile's tokens}}
func.func private @f() attributes {qkernel.schedule = #qkernel.schedule<target = cpu, grain = 8, vector_width = 16, tile = [4, 2], dot = fma, panel = 40, prefill_tokens = 16>}

// -----

// expected-error @+1 {{the blocked prefill needs a dot, a panel, prefill_tile = [tokens, weight rows] whose weight rows divide the panel, and prefill_tokens of at least a tile's tokens}}
func.func private @f() attributes {qkernel.schedule = #qkernel.schedule<target = cpu, grain = 8, vector_width = 16, tile = [4, 2], dot = fma, panel = 42, prefill_tile = [4, 4], prefill_tokens = 16>}

// -----

// expected-error @+1 {{the blocked prefill needs a dot, a panel, prefill_tile = [tokens, weight rows] whose weight rows divide the panel, and prefill_tokens of at least a tile's tokens}}
func.func private @f() attributes {qkernel.schedule = #qkernel.schedule<target = cpu, grain = 8, vector_width = 16, tile = [4, 2], dot = fma, panel = 40, prefill_tile = [4, 4], prefill_tokens = 2>}

// -----

// expected-error @+1 {{panel, prefill_tile and prefill_tokens are cpu parameters}}
func.func private @f() attributes {qkernel.schedule = #qkernel.schedule<target = cuda, threads = 256, panel = 40>}
