//===- KernelPatterns.cpp - The kernel patterns' shared matching ----------===//
#include "qwen/Passes/Codegen/Common/KernelPatterns.h"

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen;

TargetLowering::~TargetLowering() = default;

bool qwen::codegen::isKernelSource(func::FuncOp func) {
  return func->hasAttr(qkernel::kKernelAttrName) && !func.isDeclaration();
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
