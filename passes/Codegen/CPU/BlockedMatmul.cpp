//===- BlockedMatmul.cpp - Cache-blocked CPU prefill matmul ---------------===//
//
// The per-item matmul path (MatmulKernel.cpp) walks every token for each
// work item of `grain` (8) weight rows, so a prompt's activations are read
// once per 8 weight rows: 2 MiB per read for 512 tokens of a 1024-wide
// hidden, more than a Zen 4 core's 1 MiB L2, which is why prefill got slower
// per token with longer prompts. Here one call covers a thread's whole
// contiguous range of items (the runtime's chunk), cut into panels of
// `panel` weight rows (bf16 panels of <= 256 KiB: they stay in L2 next to
// the activation rows in flight). Within a panel the loop runs over token
// blocks of `prefill_tile[0]` rows (in L1 for hidden <= 2048) and, inside,
// over register tiles of `prefill_tile[1]` weight rows, so an activation
// row is read from L3 / memory once per panel, not once per 8 weight rows.
//
// Every (token, weight row) dot product keeps the per-item path's order
// (vector lanes over k, then the lanes summed in order, then the scalar
// tail), whatever tile it falls in: blocking changes which products share
// registers and caches, not any sum's order, so prefill stays bit-identical
// to decode and to a ragged batch (test/E2E/ragged-batch.test). Two things
// differ in how, not what, they compute:
// - a tile's lane sums (vector.reduction: 16 dependent scalar adds per dot,
//   which cost the per-item 4 x 2 tiles as much as a third of their FMAs at
//   k = 1024) are taken 16 dots at a time by a transposition (orderedSums);
// - with bf16-activations=round, a token block's rows are rounded to bf16
//   once per panel instead of once per tile.
//
// Packed layout (16-lane vdpbf16ps, prefill_tile[1] a multiple of 16, the
// schedule's choice for bf16 weights: 6 x 64). Each panel is packed once
// (packPanel): 16 x 16 blocks of bf16 pairs transposed, so one vector holds
// pair p of 16 weight rows; the groups of a register tile are interleaved
// into one sequential stream. A tile keeps one accumulator per (token, 16
// rows): a vdpbf16ps takes a broadcast activation pair (vpbroadcastd) and a
// packed weight vector, and its 16 results are vector stores. The per-item
// sum of a (token, row) is lane l's chain over the pairs 16 s + l, then the
// 16 lanes added in order from 0.0; here each lane class l is a pass over s
// whose accumulators are added to the tile's totals in l order, which is the
// same operations in the same order: bit-identical, and no lane sums.
//
// Single-thread CPU time of Qwen3-0.6B's matmuls at 512 tokens, this VM:
// 68 GFLOP/s per-item, 85-92 blocked (f32 FMAs; a 6 x 4 tile or an f32-packed
// panel measured no faster),
// 155 blocked with vdpbf16ps (round; 67 per-item).
// Session 11, loaded VM, perf cpu-clock samples of the 2nd and 3rd 512-token
// prefills in one process (relative figures: they read above the 230 GFLOP/s
// that task-clock gives a tight vdpbf16ps loop, 3.6 G zmm dots/s), all four
// matmuls: 4 x 4 tiles 225-243 GFLOP/s, 6 x 4 tiles 242-255, packed 6 x 64
// 248-261 (down_proj, k = 3072: 169-190 / 193-218 / 208-229). The packed
// tile's inner loop (6 broadcasts, 4 weight loads, 24 vdpbf16ps, no spills)
// takes ~70% of the kernel's samples; the rest is the 16 passes' entries
// and exits (k = 1024: 32 steps a pass), the packing and the epilogues.
//
//===----------------------------------------------------------------------===//
#include "passes/Codegen/CPU/BlockedMatmul.h"
#include "passes/Codegen/CPU/DotProduct.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Dialect/X86Vector/X86VectorDialect.h"

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen;
using namespace qwen::codegen::cpu;

/// The transposition of `rows` (as many vectors as each has lanes):
/// log2 W stages of two-source shuffles, each swapping one bit of the row
/// and column index. Result c holds lane c of every row, in row order.
static SmallVector<Value> transposeRows(ImplicitLocOpBuilder &b, ArrayRef<Value> input) {
  const int64_t width = cast<VectorType>(input.front().getType()).getNumElements();
  SmallVector<Value> rows(input.begin(), input.end());
  for (int64_t h = 1; h < width; h *= 2) {
    SmallVector<int64_t> low, high;
    for (int64_t c = 0; c < width; ++c) {
      bool bit = c & h;
      low.push_back(bit ? width + c - h : c);
      high.push_back(bit ? width + c : c + h);
    }
    for (int64_t i = 0; i < width; ++i) {
      if (i & h)
        continue;
      Value a = rows[i], c = rows[i + h];
      rows[i] = vector::ShuffleOp::create(b, a, c, low);
      rows[i + h] = vector::ShuffleOp::create(b, a, c, high);
    }
  }
  return rows;
}

/// The sums vector.reduction <add> gives for each of `accs` (llvm's
/// vector.reduce.fadd from 0.0, not reassociated: ((0 + a[0]) + a[1]) + ...
/// + a[W-1], W scalar adds in a chain), bit for bit, at W lanes per add: the
/// accumulators are transposed (transposeRows), then the columns are added
/// in lane order. For a 4 x 4 tile of 16 lanes that is 64 shuffles and 16
/// adds instead of 16 x 16 extracts and scalar adds.
void qwen::codegen::cpu::storeTileSums(KernelEmitter &e, const RowAccess &y,
                                       const std::optional<RowAccess> &bias,
                                       const std::optional<RowAccess> &residual, Value m, int64_t mc,
                                       ArrayRef<Value> wRows, ArrayRef<Value> sums) {
  ImplicitLocOpBuilder &b = e.builder();
  const int64_t nc = wRows.size();
  for (int64_t i = 0; i < mc; ++i)
    for (int64_t j = 0; j < nc; ++j) {
      Value mi = e.addIndex(m, e.index(i));
      Value value = sums[i * nc + j];
      if (bias)
        value = arith::AddFOp::create(b, value, e.loadF32(*bias, wRows[j]));
      if (residual)
        value = arith::AddFOp::create(
            b, value, e.loadF32(*residual, e.address(*residual, mi, Value(), wRows[j])));
      e.storeF32(y, e.address(y, mi, Value(), wRows[j]), value);
    }
}

SmallVector<Value> qwen::codegen::cpu::orderedSums(ImplicitLocOpBuilder &b, ArrayRef<Value> accs) {
  auto type = cast<VectorType>(accs.front().getType());
  const int64_t width = type.getNumElements();
  Value zero = arith::ConstantOp::create(b, DenseElementsAttr::get(type, 0.0f));
  SmallVector<Value> sums;
  for (size_t group = 0; group < accs.size(); group += width) {
    SmallVector<Value> rows(width, zero);
    for (int64_t t = 0; t < width && group + t < accs.size(); ++t)
      rows[t] = accs[group + t];
    Value total = zero;
    for (Value column : transposeRows(b, rows))
      total = arith::AddFOp::create(b, total, column);
    for (int64_t t = 0; t < width && group + t < accs.size(); ++t)
      sums.push_back(vector::ExtractOp::create(b, total, ArrayRef<int64_t>{t}));
  }
  return sums;
}

/// KernelEmitter::emitDotTile's f32 FMA tile (lanes over k, one sum per
/// pair, the scalar tail after), with the pairs' sums taken by orderedSums.
static SmallVector<Value> emitFmaTile(KernelEmitter &emitter, const RowAccess &x,
                                      ArrayRef<Value> xBases, const RowAccess &w,
                                      ArrayRef<Value> wBases, int64_t k) {
  ImplicitLocOpBuilder &b = emitter.builder();
  const int64_t mc = xBases.size(), nc = wBases.size();
  const int64_t width = emitter.rowWidth(k);
  const int64_t kVector = k - k % width;
  auto vecType = VectorType::get({width}, b.getF32Type());
  Value zero = arith::ConstantOp::create(b, DenseElementsAttr::get(vecType, 0.0f));
  SmallVector<Value> init(mc * nc, zero);
  SmallVector<Value> acc(emitter.forLoop(
      emitter.index(0), emitter.index(kVector), width, init,
      [&](Value kk, ValueRange carried) -> SmallVector<Value> {
        SmallVector<Value> wv, xv, next;
        for (int64_t j = 0; j < nc; ++j)
          wv.push_back(emitter.loadVectorF32(w, emitter.addIndex(wBases[j], kk), width));
        for (int64_t i = 0; i < mc; ++i)
          xv.push_back(emitter.loadVectorF32(x, emitter.addIndex(xBases[i], kk), width));
        for (int64_t i = 0; i < mc; ++i)
          for (int64_t j = 0; j < nc; ++j)
            next.push_back(vector::FMAOp::create(b, xv[i], wv[j], carried[i * nc + j]));
        return next;
      }));
  SmallVector<Value> sums = orderedSums(b, acc);
  if (kVector == k)
    return sums;
  return SmallVector<Value>(emitter.forLoop(
      emitter.index(kVector), emitter.index(k), 1, sums,
      [&](Value kk, ValueRange carried) -> SmallVector<Value> {
        SmallVector<Value> next;
        for (int64_t i = 0; i < mc; ++i)
          for (int64_t j = 0; j < nc; ++j) {
            Value xs = emitter.loadF32(x, emitter.addIndex(xBases[i], kk));
            Value ws = emitter.loadF32(w, emitter.addIndex(wBases[j], kk));
            next.push_back(math::FmaOp::create(b, xs, ws, carried[i * nc + j]));
          }
        return next;
      }));
}

/// emitBf16DotTile's single-dot tile (bf16 weights reinterpreted, f32
/// activations rounded to nearest even, one vdpbf16ps accumulator per pair,
/// `lanes` f32 lanes), with the pairs' sums taken by orderedSums.
SmallVector<Value> qwen::codegen::cpu::emitBf16RoundTile(KernelEmitter &emitter, const RowAccess &x,
                                                         ArrayRef<Value> xBases, const RowAccess &w,
                                                         ArrayRef<Value> wBases, int64_t k) {
  ImplicitLocOpBuilder &b = emitter.builder();
  const int64_t mc = xBases.size(), nc = wBases.size();
  const int64_t lanes = bf16DotLanes(emitter.options().vectorWidth, k), pairs = 2 * lanes;
  auto accType = VectorType::get({lanes}, b.getF32Type());
  auto bf16Type = VectorType::get({pairs}, b.getBF16Type());
  auto load = [&](const RowAccess &access, Value at) -> Value {
    if (access.elementType.isBF16())
      return arith::BitcastOp::create(
          b, bf16Type,
          vector::LoadOp::create(b, VectorType::get({pairs}, b.getI16Type()), access.memref,
                                 ValueRange{at}));
    Value wide = vector::LoadOp::create(b, VectorType::get({pairs}, b.getF32Type()),
                                        access.memref, ValueRange{at});
    return arith::TruncFOp::create(b, bf16Type, wide);
  };
  Value zero = arith::ConstantOp::create(b, DenseElementsAttr::get(accType, 0.0f));
  SmallVector<Value> init(mc * nc, zero);
  SmallVector<Value> acc(emitter.forLoop(
      emitter.index(0), emitter.index(k), pairs, init,
      [&](Value kk, ValueRange carried) -> SmallVector<Value> {
        SmallVector<Value> wv, xv, next;
        for (int64_t j = 0; j < nc; ++j)
          wv.push_back(load(w, emitter.addIndex(wBases[j], kk)));
        for (int64_t i = 0; i < mc; ++i)
          xv.push_back(load(x, emitter.addIndex(xBases[i], kk)));
        for (int64_t i = 0; i < mc; ++i)
          for (int64_t j = 0; j < nc; ++j)
            next.push_back(
                x86vector::DotBF16Op::create(b, accType, carried[i * nc + j], xv[i], wv[j]));
        return next;
      }));
  return orderedSums(b, acc);
}

namespace {
/// One emitBlockedMatmul: the plan's accesses, the schedule's blocking and
/// the scratch blocks, with a method per phase (panel, token block, tile).
class BlockedMatmul {
public:
  BlockedMatmul(KernelEmitter &emitter, MatmulPattern plan);
  void emit(Value tokens, Value begin, Value end);

private:
  bool isBf16Kind(qkernel::DotKind kind) const {
    return kind == qkernel::DotKind::Avx512Bf16Round ||
           (kind == qkernel::DotKind::Avx512Bf16Split && x.elementType.isBF16());
  }
  SmallVector<Value> tokenRows(Value m, int64_t mc);
  SmallVector<Value> stageTokens(ArrayRef<Value> xBase);
  void rowTile(const RowAccess &xt, ArrayRef<Value> xBase, Value m, int64_t mc, Value n,
               int64_t nc);
  void panelRows(Value n0, Value n1, Value m, int64_t mc);
  void packPanel(Value n0, Value groups);
  Value broadcastPair(Value at);
  void packedTile(Value m, int64_t mc, Value n0, Value g0, int64_t nz);
  void packedRows(Value n0, Value n1, Value groups, Value m, int64_t mc);
  void storeRow(Value mi, Value col, Value sums);

  KernelEmitter &e;
  ImplicitLocOpBuilder &b;
  MatmulPattern plan;
  qkernel::ScheduleAttr schedule;
  int64_t grain, panel, mr, nr, N, K, lanes;
  /// Elements between staged token rows: a cache line more than K, so the
  /// rows' lines do not all fall in the same L1 sets.
  int64_t stagedStride;
  RowAccess x, w, y;
  std::optional<RowAccess> rows, bias, residual, scale;
  std::array<int64_t, 2> weightBlock{0, 0};
  /// Token block rows as bf16 (rounded once per panel), [mr][stagedStride].
  std::optional<RowAccess> roundedX;
  /// The packed layout (prefill_tile[1] a multiple of the 16 lanes): the
  /// panel's weights as bf16 pairs [group of 16 rows][lane class][k / 32][16]
  /// and a tile's partial totals, [mr][nr] f32.
  bool packed = false, packedSingles = false;
  Value packedW, totals;
};
} // namespace

BlockedMatmul::BlockedMatmul(KernelEmitter &emitter, MatmulPattern plan)
    : e(emitter), b(emitter.builder()), plan(plan), schedule(emitter.options().schedule) {
  grain = schedule.getGrain();
  panel = schedule.getPanel();
  mr = schedule.prefillTileSize(0);
  nr = schedule.prefillTileSize(1);
  RankedTensorType weightType = plan.linear.getWeight().getType();
  N = weightType.getDimSize(0);
  K = weightType.getDimSize(1);
  lanes = bf16DotLanes(e.options().vectorWidth, K);
  stagedStride = K + 32;
  x = e.access(plan.gather ? plan.gather.getInput() : plan.linear.getInput());
  w = e.access(plan.linear.getWeight());
  y = e.result(0);
  if (plan.gather)
    rows = e.access(plan.gather.getRows());
  if (Value value = plan.linear.getBias())
    bias = e.access(value);
  if (plan.residual)
    residual = e.access(plan.residual);
  if (Value value = plan.linear.getWeightScale()) {
    scale = e.access(value);
    weightBlock = {(*plan.linear.getWeightBlock())[0], (*plan.linear.getWeightBlock())[1]};
  }
  // The rounded (vdpbf16ps) kind rounds each activation vector to bf16 in
  // every tile; a token block's rows are rounded once per panel instead, into
  // a bf16 scratch block the panel's tiles read (the same rounding, so the
  // same bits).
  packed = isPackedPrefillTile(schedule, weightType.getElementType(), K) && !scale &&
           isBf16Kind(schedule.dotFor(mr));
  packedSingles = packed && isBf16Kind(schedule.dotFor(1));
  const bool roundX = x.elementType.isF32() &&
                      schedule.dotFor(mr) == qkernel::DotKind::Avx512Bf16Round && lanes > 0;
  if (roundX || packed)
    roundedX = RowAccess{e.scratch(mr * stagedStride, b.getI16Type()), b.getBF16Type(),
                         stagedStride};
  if (packed) {
    packedW = e.scratch(panel * K, b.getI16Type());
    totals = e.scratch(mr * nr, b.getF32Type());
  }
}

/// Flat starts of tokens [m, m+mc)'s activation rows (through the gather).
SmallVector<Value> BlockedMatmul::tokenRows(Value m, int64_t mc) {
  SmallVector<Value> xBase;
  for (int64_t i = 0; i < mc; ++i) {
    Value row = e.addIndex(m, e.index(i));
    if (rows)
      row = e.loadIndex(*rows, row);
    xBase.push_back(e.address(x, row, Value(), Value()));
  }
  return xBase;
}

/// Copies the rows at `xBase` into roundedX as bf16 (f32 rounded to nearest
/// even, as the tiles would round them) and returns their starts there.
SmallVector<Value> BlockedMatmul::stageTokens(ArrayRef<Value> xBase) {
  const int64_t pairs = 2 * lanes;
  auto bf16Type = VectorType::get({pairs}, b.getBF16Type());
  auto i16Type = VectorType::get({pairs}, b.getI16Type());
  SmallVector<Value> staged;
  for (int64_t i = 0; i < int64_t(xBase.size()); ++i) {
    e.forLoop(e.index(0), e.index(K), pairs, [&](Value k) {
      Value at = e.addIndex(xBase[i], k);
      Value bits;
      if (x.elementType.isBF16()) {
        bits = vector::LoadOp::create(b, i16Type, x.memref, ValueRange{at});
      } else {
        Value wide = vector::LoadOp::create(b, VectorType::get({pairs}, b.getF32Type()),
                                            x.memref, ValueRange{at});
        bits = arith::BitcastOp::create(b, i16Type, arith::TruncFOp::create(b, bf16Type, wide));
      }
      vector::StoreOp::create(b, bits, roundedX->memref,
                              ValueRange{e.addIndex(e.index(i * stagedStride), k)});
    });
    staged.push_back(e.index(i * stagedStride));
  }
  return staged;
}

/// Tokens [m, m+mc) of `xt` rows at `xBase` x weight rows [n, n+nc): the
/// per-item path's tile and epilogue (bias, then residual, in that order).
void BlockedMatmul::rowTile(const RowAccess &xt, ArrayRef<Value> xBase, Value m, int64_t mc,
                            Value n, int64_t nc) {
  SmallVector<Value> wBase, wRows;
  for (int64_t j = 0; j < nc; ++j) {
    wRows.push_back(e.addIndex(n, e.index(j)));
    wBase.push_back(e.mulIndex(wRows.back(), K));
  }
  SmallVector<Value> sums;
  if (scale)
    sums = emitFp8DotTile(e, xt, xBase, w, wBase, Fp8Weights{*scale, wRows, weightBlock}, K);
  else if (mc * nc > 1 && schedule.dotFor(mc) == qkernel::DotKind::Fma)
    sums = emitFmaTile(e, xt, xBase, w, wBase, K);
  else if (mc * nc > 1 && (schedule.dotFor(mc) == qkernel::DotKind::Avx512Bf16Round ||
                           (schedule.dotFor(mc) == qkernel::DotKind::Avx512Bf16Split &&
                            xt.elementType.isBF16())))
    sums = emitBf16RoundTile(e, xt, xBase, w, wBase, K);
  else
    sums = e.emitDotTile(xt, xBase, w, wBase, K);
  storeTileSums(e, y, bias, residual, m, mc, wRows, sums);
}

/// Weight rows [n0, n1) of one panel for tokens [m, m+mc): whole tiles of
/// nr rows, then the panel's leftover rows one by one.
void BlockedMatmul::panelRows(Value n0, Value n1, Value m, int64_t mc) {
  SmallVector<Value> xBase = tokenRows(m, mc);
  RowAccess xt = x;
  if (roundedX && mc == mr) {
    xBase = stageTokens(xBase);
    xt = *roundedX;
  }
  Value count = arith::SubIOp::create(b, n1, n0);
  Value whole = e.mulIndex(e.divIndex(count, nr), nr);
  Value wholeEnd = e.addIndex(n0, whole);
  e.forLoop(n0, wholeEnd, nr, [&](Value n) { rowTile(xt, xBase, m, mc, n, nr); });
  e.forLoop(wholeEnd, n1, 1, [&](Value n) { rowTile(xt, xBase, m, mc, n, 1); });
}

/// Packs `groups` groups of 16 weight rows from n0 into packedW: for each
/// 32-wide step s of k, the 16 x 16 block of bf16 pairs (row j, pair 16 s +
/// l) is transposed, so pair l of every row of the group is one vector
/// (lane j = row j). The groups of a tile (packedTile: nr / 16 groups, and
/// the groups after the last whole tile one by one) are interleaved, so a
/// tile reads one sequential stream: [tile][lane class l][s][group in tile].
void BlockedMatmul::packPanel(Value n0, Value groups) {
  auto i16Pairs = VectorType::get({32}, b.getI16Type());
  auto i32Lanes = VectorType::get({16}, b.getI32Type());
  const int64_t nz = nr / 16;
  Value wholeEnd = e.mulIndex(e.divIndex(groups, nz), nz);
  e.forLoop(e.index(0), groups, 1, [&](Value g) {
    Value inTile = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, g, wholeEnd);
    Value z = arith::SelectOp::create(b, inTile, e.remIndex(g, nz), e.index(0));
    Value tz = arith::SelectOp::create(b, inTile, e.index(nz), e.index(1));
    Value g0 = arith::SubIOp::create(b, g, z);
    Value base = e.addIndex(e.mulIndex(g0, 16 * K), e.mulIndex(z, 32));
    Value row0 = e.addIndex(n0, e.mulIndex(g, 16));
    e.forLoop(e.index(0), e.index(K), 32, [&](Value k) {
      SmallVector<Value> block;
      for (int64_t j = 0; j < 16; ++j) {
        Value at = e.addIndex(e.mulIndex(e.addIndex(row0, e.index(j)), K), k);
        Value raw = vector::LoadOp::create(b, i16Pairs, w.memref, ValueRange{at});
        block.push_back(vector::BitCastOp::create(b, i32Lanes, raw));
      }
      SmallVector<Value> columns = transposeRows(b, block);
      for (int64_t l = 0; l < 16; ++l) {
        Value step = e.mulIndex(e.addIndex(e.index(l * K), k), tz);
        vector::StoreOp::create(b, vector::BitCastOp::create(b, i16Pairs, columns[l]), packedW,
                                ValueRange{e.addIndex(base, step)});
      }
    });
  });
}

/// The bf16 pair at `at` of roundedX in every lane (vpbroadcastd).
Value BlockedMatmul::broadcastPair(Value at) {
  Value two = vector::LoadOp::create(b, VectorType::get({2}, b.getI16Type()), roundedX->memref,
                                     ValueRange{at});
  Value one = vector::BitCastOp::create(b, VectorType::get({1}, b.getI32Type()), two);
  Value pair = vector::ExtractOp::create(b, one, ArrayRef<int64_t>{0});
  Value splat = vector::BroadcastOp::create(b, VectorType::get({16}, b.getI32Type()), pair);
  return vector::BitCastOp::create(b, VectorType::get({32}, b.getBF16Type()), splat);
}

/// Tokens [m, m+mc) (staged in roundedX) x the 16 nz weight rows of packed
/// groups [g0, g0+nz) of the panel at n0: one accumulator per (token,
/// group), lane j for row j, so a vdpbf16ps takes a broadcast activation
/// pair and a packed weight vector. The per-item tile's accumulator lane l
/// sums the pairs 16 s + l over s, then the lanes are summed in order
/// (vector.reduction); here lane class l is a pass over s of its own, whose
/// accumulators are added to the totals in l order from 0.0: each (token,
/// row) sum takes the same operations in the same order, so the same bits.
void BlockedMatmul::packedTile(Value m, int64_t mc, Value n0, Value g0, int64_t nz) {
  auto accType = VectorType::get({16}, b.getF32Type());
  auto i16Pairs = VectorType::get({32}, b.getI16Type());
  auto bf16Pairs = VectorType::get({32}, b.getBF16Type());
  Value zero = arith::ConstantOp::create(b, DenseElementsAttr::get(accType, 0.0f));
  for (int64_t q = 0; q < mc * nz; ++q)
    vector::StoreOp::create(b, zero, totals, ValueRange{e.index(q * 16)});
  e.forLoop(e.index(0), e.index(16), 1, [&](Value l) {
    SmallVector<Value> wBase, xBase;
    Value lBase = e.addIndex(e.mulIndex(g0, 16 * K), e.mulIndex(l, K * nz));
    for (int64_t z = 0; z < nz; ++z)
      wBase.push_back(e.addIndex(lBase, e.index(z * 32)));
    for (int64_t i = 0; i < mc; ++i)
      xBase.push_back(e.addIndex(e.index(i * stagedStride), e.mulIndex(l, 2)));
    SmallVector<Value> init(mc * nz, zero);
    ValueRange acc = e.forLoop(
        e.index(0), e.index(K), 32, init, [&](Value k, ValueRange carried) -> SmallVector<Value> {
          SmallVector<Value> wv, xv, next;
          for (int64_t z = 0; z < nz; ++z)
            wv.push_back(arith::BitcastOp::create(
                b, bf16Pairs,
                vector::LoadOp::create(b, i16Pairs, packedW,
                                       ValueRange{e.addIndex(wBase[z], e.mulIndex(k, nz))})));
          for (int64_t i = 0; i < mc; ++i)
            xv.push_back(broadcastPair(e.addIndex(xBase[i], k)));
          for (int64_t i = 0; i < mc; ++i)
            for (int64_t z = 0; z < nz; ++z)
              next.push_back(x86vector::DotBF16Op::create(b, accType, carried[i * nz + z], xv[i],
                                                          wv[z]));
          return next;
        });
    for (int64_t q = 0; q < mc * nz; ++q) {
      Value at = e.index(q * 16);
      Value total = vector::LoadOp::create(b, accType, totals, ValueRange{at});
      vector::StoreOp::create(b, arith::AddFOp::create(b, total, acc[q]), totals, ValueRange{at});
    }
  });
  for (int64_t i = 0; i < mc; ++i)
    for (int64_t z = 0; z < nz; ++z) {
      Value col = e.addIndex(n0, e.mulIndex(e.addIndex(g0, e.index(z)), 16));
      Value sums = vector::LoadOp::create(b, accType, totals, ValueRange{e.index((i * nz + z) * 16)});
      storeRow(e.addIndex(m, e.index(i)), col, sums);
    }
}

/// The per-item epilogue on 16 weight rows from `col` of token row `mi`:
/// + bias, then + residual, lane by lane as the scalar adds.
void BlockedMatmul::storeRow(Value mi, Value col, Value sums) {
  if (bias)
    sums = arith::AddFOp::create(b, sums, e.loadVectorF32(*bias, col, 16));
  if (residual)
    sums = arith::AddFOp::create(
        b, sums, e.loadVectorF32(*residual, e.address(*residual, mi, Value(), col), 16));
  e.storeVectorF32(y, e.address(y, mi, Value(), col), sums);
}

/// Tokens [m, m+mc) x the packed panel at n0 (`groups` groups of 16 rows):
/// tiles of nr / 16 groups, the groups after them one by one, then the rows
/// after the last group by the per-item tiles.
void BlockedMatmul::packedRows(Value n0, Value n1, Value groups, Value m, int64_t mc) {
  SmallVector<Value> xBase = stageTokens(tokenRows(m, mc));
  const int64_t nz = nr / 16;
  Value wholeEnd = e.mulIndex(e.divIndex(groups, nz), nz);
  e.forLoop(e.index(0), wholeEnd, nz, [&](Value g) { packedTile(m, mc, n0, g, nz); });
  e.forLoop(wholeEnd, groups, 1, [&](Value g) { packedTile(m, mc, n0, g, 1); });
  Value rest = e.addIndex(n0, e.mulIndex(groups, 16));
  e.forLoop(rest, n1, 1, [&](Value n) { rowTile(*roundedX, xBase, m, mc, n, 1); });
}

void BlockedMatmul::emit(Value tokens, Value begin, Value end) {
  Value rowBegin = e.mulIndex(begin, grain);
  Value rowEnd = arith::MinSIOp::create(b, e.mulIndex(end, grain), e.index(N));
  Value mFull = e.mulIndex(e.divIndex(tokens, mr), mr);
  e.forLoop(rowBegin, rowEnd, panel, [&](Value n0) {
    Value n1 = arith::MinSIOp::create(b, e.addIndex(n0, e.index(panel)), rowEnd);
    if (!packed) {
      e.forLoop(e.index(0), mFull, mr, [&](Value m) { panelRows(n0, n1, m, mr); });
      // Leftover tokens take one-token tiles, as on the per-item path.
      e.forLoop(mFull, tokens, 1, [&](Value m) { panelRows(n0, n1, m, 1); });
      return;
    }
    Value groups = e.divIndex(arith::SubIOp::create(b, n1, n0), 16);
    packPanel(n0, groups);
    e.forLoop(e.index(0), mFull, mr, [&](Value m) { packedRows(n0, n1, groups, m, mr); });
    e.forLoop(mFull, tokens, 1, [&](Value m) {
      if (packedSingles)
        packedRows(n0, n1, groups, m, 1);
      else
        panelRows(n0, n1, m, 1);
    });
  });
}

bool qwen::codegen::cpu::isPackedPrefillTile(qkernel::ScheduleAttr schedule, Type weight,
                                             int64_t k) {
  const int64_t nr = schedule.prefillTileSize(1);
  return weight.isBF16() && nr > 0 && nr % 16 == 0 &&
         bf16DotLanes(schedule.getVectorWidth(), k) == 16;
}

void qwen::codegen::cpu::emitBlockedMatmul(KernelEmitter &emitter, MatmulPattern plan,
                                           Value tokens, Value begin, Value end) {
  BlockedMatmul(emitter, plan).emit(tokens, begin, end);
}

void qwen::codegen::cpu::emitMatmulRange(KernelEmitter &emitter, MatmulPattern plan,
                                         Value tokens, Value begin, Value end,
                                         llvm::function_ref<void()> itemLoop) {
  qkernel::ScheduleAttr schedule = emitter.options().schedule;
  if (schedule.getPanel() == 0)
    return itemLoop();
  ImplicitLocOpBuilder &b = emitter.builder();
  Value blocked = arith::CmpIOp::create(b, arith::CmpIPredicate::sge, tokens,
                                        emitter.index(schedule.getPrefillTokens()));
  auto branch = scf::IfOp::create(b, blocked, /*withElseRegion=*/true);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPoint(branch.thenBlock()->getTerminator());
  emitBlockedMatmul(emitter, plan, tokens, begin, end);
  b.setInsertionPoint(branch.elseBlock()->getTerminator());
  itemLoop();
}
