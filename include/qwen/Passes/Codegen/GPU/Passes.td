//===- Passes.td - GPU codegen ------------------------------*- tablegen -*-===//
#ifndef QWEN_PASSES_CODEGEN_GPU_PASSES_TD
#define QWEN_PASSES_CODEGEN_GPU_PASSES_TD

include "mlir/Pass/PassBase.td"

def GpuNarrowGemmInputsPass : Pass<"qwen-gpu-narrow-gemm-inputs", "mlir::ModuleOp"> {
  let summary = "Stores GEMM activations in the weight dtype from their producer";
  let description = [{
    Runs on the outlined step (after qwen-outline-kernels, before buffer
    planning). A `rows`, `elementwise` or `attention` kernel whose one f32
    result feeds only `matmul` kernels, as their activations (directly or
    through `qtf.reshape` / `qtf.gather_rows`; a gathering GEMM keeps its
    pack kernel, which then only gathers), with bf16 or f16 weights of one
    dtype, returns that result through an `arith.truncf` to the weight
    dtype; its launches' results and the matmul kernels' activation
    arguments take that dtype. The GPU emitters still compute in f32 and
    round to nearest even when they store, exactly as the `_pack` kernel
    qwen-gpu-lower-kernels would otherwise add before each such GEMM, so
    the numerics are unchanged and a launch per GEMM is saved. A kernel
    function is narrowed only when all of its launches qualify.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect"];
}

def GpuLowerKernelsPass : Pass<"qwen-gpu-lower-kernels", "mlir::ModuleOp"> {
  let summary = "Lowers outlined kernels to gpu.func kernels and cuBLASLt calls";
  let description = [{
    Every `qkernel.kernel` function of `module @kernels` of kind embedding,
    rows, kv_write, attention, elementwise, conv, delta_rule, gated_norm,
    router or experts becomes a `gpu.func ... kernel`
    of `gpu.module @qwen_kernels` (created in the top module with an
    `#nvvm.target`), with the same view resolution and f32 numerics as the
    CPU emitter. Kernel parameters: one `!llvm.ptr` (generic address space,
    pointing to global memory) per CPU ABI slot, in CPU ABI order, then the
    step sizes T, B, P, R as i64 (a KV cache and a linear-attention state
    are two slots each; their results have none). Each launch of `@step` is
    redirected to the gpu.func and records its `#qkernel.launch` (grid
    factors whose product is the block count, block threads, static shared
    memory, and the decode / combine variants of attention). Each kernel is
    emitted as its `#qkernel.schedule` says (threads, tiles, lanes, decode
    splits); a kernel without one is an error: qwen-select-schedule
    (target=cuda) runs first.

    `matmul` kernels are not generated: each launch gets a `cublaslt`
    descriptor (row-major `D[m, n] = A[m, k] * B[n, k]^T (+ bias) (+ C)`), and
    its kernel becomes a bodiless declaration tagged
    `qkernel.library = "cublaslt"`. When the GEMM needs a row gather, or its
    activations must be converted to the weight dtype (cuBLASLt wants A and
    B of one type), a generated `<name>_pack` kernel runs first and its
    result, in a new arena buffer, becomes the A operand.
  }];
  let options = [
    Option<"chip", "chip", "std::string", /*default=*/"\"sm_90\"",
           "NVVM target chip">,
    Option<"features", "features", "std::string", /*default=*/"\"+ptx80\"",
           "NVVM target features (PTX version)">,
    Option<"convertGemmInputs", "convert-gemm-inputs", "bool",
           /*default=*/"true",
           "Convert GEMM activations to the weight dtype in a pack kernel "
           "(false: A stays f32 and the runtime must reconcile the types)">,
    Option<"auditRewrites", "audit-rewrites", "bool", /*default=*/"false",
           "Test only: fail when a kernel pattern creates or erases an op "
           "without telling its rewriter">
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::math::MathDialect",
    "::mlir::memref::MemRefDialect", "::mlir::scf::SCFDialect",
    "::mlir::vector::VectorDialect", "::mlir::LLVM::LLVMDialect",
    "::mlir::gpu::GPUDialect", "::mlir::NVVM::NVVMDialect",
    "::mlir::nvgpu::NVGPUDialect", "::mlir::func::FuncDialect"
  ];
}

def GpuWaitForPrerequisiteGridsPass
    : Pass<"qwen-gpu-wait-for-prerequisite-grids", "mlir::ModuleOp"> {
  let summary = "Starts every kernel with griddepcontrol.wait (programmatic launch)";
  let description = [{
    Inserts `nvvm.griddepcontrol wait` at the entry of every `gpu.func`
    kernel of the module's gpu.modules, so that the runtime may launch the kernels with
    programmatic dependent launch (the next kernel's launch overlapped with
    the previous one): nothing of a kernel runs before the grids it depends
    on have completed and their writes are visible. No kernel triggers its
    dependents early (the trigger is the grid's exit). Part of
    qwen-gpu-lower-to-nvvm, before convert-gpu-to-nvvm. Every
    `#qkernel.launch` whose kernels now wait gets its `programmatic` flag,
    from which the manifest says `"programmatic_launch": true`.
  }];
  let dependentDialects = ["::mlir::NVVM::NVVMDialect"];
}

def GpuExpandSubgroupReducePass
    : Pass<"qwen-gpu-expand-subgroup-reduce", "mlir::gpu::GPUModuleOp"> {
  let summary = "Expands gpu.subgroup_reduce into xor shuffles (upstream patterns)";
  let description = [{
    Applies MLIR's populateGpuLowerSubgroupReduceToShufflePatterns and
    populateGpuLowerClusteredSubgroupReduceToShufflePatterns (32-lane
    warps, 32-bit shuffles): a reduce over a cluster of `size` lanes
    `stride` apart becomes xor shuffles with offsets stride, 2 stride, ...
    and the combining op after each. The emitters reduce a warp as one
    two-lane cluster per butterfly step (GpuKernelEmitter::laneReduce), so
    the summation order is theirs. Part of qwen-gpu-lower-to-nvvm, before
    convert-gpu-to-nvvm, which has no f32 lowering of its own.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect", "::mlir::vector::VectorDialect"];
}

#endif // QWEN_PASSES_CODEGEN_GPU_PASSES_TD
