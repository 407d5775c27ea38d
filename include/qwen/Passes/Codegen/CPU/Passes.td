//===- Passes.td - CPU codegen ------------------------------*- tablegen -*-===//
#ifndef QWEN_PASSES_CODEGEN_CPU_PASSES_TD
#define QWEN_PASSES_CODEGEN_CPU_PASSES_TD

include "mlir/Pass/PassBase.td"

def LowerKernelsToLoopsPass : Pass<"qwen-cpu-lower-kernels", "mlir::ModuleOp"> {
  let summary = "Lowers outlined kernels to the CPU kernel ABI as vectorized loops";
  let description = [{
    Every `qkernel.kernel` function of `module @kernels` is replaced by a
    function `void NAME(ptr args, ptr dims, i64 begin, i64 end)` whose body is
    scf loops over memrefs with vector FMAs (bf16 / f16 weights widened to
    f32 in registers). The work-item count each kernel expects is recorded as
    `grid` on the launches of `@step`. Adds `qwen_artifact_abi_version`.
    Each kernel is emitted as its `#qkernel.schedule` says (vector width,
    work-item grain, register tiles, dot kinds: AVX512-BF16 tiles as
    `x86vector.avx512.dot`, DotProduct.h); a kernel without one is an error:
    qwen-select-schedule (target=cpu) runs first.
  }];
  let options = [
    Option<"auditRewrites", "audit-rewrites", "bool", /*default=*/"false",
           "Test only: fail when a kernel pattern creates or erases an op "
           "without telling its rewriter">
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::math::MathDialect",
    "::mlir::memref::MemRefDialect", "::mlir::scf::SCFDialect",
    "::mlir::vector::VectorDialect", "::mlir::LLVM::LLVMDialect",
    "::mlir::func::FuncDialect", "::mlir::x86vector::X86VectorDialect"
  ];
}

#endif // QWEN_PASSES_CODEGEN_CPU_PASSES_TD
