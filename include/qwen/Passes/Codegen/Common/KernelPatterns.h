//===- KernelPatterns.h - Kernel lowering as rewrite patterns ---*- C++ -*-===//
//
// Codegen is a set of rewrite patterns on the outlined kernel functions of
// module @kernels: a pattern matches a kernel's source `func.func` by its
// #qkernel.kind and replaces it with the lowered kernel. A family's pattern
// is a row of populateCommonKernelPatterns (KernelPatterns.cpp) or, for a
// target's own kernel, a `populate<Kernel>Patterns` function in its file, so
// adding a family is adding a file and its line:
//
//   Common/<Family>.cpp   the families written once for every target
//                         (FamilyPattern, through the target's lowering)
//   CPU/<Kernel>.cpp      the CPU's own kernels (CpuKernelPattern)
//   GPU/<Kernel>.cpp      the GPU's own kernels (GpuKernelPattern), the
//                         cuBLASLt matmul
//
// What differs between the targets is a TargetLowering: it makes the
// target's KernelTarget (its emitter) for a source, lets the family build the
// kernel through it, then records the launch and puts the lowered function in
// the source's place. The passes (CPU and GPU LowerKernels.cpp) apply the
// patterns with walkAndApplyPatterns: one visit per kernel, in module order,
// no folding (the emitted code is exactly what the emitters built).
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_PASSES_CODEGEN_COMMON_KERNELPATTERNS_H
#define QWEN_PASSES_CODEGEN_COMMON_KERNELPATTERNS_H

#include "qwen/Dialect/QKernel/IR/QKernel.h"
#include "qwen/Passes/Codegen/Common/KernelTarget.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/PatternMatch.h"

namespace qwen::codegen {

using Grid = llvm::SmallVector<mlir::Attribute>;

/// A family written once: builds the kernel through the target and returns
/// its grid (step symbols and integer factors).
using FamilyLowering = mlir::FailureOr<Grid> (*)(KernelTarget &target);

/// A target's side of the kernel patterns (the CPU's and the GPU's
/// LowerKernels.cpp implement it).
class TargetLowering {
public:
  virtual ~TargetLowering();

  /// Lowers `source` with the family `lower` through this target's emitter:
  /// builds the kernel, records its launch and replaces `source` with it.
  /// On failure an error is emitted on `source`.
  virtual mlir::LogicalResult lowerFamily(mlir::func::FuncOp source,
                                          mlir::PatternRewriter &rewriter,
                                          FamilyLowering lower) = 0;

  /// Whether a kernel failed to lower (its error emitted): the pass fails
  /// and the patterns stop matching, as the first error ends the pass.
  bool hasFailed() const { return anyFailed; }
  void setFailed() { anyFailed = true; }

private:
  bool anyFailed = false;
};

/// Whether `func` is a kernel still to lower: an outlined kernel function
/// with a body (the GPU's launch declarations have none).
bool isKernelSource(mlir::func::FuncOp func);

/// Records each kernel source's argument symbols as `qkernel.symbol`, before
/// lowering a kernel removes the tensor signature later kernels would trace
/// their sizes through.
void recordArgumentSymbols(mlir::ModuleOp kernels);

/// Applies the kernel `patterns` to module `kernels` (one visit per kernel,
/// in order); fails when a kernel failed to lower or no pattern took it
/// ("has no <target> codegen for kernel kind ..."). With `auditRewrites`
/// (a test option), also fails when a pattern created or erased an op
/// without telling the rewriter's listener.
mlir::LogicalResult applyKernelPatterns(mlir::ModuleOp kernels, mlir::RewritePatternSet &&patterns,
                                        const TargetLowering &lowering, llvm::StringRef targetName,
                                        bool auditRewrites = false);

/// Fails with an error on `source` when a factor of its `grid` is a dynamic
/// size that traces back to no step input (an empty symbol).
mlir::LogicalResult verifyGridTraced(mlir::func::FuncOp source, llvm::ArrayRef<mlir::Attribute> grid);

/// Sets `launch` on every qkernel.launch in `top` of the kernel `source`.
void setLaunches(mlir::ModuleOp top, mlir::func::FuncOp source, qkernel::LaunchAttr launch,
                 mlir::RewriterBase &rewriter);

/// The pattern of one kernel kind: matches the kernel sources of `kind` and
/// lowers them with lowerKernel, recording a failure on `lowering`.
class KernelSourcePattern : public mlir::OpRewritePattern<mlir::func::FuncOp> {
public:
  KernelSourcePattern(mlir::MLIRContext *ctx, qkernel::KernelKind kind,
                      TargetLowering &lowering);

  mlir::LogicalResult matchAndRewrite(mlir::func::FuncOp source,
                                      mlir::PatternRewriter &rewriter) const final;

protected:
  /// Lowers the matched `source`; fails with an error emitted on it.
  virtual mlir::LogicalResult lowerKernel(mlir::func::FuncOp source,
                                          mlir::PatternRewriter &rewriter) const = 0;

  TargetLowering &lowering;

private:
  qkernel::KernelKind kind;
};

/// A family written once, lowered through the target's emitter.
class FamilyPattern final : public KernelSourcePattern {
public:
  FamilyPattern(mlir::MLIRContext *ctx, qkernel::KernelKind kind, FamilyLowering lower,
                TargetLowering &lowering)
      : KernelSourcePattern(ctx, kind, lowering), lower(lower) {}

private:
  mlir::LogicalResult lowerKernel(mlir::func::FuncOp source,
                                  mlir::PatternRewriter &rewriter) const override {
    return lowering.lowerFamily(source, rewriter, lower);
  }

  FamilyLowering lower;
};

/// A kernel kind a target lowers with its own emitter (`Target::Emit`),
/// through `Target::lower`: CpuKernelPattern, GpuKernelPattern.
template <typename Target>
class TargetKernelPattern final : public KernelSourcePattern {
public:
  TargetKernelPattern(mlir::MLIRContext *ctx, qkernel::KernelKind kind,
                      typename Target::Emit emit, Target &lowering)
      : KernelSourcePattern(ctx, kind, lowering), emit(emit), target(lowering) {}

private:
  mlir::LogicalResult lowerKernel(mlir::func::FuncOp source,
                                  mlir::PatternRewriter &rewriter) const override {
    return target.lower(source, rewriter, emit);
  }

  typename Target::Emit emit;
  Target &target;
};

/// Every family written once, for `lowering`'s target.
void populateCommonKernelPatterns(mlir::RewritePatternSet &patterns, TargetLowering &lowering);

/// Every kernel pattern of `lowering`'s target: the families written once
/// and the target's own, registered by one populate function per kernel file
/// of the target's folder (found in the target's namespace).
template <typename Lowering>
void populateKernelLoweringPatterns(mlir::RewritePatternSet &patterns, Lowering &lowering) {
  populateCommonKernelPatterns(patterns, lowering);
  populateMatmulPatterns(patterns, lowering);
  populateAttentionPatterns(patterns, lowering);
  populateMoePatterns(patterns, lowering);
  populateDeltaRulePatterns(patterns, lowering);
}

} // namespace qwen::codegen

#endif // QWEN_PASSES_CODEGEN_COMMON_KERNELPATTERNS_H
