//===- KernelPatterns.h - CPU kernel lowering patterns ----------*- C++ -*-===//
//
// The CPU's side of the kernel patterns (Common/KernelPatterns.h): a kernel
// source becomes a function of the CPU kernel ABI (docs/ARTIFACT.md) built
// by a KernelEmitter, and every qkernel.launch of it records its grid.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_PASSES_CODEGEN_CPU_KERNELPATTERNS_H
#define QWEN_PASSES_CODEGEN_CPU_KERNELPATTERNS_H

#include "qwen/Passes/Codegen/Common/KernelPatterns.h"

#include "mlir/IR/BuiltinOps.h"

namespace qwen::codegen::cpu {

class KernelEmitter;

/// Lowers kernel sources of module `kernels` (in `top`, which holds the
/// launches) to the CPU ABI.
class CpuKernelLowering final : public codegen::TargetLowering {
public:
  using Emit = mlir::FailureOr<Grid> (*)(KernelEmitter &emitter);

  CpuKernelLowering(mlir::ModuleOp top, mlir::ModuleOp kernels) : top(top), kernels(kernels) {}

  /// Builds `source`'s kernel with `emit` through a KernelEmitter sized by
  /// its schedule, sets the grid on its launches and replaces `source` with
  /// the ABI function (of the same name).
  mlir::LogicalResult lower(mlir::func::FuncOp source, mlir::PatternRewriter &rewriter,
                            llvm::function_ref<mlir::FailureOr<Grid>(KernelEmitter &)> emit);

  mlir::LogicalResult lowerFamily(mlir::func::FuncOp source, mlir::PatternRewriter &rewriter,
                                  codegen::FamilyLowering lower) override;

private:
  mlir::ModuleOp top, kernels;
};

/// A kernel kind the CPU lowers with its own emitter.
using CpuKernelPattern = codegen::TargetKernelPattern<CpuKernelLowering>;

// One per kernel file of this folder.
void populateMatmulPatterns(mlir::RewritePatternSet &patterns, CpuKernelLowering &lowering);
void populateAttentionPatterns(mlir::RewritePatternSet &patterns, CpuKernelLowering &lowering);
void populateMoePatterns(mlir::RewritePatternSet &patterns, CpuKernelLowering &lowering);
void populateDeltaRulePatterns(mlir::RewritePatternSet &patterns, CpuKernelLowering &lowering);

} // namespace qwen::codegen::cpu

#endif // QWEN_PASSES_CODEGEN_CPU_KERNELPATTERNS_H
