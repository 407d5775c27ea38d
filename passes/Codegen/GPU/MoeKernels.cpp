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
//          Block-wise FP8 experts: the 1-byte weight vectors are widened in
//          registers (KernelABI's widenToF32) and multiplied by their
//          block's scale (each vector lies in one block: its width divides
//          the block columns), i.e. exactly HF's dequantized f32 weight, as
//          on the CPU.
//
// Numerics are the CPU's (passes/Codegen/CPU/MoeKernels.cpp) up to the
// order of the sums.
//
//===----------------------------------------------------------------------===//
#include "passes/Codegen/GPU/GpuKernelEmitter.h"
#include "qwen/Passes/Codegen/Common/KernelPhase.h"
#include "qwen/Passes/Codegen/Common/MoeMath.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

#include <algorithm>
#include <limits>
#include <optional>

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen::gpu;
using qwen::codegen::KernelPhase;

namespace {

/// The router kernel of one token (a warp), one method per phase: lane l
/// owns experts l, l + 32, ... (`expertIds`, their logits `l`).
/// router.softmax leaves p = e^(l - max) in `p` and returns 1 / sum;
/// router.top_k picks the k experts (k rounds of a warp argmax, the
/// winner's owner marking it taken) and stores ids (and weights unless
/// normalized); router.normalize stores the renormalized weights.
class GpuRouter {
public:
  GpuRouter(GpuKernelEmitter &e, qtf::MoeRouterOp router)
      : e(e), b(e.builder()), router(router),
        experts(router.getLogits().getType().getDimSize(1)), topK(router.getTopK()),
        normalize(router.getNormalize()), perLane((experts + kWarpSize - 1) / kWarpSize) {}
  void emit();

private:
  Value toF32(Value index) {
    return arith::UIToFPOp::create(b, b.getF32Type(),
                                   arith::IndexCastOp::create(b, b.getI64Type(), index));
  }
  void loadLogits();
  Value softmax();
  void selectTopK(Value inverse);

  GpuKernelEmitter &e;
  ImplicitLocOpBuilder &b;
  qtf::MoeRouterOp router;
  int64_t experts, topK;
  bool normalize;
  int64_t perLane;
  RowAccess ids, weights;
  Value token, lane, isFirstLane, outBase;
  // Expert ids of this lane (clamped for the loads), their validity (null:
  // always valid), logits and probabilities.
  SmallVector<Value> expertIds, valid, l, p;
};

} // namespace

void GpuRouter::loadLogits() {
  RowAccess logits = e.access(router.getLogits());
  ids = e.result(0), weights = e.result(1);
  token = e.blockId();
  lane = e.threadId();
  Value base = e.address(logits, token, Value(), Value());
  Value minusInf = e.f32(-std::numeric_limits<float>::infinity());
  for (int64_t r = 0; r < perLane; ++r) {
    Value id = e.addIndex(lane, e.index(r * kWarpSize));
    expertIds.push_back(id);
    if ((r + 1) * kWarpSize <= experts) {
      valid.push_back(Value());
      l.push_back(e.loadF32(logits, e.addIndex(base, id)));
      continue;
    }
    Value inside = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, id, e.index(experts));
    Value clamped = arith::MinUIOp::create(b, id, e.index(experts - 1));
    valid.push_back(inside);
    l.push_back(
        arith::SelectOp::create(b, inside, e.loadF32(logits, e.addIndex(base, clamped)), minusInf));
  }
}

Value GpuRouter::softmax() {
  KernelPhase phase(b, "router.softmax");
  loadLogits();
  Value localMax = l[0];
  for (int64_t r = 1; r < perLane; ++r)
    localMax = arith::MaximumFOp::create(b, localMax, l[r]);
  Value maxLogit = e.laneMax(localMax, kWarpSize);
  // p = exp(l - max); experts past the end get -3, below any candidate.
  Value localSum = e.f32(0.0f);
  for (int64_t r = 0; r < perLane; ++r) {
    Value pr = codegen::routerProbability(b, l[r], maxLogit);
    if (valid[r]) {
      localSum =
          arith::AddFOp::create(b, localSum, arith::SelectOp::create(b, valid[r], pr, e.f32(0.0f)));
      pr = arith::SelectOp::create(b, valid[r], pr, e.f32(-3.0f));
    } else {
      localSum = arith::AddFOp::create(b, localSum, pr);
    }
    p.push_back(pr);
  }
  return codegen::reciprocal(b, e.laneSum(localSum, kWarpSize));
}

void GpuRouter::selectTopK(Value inverse) {
  isFirstLane = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, lane, e.index(0));
  outBase = e.mulIndex(token, topK);
  SmallVector<Value> chosenWeights;
  Value chosenSum = e.f32(0.0f);
  {
    KernelPhase phase(b, "router.top_k");
    for (int64_t j = 0; j < topK; ++j) {
      // This lane's best untaken expert (ids increase with r: the scan keeps
      // the lowest id), then the warp's; ids travel as exact f32.
      codegen::Candidate best{e.f32(-2.0f), e.f32(0.0f)};
      for (int64_t r = 0; r < perLane; ++r)
        best = codegen::scanCandidate(b, best, p[r], toF32(expertIds[r]));
      for (int64_t offset = kWarpSize / 2; offset > 0; offset /= 2) {
        Value otherBest = e.shuffleXor(best.value, offset), otherId = e.shuffleXor(best.id, offset);
        best = codegen::mergeCandidates(b, best, {otherBest, otherId});
      }
      // Probabilities are >= 0, so -1 marks the expert taken.
      for (int64_t r = 0; r < perLane; ++r) {
        Value taken = arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, toF32(expertIds[r]), best.id);
        p[r] = arith::SelectOp::create(b, taken, e.f32(-1.0f), p[r]);
      }
      Value weight = arith::MulFOp::create(b, best.value, inverse);
      Value slot = e.addIndex(outBase, e.index(j));
      Value id = arith::FPToSIOp::create(b, b.getI32Type(), best.id);
      e.ifThen(isFirstLane, [&] {
        memref::StoreOp::create(b, id, ids.memref, ValueRange{slot});
        if (!normalize)
          e.store(weights, slot, weight);
      });
      chosenWeights.push_back(weight);
      if (normalize)
        chosenSum = arith::AddFOp::create(b, chosenSum, weight);
    }
  }
  if (!normalize)
    return;
  KernelPhase phase(b, "router.normalize");
  Value scale = codegen::reciprocal(b, chosenSum);
  e.ifThen(isFirstLane, [&] {
    for (int64_t j = 0; j < topK; ++j)
      e.store(weights, e.addIndex(outBase, e.index(j)),
              arith::MulFOp::create(b, chosenWeights[j], scale));
  });
}

void GpuRouter::emit() { selectTopK(softmax()); }

FailureOr<KernelGeometry> qwen::codegen::gpu::emitRouterKernel(GpuKernelEmitter &e) {
  func::FuncOp source = e.source();
  qtf::MoeRouterOp router;
  source.walk([&](qtf::MoeRouterOp op) { router = op; });
  auto ret = cast<func::ReturnOp>(source.getBody().front().getTerminator());
  if (!router || ret.getNumOperands() != 2 || ret.getOperand(0) != router.getIds() ||
      ret.getOperand(1) != router.getWeights())
    return source.emitOpError("router kernel must return the ids and weights of one moe_router"),
           failure();
  std::string symbol = e.leadingSymbol(router.getIds());
  e.createKernel(kWarpSize, [&] { GpuRouter(e, router).emit(); });
  return KernelGeometry{{Builder(source.getContext()).getStringAttr(symbol)}, e.blockSize(),
                        e.sharedBytes()};
}

/// Static shared memory of one block.
static constexpr int64_t kSharedLimit = 48 * 1024;

namespace {

/// Launch plan of the experts kernel: threads, slots per block, parts per
/// expert and the vector widths of the two reductions.
struct ExpertsPlan {
  int64_t threads, warps, slotBlock, parts, hiddenWidth, interWidth;
};

/// The experts kernel of one (expert, part) block, one method per phase:
/// experts.gather scans the routing table into the shared `queue`; each
/// slot block then goes through experts.load_x (x rows into `xs`),
/// experts.gate_up (gate / up dot products, experts.silu_mul into `hs`) and
/// experts.down (down dot products, experts.scatter to the output rows).
class GpuExperts {
public:
  GpuExperts(GpuKernelEmitter &e, qtf::MoeExpertFfnOp ffn, StringRef symbol, const ExpertsPlan &plan)
      : e(e), b(e.builder()), ops(e, ffn), symbol(symbol), plan(plan), inter(ops.inter),
        hidden(ops.hidden), topK(ops.topK) {}
  void emit();

private:
  Value below(Value a, Value c) { return arith::CmpIOp::create(b, arith::CmpIPredicate::ult, a, c); }
  // Slot numbers travel through the f32 queue exactly (< 2^24).
  Value toF32(Value index) {
    return arith::UIToFPOp::create(b, b.getF32Type(),
                                   arith::IndexCastOp::create(b, b.getI64Type(), index));
  }
  Value toIndex(Value value) {
    return arith::IndexCastOp::create(b, b.getIndexType(),
                                      arith::FPToUIOp::create(b, b.getI64Type(), value));
  }
  void setUp();
  void forWarpRows(int64_t rows, llvm::function_ref<SmallVector<Value>(Value)> partials,
                   llvm::function_ref<void(Value, ArrayRef<Value>)> finish);
  void process(Value first, Value count);
  void gateUp();
  void downAndScatter(ArrayRef<Value> slots, ArrayRef<Value> valid);
  void ifMine(Value q, llvm::function_ref<void()> body);
  SmallVector<Value> scanChunk(Value chunk, ValueRange carried, Value total, Value lastSlot);

  GpuKernelEmitter &e;
  ImplicitLocOpBuilder &b;
  /// The operands and this expert's rows (Common/MoeMath, shared with the CPU).
  codegen::ExpertOperands ops;
  StringRef symbol;
  ExpertsPlan plan;
  int64_t inter, hidden, topK;
  VectorType hiddenVec, interVec;
  /// The weight vector of `width` elements at `at` of `w`, scaled by its
  /// block's factor for fp8 experts (the scale row starting at
  /// `scaleRowAt`, column `c` of the weight row).
  Value loadWeights(const RowAccess &w, Value at, int64_t width, const std::optional<RowAccess> &scale,
                    Value scaleRowAt, Value c) {
    Value v = e.loadVectorF32(w, at, width);
    if (!scale)
      return v;
    Value factor = e.loadF32(*scale, e.addIndex(scaleRowAt, e.divIndex(c, ops.block[1])));
    Value splat = vector::BroadcastOp::create(b, VectorType::get({width}, b.getF32Type()), factor);
    return arith::MulFOp::create(b, v, splat);
  }
  /// Where the scales of row `row` of the expert matrix whose first scale
  /// row is `first` start in `scale`.
  Value scaleRowOf(const RowAccess &scale, Value first, Value row) {
    return e.address(scale, ops.scaleRowOf(first, row), Value(), Value());
  }

  Value xs, hs, queue, warpCounts;
  Value expert, part, tid, warp, lane, isFirstLane, zeroH, zeroI;
};

} // namespace

void GpuExperts::setUp() {
  Type f32 = b.getF32Type();
  hiddenVec = VectorType::get({plan.hiddenWidth}, f32);
  interVec = VectorType::get({plan.interWidth}, f32);
  xs = e.sharedRow(plan.slotBlock * hidden);
  hs = e.sharedRow(plan.slotBlock * inter);
  queue = e.sharedRow(plan.slotBlock + plan.threads);
  warpCounts = e.sharedRow(plan.warps);

  expert = e.divIndex(e.blockId(), plan.parts);
  part = e.remIndex(e.blockId(), plan.parts);
  tid = e.threadId();
  warp = e.divIndex(tid, kWarpSize);
  lane = e.remIndex(tid, kWarpSize);
  isFirstLane = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, lane, e.index(0));
  ops.locate(expert);
  zeroH = arith::ConstantOp::create(b, DenseElementsAttr::get(hiddenVec, 0.0f));
  zeroI = arith::ConstantOp::create(b, DenseElementsAttr::get(interVec, 0.0f));
}

/// Warp w handles rows w, w + W, ... of `rows`; `partials(row)` returns this
/// lane's vectors of partial sums, each summed over its lanes and the warp
/// for `finish(row, sums)`, which runs on lane 0. Trip counts
/// are uniform (rows past the end are clamped, not stored), so every
/// shuffle has its whole warp.
void GpuExperts::forWarpRows(int64_t rows, llvm::function_ref<SmallVector<Value>(Value)> partials,
                             llvm::function_ref<void(Value, ArrayRef<Value>)> finish) {
  const int64_t padded = (rows + plan.warps - 1) / plan.warps * plan.warps;
  e.forLoop(warp, e.index(padded), plan.warps, [&](Value n) {
    Value clamped = arith::MinUIOp::create(b, n, e.index(rows - 1));
    SmallVector<Value> sums;
    for (Value partial : partials(clamped))
      sums.push_back(vector::ReductionOp::create(b, vector::CombiningKind::ADD, partial));
    for (Value &sum : sums)
      sum = e.laneSum(sum, kWarpSize);
    Value store = arith::AndIOp::create(b, isFirstLane, below(n, e.index(rows)));
    e.ifThen(store, [&] { finish(n, sums); });
  });
}

/// The expert's SwiGLU for the `count` (1 .. slotBlock) slots queued from
/// position `first`. Block positions past `count` repeat the last slot
/// (computed, never stored), so loops and shuffles stay uniform.
void GpuExperts::process(Value first, Value count) {
  const int64_t slotBlock = plan.slotBlock;
  SmallVector<Value> slots, valid;
  {
    KernelPhase phase(b, "experts.load_x");
    Value last = arith::SubIOp::create(b, count, e.index(1));
    for (int64_t s = 0; s < slotBlock; ++s) {
      Value at = s == 0 ? first : e.addIndex(first, arith::MinUIOp::create(b, e.index(s), last));
      slots.push_back(toIndex(memref::LoadOp::create(b, queue, ValueRange{at})));
      valid.push_back(s == 0 ? Value() : below(e.index(s), count));
    }
    // The gathered x rows, slot s at s * hidden.
    for (int64_t s = 0; s < slotBlock; ++s) {
      Value xBase = e.address(ops.x, e.divIndex(slots[s], topK), Value(), Value());
      e.forThreadColumns(hidden, plan.hiddenWidth, [&](Value c) {
        e.storeShared(xs, e.addIndex(e.index(s * hidden), c),
                      e.loadVectorF32(ops.x, e.addIndex(xBase, c), plan.hiddenWidth));
      });
    }
    e.barrier();
  }
  gateUp();
  downAndScatter(slots, valid);
  // x, h and the queue are reused by the next block.
  e.barrier();
}

/// h[s, n] = silu(gate_e[n] . x_s) * (up_e[n] . x_s) into `hs`: each gate /
/// up vector loaded once for the whole slot block.
void GpuExperts::gateUp() {
  KernelPhase phase(b, "experts.gate_up");
  const int64_t slotBlock = plan.slotBlock, width = plan.hiddenWidth;
  forWarpRows(
      inter,
      [&](Value n) -> SmallVector<Value> {
        Value gateRow = e.mulIndex(e.addIndex(ops.gateBase, n), hidden);
        Value upRow = e.addIndex(gateRow, e.index(inter * hidden));
        Value gateScaleRow, upScaleRow;
        if (ops.gateUpScale) {
          gateScaleRow = scaleRowOf(*ops.gateUpScale, ops.gateScaleBase, n);
          upScaleRow = scaleRowOf(*ops.gateUpScale, ops.upScaleBase, n);
        }
        SmallVector<Value> init(2 * slotBlock, zeroH);
        ValueRange acc = e.forLoop(
            e.mulIndex(lane, width), e.index(hidden), kWarpSize * width, init,
            [&](Value c, ValueRange carried) -> SmallVector<Value> {
              Value g = loadWeights(ops.gateUp, e.addIndex(gateRow, c), width, ops.gateUpScale,
                                    gateScaleRow, c);
              Value u = loadWeights(ops.gateUp, e.addIndex(upRow, c), width, ops.gateUpScale,
                                    upScaleRow, c);
              SmallVector<Value> next;
              for (int64_t s = 0; s < slotBlock; ++s) {
                Value xv = e.loadShared(xs, e.addIndex(e.index(s * hidden), c), width);
                next.push_back(vector::FMAOp::create(b, xv, g, carried[2 * s]));
                next.push_back(vector::FMAOp::create(b, xv, u, carried[2 * s + 1]));
              }
              return next;
            });
        return llvm::to_vector(acc);
      },
      [&](Value n, ArrayRef<Value> sums) {
        KernelPhase siluMul(b, "experts.silu_mul");
        for (int64_t s = 0; s < slotBlock; ++s)
          memref::StoreOp::create(b, codegen::swiglu(b, sums[2 * s], sums[2 * s + 1]), hs,
                                  ValueRange{e.addIndex(e.index(s * inter), n)});
      });
  e.barrier();
}

/// out[slot_s, n] = weight_s * (down_e[n] . h_s), down is [E * H, I]; the
/// slots past the block's count are not stored.
void GpuExperts::downAndScatter(ArrayRef<Value> slots, ArrayRef<Value> valid) {
  KernelPhase phase(b, "experts.down");
  const int64_t slotBlock = plan.slotBlock, width = plan.interWidth;
  SmallVector<Value> scales;
  for (Value slot : slots)
    scales.push_back(e.loadF32(ops.routeWeights, slot));
  forWarpRows(
      hidden,
      [&](Value n) -> SmallVector<Value> {
        Value downRow = e.mulIndex(e.addIndex(ops.downBase, n), inter);
        Value downScaleRow =
            ops.downScale ? scaleRowOf(*ops.downScale, ops.downScaleBase, n) : Value();
        SmallVector<Value> init(slotBlock, zeroI);
        ValueRange acc = e.forLoop(
            e.mulIndex(lane, width), e.index(inter), kWarpSize * width, init,
            [&](Value c, ValueRange carried) -> SmallVector<Value> {
              Value d = loadWeights(ops.down, e.addIndex(downRow, c), width, ops.downScale,
                                    downScaleRow, c);
              SmallVector<Value> next;
              for (int64_t s = 0; s < slotBlock; ++s) {
                Value hv = e.loadShared(hs, e.addIndex(e.index(s * inter), c), width);
                next.push_back(vector::FMAOp::create(b, hv, d, carried[s]));
              }
              return next;
            });
        return llvm::to_vector(acc);
      },
      [&](Value n, ArrayRef<Value> sums) {
        KernelPhase scatter(b, "experts.scatter");
        for (int64_t s = 0; s < slotBlock; ++s) {
          auto write = [&] {
            e.store(ops.out, e.addIndex(e.mulIndex(slots[s], hidden), n),
                    arith::MulFOp::create(b, sums[s], scales[s]));
          };
          if (valid[s])
            e.ifThen(valid[s], write);
          else
            write();
        }
      });
}

/// Slot block number `q` of this expert belongs to part q % parts.
void GpuExperts::ifMine(Value q, llvm::function_ref<void()> body) {
  if (plan.parts == 1)
    return body();
  e.ifThen(arith::CmpIOp::create(b, arith::CmpIPredicate::eq, e.remIndex(q, plan.parts), part),
           body);
}

/// One chunk of the routing-table scan: thread t tests slot chunk + t, a
/// block-wide prefix count (xor-butterfly warp scans, then the warp counts
/// in shared memory) gives each match its queue position, and every full
/// slot block queued is processed. Returns the new (pending, done).
SmallVector<Value> GpuExperts::scanChunk(Value chunk, ValueRange carried, Value total,
                                         Value lastSlot) {
  const int64_t slotBlock = plan.slotBlock;
  Value pending = carried[0], done = carried[1];
  Value slot = e.addIndex(chunk, tid);
  Value id = e.loadIndex(ops.ids, arith::MinUIOp::create(b, slot, lastSlot));
  Value match = arith::AndIOp::create(b, below(slot, total),
                                      arith::CmpIOp::create(b, arith::CmpIPredicate::eq, id, expert));
  Value flag = arith::SelectOp::create(b, match, e.f32(1.0f), e.f32(0.0f));
  // Inclusive prefix over the warp: at distance d the lanes with bit d set
  // add the total of the lower group of d lanes.
  Value prefix = flag, sum = flag;
  for (int64_t d = 1; d < kWarpSize; d *= 2) {
    Value other = e.shuffleXor(sum, d);
    Value upper = arith::CmpIOp::create(b, arith::CmpIPredicate::ne,
                                        arith::AndIOp::create(b, lane, e.index(d)), e.index(0));
    prefix = arith::SelectOp::create(b, upper, arith::AddFOp::create(b, prefix, other), prefix);
    sum = arith::AddFOp::create(b, sum, other);
  }
  e.ifThen(isFirstLane, [&] { memref::StoreOp::create(b, sum, warpCounts, ValueRange{warp}); });
  e.barrier();
  Value before = e.f32(0.0f), found = e.f32(0.0f);
  for (int64_t w = 0; w < plan.warps; ++w) {
    Value count = memref::LoadOp::create(b, warpCounts, ValueRange{e.index(w)});
    before = arith::AddFOp::create(
        b, before, arith::SelectOp::create(b, below(e.index(w), warp), count, e.f32(0.0f)));
    found = arith::AddFOp::create(b, found, count);
  }
  Value position = e.addIndex(
      pending, toIndex(arith::SubFOp::create(b, arith::AddFOp::create(b, before, prefix), flag)));
  e.ifThen(match, [&] { memref::StoreOp::create(b, toF32(slot), queue, ValueRange{position}); });
  e.barrier();
  Value queued = e.addIndex(pending, toIndex(found));
  Value full = e.divIndex(queued, slotBlock);
  e.forLoop(e.index(0), full, 1, [&](Value i) {
    ifMine(e.addIndex(done, i), [&] { process(e.mulIndex(i, slotBlock), e.index(slotBlock)); });
  });
  // The partial block moves to the front of the queue (it does not overlap
  // its old place when a block was taken; it is its old place otherwise).
  Value kept = arith::SubIOp::create(b, queued, e.mulIndex(full, slotBlock));
  e.ifThen(below(tid, kept), [&] {
    Value from = e.addIndex(e.mulIndex(full, slotBlock), tid);
    memref::StoreOp::create(b, memref::LoadOp::create(b, queue, ValueRange{from}), queue,
                            ValueRange{tid});
  });
  e.barrier();
  return {kept, e.addIndex(done, full)};
}

void GpuExperts::emit() {
  setUp();
  Value pending, done;
  {
    KernelPhase phase(b, "experts.gather");
    Value total = e.mulIndex(e.dim(symbol), topK);
    Value lastSlot = arith::SubIOp::create(b, total, e.index(1));
    ValueRange state = e.forLoop(
        e.index(0), total, plan.threads, ValueRange{e.index(0), e.index(0)},
        [&](Value chunk, ValueRange carried) { return scanChunk(chunk, carried, total, lastSlot); });
    pending = state[0], done = state[1];
  }
  // The last, partial slot block.
  e.ifThen(arith::CmpIOp::create(b, arith::CmpIPredicate::ugt, pending, e.index(0)), [&] {
    ifMine(done, [&] { process(e.index(0), pending); });
  });
}

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
  std::string symbol = e.leadingSymbol(ffn.getIds());
  ExpertsPlan plan;
  plan.threads = e.options().maxThreads;
  plan.warps = plan.threads / kWarpSize;
  if (plan.threads % kWarpSize != 0)
    return source.emitOpError("experts kernel needs a block of whole warps"), failure();
  // Vector widths of the two reductions (over hidden, then over inter): the
  // schedule's vector_width and its width for the intermediate rows.
  plan.hiddenWidth = e.schedule().getVectorWidth();
  plan.interWidth = e.rowWidth(inter);
  // Block-wise FP8: a weight vector must lie in one column block.
  if (ffn.isBlockQuantized()) {
    const int64_t bc = (*ffn.getWeightBlock())[1];
    for (int64_t *width : {&plan.hiddenWidth, &plan.interWidth})
      while (*width > 1 && bc % *width)
        *width /= 2;
  }
  // Shared memory: x and h rows of a slot block, the slot queue (a partial
  // block plus one chunk of the scan) and one count per warp.
  auto sharedFloats = [&](int64_t slots) {
    return slots * (hidden + inter) + slots + plan.threads + plan.warps;
  };
  // Gathered slots per block and blocks per expert: the schedule's tile and
  // splits (passes/Schedule/GpuSchedules.cpp).
  plan.slotBlock = e.options().schedule.tileSize(0);
  plan.parts = e.options().schedule.getSplits();
  if (plan.slotBlock < 1 || plan.parts < 1)
    return source.emitOpError("experts needs a schedule with tile = [slots] and splits"),
           failure();
  if (sharedFloats(plan.slotBlock) * 4 >= kSharedLimit)
    return source.emitOpError("experts kernel: hidden + intermediate rows exceed shared memory"),
           failure();

  e.createKernel(plan.threads, [&] { GpuExperts(e, ffn, symbol, plan).emit(); });
  Builder builder(source.getContext());
  SmallVector<Attribute> grid{builder.getI64IntegerAttr(experts)};
  if (plan.parts > 1)
    grid.push_back(builder.getI64IntegerAttr(plan.parts));
  return KernelGeometry{grid, e.blockSize(), e.sharedBytes()};
}

void qwen::codegen::gpu::populateMoePatterns(RewritePatternSet &patterns,
                                             GpuKernelLowering &lowering) {
  patterns.add<GpuKernelPattern>(patterns.getContext(), qkernel::KernelKind::Router,
                                 emitRouterKernel, lowering);
  patterns.add<GpuKernelPattern>(patterns.getContext(), qkernel::KernelKind::Experts,
                                 emitExpertsKernel, lowering);
}
