//===- MoeKernels.cpp - GPU codegen for mixture-of-experts regions --------===//
//
// router:  one warp per token. Lane l owns experts l, l + 32, ... (their
//          logits / probabilities in registers): max and sum by xor
//          shuffles, p = exp(l - max), then top-k by k rounds of a warp
//          argmax (largest p, lowest id on ties, as the CPU's scan), the
//          winner's owner marking it taken; optional renormalization. Lane 0
//          writes the ids and weights.
// experts: one block per (token, choice) slot, grid [T, top_k]: the token's
//          row is staged in shared memory, then warp w computes the SwiGLU
//          rows w, w + W, ... of the slot's expert (gate and up dot products
//          over lanes, reduced with shuffles) into a shared row h, and after
//          a barrier the down projection rows the same way, scaled by the
//          routing weight. Each slot is written by exactly one block. Trip
//          counts are uniform across the block (rows past the end are
//          clamped and not stored), so every shuffle has its whole warp.
//
// Numerics are the CPU's (passes/Codegen/CPU/MoeKernels.cpp) up to the
// order of the sums.
//
//===----------------------------------------------------------------------===//
#include "passes/Codegen/GPU/GpuKernelEmitter.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

#include <limits>

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen::gpu;

static constexpr int64_t kWarp = 32;

FailureOr<KernelGeometry> qwen::codegen::gpu::emitRouterKernel(GpuKernelEmitter &e) {
  func::FuncOp source = e.source();
  qtf::MoeRouterOp router;
  source.walk([&](qtf::MoeRouterOp op) { router = op; });
  auto ret = cast<func::ReturnOp>(source.getBody().front().getTerminator());
  if (!router || ret.getNumOperands() != 2 || ret.getOperand(0) != router.getIds() ||
      ret.getOperand(1) != router.getWeights())
    return source.emitOpError("router kernel must return the ids and weights of one moe_router"),
           failure();
  const int64_t experts = router.getLogits().getType().getDimSize(1);
  const int64_t topK = router.getTopK();
  const bool normalize = router.getNormalize();
  const int64_t perLane = (experts + kWarp - 1) / kWarp;
  std::string symbol = e.leadingSymbol(router.getIds());

  e.createKernel(kWarp, [&] {
    ImplicitLocOpBuilder &b = e.builder();
    Type f32 = b.getF32Type();
    RowAccess logits = e.access(router.getLogits());
    RowAccess ids = e.result(0), weights = e.result(1);
    Value token = e.blockId();
    Value lane = e.threadId();
    Value base = e.address(logits, token, Value(), Value());
    auto toF32 = [&](Value index) -> Value {
      return arith::UIToFPOp::create(b, f32,
                                     arith::IndexCastOp::create(b, b.getI64Type(), index));
    };
    // Expert ids of this lane (clamped for the loads) and their validity.
    SmallVector<Value> expertIds, valid, l;
    Value minusInf = e.f32(-std::numeric_limits<float>::infinity());
    for (int64_t r = 0; r < perLane; ++r) {
      Value id = e.addIndex(lane, e.index(r * kWarp));
      expertIds.push_back(id);
      if ((r + 1) * kWarp <= experts) {
        valid.push_back(Value());
        l.push_back(e.loadF32(logits, e.addIndex(base, id)));
        continue;
      }
      Value inside = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, id, e.index(experts));
      Value clamped = arith::MinUIOp::create(b, id, e.index(experts - 1));
      valid.push_back(inside);
      l.push_back(arith::SelectOp::create(b, inside, e.loadF32(logits, e.addIndex(base, clamped)),
                                          minusInf));
    }
    Value localMax = l[0];
    for (int64_t r = 1; r < perLane; ++r)
      localMax = arith::MaximumFOp::create(b, localMax, l[r]);
    Value maxLogit = e.laneMax(localMax, kWarp);
    // p = exp(l - max); experts past the end get -3, below any candidate.
    SmallVector<Value> p;
    Value localSum = e.f32(0.0f);
    for (int64_t r = 0; r < perLane; ++r) {
      Value pr = math::ExpOp::create(b, arith::SubFOp::create(b, l[r], maxLogit));
      if (valid[r]) {
        localSum = arith::AddFOp::create(
            b, localSum, arith::SelectOp::create(b, valid[r], pr, e.f32(0.0f)));
        pr = arith::SelectOp::create(b, valid[r], pr, e.f32(-3.0f));
      } else {
        localSum = arith::AddFOp::create(b, localSum, pr);
      }
      p.push_back(pr);
    }
    Value inverse = arith::DivFOp::create(b, e.f32(1.0f), e.laneSum(localSum, kWarp));
    Value isFirstLane = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, lane, e.index(0));
    Value outBase = e.mulIndex(token, topK);
    SmallVector<Value> chosenWeights;
    Value chosenSum = e.f32(0.0f);
    for (int64_t j = 0; j < topK; ++j) {
      // This lane's best untaken expert (ids increase with r: strict > keeps
      // the lowest id), then the warp's; ids travel as exact f32.
      Value best = e.f32(-2.0f), bestId = e.f32(0.0f);
      for (int64_t r = 0; r < perLane; ++r) {
        Value better = arith::CmpFOp::create(b, arith::CmpFPredicate::OGT, p[r], best);
        best = arith::SelectOp::create(b, better, p[r], best);
        bestId = arith::SelectOp::create(b, better, toF32(expertIds[r]), bestId);
      }
      for (int64_t offset = kWarp / 2; offset > 0; offset /= 2) {
        auto shuffle = [&](Value v) -> Value {
          return mlir::gpu::ShuffleOp::create(b, v, static_cast<int32_t>(offset),
                                              static_cast<int32_t>(kWarp),
                                              mlir::gpu::ShuffleMode::XOR)
              .getShuffleResult();
        };
        Value otherBest = shuffle(best), otherId = shuffle(bestId);
        Value greater = arith::CmpFOp::create(b, arith::CmpFPredicate::OGT, otherBest, best);
        Value equal = arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, otherBest, best);
        Value lowerId = arith::CmpFOp::create(b, arith::CmpFPredicate::OLT, otherId, bestId);
        Value tie = arith::AndIOp::create(b, equal, lowerId);
        Value better = arith::OrIOp::create(b, greater, tie);
        best = arith::SelectOp::create(b, better, otherBest, best);
        bestId = arith::SelectOp::create(b, better, otherId, bestId);
      }
      // Probabilities are >= 0, so -1 marks the expert taken.
      for (int64_t r = 0; r < perLane; ++r) {
        Value taken =
            arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, toF32(expertIds[r]), bestId);
        p[r] = arith::SelectOp::create(b, taken, e.f32(-1.0f), p[r]);
      }
      Value weight = arith::MulFOp::create(b, best, inverse);
      Value slot = e.addIndex(outBase, e.index(j));
      Value id = arith::FPToSIOp::create(b, b.getI32Type(), bestId);
      e.ifThen(isFirstLane, [&] {
        memref::StoreOp::create(b, id, ids.memref, ValueRange{slot});
        if (!normalize)
          e.store(weights, slot, weight);
      });
      chosenWeights.push_back(weight);
      if (normalize)
        chosenSum = arith::AddFOp::create(b, chosenSum, weight);
    }
    if (normalize) {
      Value scale = arith::DivFOp::create(b, e.f32(1.0f), chosenSum);
      e.ifThen(isFirstLane, [&] {
        for (int64_t j = 0; j < topK; ++j)
          e.store(weights, e.addIndex(outBase, e.index(j)),
                  arith::MulFOp::create(b, chosenWeights[j], scale));
      });
    }
  });
  return KernelGeometry{{Builder(source.getContext()).getStringAttr(symbol)}, e.blockSize(),
                        e.sharedBytes()};
}

FailureOr<KernelGeometry> qwen::codegen::gpu::emitExpertsKernel(GpuKernelEmitter &e) {
  func::FuncOp source = e.source();
  qtf::MoeExpertFfnOp ffn;
  source.walk([&](qtf::MoeExpertFfnOp op) { ffn = op; });
  auto ret = cast<func::ReturnOp>(source.getBody().front().getTerminator());
  if (!ffn || ret.getNumOperands() != 1 || ret.getOperand(0) != ffn.getResult())
    return source.emitOpError("experts kernel must return one moe_expert_ffn"), failure();
  const int64_t inter = ffn.getIntermediateSize();
  const int64_t hidden = ffn.getInput().getType().getDimSize(1);
  const int64_t topK = ffn.getIds().getType().getDimSize(1);
  std::string symbol = e.leadingSymbol(ffn.getIds());
  const int64_t threads = e.options().maxThreads;
  const int64_t warps = threads / kWarp;
  // Vector widths of the two reductions (over hidden, then over inter).
  RowAccess inputGeometry = GpuKernelEmitter::viewGeometry(ffn.getInput());
  const int64_t hiddenWidth =
      e.vectorWidthFor(hidden, {inputGeometry, GpuKernelEmitter::viewGeometry(ffn.getGateUp())});
  const int64_t interWidth =
      e.vectorWidthFor(inter, {GpuKernelEmitter::viewGeometry(ffn.getDown())});

  e.createKernel(threads, [&] {
    ImplicitLocOpBuilder &b = e.builder();
    auto hiddenVec = VectorType::get({hiddenWidth}, b.getF32Type());
    auto interVec = VectorType::get({interWidth}, b.getF32Type());
    RowAccess x = e.access(ffn.getInput());
    RowAccess ids = e.access(ffn.getIds());
    RowAccess routeWeights = e.access(ffn.getWeights());
    RowAccess gateUp = e.access(ffn.getGateUp());
    RowAccess down = e.access(ffn.getDown());
    RowAccess out = e.result(0);
    Value row = e.sharedRow(hidden);
    Value h = e.sharedRow(inter);

    Value slot = e.blockId();
    Value token = e.divIndex(slot, topK);
    Value expert = e.loadIndex(ids, slot);
    Value warp = e.divIndex(e.threadId(), kWarp);
    Value lane = e.remIndex(e.threadId(), kWarp);
    Value isFirstLane = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, lane, e.index(0));

    Value xBase = e.address(x, token, Value(), Value());
    e.forThreadColumns(hidden, hiddenWidth, [&](Value c) {
      e.storeShared(row, c, e.loadVectorF32(x, e.addIndex(xBase, c), hiddenWidth));
    });
    e.barrier();

    /// Warp w handles rows w, w + W, ... of `rows`; `body(row)` returns
    /// this lane's partial sums and `finish(row, sums)` runs on lane 0.
    auto forWarpRows = [&](int64_t rows, auto partials, auto finish) {
      const int64_t padded = (rows + warps - 1) / warps * warps;
      e.forLoop(warp, e.index(padded), warps, [&](Value n) {
        Value clamped = arith::MinUIOp::create(b, n, e.index(rows - 1));
        SmallVector<Value> sums = partials(clamped);
        for (Value &sum : sums)
          sum = e.laneSum(sum, kWarp);
        Value store = arith::AndIOp::create(
            b, isFirstLane,
            arith::CmpIOp::create(b, arith::CmpIPredicate::ult, n, e.index(rows)));
        e.ifThen(store, [&] { finish(n, sums); });
      });
    };

    // h[n] = silu(gate_e . x) * (up_e . x); gate_up is [E * 2I, H].
    Value gateBase = e.mulIndex(expert, 2 * inter);
    Value zeroH = arith::ConstantOp::create(b, DenseElementsAttr::get(hiddenVec, 0.0f));
    forWarpRows(
        inter,
        [&](Value n) -> SmallVector<Value> {
          Value gateRow = e.mulIndex(e.addIndex(gateBase, n), hidden);
          Value upRow = e.addIndex(gateRow, e.index(inter * hidden));
          ValueRange acc = e.forLoop(
              e.mulIndex(lane, hiddenWidth), e.index(hidden), kWarp * hiddenWidth,
              ValueRange{zeroH, zeroH}, [&](Value c, ValueRange carried) -> SmallVector<Value> {
                Value xv = e.loadShared(row, c, hiddenWidth);
                Value g = e.loadVectorF32(gateUp, e.addIndex(gateRow, c), hiddenWidth);
                Value u = e.loadVectorF32(gateUp, e.addIndex(upRow, c), hiddenWidth);
                return {vector::FMAOp::create(b, xv, g, carried[0]),
                        vector::FMAOp::create(b, xv, u, carried[1])};
              });
          return {vector::ReductionOp::create(b, vector::CombiningKind::ADD, acc[0]),
                  vector::ReductionOp::create(b, vector::CombiningKind::ADD, acc[1])};
        },
        [&](Value n, ArrayRef<Value> sums) {
          memref::StoreOp::create(b, arith::MulFOp::create(b, e.silu(sums[0]), sums[1]), h,
                                  ValueRange{n});
        });
    e.barrier();

    // out[slot, n] = weight * (down_e[n] . h); down is [E * H, I].
    Value scale = e.loadF32(routeWeights, slot);
    Value downBase = e.mulIndex(expert, hidden);
    Value outBase = e.mulIndex(slot, hidden);
    Value zeroI = arith::ConstantOp::create(b, DenseElementsAttr::get(interVec, 0.0f));
    forWarpRows(
        hidden,
        [&](Value n) -> SmallVector<Value> {
          Value downRow = e.mulIndex(e.addIndex(downBase, n), inter);
          Value acc = e.forLoop(
              e.mulIndex(lane, interWidth), e.index(inter), kWarp * interWidth,
              ValueRange{zeroI}, [&](Value c, ValueRange carried) -> SmallVector<Value> {
                Value hv = e.loadShared(h, c, interWidth);
                Value d = e.loadVectorF32(down, e.addIndex(downRow, c), interWidth);
                return {vector::FMAOp::create(b, hv, d, carried[0])};
              })[0];
          return {vector::ReductionOp::create(b, vector::CombiningKind::ADD, acc)};
        },
        [&](Value n, ArrayRef<Value> sums) {
          Value scaled = arith::MulFOp::create(b, sums[0], scale);
          e.store(out, e.addIndex(outBase, n), scaled);
        });
  });
  Builder builder(source.getContext());
  return KernelGeometry{{builder.getStringAttr(symbol), builder.getI64IntegerAttr(topK)},
                        e.blockSize(), e.sharedBytes()};
}
