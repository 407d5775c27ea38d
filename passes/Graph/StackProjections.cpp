//===- StackProjections.cpp - Stack sibling linears -----------------------===//
#include "qwen/Passes/Graph/Passes.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace qwen::graph {
#define GEN_PASS_DEF_STACKPROJECTIONSPASS
#include "qwen/Passes/Graph/Passes.h.inc"
} // namespace qwen::graph

using namespace mlir;
using namespace qwen;

namespace {
/// Block-wise FP8 weights stack only when every block row lies inside one
/// source (the source's row count is a multiple of the block rows): then the
/// stacked scales are the sources' scales stacked. A ragged last block row
/// would put rows of two sources in one stacked block, so those stay apart.
bool stackableScales(qtf::LinearOp linear) {
  if (!linear.isBlockQuantized())
    return true;
  int64_t rows = linear.getWeight().getType().getDimSize(0);
  return rows % (*linear.getWeightBlock())[0] == 0 &&
         linear.getWeightScale().getDefiningOp<qtf::WeightOp>();
}

/// Linears that can share one stacked weight with `anchor`: same input, same
/// block, weights straight from qtf.weight with equal dtype and width, and
/// bias on all or none. Returned in block order; empty if fewer than two.
SmallVector<qtf::LinearOp> stackableSiblings(qtf::LinearOp anchor) {
  auto anchorWeight = anchor.getWeight().getDefiningOp<qtf::WeightOp>();
  if (!anchorWeight)
    return {};
  RankedTensorType anchorType = anchorWeight.getResult().getType();
  SmallVector<qtf::LinearOp> siblings;
  for (Operation *user : anchor.getInput().getUsers()) {
    auto linear = dyn_cast<qtf::LinearOp>(user);
    if (!linear || linear.getInput() != anchor.getInput() ||
        linear->getBlock() != anchor->getBlock() ||
        static_cast<bool>(linear.getBias()) != static_cast<bool>(anchor.getBias()))
      continue;
    auto weight = linear.getWeight().getDefiningOp<qtf::WeightOp>();
    if (!weight)
      continue;
    RankedTensorType type = weight.getResult().getType();
    if (type.getElementType() != anchorType.getElementType() ||
        type.getDimSize(1) != anchorType.getDimSize(1))
      continue;
    if (linear.getWeightBlockAttr() != anchor.getWeightBlockAttr() ||
        !stackableScales(linear))
      continue;
    if (Value bias = linear.getBias())
      if (!bias.getDefiningOp<qtf::WeightOp>())
        continue;
    if (!llvm::is_contained(siblings, linear))
      siblings.push_back(linear);
  }
  if (siblings.size() < 2)
    return {};
  llvm::sort(siblings, [](qtf::LinearOp a, qtf::LinearOp b) {
    return a->isBeforeInBlock(b);
  });
  return siblings;
}

/// A weight whose sources are the concatenation of `parts` along dim 0.
Value stackWeights(PatternRewriter &rewriter, Location loc,
                   ArrayRef<Value> parts) {
  SmallVector<Attribute> sources;
  int64_t rows = 0;
  RankedTensorType first = cast<RankedTensorType>(parts.front().getType());
  for (Value part : parts) {
    auto weight = part.getDefiningOp<qtf::WeightOp>();
    llvm::append_range(sources, weight.getSources());
    rows += weight.getResult().getType().getDimSize(0);
  }
  SmallVector<int64_t> shape(first.getShape());
  shape[0] = rows;
  return qtf::WeightOp::create(
      rewriter, loc, RankedTensorType::get(shape, first.getElementType()),
      rewriter.getArrayAttr(sources));
}

struct StackSiblingLinears : OpRewritePattern<qtf::LinearOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(qtf::LinearOp op,
                                PatternRewriter &rewriter) const override {
    SmallVector<qtf::LinearOp> siblings = stackableSiblings(op);
    if (siblings.empty())
      return rewriter.notifyMatchFailure(op, "no stackable siblings");
    if (siblings.front() != op)
      return rewriter.notifyMatchFailure(op, "not the first sibling");

    rewriter.setInsertionPoint(op);
    SmallVector<Value> weights, biases;
    SmallVector<int64_t> sizes;
    SmallVector<Type> resultTypes;
    for (qtf::LinearOp linear : siblings) {
      weights.push_back(linear.getWeight());
      if (Value bias = linear.getBias())
        biases.push_back(bias);
      resultTypes.push_back(linear.getType());
      sizes.push_back(linear.getType().getDimSize(1));
    }
    Value weight = stackWeights(rewriter, op.getLoc(), weights);
    Value bias = biases.empty() ? Value()
                                : stackWeights(rewriter, op.getLoc(), biases);
    Value scale;
    if (op.isBlockQuantized()) {
      SmallVector<Value> scales;
      for (qtf::LinearOp linear : siblings)
        scales.push_back(linear.getWeightScale());
      scale = stackWeights(rewriter, op.getLoc(), scales);
    }
    int64_t total = cast<RankedTensorType>(weight.getType()).getDimSize(0);
    auto stackedType = RankedTensorType::get(
        {op.getType().getDimSize(0), total}, op.getType().getElementType());
    Value stacked = qtf::LinearOp::create(rewriter, op.getLoc(), stackedType,
                                          op.getInput(), weight, scale, bias,
                                          op.getWeightBlockAttr());
    auto split = qtf::SplitOp::create(rewriter, op.getLoc(), resultTypes,
                                      stacked, rewriter.getDenseI64ArrayAttr(sizes));
    for (auto [linear, result] : llvm::zip(siblings, split.getResults()))
      rewriter.replaceOp(linear, result);
    return success();
  }
};

struct StackProjectionsPass final
    : qwen::graph::impl::StackProjectionsPassBase<StackProjectionsPass> {
  using Base::Base;
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    qwen::graph::populateStackProjectionsPatterns(patterns);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};
} // namespace

void qwen::graph::populateStackProjectionsPatterns(RewritePatternSet &patterns) {
  patterns.add<StackSiblingLinears>(patterns.getContext());
}
