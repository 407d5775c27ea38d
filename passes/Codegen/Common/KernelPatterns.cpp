//===- KernelPatterns.cpp - The kernel patterns' shared matching ----------===//
#include "qwen/Passes/Codegen/Common/KernelPatterns.h"
#include "qwen/Passes/Codegen/Common/RowFamilies.h"
#include "qwen/Passes/Codegen/Common/VisionFamilies.h"
#include "qwen/Passes/Common/ShapeSymbols.h"

#include "mlir/Transforms/WalkPatternRewriteDriver.h"

#include <optional>

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

namespace {
/// Hears what the kernel patterns tell their rewriter, to find the ops they
/// created or erased past it (a builder without the rewriter's listener, a
/// direct erase): such changes escape a driver that tracks the IR.
class RewriteAudit final : public RewriterBase::Listener {
public:
  explicit RewriteAudit(Operation *root) : root(root) {
    root->walk([&](Operation *op) { before.insert(op); });
  }

  void notifyOperationInserted(Operation *op, OpBuilder::InsertPoint previous) override {
    if (!previous.isSet())
      created.insert(op);
  }
  void notifyOperationErased(Operation *op) override {
    created.erase(op);
    before.erase(op);
  }

  /// Fails with an error on each op that appeared unheard of, and on
  /// `root` when ops disappeared unheard of.
  LogicalResult verify() {
    bool unheard = false;
    DenseSet<Operation *> after;
    root->walk([&](Operation *op) {
      after.insert(op);
      if (!before.contains(op) && !created.contains(op)) {
        op->emitOpError("was created by a kernel pattern past its rewriter");
        unheard = true;
      }
    });
    int64_t erased = llvm::count_if(before, [&](Operation *op) { return !after.contains(op); });
    if (erased)
      return root->emitOpError() << erased << " ops were erased by the kernel patterns past "
                                 << "their rewriter";
    return failure(unheard);
  }

private:
  Operation *root;
  DenseSet<Operation *> before, created;
};
} // namespace

LogicalResult qwen::codegen::applyKernelPatterns(ModuleOp kernels, RewritePatternSet &&patterns,
                                                 const TargetLowering &lowering,
                                                 StringRef targetName, bool auditRewrites) {
  // No fixpoint, folding or dead-code removal: the kernels are what their
  // emitters built, and a lowered kernel matches no pattern. The patterns
  // also change the launches and the GPU module beside `kernels`.
  std::optional<RewriteAudit> audit;
  if (auditRewrites)
    audit.emplace(kernels->getParentOp() ? kernels->getParentOp() : kernels.getOperation());
  walkAndApplyPatterns(kernels, FrozenRewritePatternSet(std::move(patterns)),
                       audit ? &*audit : nullptr);
  if (lowering.hasFailed() || (audit && failed(audit->verify())))
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
  using K = qkernel::KernelKind;
  const std::pair<K, FamilyLowering> families[] = {
      {K::Rows, lowerRowsKernel},
      {K::GatedNorm, lowerGatedNormKernel},
      {K::Elementwise, lowerElementwiseKernel},
      {K::Embedding, lowerEmbeddingKernel},
      {K::Conv, lowerConvKernel},
      {K::LayerNorm, lowerLayerNormKernel},
      {K::Gelu, lowerGeluKernel},
      {K::WeightedGather, lowerWeightedGatherKernel},
      {K::SegmentAttention, lowerSegmentAttentionKernel},
      {K::KVWrite, lowerKVWriteKernel},
      {K::Rotary, lowerRotaryEmbeddingKernel},
  };
  for (auto [kind, lower] : families)
    patterns.add<FamilyPattern>(patterns.getContext(), kind, lower, lowering);
}
