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
    With `avx512bf16` among `cpu-features`, bf16 matmul tiles use
    `x86vector.avx512.dot` (DotProduct.h).
  }];
  let options = [
    Option<"vectorWidth", "vector-width", "int64_t", /*default=*/"8",
           "f32 lanes per vector (8: AVX2, 16: AVX-512)">,
    ListOption<"cpuFeatures", "cpu-features", "std::string",
               "ISA extensions of the target CPU (LLVM spelling); avx512bf16 "
               "turns bf16 matmul tiles into vdpbf16ps dot products">,
    Option<"bf16Activations", "bf16-activations", "std::string", /*default=*/"\"split\"",
           "AVX512-BF16 tiles: split (f32 activations as bf16 hi + lo, "
           "f32-level results) or round (activations rounded to bf16)">
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::math::MathDialect",
    "::mlir::memref::MemRefDialect", "::mlir::scf::SCFDialect",
    "::mlir::vector::VectorDialect", "::mlir::LLVM::LLVMDialect",
    "::mlir::func::FuncDialect", "::mlir::x86vector::X86VectorDialect"
  ];
}

#endif // QWEN_PASSES_CODEGEN_CPU_PASSES_TD
