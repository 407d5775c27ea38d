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
//
//===----------------------------------------------------------------------===//
#include "passes/Codegen/CPU/KernelEmitter.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

#include <limits>

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen::cpu;

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
          Value p = math::ExpOp::create(b, arith::SubFOp::create(b, l, maxLogit));
          memref::StoreOp::create(b, p, probs, ValueRange{e});
          return {arith::AddFOp::create(b, acc[0], p)};
        })[0];
    Value inverse = arith::DivFOp::create(b, emitter.f32(1.0f), sum);
    Value outBase = emitter.mulIndex(token, topK);
    Value chosenSum = emitter.f32(0.0f);
    for (int64_t j = 0; j < topK; ++j) {
      // Probabilities are >= 0, so -1 marks an expert already chosen.
      ValueRange best = emitter.forLoop(
          emitter.index(0), emitter.index(experts), 1,
          ValueRange{emitter.f32(-2.0f), emitter.index(0)},
          [&](Value e, ValueRange acc) -> SmallVector<Value> {
            Value p = memref::LoadOp::create(b, probs, ValueRange{e});
            Value better = arith::CmpFOp::create(b, arith::CmpFPredicate::OGT, p, acc[0]);
            return {arith::SelectOp::create(b, better, p, acc[0]),
                    arith::SelectOp::create(b, better, e, acc[1])};
          });
      memref::StoreOp::create(b, emitter.f32(-1.0f), probs, ValueRange{best[1]});
      Value slot = emitter.addIndex(outBase, emitter.index(j));
      Value weight = arith::MulFOp::create(b, best[0], inverse);
      emitter.storeIndexAsI32(ids, slot, best[1]);
      emitter.storeF32(weights, slot, weight);
      chosenSum = arith::AddFOp::create(b, chosenSum, weight);
    }
    if (normalize) {
      Value scale = arith::DivFOp::create(b, emitter.f32(1.0f), chosenSum);
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

FailureOr<SmallVector<Attribute>>
qwen::codegen::cpu::emitExpertsKernel(KernelEmitter &emitter) {
  func::FuncOp source = emitter.source();
  qtf::MoeExpertFfnOp ffn;
  source.walk([&](qtf::MoeExpertFfnOp op) { ffn = op; });
  if (!ffn)
    return source.emitOpError("experts kernel has no moe_expert_ffn"), failure();
  // Slots gathered per SwiGLU block (the schedule's tile).
  const int64_t kSlotBlock = emitter.options().schedule.tileSize(0);
  if (kSlotBlock < 1)
    return source.emitOpError("experts needs a schedule with tile = [slots]"), failure();
  const int64_t experts = ffn.getNumExperts(), inter = ffn.getIntermediateSize();
  const int64_t hidden = ffn.getInput().getType().getDimSize(1);
  const int64_t topK = ffn.getIds().getType().getDimSize(1);
  std::string symbol = emitter.leadingSymbol(ffn.getIds());

  emitter.createFunction([&](Value expert) {
    ImplicitLocOpBuilder &b = emitter.builder();
    RowAccess x = emitter.access(ffn.getInput());
    RowAccess ids = emitter.access(ffn.getIds());
    RowAccess routeWeights = emitter.access(ffn.getWeights());
    RowAccess gateUp = emitter.access(ffn.getGateUp());
    RowAccess down = emitter.access(ffn.getDown());
    RowAccess out = emitter.result(0);
    Value matched = emitter.scratch(kSlotBlock, b.getIndexType());
    Value hiddenRows = emitter.scratchRow(kSlotBlock * inter);
    RowAccess h{hiddenRows, b.getF32Type()};
    Value gateBase = emitter.mulIndex(expert, 2 * inter);
    Value downBase = emitter.mulIndex(expert, hidden);

    // SwiGLU of this expert for `count` gathered slots (static count).
    auto process = [&](int64_t count, llvm::function_ref<Value(int64_t)> slotAt) {
      SmallVector<Value> slots, xBases, hBases;
      for (int64_t i = 0; i < count; ++i) {
        slots.push_back(slotAt(i));
        Value token = arith::DivUIOp::create(b, slots.back(), emitter.index(topK));
        xBases.push_back(emitter.address(x, token, Value(), Value()));
        hBases.push_back(emitter.index(i * inter));
      }
      emitter.forLoop(emitter.index(0), emitter.index(inter), 1, [&](Value n) {
        Value gateRow = emitter.addIndex(gateBase, n);
        Value upRow = emitter.addIndex(gateRow, emitter.index(inter));
        SmallVector<Value> sums = emitter.emitDotTile(
            x, xBases, gateUp, {emitter.mulIndex(gateRow, hidden), emitter.mulIndex(upRow, hidden)},
            hidden);
        for (int64_t i = 0; i < count; ++i) {
          Value g = sums[2 * i], u = sums[2 * i + 1];
          Value one = emitter.f32(1.0f);
          Value silu = arith::DivFOp::create(
              b, g, arith::AddFOp::create(b, one, math::ExpOp::create(b, arith::NegFOp::create(b, g))));
          memref::StoreOp::create(b, arith::MulFOp::create(b, silu, u), hiddenRows,
                                  ValueRange{emitter.addIndex(hBases[i], n)});
        }
      });
      SmallVector<Value> scales;
      for (Value slot : slots)
        scales.push_back(emitter.loadF32(routeWeights, slot));
      emitter.forLoop(emitter.index(0), emitter.index(hidden), 1, [&](Value n) {
        SmallVector<Value> sums = emitter.emitDotTile(
            h, hBases, down, {emitter.mulIndex(emitter.addIndex(downBase, n), inter)}, inter);
        for (int64_t i = 0; i < count; ++i)
          emitter.storeF32(out, emitter.addIndex(emitter.mulIndex(slots[i], hidden), n),
                           arith::MulFOp::create(b, sums[i], scales[i]));
      });
    };
    auto matchedAt = [&](int64_t i) -> Value {
      return memref::LoadOp::create(b, matched, ValueRange{emitter.index(i)});
    };

    Value slotCount = emitter.mulIndex(emitter.dim(symbol), topK);
    Value pending = emitter.forLoop(
        emitter.index(0), slotCount, 1, ValueRange{emitter.index(0)},
        [&](Value slot, ValueRange carried) -> SmallVector<Value> {
          Value routed = arith::CmpIOp::create(b, arith::CmpIPredicate::eq,
                                               emitter.loadIndex(ids, slot), expert);
          auto ifRouted = scf::IfOp::create(b, TypeRange{b.getIndexType()}, routed, true);
          {
            OpBuilder::InsertionGuard guard(b);
            b.setInsertionPointToStart(ifRouted.thenBlock());
            memref::StoreOp::create(b, slot, matched, ValueRange{carried[0]});
            Value count = emitter.addIndex(carried[0], emitter.index(1));
            Value full = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, count,
                                               emitter.index(kSlotBlock));
            auto ifFull = scf::IfOp::create(b, TypeRange{b.getIndexType()}, full, true);
            {
              OpBuilder::InsertionGuard inner(b);
              b.setInsertionPointToStart(ifFull.thenBlock());
              process(kSlotBlock, matchedAt);
              scf::YieldOp::create(b, emitter.index(0));
              b.setInsertionPointToStart(ifFull.elseBlock());
              scf::YieldOp::create(b, count);
            }
            scf::YieldOp::create(b, ifFull.getResult(0));
            b.setInsertionPointToStart(ifRouted.elseBlock());
            scf::YieldOp::create(b, carried[0]);
          }
          return {ifRouted.getResult(0)};
        })[0];
    // The last, partial block one slot at a time.
    emitter.forLoop(emitter.index(0), pending, 1, [&](Value i) {
      process(1, [&](int64_t) { return memref::LoadOp::create(b, matched, ValueRange{i}); });
    });
  });
  Builder builder(source.getContext());
  return SmallVector<Attribute>{builder.getI64IntegerAttr(experts)};
}
