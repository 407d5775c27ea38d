//===- SamplerKernels.cpp - On-device sampling of the step's logits -------===//
//
// qk_argmax: greedy sampling on the GPU. Not outlined from the program: the
// pass adds it to gpu.module @qwen_kernels for the step's output logits
// [rows, vocab] f32, and the runtime launches it after the program on the
// same stream (the manifest's "sampler" field), so that only one int32 per
// row comes back to the host.
//
//   qk_argmax(ptr logits, ptr ids, i64 T, i64 B, i64 P, i64 R)
//
// Block b is row b (grid [rows]). Thread t scans columns t*w + k*blockDim*w
// with vectors of w (16-byte loads when vocab % 4 == 0), four strides' loads
// issued together, keeping its best (value, index); a warp combines those by
// xor shuffles, lane 0 of each warp puts its pair in shared memory, and
// thread 0 combines the warps and writes ids[b]. The result is the runtime's
// host argmax (runtime/src/sampling.cpp) exactly: the lowest index whose
// logit equals the largest non-NaN logit (-0 == +0), and 0 when every logit
// is NaN. The
// combine (larger value, or equal value and lower index; NaN never wins) is
// associative and commutative, so the order of the reduction does not
// matter. Indices travel through shuffles and shared memory as exact f32
// (vocab < 2^24).
//
// qk_topk (below): each row's kTopCandidates best candidates, for top-k
// sampling on the host without copying the row back.
//
//===----------------------------------------------------------------------===//
#include "passes/Codegen/GPU/GpuKernelEmitter.h"
#include "qwen/Passes/Codegen/Common/KernelPhase.h"
#include "qwen/Passes/Codegen/Common/SelectionMath.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

#include <algorithm>
#include <limits>

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen::gpu;
using qwen::codegen::KernelPhase;

/// Vector loads a thread issues before folding them (memory-level
/// parallelism: a row is read by one block only).
static constexpr int64_t kUnroll = 4;

/// Builds sampler kernel `name` in `gpuModule` for logits [rows, vocab] f32
/// with the schedule's threads, one block per row: a stand-in source (in a
/// scratch module) with the tensor signature logits -> `results` gives it
/// the common ABI (logits slot, result slots, then T, B, P, R);
/// `body(e, source)` emits the block. Ids and indices travel as exact f32
/// values in the reductions, so vocab must stay below 2^24.
static FailureOr<KernelGeometry>
buildSamplerKernel(mlir::gpu::GPUModuleOp gpuModule, Location loc, StringRef name, int64_t vocab,
                   TypeRange results, StringRef rowSymbol, qkernel::ScheduleAttr schedule,
                   llvm::function_ref<void(GpuKernelEmitter &, func::FuncOp)> body) {
  if (vocab <= 0 || vocab >= (int64_t(1) << 24))
    return emitError(loc) << name << ": vocab " << vocab
                          << " is out of range (1 .. 2^24 - 1: ids travel as f32)";
  MLIRContext *ctx = gpuModule.getContext();
  OwningOpRef<ModuleOp> scratch = ModuleOp::create(loc);
  OpBuilder builder = OpBuilder::atBlockEnd(scratch->getBody());
  auto logitsType = RankedTensorType::get({ShapedType::kDynamic, vocab}, Float32Type::get(ctx));
  auto source = func::FuncOp::create(builder, loc, name,
                                     FunctionType::get(ctx, {logitsType}, results));
  source.addEntryBlock();

  GpuCodegenOptions options;
  options.schedule = schedule;
  options.maxThreads = schedule.getThreads();
  // Not a kernel pattern (LowerKernels adds the sampler after them): no
  // listener to tell.
  IRRewriter rewriter(ctx);
  GpuKernelEmitter e(gpuModule, source, options, rewriter);
  SmallVector<BlockArgument> args(source.getArguments());
  e.createKernel(name, args, results, schedule.getThreads(), [&] { body(e, source); });
  return KernelGeometry{{builder.getStringAttr(rowSymbol)}, schedule.getThreads(), e.sharedBytes()};
}

namespace {

/// qk_argmax of one row (a block), one method per phase: argmax.scan
/// (each thread's best (logit, index) over its columns), argmax.warp_merge
/// (xor shuffles), argmax.block_merge (the warps' pairs through shared
/// memory, thread 0) and argmax.store. The order is SelectionMath's.
class GpuArgmax {
public:
  GpuArgmax(GpuKernelEmitter &e, func::FuncOp source, int64_t vocab, int64_t width,
            int64_t threads)
      : e(e), b(e.builder()), source(source), vocab(vocab), width(width), threads(threads),
        warps(threads / kWarpSize) {}
  void emit();

private:
  void fold(Value col, Value v, codegen::Candidate &best);
  codegen::Candidate scanThread();
  void store(Value index);

  GpuKernelEmitter &e;
  ImplicitLocOpBuilder &b;
  func::FuncOp source;
  int64_t vocab, width, threads, warps;
  RowAccess logits, ids;
  Value row, tid, base;
};

} // namespace

/// Folds the vector `v` at column `col` into `best`, in column order.
void GpuArgmax::fold(Value col, Value v, codegen::Candidate &best) {
  for (int64_t k = 0; k < width; ++k) {
    Value x = vector::ExtractOp::create(b, v, ArrayRef<int64_t>{k});
    Value index = k ? e.addIndex(col, e.index(k)) : col;
    best = codegen::mergeCandidates(b, best, {x, index});
  }
}

/// This thread's best (logit, index as f32) over columns t*w + k*blockDim*w:
/// strides of kUnroll vectors first (their loads issued together, so a
/// thread has several in flight), then the remaining single strides. The
/// start index `vocab` loses every tie, so a -inf logit still beats it.
codegen::Candidate GpuArgmax::scanThread() {
  KernelPhase phase(b, "argmax.scan");
  Value minusInf = e.f32(-std::numeric_limits<float>::infinity());
  const int64_t stride = threads * width;
  const int64_t unroll = std::min<int64_t>(kUnroll, (vocab + stride - 1) / stride);
  Value start = e.mulIndex(tid, width);
  codegen::Candidate best{minusInf, e.index(vocab)};
  if (unroll > 1) {
    ValueRange unrolled = e.forLoop(
        start, e.index(vocab - (unroll - 1) * stride), unroll * stride,
        ValueRange{best.value, best.id, start}, [&](Value col, ValueRange carried) -> SmallVector<Value> {
          codegen::Candidate local{carried[0], carried[1]};
          SmallVector<Value> cols, vectors;
          for (int64_t u = 0; u < unroll; ++u) {
            cols.push_back(u ? e.addIndex(col, e.index(u * stride)) : col);
            vectors.push_back(e.loadVectorF32(logits, e.addIndex(base, cols[u]), width));
          }
          for (int64_t u = 0; u < unroll; ++u)
            fold(cols[u], vectors[u], local);
          return {local.value, local.id, e.addIndex(col, e.index(unroll * stride))};
        });
    best = {unrolled[0], unrolled[1]};
    start = unrolled[2];
  }
  ValueRange scanned = e.forLoop(start, e.index(vocab), stride, ValueRange{best.value, best.id},
                                 [&](Value col, ValueRange carried) -> SmallVector<Value> {
    codegen::Candidate local{carried[0], carried[1]};
    fold(col, e.loadVectorF32(logits, e.addIndex(base, col), width), local);
    return {local.value, local.id};
  });
  Value index = arith::UIToFPOp::create(
      b, b.getF32Type(), arith::IndexCastOp::create(b, b.getI64Type(), scanned[1]));
  return {scanned[0], index};
}

/// ids[row] = the winning index; the start index is left only when every
/// logit is NaN: token 0, as on the host.
void GpuArgmax::store(Value index) {
  KernelPhase phase(b, "argmax.store");
  Value none =
      arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, index, e.f32(static_cast<float>(vocab)));
  Value id =
      arith::SelectOp::create(b, none, e.i32(0), arith::FPToSIOp::create(b, b.getI32Type(), index));
  memref::StoreOp::create(b, id, ids.memref, ValueRange{row});
}

void GpuArgmax::emit() {
  logits = e.access(source.getArgument(0));
  ids = e.result(0);
  row = e.blockId();
  tid = e.threadId();
  base = e.address(logits, row, Value(), Value());
  codegen::Candidate best = scanThread();
  {
    KernelPhase phase(b, "argmax.warp_merge");
    for (int64_t offset = kWarpSize / 2; offset > 0; offset /= 2) {
      Value otherBest = e.shuffleXor(best.value, offset), otherIndex = e.shuffleXor(best.id, offset);
      best = codegen::mergeCandidates(b, best, {otherBest, otherIndex});
    }
  }
  Value isThreadZero = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, tid, e.index(0));
  if (warps == 1) {
    e.ifThen(isThreadZero, [&] { store(best.id); });
    return;
  }
  KernelPhase phase(b, "argmax.block_merge");
  // Warp w's pair at [w] and [warps + w].
  Value pairs = e.sharedRow(2 * warps);
  Value lane = e.remIndex(tid, kWarpSize);
  Value warp = e.divIndex(tid, kWarpSize);
  Value isFirstLane = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, lane, e.index(0));
  e.ifThen(isFirstLane, [&] {
    memref::StoreOp::create(b, best.value, pairs, ValueRange{warp});
    memref::StoreOp::create(b, best.id, pairs, ValueRange{e.addIndex(warp, e.index(warps))});
  });
  e.barrier();
  e.ifThen(isThreadZero, [&] {
    Value total = memref::LoadOp::create(b, pairs, ValueRange{e.index(0)});
    Value totalIndex = memref::LoadOp::create(b, pairs, ValueRange{e.index(warps)});
    codegen::Candidate merged{total, totalIndex};
    for (int64_t w = 1; w < warps; ++w) {
      Value value = memref::LoadOp::create(b, pairs, ValueRange{e.index(w)});
      Value index = memref::LoadOp::create(b, pairs, ValueRange{e.index(warps + w)});
      merged = codegen::mergeCandidates(b, merged, {value, index});
    }
    store(merged.id);
  });
}

FailureOr<KernelGeometry> qwen::codegen::gpu::emitArgmaxKernel(mlir::gpu::GPUModuleOp gpuModule,
                                                                Location loc, int64_t vocab,
                                                                StringRef rowSymbol,
                                                                qkernel::ScheduleAttr schedule) {
  auto idsType = RankedTensorType::get({ShapedType::kDynamic}, IntegerType::get(gpuModule.getContext(), 32));
  return buildSamplerKernel(gpuModule, loc, "qk_argmax", vocab, {idsType}, rowSymbol, schedule,
                            [&](GpuKernelEmitter &e, func::FuncOp source) {
    GpuArgmax(e, source, vocab, e.rowWidth(vocab), schedule.getThreads()).emit();
  });
}

//===----------------------------------------------------------------------===//
// qk_topk: the C best candidates of each row, for top-k sampling on the host
//===----------------------------------------------------------------------===//
//
//   qk_topk(ptr logits, ptr top_logits, ptr top_ids, i64 T, i64 B, i64 P, i64 R)
//
// Row r's C = kTopCandidates best entries under "logit descending, then id
// ascending" (NaN excluded, -0 == +0), sorted in that order, padded with
// (-inf, -1). Block r is row r:
//  1. a bound: groups of threads / C lanes take the largest logit of their
//     columns; the smallest group maximum L is <= the C-th largest logit (C
//     disjoint groups each hold an entry >= L), so only entries >= L are
//     counted below (typically a few C of the vocab: few atomics);
//  2. radix select of the C-th largest composite key (32-bit orderable key
//     of the logit, then the inverted id), 8 bits per pass, with a 256-bin
//     histogram of shared-memory atomic counts (exact f32 integers); a pass
//     whose chosen bin holds exactly the entries still needed ends the
//     search (all of them are taken), so ids are looked at only for ties;
//  3. every entry at or above the threshold gets a slot from a shared
//     atomic counter (exactly min(C, non-NaN count) entries: the composite
//     key is unique), then a bitonic sort of the C slots in shared memory
//     and the stores.
// Every pass is skipped or run by the whole block (its condition is computed
// identically by every warp), so barriers and shuffles stay uniform.

namespace {

/// Launch plan of qk_topk (see above).
struct TopKPlan {
  int64_t vocab, width, threads, groupLanes, idPasses, idTop, passes;
  float padId;
};

/// The radix-select state: the threshold's key and inverted id known so far
/// (unknown bits 0), the rank still wanted among the entries that share the
/// known prefix, and whether the search has ended.
struct RadixState {
  Value thresholdKey, thresholdId, rank, done;
};

/// qk_topk of one row (a block), one method per phase: topk.init,
/// topk.bound (1.), topk.radix_select (2., one scf.if per pass),
/// topk.gather (3.: the entries at or above the threshold into C slots),
/// topk.sort (bitonic, SelectionMath's order) and topk.store.
class GpuTopK {
public:
  static constexpr int64_t C = kTopCandidates;
  static constexpr int64_t kBins = 256;
  GpuTopK(GpuKernelEmitter &e, func::FuncOp source, const TopKPlan &plan)
      : e(e), b(e.builder()), source(source), plan(plan) {}
  void emit();

private:
  Value cmpf(arith::CmpFPredicate p, Value x, Value y) { return arith::CmpFOp::create(b, p, x, y); }
  Value cmpi(arith::CmpIPredicate p, Value x, Value y) { return arith::CmpIOp::create(b, p, x, y); }
  Value andI(Value x, Value y) { return arith::AndIOp::create(b, x, y); }
  Value orI(Value x, Value y) { return arith::OrIOp::create(b, x, y); }
  Value select(Value c, Value x, Value y) { return arith::SelectOp::create(b, c, x, y); }
  Value shr(Value x, int64_t bits) {
    return bits ? Value(arith::ShRUIOp::create(b, x, e.i32(static_cast<int32_t>(bits)))) : x;
  }
  Value toIndex(Value x) { return arith::IndexCastUIOp::create(b, b.getIndexType(), x); }
  Value indexToF32(Value index) {
    return arith::UIToFPOp::create(b, b.getF32Type(),
                                   arith::IndexCastOp::create(b, b.getI64Type(), index));
  }
  Value keyOf(Value x);
  void forEachLogit(llvm::function_ref<void(Value, Value)> body);
  /// An entry that counts: not NaN and at least the bound.
  Value counts(Value x, Value key) {
    return andI(cmpf(arith::CmpFPredicate::ORD, x, x), cmpi(arith::CmpIPredicate::uge, key, boundKey));
  }
  Value invertedId(Value id) {
    return arith::SubIOp::create(b, e.i32(static_cast<int32_t>(plan.idTop)),
                                 arith::IndexCastOp::create(b, b.getI32Type(), id));
  }
  void init();
  void findBound();
  RadixState radixPass(int64_t pass, const RadixState &state);
  void countDigits(int64_t pass, const RadixState &state, Value histogram);
  void gather(const RadixState &state);
  void sort();
  void store();

  GpuKernelEmitter &e;
  ImplicitLocOpBuilder &b;
  func::FuncOp source;
  TopKPlan plan;
  RowAccess logits, topLogits, topIds;
  Value row, tid, base, minusInf, isBin, boundKey, lane, laneF32;
  Value histograms[2], slotCounter, sortedLogits, sortedIds, inSort;
};

} // namespace

/// Orderable key: unsigned order of keys = order of logits, -0 == +0.
Value GpuTopK::keyOf(Value x) {
  Value bits = arith::BitcastOp::create(b, b.getI32Type(), x);
  bits = select(cmpf(arith::CmpFPredicate::OEQ, x, e.f32(0.f)), e.i32(0), bits);
  Value sign = arith::ShRSIOp::create(b, bits, e.i32(31));
  Value flip = orI(sign, e.i32(std::numeric_limits<int32_t>::min()));
  return arith::XOrIOp::create(b, bits, flip);
}

/// Runs body(x, id) on every logit of this thread's columns.
void GpuTopK::forEachLogit(llvm::function_ref<void(Value, Value)> body) {
  e.forLanes(plan.vocab, plan.width, [&](Value col) {
    Value v = e.loadVectorF32(logits, e.addIndex(base, col), plan.width);
    for (int64_t k = 0; k < plan.width; ++k)
      body(vector::ExtractOp::create(b, v, ArrayRef<int64_t>{k}), k ? e.addIndex(col, e.index(k)) : col);
  });
}

/// Zero histograms and slot counter, (-inf, padId) in every sorted slot;
/// the bound's block reduction has the barrier.
void GpuTopK::init() {
  KernelPhase phase(b, "topk.init");
  histograms[0] = e.sharedRow(kBins);
  histograms[1] = e.sharedRow(kBins);
  slotCounter = e.sharedRow(1);
  sortedLogits = e.sharedRow(C), sortedIds = e.sharedRow(C);
  isBin = cmpi(arith::CmpIPredicate::ult, tid, e.index(kBins));
  e.ifThen(isBin, [&] {
    for (Value histogram : histograms)
      memref::StoreOp::create(b, e.f32(0.f), histogram, ValueRange{tid});
  });
  e.ifThen(cmpi(arith::CmpIPredicate::ult, tid, e.index(C)), [&] {
    memref::StoreOp::create(b, minusInf, sortedLogits, ValueRange{tid});
    memref::StoreOp::create(b, e.f32(plan.padId), sortedIds, ValueRange{tid});
  });
  e.ifThen(cmpi(arith::CmpIPredicate::eq, tid, e.index(0)), [&] {
    memref::StoreOp::create(b, e.f32(0.f), slotCounter, ValueRange{e.index(0)});
  });
}

/// 1. `boundKey`: the key of the smallest of the C group maxima (NaN never
/// taken; -inf for a group without a non-NaN logit, which keeps every entry).
void GpuTopK::findBound() {
  KernelPhase phase(b, "topk.bound");
  Value threadMax = e.forLanes(plan.vocab, plan.width, minusInf, [&](Value col, Value best) {
    Value v = e.loadVectorF32(logits, e.addIndex(base, col), plan.width);
    for (int64_t k = 0; k < plan.width; ++k) {
      Value x = vector::ExtractOp::create(b, v, ArrayRef<int64_t>{k});
      best = select(cmpf(arith::CmpFPredicate::OGT, x, best), x, best);
    }
    return best;
  });
  Value groupMax = plan.groupLanes > 1 ? e.laneMax(threadMax, plan.groupLanes) : threadMax;
  boundKey = keyOf(e.blockMin(groupMax));
}

/// The histogram of pass `pass`'s digit over the counting entries that
/// share the threshold's known prefix (shared-memory atomic counts).
void GpuTopK::countDigits(int64_t pass, const RadixState &state, Value histogram) {
  const bool keyPass = pass < 4;
  const int64_t shift = keyPass ? 24 - 8 * pass : 8 * (plan.idPasses - 1 - (pass - 4));
  const int64_t fieldBits = keyPass ? 32 : 8 * plan.idPasses;
  forEachLogit([&](Value x, Value id) {
    Value key = keyOf(x);
    Value inv = invertedId(id);
    Value field = keyPass ? key : inv;
    Value match = counts(x, key);
    if (!keyPass)
      match = andI(match, cmpi(arith::CmpIPredicate::eq, key, state.thresholdKey));
    if (shift + 8 < fieldBits)
      match = andI(match, cmpi(arith::CmpIPredicate::eq, shr(field, shift + 8),
                               shr(keyPass ? state.thresholdKey : state.thresholdId, shift + 8)));
    Value digit = arith::AndIOp::create(b, shr(field, shift), e.i32(kBins - 1));
    e.ifThen(match, [&] {
      memref::AtomicRMWOp::create(b, arith::AtomicRMWKind::addf, e.f32(1.f), histogram,
                                  ValueRange{toIndex(digit)});
    });
  });
  e.barrier();
}

/// 2. One radix-select pass, 8 bits of the composite key (4 passes of the
/// logit's key, then the inverted id's bytes), skipped once the search has
/// ended. Returns the new state.
RadixState GpuTopK::radixPass(int64_t pass, const RadixState &state) {
  Type f32 = b.getF32Type(), i32 = b.getI32Type();
  Value histogram = histograms[pass % 2], next = histograms[(pass + 1) % 2];
  const bool keyPass = pass < 4;
  const int64_t shift = keyPass ? 24 - 8 * pass : 8 * (plan.idPasses - 1 - (pass - 4));
  SmallVector<Type> types{i32, i32, f32, b.getI1Type()};
  auto ifRun = scf::IfOp::create(b, types, state.done, /*withElseRegion=*/true);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(ifRun.thenBlock());
  scf::YieldOp::create(b, ValueRange{state.thresholdKey, state.thresholdId, state.rank, state.done});
  b.setInsertionPointToStart(ifRun.elseBlock());
  countDigits(pass, state, histogram);
  // Every warp scans the histogram the same way: lane l holds the counts of
  // digits 255 - 8l - j (j < 8, largest first). (Loaded again below rather
  // than kept: fewer live registers.)
  auto binCount = [&](int64_t j) -> Value {
    Value bin = arith::SubIOp::create(b, e.index(kBins - 1 - j), e.mulIndex(lane, 8));
    return memref::LoadOp::create(b, histogram, ValueRange{bin});
  };
  Value laneCount = e.f32(0.f);
  for (int64_t j = 0; j < 8; ++j)
    laneCount = arith::AddFOp::create(b, laneCount, binCount(j));
  // Exclusive prefix over lanes (xor butterfly; exact integer sums).
  Value before = e.f32(0.f), total = laneCount;
  for (int64_t offset = 1; offset < kWarpSize; offset *= 2) {
    Value other = e.shuffleXor(total, offset);
    Value upper = cmpi(arith::CmpIPredicate::ne, arith::AndIOp::create(b, lane, e.index(offset)),
                       e.index(0));
    before = arith::AddFOp::create(b, before, select(upper, other, e.f32(0.f)));
    total = arith::AddFOp::create(b, total, other);
  }
  Value wanted = pass == 0 ? Value(arith::MinimumFOp::create(b, total, e.f32(static_cast<float>(C))))
                           : state.rank;
  // The bin where the cumulative count reaches the wanted rank (none when
  // nothing counts: all results 0, and the search ends).
  Value digit = e.f32(0.f), rankInBin = e.f32(0.f), countInBin = e.f32(0.f);
  Value cumulative = before;
  for (int64_t j = 0; j < 8; ++j) {
    Value count = binCount(j);
    Value after = arith::AddFOp::create(b, cumulative, count);
    Value hit = andI(cmpf(arith::CmpFPredicate::OLT, cumulative, wanted),
                     cmpf(arith::CmpFPredicate::OLE, wanted, after));
    Value binDigit = arith::SubFOp::create(b, e.f32(static_cast<float>(kBins - 1 - j)),
                                           arith::MulFOp::create(b, laneF32, e.f32(8.f)));
    digit = select(hit, binDigit, digit);
    rankInBin = select(hit, arith::SubFOp::create(b, wanted, cumulative), rankInBin);
    countInBin = select(hit, count, countInBin);
    cumulative = after;
  }
  digit = e.laneSum(digit, kWarpSize);
  rankInBin = e.laneSum(rankInBin, kWarpSize);
  countInBin = e.laneSum(countInBin, kWarpSize);
  // The next pass's histogram was last read before this pass's barrier
  // above; the barrier below orders the clearing before its atomics.
  e.ifThen(isBin, [&] { memref::StoreOp::create(b, e.f32(0.f), next, ValueRange{tid}); });
  e.barrier();
  Value digitBits = arith::ShLIOp::create(b, arith::FPToUIOp::create(b, i32, digit),
                                          e.i32(static_cast<int32_t>(shift)));
  Value nextKey = keyPass ? orI(state.thresholdKey, digitBits) : state.thresholdKey;
  Value nextId = keyPass ? state.thresholdId : orI(state.thresholdId, digitBits);
  Value ends = cmpf(arith::CmpFPredicate::OEQ, countInBin, rankInBin);
  scf::YieldOp::create(b, ValueRange{nextKey, nextId, rankInBin, ends});
  return {ifRun.getResult(0), ifRun.getResult(1), ifRun.getResult(2), ifRun.getResult(3)};
}

/// 3. Every entry at or above the threshold takes a slot of the sorted rows.
void GpuTopK::gather(const RadixState &state) {
  KernelPhase phase(b, "topk.gather");
  forEachLogit([&](Value x, Value id) {
    Value key = keyOf(x);
    Value above = orI(cmpi(arith::CmpIPredicate::ugt, key, state.thresholdKey),
                      andI(cmpi(arith::CmpIPredicate::eq, key, state.thresholdKey),
                           cmpi(arith::CmpIPredicate::uge, invertedId(id), state.thresholdId)));
    e.ifThen(andI(counts(x, key), above), [&] {
      Value slot = memref::AtomicRMWOp::create(b, arith::AtomicRMWKind::addf, e.f32(1.f),
                                               slotCounter, ValueRange{e.index(0)});
      e.ifThen(cmpf(arith::CmpFPredicate::OLT, slot, e.f32(static_cast<float>(C))), [&] {
        Value at = toIndex(arith::FPToUIOp::create(b, b.getI32Type(), slot));
        memref::StoreOp::create(b, x, sortedLogits, ValueRange{at});
        memref::StoreOp::create(b, indexToF32(id), sortedIds, ValueRange{at});
      });
    });
  });
  e.barrier();
}

/// Bitonic sort of the C slots into SelectionMath's order (logit
/// descending, id ascending); thread i orders the pair (i, i ^ stride) when
/// i is its lower end.
void GpuTopK::sort() {
  KernelPhase phase(b, "topk.sort");
  inSort = cmpi(arith::CmpIPredicate::ult, tid, e.index(C));
  for (int64_t size = 2; size <= C; size *= 2) {
    for (int64_t stride = size / 2; stride > 0; stride /= 2) {
      Value partner = arith::XOrIOp::create(b, tid, e.index(stride));
      Value lower = andI(inSort, cmpi(arith::CmpIPredicate::ugt, partner, tid));
      e.ifThen(lower, [&] {
        Value xLogit = memref::LoadOp::create(b, sortedLogits, ValueRange{tid});
        Value xId = memref::LoadOp::create(b, sortedIds, ValueRange{tid});
        Value yLogit = memref::LoadOp::create(b, sortedLogits, ValueRange{partner});
        Value yId = memref::LoadOp::create(b, sortedIds, ValueRange{partner});
        Value forward =
            cmpi(arith::CmpIPredicate::eq, arith::AndIOp::create(b, tid, e.index(size)), e.index(0));
        Value swap = select(forward, codegen::candidateBefore(b, {yLogit, yId}, {xLogit, xId}),
                            codegen::candidateBefore(b, {xLogit, xId}, {yLogit, yId}));
        memref::StoreOp::create(b, select(swap, yLogit, xLogit), sortedLogits, ValueRange{tid});
        memref::StoreOp::create(b, select(swap, yId, xId), sortedIds, ValueRange{tid});
        memref::StoreOp::create(b, select(swap, xLogit, yLogit), sortedLogits, ValueRange{partner});
        memref::StoreOp::create(b, select(swap, xId, yId), sortedIds, ValueRange{partner});
      });
      e.barrier();
    }
  }
}

/// The sorted slots to row `row` of top_logits / top_ids (-1: empty).
void GpuTopK::store() {
  KernelPhase phase(b, "topk.store");
  e.ifThen(inSort, [&] {
    Value logit = memref::LoadOp::create(b, sortedLogits, ValueRange{tid});
    Value idF32 = memref::LoadOp::create(b, sortedIds, ValueRange{tid});
    Value empty = cmpf(arith::CmpFPredicate::OEQ, idF32, e.f32(plan.padId));
    Value id = select(empty, e.i32(-1), arith::FPToSIOp::create(b, b.getI32Type(), idF32));
    Value at = e.addIndex(e.mulIndex(row, C), tid);
    memref::StoreOp::create(b, logit, topLogits.memref, ValueRange{at});
    memref::StoreOp::create(b, id, topIds.memref, ValueRange{at});
  });
}

void GpuTopK::emit() {
  logits = e.access(source.getArgument(0));
  topLogits = e.result(0), topIds = e.result(1);
  row = e.blockId();
  tid = e.threadId();
  base = e.address(logits, row, Value(), Value());
  minusInf = e.f32(-std::numeric_limits<float>::infinity());
  init();
  findBound();
  KernelPhase phase(b, "topk.radix_select");
  lane = e.remIndex(tid, kWarpSize);
  laneF32 = indexToF32(lane);
  RadixState state{e.i32(0), e.i32(0), e.f32(0.f), arith::ConstantIntOp::create(b, 0, 1)};
  for (int64_t pass = 0; pass < plan.passes; ++pass)
    state = radixPass(pass, state);
  gather(state);
  sort();
  store();
}

FailureOr<KernelGeometry> qwen::codegen::gpu::emitTopKKernel(mlir::gpu::GPUModuleOp gpuModule,
                                                              Location loc, int64_t vocab,
                                                              StringRef rowSymbol,
                                                              qkernel::ScheduleAttr schedule) {
  MLIRContext *ctx = gpuModule.getContext();
  constexpr int64_t C = kTopCandidates;
  static_assert((C & (C - 1)) == 0, "bitonic sort of C slots");
  // A thread per sorted slot and C groups for the bound (GpuSchedules.cpp).
  if (schedule.getThreads() < C || schedule.getThreads() % C)
    return emitError(loc) << "qk_topk needs a block of a multiple of " << C << " threads";
  TopKPlan plan;
  plan.vocab = vocab;
  plan.threads = schedule.getThreads();
  plan.groupLanes = plan.threads / C;
  // Bytes of the inverted id (idTop - id): larger for lower ids.
  plan.idPasses = 1;
  while ((int64_t(1) << (8 * plan.idPasses)) < vocab)
    ++plan.idPasses;
  plan.idTop = (int64_t(1) << (8 * plan.idPasses)) - 1;
  plan.passes = 4 + plan.idPasses;
  // Id of an empty slot: sorts after every real id, exact in f32.
  plan.padId = static_cast<float>(int64_t(1) << 24);

  Type f32Type = Float32Type::get(ctx);
  auto topLogitsType = RankedTensorType::get({ShapedType::kDynamic, C}, f32Type);
  auto topIdsType = RankedTensorType::get({ShapedType::kDynamic, C}, IntegerType::get(ctx, 32));
  return buildSamplerKernel(gpuModule, loc, "qk_topk", vocab, {topLogitsType, topIdsType},
                            rowSymbol, schedule, [&](GpuKernelEmitter &e, func::FuncOp source) {
    plan.width = e.rowWidth(vocab);
    GpuTopK(e, source, plan).emit();
  });
}
