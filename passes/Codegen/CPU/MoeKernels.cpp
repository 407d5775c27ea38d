//===- MoeKernels.cpp - CPU codegen for mixture-of-experts regions --------===//
//
// router:  one work item per token: softmax over all experts in f32, top-k by
//          repeated argmax (largest first, lowest id on ties), optional
//          renormalization.
// experts: one work item per expert: the expert scans the routing table,
//          gathers the (token, choice) slots routed to it in blocks of 4 and
//          runs its SwiGLU on a block at a time, so its weights are streamed
//          once per step rather than once per token. Each slot is written by
//          exactly one expert, so items never share an output row.
//          Block-wise FP8 experts read the 1-byte weights and widen and
//          scale them in registers (emitFp8DotTile), each expert matrix with
//          its own block grid.
//
//===----------------------------------------------------------------------===//
#include "passes/Codegen/CPU/DotProduct.h"
#include "passes/Codegen/CPU/GroupedExperts.h"
#include "passes/Codegen/CPU/KernelEmitter.h"
#include "qwen/Passes/Codegen/Common/KernelPhase.h"
#include "qwen/Passes/Codegen/Common/MoeMath.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

#include <limits>
#include <optional>

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen::cpu;
using qwen::codegen::KernelPhase;

/// The router of one token (a work item), one function per phase:
/// router.softmax leaves e^(l - max) in `probs` and returns 1 / sum;
/// router.top_k writes the k ids and weights (repeated argmax, -1 marking a
/// chosen expert) and returns the chosen weights' sum; router.normalize
/// rescales the weights to sum 1.
static Value emitRouterSoftmax(KernelEmitter &emitter, const RowAccess &logits, Value token,
                               int64_t experts, Value probs) {
  ImplicitLocOpBuilder &b = emitter.builder();
  KernelPhase phase(b, "router.softmax");
  Value base = emitter.address(logits, token, Value(), Value());
  Value maxLogit = emitter.forLoop(
      emitter.index(0), emitter.index(experts), 1,
      ValueRange{emitter.f32(-std::numeric_limits<float>::infinity())},
      [&](Value e, ValueRange acc) -> SmallVector<Value> {
        Value l = emitter.loadF32(logits, emitter.addIndex(base, e));
        return {arith::MaximumFOp::create(b, acc[0], l)};
      })[0];
  Value sum = emitter.forLoop(
      emitter.index(0), emitter.index(experts), 1, ValueRange{emitter.f32(0.0f)},
      [&](Value e, ValueRange acc) -> SmallVector<Value> {
        Value l = emitter.loadF32(logits, emitter.addIndex(base, e));
        Value p = codegen::routerProbability(b, l, maxLogit);
        memref::StoreOp::create(b, p, probs, ValueRange{e});
        return {arith::AddFOp::create(b, acc[0], p)};
      })[0];
  return codegen::reciprocal(b, sum);
}

static Value emitRouterTopK(KernelEmitter &emitter, const RowAccess &ids, const RowAccess &weights,
                            Value probs, Value outBase, Value inverse, int64_t experts,
                            int64_t topK) {
  ImplicitLocOpBuilder &b = emitter.builder();
  KernelPhase phase(b, "router.top_k");
  Value chosenSum = emitter.f32(0.0f);
  for (int64_t j = 0; j < topK; ++j) {
    // Probabilities are >= 0, so -1 marks an expert already chosen.
    ValueRange best = emitter.forLoop(
        emitter.index(0), emitter.index(experts), 1,
        ValueRange{emitter.f32(-2.0f), emitter.index(0)},
        [&](Value e, ValueRange acc) -> SmallVector<Value> {
          Value p = memref::LoadOp::create(b, probs, ValueRange{e});
          codegen::Candidate next = codegen::scanCandidate(b, {acc[0], acc[1]}, p, e);
          return {next.value, next.id};
        });
    memref::StoreOp::create(b, emitter.f32(-1.0f), probs, ValueRange{best[1]});
    Value slot = emitter.addIndex(outBase, emitter.index(j));
    Value weight = arith::MulFOp::create(b, best[0], inverse);
    emitter.storeIndexAsI32(ids, slot, best[1]);
    emitter.storeF32(weights, slot, weight);
    chosenSum = arith::AddFOp::create(b, chosenSum, weight);
  }
  return chosenSum;
}

FailureOr<SmallVector<Attribute>>
qwen::codegen::cpu::emitRouterKernel(KernelEmitter &emitter) {
  func::FuncOp source = emitter.source();
  qtf::MoeRouterOp router;
  source.walk([&](qtf::MoeRouterOp op) { router = op; });
  if (!router)
    return source.emitOpError("router kernel has no moe_router"), failure();
  const int64_t experts = router.getLogits().getType().getDimSize(1);
  const int64_t topK = router.getTopK();
  const bool normalize = router.getNormalize();
  std::string symbol = emitter.leadingSymbol(router.getIds());

  emitter.createFunction([&](Value token) {
    ImplicitLocOpBuilder &b = emitter.builder();
    RowAccess logits = emitter.access(router.getLogits());
    RowAccess ids = emitter.result(0), weights = emitter.result(1);
    Value probs = emitter.scratchRow(experts);
    Value inverse = emitRouterSoftmax(emitter, logits, token, experts, probs);
    Value outBase = emitter.mulIndex(token, topK);
    Value chosenSum = emitRouterTopK(emitter, ids, weights, probs, outBase, inverse, experts, topK);
    if (normalize) {
      KernelPhase phase(b, "router.normalize");
      Value scale = codegen::reciprocal(b, chosenSum);
      for (int64_t j = 0; j < topK; ++j) {
        Value slot = emitter.addIndex(outBase, emitter.index(j));
        emitter.storeF32(weights, slot,
                         arith::MulFOp::create(b, emitter.loadF32(weights, slot), scale));
      }
    }
  });
  Builder builder(source.getContext());
  return SmallVector<Attribute>{builder.getStringAttr(symbol)};
}

namespace {

/// The experts kernel of one expert (a work item), one method per phase:
/// experts.gather scans the routing table into `matched`, blocks of up to
/// slotBlock slots go through experts.gate_up (gate / up dot products,
/// experts.silu_mul into `hiddenRows`) and experts.down (down dot products,
/// experts.scatter to the slots' output rows, times the routing weight).
class CpuExperts {
public:
  CpuExperts(KernelEmitter &emitter, qtf::MoeExpertFfnOp ffn, StringRef symbol)
      : emitter(emitter), b(emitter.builder()), ops(emitter, ffn), symbol(symbol),
        inter(ops.inter), hidden(ops.hidden), topK(ops.topK),
        slotBlock(emitter.options().schedule.tileSize(0)) {}

  void emit(Value expert);

private:
  void process(int64_t count, llvm::function_ref<Value(int64_t)> slotAt);
  void processPartial(Value pending);
  void emitBlocks(Value expert, Value slotCount);
  Value matchedAt(int64_t i) {
    return memref::LoadOp::create(b, matched, ValueRange{emitter.index(i)});
  }

  KernelEmitter &emitter;
  ImplicitLocOpBuilder &b;
  /// The operands and this expert's rows (Common/MoeMath, shared with the GPU).
  codegen::ExpertOperands ops;
  StringRef symbol;
  int64_t inter, hidden, topK;
  /// Slots gathered per SwiGLU block (the schedule's tile).
  int64_t slotBlock;
  RowAccess h;
  Value matched, hiddenRows;
};

} // namespace

/// SwiGLU of this expert for `count` gathered slots (static count).
void CpuExperts::process(int64_t count, llvm::function_ref<Value(int64_t)> slotAt) {
  SmallVector<Value> slots, xBases, hBases;
  for (int64_t i = 0; i < count; ++i) {
    slots.push_back(slotAt(i));
    Value token = arith::DivUIOp::create(b, slots.back(), emitter.index(topK));
    xBases.push_back(emitter.address(ops.x, token, Value(), Value()));
    hBases.push_back(emitter.index(i * inter));
  }
  {
    KernelPhase phase(b, "experts.gate_up");
    emitter.forLoop(emitter.index(0), emitter.index(inter), 1, [&](Value n) {
      Value gateRow = emitter.addIndex(ops.gateBase, n);
      Value upRow = emitter.addIndex(gateRow, emitter.index(inter));
      SmallVector<Value> scaleRows;
      if (ops.gateUpScale)
        scaleRows = {ops.scaleRowOf(ops.gateScaleBase, n), ops.scaleRowOf(ops.upScaleBase, n)};
      SmallVector<Value> sums =
          emitExpertDotTile(emitter, ops, ops.x, xBases, ops.gateUp,
                  {emitter.mulIndex(gateRow, hidden), emitter.mulIndex(upRow, hidden)},
                  ops.gateUpScale, scaleRows, hidden);
      KernelPhase siluMul(b, "experts.silu_mul");
      for (int64_t i = 0; i < count; ++i)
        memref::StoreOp::create(b, codegen::swiglu(b, sums[2 * i], sums[2 * i + 1]), hiddenRows,
                                ValueRange{emitter.addIndex(hBases[i], n)});
    });
  }
  KernelPhase phase(b, "experts.down");
  SmallVector<Value> scales;
  for (Value slot : slots)
    scales.push_back(emitter.loadF32(ops.routeWeights, slot));
  emitter.forLoop(emitter.index(0), emitter.index(hidden), 1, [&](Value n) {
    SmallVector<Value> scaleRows;
    if (ops.downScale)
      scaleRows = {ops.scaleRowOf(ops.downScaleBase, n)};
    SmallVector<Value> sums =
        emitExpertDotTile(emitter, ops, h, hBases, ops.down, {emitter.mulIndex(emitter.addIndex(ops.downBase, n), inter)},
                ops.downScale, scaleRows, inter);
    KernelPhase scatter(b, "experts.scatter");
    for (int64_t i = 0; i < count; ++i)
      emitter.storeF32(ops.out, emitter.addIndex(emitter.mulIndex(slots[i], hidden), n),
                       arith::MulFOp::create(b, sums[i], scales[i]));
  });
}

void CpuExperts::emit(Value expert) {
  matched = emitter.scratch(slotBlock, b.getIndexType());
  hiddenRows = emitter.scratchRow(slotBlock * inter);
  h = RowAccess{hiddenRows, b.getF32Type()};
  ops.locate(expert);
  Value tokens = emitter.dim(symbol);
  Value slotCount = emitter.mulIndex(tokens, topK);
  qkernel::ScheduleAttr schedule = emitter.options().schedule;
  if (schedule.getPanel() == 0)
    return emitBlocks(expert, slotCount);
  // A prefill-sized step takes the cache-blocked grouped path.
  Value grouped = arith::CmpIOp::create(b, arith::CmpIPredicate::sge, tokens,
                                        emitter.index(schedule.getPrefillTokens()));
  auto branch = scf::IfOp::create(b, grouped, /*withElseRegion=*/true);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPoint(branch.thenBlock()->getTerminator());
  emitGroupedExperts(emitter, ops, expert, slotCount);
  b.setInsertionPoint(branch.elseBlock()->getTerminator());
  emitBlocks(expert, slotCount);
}

/// The routing table, gathering the slots routed to this expert into
/// `matched`; every full block of slotBlock is processed at once.
void CpuExperts::emitBlocks(Value expert, Value slotCount) {
  Value pending = gatherRoutedSlots(emitter, ops, expert, slotCount, matched, slotBlock, [&] {
    process(slotBlock, [&](int64_t i) { return matchedAt(i); });
  });
  processPartial(pending);
}

void CpuExperts::processPartial(Value pending) {
  // The last, partial block in one tile of its size, so an expert that
  // several tokens of a batched decode step chose reads its weights once.
  // Where a tile of several slots would dot in another kind than a lone
  // slot, one slot at a time instead (a slot's sums must not depend on the
  // slots beside it).
  qkernel::ScheduleAttr schedule = emitter.options().schedule;
  bool sameKind = true;
  for (int64_t count = 2; count < slotBlock; ++count)
    sameKind &= schedule.dotFor(count) == schedule.dotFor(1);
  if (!sameKind) {
    emitter.forLoop(emitter.index(0), pending, 1, [&](Value i) {
      process(1, [&](int64_t) { return memref::LoadOp::create(b, matched, ValueRange{i}); });
    });
    return;
  }
  for (int64_t count = 1; count < slotBlock; ++count) {
    Value is = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, pending, emitter.index(count));
    auto ifCount = scf::IfOp::create(b, is, /*withElseRegion=*/false);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPoint(ifCount.thenBlock()->getTerminator());
    process(count, [&](int64_t i) { return matchedAt(i); });
  }
}

FailureOr<SmallVector<Attribute>>
qwen::codegen::cpu::emitExpertsKernel(KernelEmitter &emitter) {
  func::FuncOp source = emitter.source();
  qtf::MoeExpertFfnOp ffn;
  source.walk([&](qtf::MoeExpertFfnOp op) { ffn = op; });
  if (!ffn)
    return source.emitOpError("experts kernel has no moe_expert_ffn"), failure();
  if (emitter.options().schedule.tileSize(0) < 1)
    return source.emitOpError("experts needs a schedule with tile = [slots]"), failure();
  // The gate / up products read the input rows, the down products the f32
  // SwiGLU rows.
  auto input = ffn.getInput().getType();
  qkernel::ScheduleAttr schedule = emitter.options().schedule;
  if (failed(verifyDotKinds(source, schedule, input.getElementType(),
                            ffn.getGateUp().getType().getElementType(), input.getDimSize(1))) ||
      failed(verifyDotKinds(source, schedule, Float32Type::get(source.getContext()),
                            ffn.getDown().getType().getElementType(),
                            ffn.getIntermediateSize())))
    return failure();
  // Block-wise FP8 experts widen in registers and take f32 FMAs.
  if (ffn.isBlockQuantized() && (schedule.getDot() != qkernel::DotKind::Fma ||
                                 schedule.dotFor(1) != qkernel::DotKind::Fma))
    return source.emitOpError("block-wise fp8 experts need the fma dot kind"), failure();
  std::string symbol = emitter.leadingSymbol(ffn.getIds());
  emitter.createFunction([&](Value expert) { CpuExperts(emitter, ffn, symbol).emit(expert); });
  Builder builder(source.getContext());
  return SmallVector<Attribute>{builder.getI64IntegerAttr(ffn.getNumExperts())};
}

void qwen::codegen::cpu::populateMoePatterns(RewritePatternSet &patterns,
                                             CpuKernelLowering &lowering) {
  patterns.add<CpuKernelPattern>(patterns.getContext(), qkernel::KernelKind::Router,
                                 emitRouterKernel, lowering);
  patterns.add<CpuKernelPattern>(patterns.getContext(), qkernel::KernelKind::Experts,
                                 emitExpertsKernel, lowering);
}
