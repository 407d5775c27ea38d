//===- FormKernelRegions.cpp - Group graph ops into kernel regions --------===//
#include "qwen/Passes/Fusion/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/EquivalenceClasses.h"
#include "llvm/ADT/SetVector.h"

namespace qwen::fusion {
#define GEN_PASS_DEF_FORMKERNELREGIONSPASS
#include "qwen/Passes/Fusion/Passes.h.inc"
} // namespace qwen::fusion

using namespace mlir;
using namespace qwen;

namespace {
bool isView(Operation *op) { return isa<qtf::SplitOp, qtf::ReshapeOp, qtf::MergeRowsOp>(op); }
bool isLoadTime(Operation *op) { return isa<qtf::WeightOp>(op); }

/// Follows views back to the op that computes the data.
Operation *producerThroughViews(Value value) {
  Operation *op = value.getDefiningOp();
  while (op && isView(op))
    op = op->getOperand(0).getDefiningOp();
  return op;
}

/// True if `value` (through views) is read only by `consumer`.
bool onlyFeeds(Value value, Operation *consumer) {
  for (Operation *user : value.getUsers()) {
    if (user == consumer)
      continue;
    if (!isView(user))
      return false;
    for (Value result : user->getResults())
      if (!onlyFeeds(result, consumer))
        return false;
  }
  return true;
}

/// The cache write whose kernel also computes `attention`'s query, or null.
/// The query's row chain (q-norm, rope) walks the same (token, head) rows of
/// head_dim columns as the key chain of the write that fills the layer's
/// cache, so one kernel of (token, query head + kv head) items does both:
/// one launch per attention layer less. Only when the query is such a chain
/// of the step's tokens and the write is that of the attention's layer.
Operation *queryJoinsCacheWrite(qtf::PagedAttentionOp attention) {
  auto write = attention.getCache().getDefiningOp<qtf::KVCacheWriteOp>();
  if (!write || write.getLayer() != attention.getLayer())
    return nullptr;
  Operation *query = producerThroughViews(attention.getQuery());
  if (!isa_and_nonnull<qtf::RopeOp, qtf::RmsNormOp>(query) || query->getNumResults() != 1)
    return nullptr;
  // The chain's own rows, [tokens, query heads, head_dim], as the keys'.
  auto rows = dyn_cast<RankedTensorType>(query->getResult(0).getType());
  if (!rows || rows.getRank() != 3 ||
      rows.getDimSize(2) != write.getCache().getType().getHeadDim() ||
      rows.getDimSize(0) != write.getKeys().getType().getDimSize(0))
    return nullptr;
  return write;
}

qkernel::KernelKind kindOf(ArrayRef<Operation *> ops) {
  auto has = [&](auto predicate) { return llvm::any_of(ops, predicate); };
  if (has([](Operation *op) { return isa<qtf::LinearOp>(op); }))
    return qkernel::KernelKind::Matmul;
  if (has([](Operation *op) { return isa<qtf::KVCacheWriteOp>(op); }))
    return qkernel::KernelKind::KVWrite;
  if (has([](Operation *op) { return isa<qtf::PagedAttentionOp>(op); }))
    return qkernel::KernelKind::Attention;
  if (has([](Operation *op) { return isa<qtf::EmbeddingOp, qtf::MultimodalEmbeddingOp>(op); }))
    return qkernel::KernelKind::Embedding;
  if (has([](Operation *op) { return isa<qtf::MoeRouterOp>(op); }))
    return qkernel::KernelKind::Router;
  if (has([](Operation *op) { return isa<qtf::MoeExpertFfnOp>(op); }))
    return qkernel::KernelKind::Experts;
  if (has([](Operation *op) { return isa<qtf::CausalConv1dOp>(op); }))
    return qkernel::KernelKind::Conv;
  if (has([](Operation *op) { return isa<qtf::GatedDeltaRuleOp>(op); }))
    return qkernel::KernelKind::DeltaRule;
  if (has([](Operation *op) { return isa<qtf::GatedRmsNormOp>(op); }))
    return qkernel::KernelKind::GatedNorm;
  if (has([](Operation *op) { return isa<qtf::RmsNormOp, qtf::RopeOp>(op); }))
    return qkernel::KernelKind::Rows;
  // The vision encoder's ops are kernels of their own.
  if (has([](Operation *op) { return isa<qtf::LayerNormOp>(op); }))
    return qkernel::KernelKind::LayerNorm;
  if (has([](Operation *op) { return isa<qtf::GeluOp>(op); }))
    return qkernel::KernelKind::Gelu;
  if (has([](Operation *op) { return isa<qtf::RotaryEmbeddingOp>(op); }))
    return qkernel::KernelKind::Rotary;
  if (has([](Operation *op) { return isa<qtf::WeightedGatherOp>(op); }))
    return qkernel::KernelKind::WeightedGather;
  if (has([](Operation *op) { return isa<qtf::SegmentAttentionOp>(op); }))
    return qkernel::KernelKind::SegmentAttention;
  return qkernel::KernelKind::Elementwise;
}

struct FormKernelRegionsPass final
    : qwen::fusion::impl::FormKernelRegionsPassBase<FormKernelRegionsPass> {
  using Base::Base;

  void runOnOperation() override {
    func::FuncOp func = getOperation();
    Block &body = func.getBody().front();
    SmallVector<Operation *> compute;
    for (Operation &op : body.without_terminator())
      if (isa<qtf::QTFDialect>(op.getDialect()) && !isView(&op) &&
          !isLoadTime(&op))
        compute.push_back(&op);

    llvm::EquivalenceClasses<Operation *> groups;
    for (Operation *op : compute)
      groups.insert(op);
    auto fuse = [&](Value producerValue, Operation *consumer) {
      Operation *producer = producerThroughViews(producerValue);
      if (producer && groups.contains(producer) &&
          onlyFeeds(producerValue, consumer))
        groups.unionSets(producer, consumer);
    };
    for (Operation *op : compute) {
      if (auto linear = dyn_cast<qtf::LinearOp>(op)) {
        if (auto gather = linear.getInput().getDefiningOp<qtf::GatherRowsOp>())
          fuse(gather.getResult(), op);
      } else if (auto add = dyn_cast<qtf::AddOp>(op)) {
        // Residual epilogue: fuse into the linear or expert combine producing
        // one operand.
        for (Value operand : {add.getRhs(), add.getLhs()}) {
          Operation *producer = operand.getDefiningOp();
          if (isa_and_nonnull<qtf::LinearOp, qtf::MoeCombineOp>(producer) &&
              producer->hasOneUse()) {
            groups.unionSets(producer, op);
            break;
          }
        }
      } else if (auto norm = dyn_cast<qtf::RmsNormOp>(op)) {
        // A norm of selected rows (hidden-state outputs) reads them in place.
        if (auto gather = norm.getInput().getDefiningOp<qtf::GatherRowsOp>())
          fuse(gather.getResult(), op);
      } else if (auto rope = dyn_cast<qtf::RopeOp>(op)) {
        if (isa_and_nonnull<qtf::RmsNormOp>(producerThroughViews(rope.getInput())))
          fuse(rope.getInput(), op);
      } else if (auto write = dyn_cast<qtf::KVCacheWriteOp>(op)) {
        if (isa_and_nonnull<qtf::RopeOp, qtf::RmsNormOp>(
                producerThroughViews(write.getKeys())))
          fuse(write.getKeys(), op);
      } else if (auto attention = dyn_cast<qtf::PagedAttentionOp>(op)) {
        // The query leaves the kernel as a result that only the attention
        // reads, so joining adds no recomputation and no new reader.
        Operation *write = queryJoinsCacheWrite(attention);
        Operation *query = producerThroughViews(attention.getQuery());
        if (write && groups.contains(query) && groups.contains(write) &&
            onlyFeeds(attention.getQuery(), op))
          groups.unionSets(query, write);
      }
    }

    // Materialize each group as a region at the position of its last op.
    for (auto it = groups.begin(); it != groups.end(); ++it) {
      if (!(*it)->isLeader())
        continue;
      SmallVector<Operation *> members(groups.member_begin(**it),
                                       groups.member_end());
      llvm::sort(members, [](Operation *a, Operation *b) {
        return a->isBeforeInBlock(b);
      });
      if (failed(formRegion(members)))
        return signalPassFailure();
    }
  }

  LogicalResult formRegion(ArrayRef<Operation *> members) {
    llvm::SmallPtrSet<Operation *, 8> inGroup(members.begin(), members.end());
    SmallVector<Value> escaping;
    for (Operation *op : members)
      for (Value result : op->getResults())
        if (llvm::any_of(result.getUsers(), [&](Operation *user) {
              return !inGroup.contains(user);
            }))
          escaping.push_back(result);

    OpBuilder builder(members.back());
    auto region = qkernel::RegionOp::create(
        builder, members.back()->getLoc(), ValueRange(escaping).getTypes(),
        qkernel::KernelKindAttr::get(builder.getContext(), kindOf(members)));
    Block *block = builder.createBlock(&region.getBody());
    builder.setInsertionPointToEnd(block);
    IRMapping mapping;
    // Clone the view chains members read so the region captures real data.
    std::function<Value(Value)> cloneViews = [&](Value value) -> Value {
      if (mapping.contains(value))
        return mapping.lookup(value);
      Operation *def = value.getDefiningOp();
      if (!def || !isView(def))
        return value;
      Value source = cloneViews(def->getOperand(0));
      IRMapping local;
      local.map(def->getOperand(0), source);
      Operation *clone = builder.clone(*def, local);
      for (auto [from, to] : llvm::zip(def->getResults(), clone->getResults()))
        mapping.map(from, to);
      return mapping.lookup(value);
    };
    for (Operation *op : members) {
      for (Value operand : op->getOperands())
        cloneViews(operand);
      Operation *clone = builder.clone(*op, mapping);
      for (auto [from, to] : llvm::zip(op->getResults(), clone->getResults()))
        mapping.map(from, to);
    }
    SmallVector<Value> yielded;
    for (Value value : escaping)
      yielded.push_back(mapping.lookup(value));
    qkernel::YieldOp::create(builder, region.getLoc(), yielded);

    for (auto [value, result] : llvm::zip(escaping, region.getResults()))
      value.replaceAllUsesWith(result);
    for (Operation *op : llvm::reverse(members))
      op->erase();
    return success();
  }
};
} // namespace
