//===- MoeKernels.cpp - GPU codegen for mixture-of-experts regions --------===//
//
// router:  one warp per token. Lane l owns experts l, l + 32, ... (their
//          logits / probabilities in registers): max and sum by xor
//          shuffles, p = exp(l - max), then top-k by k rounds of a warp
//          argmax (largest p, lowest id on ties, as the CPU's scan), the
//          winner's owner marking it taken; optional renormalization. Lane 0
//          writes the ids and weights.
// experts: grouped by expert, as on the CPU: grid [E, parts], block
//          (e, p). Every block scans the step's routing table (ids [T, k])
//          a chunk of blockDim slots at a time, compacting the slots routed
//          to e into a shared queue (warp prefix counts by xor shuffles,
//          warp totals in shared memory), and runs e's SwiGLU on each full
//          block of S queued slots (then on the last, partial one): the S
//          gathered x rows are staged in shared memory, warp w computes
//          rows w, w + W, ... of gate / up for all S slots at once (each
//          weight vector loaded once per slot block, used S times) into
//          h [S, I] in shared memory, then the down rows the same way,
//          scaled by each slot's routing weight and scattered to
//          result[t, j, :]. Slot block q of e is processed by part
//          q % parts, so each slot is written by exactly one block, and the
//          parts of an expert share its weight stream through L2. S is the
//          largest power of two <= 8 whose x and h rows fit 48 KiB of
//          static shared memory (4 at H = 2048, I = 768); parts spreads
//          the grid to about 512 blocks (at most 8 per expert). A decode
//          step (T = 1) has k busy blocks, as the per-slot kernel had.
//          Trip counts and branches are uniform across the block (block
//          positions past a partial block repeat its last slot and are not
//          stored), so every shuffle has its whole warp and every barrier
//          its whole block.
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

#include <algorithm>
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
        Value otherBest = e.shuffleXor(best, offset), otherId = e.shuffleXor(bestId, offset);
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

/// Static shared memory of one block.
static constexpr int64_t kSharedLimit = 48 * 1024;

FailureOr<KernelGeometry> qwen::codegen::gpu::emitExpertsKernel(GpuKernelEmitter &e) {
  func::FuncOp source = e.source();
  qtf::MoeExpertFfnOp ffn;
  source.walk([&](qtf::MoeExpertFfnOp op) { ffn = op; });
  auto ret = cast<func::ReturnOp>(source.getBody().front().getTerminator());
  if (!ffn || ret.getNumOperands() != 1 || ret.getOperand(0) != ffn.getResult())
    return source.emitOpError("experts kernel must return one moe_expert_ffn"), failure();
  const int64_t experts = ffn.getNumExperts();
  const int64_t inter = ffn.getIntermediateSize();
  const int64_t hidden = ffn.getInput().getType().getDimSize(1);
  const int64_t topK = ffn.getIds().getType().getDimSize(1);
  std::string symbol = e.leadingSymbol(ffn.getIds());
  const int64_t threads = e.options().maxThreads;
  const int64_t warps = threads / kWarp;
  if (threads % kWarp != 0)
    return source.emitOpError("experts kernel needs a block of whole warps"), failure();
  // Vector widths of the two reductions (over hidden, then over inter).
  RowAccess inputGeometry = GpuKernelEmitter::viewGeometry(ffn.getInput());
  const int64_t hiddenWidth =
      e.vectorWidthFor(hidden, {inputGeometry, GpuKernelEmitter::viewGeometry(ffn.getGateUp())});
  const int64_t interWidth =
      e.vectorWidthFor(inter, {GpuKernelEmitter::viewGeometry(ffn.getDown())});
  // Shared memory: x and h rows of a slot block, the slot queue (a partial
  // block plus one chunk of the scan) and one count per warp.
  auto sharedFloats = [&](int64_t slots) {
    return slots * (hidden + inter) + slots + threads + warps;
  };
  // Gathered slots per block and blocks per expert: the schedule's tile and
  // splits (passes/Schedule/GpuSchedules.cpp).
  const int64_t slotBlock = e.options().schedule.tileSize(0);
  const int64_t parts = e.options().schedule.getSplits();
  if (slotBlock < 1 || parts < 1)
    return source.emitOpError("experts needs a schedule with tile = [slots] and splits"),
           failure();
  if (sharedFloats(slotBlock) * 4 >= kSharedLimit)
    return source.emitOpError("experts kernel: hidden + intermediate rows exceed shared memory"),
           failure();

  e.createKernel(threads, [&] {
    ImplicitLocOpBuilder &b = e.builder();
    Type f32 = b.getF32Type();
    auto hiddenVec = VectorType::get({hiddenWidth}, f32);
    auto interVec = VectorType::get({interWidth}, f32);
    RowAccess x = e.access(ffn.getInput());
    RowAccess ids = e.access(ffn.getIds());
    RowAccess routeWeights = e.access(ffn.getWeights());
    RowAccess gateUp = e.access(ffn.getGateUp());
    RowAccess down = e.access(ffn.getDown());
    RowAccess out = e.result(0);
    Value xs = e.sharedRow(slotBlock * hidden);
    Value hs = e.sharedRow(slotBlock * inter);
    Value queue = e.sharedRow(slotBlock + threads);
    Value warpCounts = e.sharedRow(warps);

    Value expert = e.divIndex(e.blockId(), parts);
    Value part = e.remIndex(e.blockId(), parts);
    Value tid = e.threadId();
    Value warp = e.divIndex(tid, kWarp);
    Value lane = e.remIndex(tid, kWarp);
    Value isFirstLane = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, lane, e.index(0));
    auto below = [&](Value a, Value c) -> Value {
      return arith::CmpIOp::create(b, arith::CmpIPredicate::ult, a, c);
    };
    // Slot numbers travel through the f32 queue exactly (< 2^24).
    auto toF32 = [&](Value index) -> Value {
      return arith::UIToFPOp::create(b, f32,
                                     arith::IndexCastOp::create(b, b.getI64Type(), index));
    };
    auto toIndex = [&](Value value) -> Value {
      return arith::IndexCastOp::create(b, b.getIndexType(),
                                        arith::FPToUIOp::create(b, b.getI64Type(), value));
    };

    /// Warp w handles rows w, w + W, ... of `rows`; `partials(row)` returns
    /// this lane's partial sums and `finish(row, sums)` runs on lane 0.
    /// Trip counts are uniform (rows past the end are clamped, not stored),
    /// so every shuffle has its whole warp.
    auto forWarpRows = [&](int64_t rows, auto partials, auto finish) {
      const int64_t padded = (rows + warps - 1) / warps * warps;
      e.forLoop(warp, e.index(padded), warps, [&](Value n) {
        Value clamped = arith::MinUIOp::create(b, n, e.index(rows - 1));
        SmallVector<Value> sums = partials(clamped);
        for (Value &sum : sums)
          sum = e.laneSum(sum, kWarp);
        Value store = arith::AndIOp::create(b, isFirstLane, below(n, e.index(rows)));
        e.ifThen(store, [&] { finish(n, sums); });
      });
    };

    Value gateBase = e.mulIndex(expert, 2 * inter);
    Value downBase = e.mulIndex(expert, hidden);
    Value zeroH = arith::ConstantOp::create(b, DenseElementsAttr::get(hiddenVec, 0.0f));
    Value zeroI = arith::ConstantOp::create(b, DenseElementsAttr::get(interVec, 0.0f));

    // The expert's SwiGLU for the `count` (1 .. slotBlock) slots queued from
    // position `first`. Block positions past `count` repeat the last slot
    // (computed, never stored), so loops and shuffles stay uniform.
    auto process = [&](Value first, Value count) {
      Value last = arith::SubIOp::create(b, count, e.index(1));
      SmallVector<Value> slots, valid;
      for (int64_t s = 0; s < slotBlock; ++s) {
        Value at = s == 0 ? first
                          : e.addIndex(first, arith::MinUIOp::create(b, e.index(s), last));
        slots.push_back(toIndex(memref::LoadOp::create(b, queue, ValueRange{at})));
        valid.push_back(s == 0 ? Value() : below(e.index(s), count));
      }
      // The gathered x rows, slot s at s * hidden.
      for (int64_t s = 0; s < slotBlock; ++s) {
        Value xBase = e.address(x, e.divIndex(slots[s], topK), Value(), Value());
        e.forThreadColumns(hidden, hiddenWidth, [&](Value c) {
          e.storeShared(xs, e.addIndex(e.index(s * hidden), c),
                        e.loadVectorF32(x, e.addIndex(xBase, c), hiddenWidth));
        });
      }
      e.barrier();
      // h[s, n] = silu(gate_e[n] . x_s) * (up_e[n] . x_s): each gate / up
      // vector loaded once for the whole slot block.
      forWarpRows(
          inter,
          [&](Value n) -> SmallVector<Value> {
            Value gateRow = e.mulIndex(e.addIndex(gateBase, n), hidden);
            Value upRow = e.addIndex(gateRow, e.index(inter * hidden));
            SmallVector<Value> init(2 * slotBlock, zeroH);
            ValueRange acc = e.forLoop(
                e.mulIndex(lane, hiddenWidth), e.index(hidden), kWarp * hiddenWidth, init,
                [&](Value c, ValueRange carried) -> SmallVector<Value> {
                  Value g = e.loadVectorF32(gateUp, e.addIndex(gateRow, c), hiddenWidth);
                  Value u = e.loadVectorF32(gateUp, e.addIndex(upRow, c), hiddenWidth);
                  SmallVector<Value> next;
                  for (int64_t s = 0; s < slotBlock; ++s) {
                    Value xv = e.loadShared(xs, e.addIndex(e.index(s * hidden), c), hiddenWidth);
                    next.push_back(vector::FMAOp::create(b, xv, g, carried[2 * s]));
                    next.push_back(vector::FMAOp::create(b, xv, u, carried[2 * s + 1]));
                  }
                  return next;
                });
            SmallVector<Value> sums;
            for (Value v : acc)
              sums.push_back(vector::ReductionOp::create(b, vector::CombiningKind::ADD, v));
            return sums;
          },
          [&](Value n, ArrayRef<Value> sums) {
            for (int64_t s = 0; s < slotBlock; ++s)
              memref::StoreOp::create(
                  b, arith::MulFOp::create(b, e.silu(sums[2 * s]), sums[2 * s + 1]), hs,
                  ValueRange{e.addIndex(e.index(s * inter), n)});
          });
      e.barrier();
      // out[slot_s, n] = weight_s * (down_e[n] . h_s), down is [E * H, I].
      SmallVector<Value> scales;
      for (Value slot : slots)
        scales.push_back(e.loadF32(routeWeights, slot));
      forWarpRows(
          hidden,
          [&](Value n) -> SmallVector<Value> {
            Value downRow = e.mulIndex(e.addIndex(downBase, n), inter);
            SmallVector<Value> init(slotBlock, zeroI);
            ValueRange acc = e.forLoop(
                e.mulIndex(lane, interWidth), e.index(inter), kWarp * interWidth, init,
                [&](Value c, ValueRange carried) -> SmallVector<Value> {
                  Value d = e.loadVectorF32(down, e.addIndex(downRow, c), interWidth);
                  SmallVector<Value> next;
                  for (int64_t s = 0; s < slotBlock; ++s) {
                    Value hv = e.loadShared(hs, e.addIndex(e.index(s * inter), c), interWidth);
                    next.push_back(vector::FMAOp::create(b, hv, d, carried[s]));
                  }
                  return next;
                });
            SmallVector<Value> sums;
            for (Value v : acc)
              sums.push_back(vector::ReductionOp::create(b, vector::CombiningKind::ADD, v));
            return sums;
          },
          [&](Value n, ArrayRef<Value> sums) {
            for (int64_t s = 0; s < slotBlock; ++s) {
              auto write = [&] {
                e.store(out, e.addIndex(e.mulIndex(slots[s], hidden), n),
                        arith::MulFOp::create(b, sums[s], scales[s]));
              };
              if (valid[s])
                e.ifThen(valid[s], write);
              else
                write();
            }
          });
      // x, h and the queue are reused by the next block.
      e.barrier();
    };
    // Slot block number `q` of this expert belongs to part q % parts.
    auto ifMine = [&](Value q, llvm::function_ref<void()> body) {
      if (parts == 1)
        return body();
      e.ifThen(arith::CmpIOp::create(b, arith::CmpIPredicate::eq, e.remIndex(q, parts), part),
               body);
    };

    // Scan the routing table a chunk of `threads` slots at a time: thread t
    // tests slot chunk + t, a block-wide prefix count (xor-butterfly warp
    // scans, then the warp counts in shared memory) gives each match its
    // queue position, and every full slot block queued is processed.
    Value total = e.mulIndex(e.dim(symbol), topK);
    Value lastSlot = arith::SubIOp::create(b, total, e.index(1));
    ValueRange state = e.forLoop(
        e.index(0), total, threads, ValueRange{e.index(0), e.index(0)},
        [&](Value chunk, ValueRange carried) -> SmallVector<Value> {
          Value pending = carried[0], done = carried[1];
          Value slot = e.addIndex(chunk, tid);
          Value id = e.loadIndex(ids, arith::MinUIOp::create(b, slot, lastSlot));
          Value match = arith::AndIOp::create(
              b, below(slot, total),
              arith::CmpIOp::create(b, arith::CmpIPredicate::eq, id, expert));
          Value flag = arith::SelectOp::create(b, match, e.f32(1.0f), e.f32(0.0f));
          // Inclusive prefix over the warp: at distance d the lanes with bit
          // d set add the total of the lower group of d lanes.
          Value prefix = flag, sum = flag;
          for (int64_t d = 1; d < kWarp; d *= 2) {
            Value other = e.shuffleXor(sum, d);
            Value upper = arith::CmpIOp::create(
                b, arith::CmpIPredicate::ne,
                arith::AndIOp::create(b, lane, e.index(d)), e.index(0));
            prefix = arith::SelectOp::create(b, upper, arith::AddFOp::create(b, prefix, other),
                                             prefix);
            sum = arith::AddFOp::create(b, sum, other);
          }
          e.ifThen(isFirstLane,
                   [&] { memref::StoreOp::create(b, sum, warpCounts, ValueRange{warp}); });
          e.barrier();
          Value before = e.f32(0.0f), found = e.f32(0.0f);
          for (int64_t w = 0; w < warps; ++w) {
            Value count = memref::LoadOp::create(b, warpCounts, ValueRange{e.index(w)});
            before = arith::AddFOp::create(
                b, before,
                arith::SelectOp::create(b, below(e.index(w), warp), count, e.f32(0.0f)));
            found = arith::AddFOp::create(b, found, count);
          }
          Value position = e.addIndex(
              pending, toIndex(arith::SubFOp::create(
                           b, arith::AddFOp::create(b, before, prefix), flag)));
          e.ifThen(match, [&] {
            memref::StoreOp::create(b, toF32(slot), queue, ValueRange{position});
          });
          e.barrier();
          Value queued = e.addIndex(pending, toIndex(found));
          Value full = e.divIndex(queued, slotBlock);
          e.forLoop(e.index(0), full, 1, [&](Value i) {
            ifMine(e.addIndex(done, i),
                   [&] { process(e.mulIndex(i, slotBlock), e.index(slotBlock)); });
          });
          // The partial block moves to the front of the queue (it does not
          // overlap its old place when a block was taken; it is its old
          // place otherwise).
          Value kept = arith::SubIOp::create(b, queued, e.mulIndex(full, slotBlock));
          e.ifThen(below(tid, kept), [&] {
            Value from = e.addIndex(e.mulIndex(full, slotBlock), tid);
            memref::StoreOp::create(b, memref::LoadOp::create(b, queue, ValueRange{from}), queue,
                                    ValueRange{tid});
          });
          e.barrier();
          return {kept, e.addIndex(done, full)};
        });
    Value pending = state[0], done = state[1];
    e.ifThen(arith::CmpIOp::create(b, arith::CmpIPredicate::ugt, pending, e.index(0)), [&] {
      ifMine(done, [&] { process(e.index(0), pending); });
    });
  });
  Builder builder(source.getContext());
  SmallVector<Attribute> grid{builder.getI64IntegerAttr(experts)};
  if (parts > 1)
    grid.push_back(builder.getI64IntegerAttr(parts));
  return KernelGeometry{grid, e.blockSize(), e.sharedBytes()};
}
