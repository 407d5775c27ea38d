//===- Passes.td - Fusion and outlining ---------------------*- tablegen -*-===//
//
// Target-independent: every target compiles the same kernel regions.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_PASSES_FUSION_PASSES_TD
#define QWEN_PASSES_FUSION_PASSES_TD

include "mlir/Pass/PassBase.td"

def FormKernelRegionsPass : Pass<"qwen-fusion-form-kernel-regions", "mlir::func::FuncOp"> {
  let summary = "Groups graph ops into qkernel.region ops, one per kernel";
  let description = [{
    Fusion rules, applied once for all targets:
    - a linear absorbs a `gather_rows` that feeds it (prologue) and a residual
      `add` that consumes it (epilogue): kind `matmul`;
    - a `rope` absorbs the `rms_norm` feeding it: kind `rows`;
    - a `kv_cache_write` absorbs the row chain that produces its keys: kind
      `kv_write`; the `paged_attention` that reads the written cache gives it
      its query chain too (a `rope` / `rms_norm` of [tokens, heads, head_dim]
      read only by the attention), which the kernel returns;
    - an expert `moe_combine` absorbs the residual `add` (`elementwise`);
    - `paged_attention` (`attention`), `embedding`, `moe_router` (`router`),
      `moe_expert_ffn` (`experts`), `causal_conv1d` (`conv`),
      `gated_delta_rule` (`delta_rule`), `gated_rms_norm` (`gated_norm`), lone
      norms (`rows`) and `silu_mul` / `sigmoid_mul` / `add` (`elementwise`)
      form regions of their own.
    View ops (`split`, `reshape`) are cloned into every region that reads
    them, so they cost no kernel and no copy.
  }];
  let dependentDialects = ["::qwen::qkernel::QKernelDialect"];
}

def OutlineKernelsPass : Pass<"qwen-fusion-outline-kernels", "mlir::ModuleOp"> {
  let summary = "Outlines kernel regions into functions of the nested @kernels module";
  let description = [{
    Each `qkernel.region` of `@step` becomes `func.func @qkN_<kind>` in
    `module @kernels` with its captured values as arguments, and the region
    is replaced by a `qkernel.launch` of that function.
  }];
  let dependentDialects = ["::qwen::qkernel::QKernelDialect", "::mlir::func::FuncDialect"];
}

def PlanBuffersPass : Pass<"qwen-plan-buffers", "mlir::func::FuncOp"> {
  let summary = "Assigns every launch result an arena buffer, reusing dead ones";
  let description = [{
    Walks the step's launches in order. A result gets a free buffer of the
    same element type, static shape and leading symbol, or a new one; a buffer
    is freed after the last launch that reads it. A launch never writes a
    buffer it also reads. Records `result_buffers` on each launch and the
    buffer table as `qkernel.buffers` on the function.
  }];
}

#endif // QWEN_PASSES_FUSION_PASSES_TD
