//===- Passes.td - kernel schedules -------------------------*- tablegen -*-===//
#ifndef QWEN_PASSES_SCHEDULE_PASSES_TD
#define QWEN_PASSES_SCHEDULE_PASSES_TD

include "mlir/Pass/PassBase.td"

def SelectSchedulePass : Pass<"qwen-select-schedule", "mlir::ModuleOp"> {
  let summary = "Records the schedule of every outlined kernel as #qkernel.schedule";
  let description = [{
    Runs after qwen-outline-kernels and before the target codegen
    (qwen-cpu-lower-kernels, qwen-gpu-lower-kernels). Every `qkernel.kernel`
    function of `module @kernels` (a matmul declaration too) gets a
    `qkernel.schedule = #qkernel.schedule<...>` attribute chosen for
    `target` from its kind and shapes: threads per block or work-item
    grain, vector width, lanes, tile sizes, pipeline stages, decode splits,
    tensor cores and (CPU matmul, experts) the dot-product instruction, from
    the target's `cpu-features` and the operand types. The schedule
    sits on the kernel function, not on its launches: all launches of a
    kernel run the same code. Codegen reads it and fails on a kernel
    without one; what it chooses here is exactly what the emitters used to
    derive inline, so numerics and speed do not change.
  }];
  let options = [
    Option<"target", "target", "std::string", /*default=*/"\"cpu\"",
           "kernel target: cpu or cuda">,
    Option<"vectorWidth", "vector-width", "int64_t", /*default=*/"8",
           "cpu: f32 lanes per vector (8: AVX2, 16: AVX-512)">,
    ListOption<"cpuFeatures", "cpu-features", "std::string",
               "cpu: ISA extensions of the target (LLVM spelling); avx512bf16 "
               "(with avx512f) turns bf16 matmul tiles into vdpbf16ps dots">,
    Option<"bf16Activations", "bf16-activations", "std::string",
           /*default=*/"\"auto\"",
           "cpu, AVX512-BF16 tiles of bf16 weights: auto (the default: "
           "activations rounded to bf16 on every tile but those of the "
           "lm_head and the router's matmul, which keep f32 FMAs), off (f32 "
           "FMAs everywhere), split (f32 activations as bf16 hi + lo on "
           "one-token tiles, f32 FMAs on the others) or round (activations "
           "rounded to bf16 on every tile); auto is off on other targets">,
    Option<"maxThreads", "max-threads", "int64_t", /*default=*/"256",
           "cuda: largest block of row-wise kernels (a multiple of 32, <= 1024)">,
    Option<"attentionThreads", "attention-threads", "int64_t",
           /*default=*/"256",
           "cuda: threads per (token, head) attention block (a multiple of 32)">,
    Option<"gpuAttention", "gpu-attention", "std::string", /*default=*/"\"simt\"",
           "cuda: prefill query tiles of attention on CUDA cores (simt, the "
           "default) or on tensor cores (mma: mma.sync flash attention, for "
           "bf16 / f16 KV caches; an f32 cache keeps simt)">,
    Option<"gpuGemv", "gpu-gemv", "std::string", /*default=*/"\"cublaslt\"",
           "cuda: decode steps of <= 8 rows of bf16 / f16 / f32 GEMMs run "
           "cuBLASLt (cublaslt, the default) or a generated GEMV, the GEMM's "
           "decode variant (generated)">
  ];
  let dependentDialects = ["::qwen::qkernel::QKernelDialect"];
}

#endif // QWEN_PASSES_SCHEDULE_PASSES_TD
