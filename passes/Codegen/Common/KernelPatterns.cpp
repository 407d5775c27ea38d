//===- KernelPatterns.cpp - The kernel patterns' shared matching ----------===//
#include "qwen/Passes/Codegen/Common/KernelPatterns.h"
#include "qwen/Passes/Common/ShapeSymbols.h"

#include "mlir/Transforms/WalkPatternRewriteDriver.h"

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen;

TargetLowering::~TargetLowering() = default;

bool qwen::codegen::isKernelSource(func::FuncOp func) {
  return func->hasAttr(qkernel::kKernelAttrName) && !func.isDeclaration();
}

void qwen::codegen::recordArgumentSymbols(ModuleOp kernels) {
  for (auto source : kernels.getOps<func::FuncOp>())
    if (isKernelSource(source))
      for (BlockArgument arg : source.getArguments()) {
        std::string symbol = getLeadingSymbol(arg);
        if (!symbol.empty())
          source.setArgAttr(arg.getArgNumber(), "qkernel.symbol",
                            StringAttr::get(kernels.getContext(), symbol));
      }
}

LogicalResult qwen::codegen::applyKernelPatterns(ModuleOp kernels, RewritePatternSet &&patterns,
                                                 const TargetLowering &lowering,
                                                 StringRef targetName) {
  // No fixpoint, folding or dead-code removal: the kernels are what their
  // emitters built, and a lowered kernel matches no pattern.
  walkAndApplyPatterns(kernels, FrozenRewritePatternSet(std::move(patterns)));
  if (lowering.hasFailed())
    return failure();
  for (auto source : kernels.getOps<func::FuncOp>())
    if (isKernelSource(source))
      return source.emitOpError("has no ")
             << targetName << " codegen for kernel kind " << source->getAttr(qkernel::kKindAttrName);
  return success();
}

LogicalResult qwen::codegen::verifyGridTraced(func::FuncOp source, ArrayRef<Attribute> grid) {
  for (Attribute factor : grid)
    if (auto symbol = dyn_cast<StringAttr>(factor); symbol && symbol.empty())
      return source.emitOpError("cannot tell the size of its grid: a dynamic "
                                "dimension does not trace back to a step input");
  return success();
}

void qwen::codegen::setLaunches(ModuleOp top, func::FuncOp source, qkernel::LaunchAttr attr,
                                RewriterBase &rewriter) {
  top.walk([&](qkernel::LaunchOp launch) {
    if (launch.getKernel().getRootReference() == qkernel::kKernelModuleName &&
        launch.getKernel().getLeafReference() == source.getSymName())
      rewriter.modifyOpInPlace(launch, [&] { launch.setLaunchAttr(attr); });
  });
}

KernelSourcePattern::KernelSourcePattern(MLIRContext *ctx, qkernel::KernelKind kind,
                                         TargetLowering &lowering)
    : OpRewritePattern(ctx), lowering(lowering), kind(kind) {}

LogicalResult KernelSourcePattern::matchAndRewrite(func::FuncOp source,
                                                   PatternRewriter &rewriter) const {
  if (lowering.hasFailed() || !isKernelSource(source))
    return failure();
  auto kindAttr = source->getAttrOfType<qkernel::KernelKindAttr>(qkernel::kKindAttrName);
  if (!kindAttr || kindAttr.getValue() != kind)
    return rewriter.notifyMatchFailure(source, "another kernel kind");
  if (failed(lowerKernel(source, rewriter))) {
    lowering.setFailed();
    return failure();
  }
  return success();
}

void qwen::codegen::populateCommonKernelPatterns(RewritePatternSet &patterns,
                                                 TargetLowering &lowering) {
  populateRowsPatterns(patterns, lowering);
  populateGatedNormPatterns(patterns, lowering);
  populateElementwisePatterns(patterns, lowering);
  populateEmbeddingPatterns(patterns, lowering);
  populateKVWritePatterns(patterns, lowering);
  populateConvPatterns(patterns, lowering);
  populateLayerNormPatterns(patterns, lowering);
  populateGeluPatterns(patterns, lowering);
  populateRotaryEmbeddingPatterns(patterns, lowering);
  populateWeightedGatherPatterns(patterns, lowering);
  populateSegmentAttentionPatterns(patterns, lowering);
}
