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
// Single-thread CPU time of Qwen3-0.6B's matmuls at 512 tokens, this VM:
// 68 GFLOP/s per-item, 85-92 blocked (f32 FMAs; a 6 x 4 tile or an f32-packed
// panel measured no faster),
// 155 blocked with vdpbf16ps (round; 67 per-item).
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

/// The sums vector.reduction <add> gives for each of `accs` (llvm's
/// vector.reduce.fadd from 0.0, not reassociated: ((0 + a[0]) + a[1]) + ...
/// + a[W-1], W scalar adds in a chain), bit for bit, at W lanes per add: the
/// accumulators are transposed (log2 W stages of two-source shuffles, each
/// swapping one bit of the row and column index), then the columns are added
/// in lane order. For a 4 x 4 tile of 16 lanes that is 64 shuffles and 16
/// adds instead of 16 x 16 extracts and scalar adds.
static SmallVector<Value> orderedSums(ImplicitLocOpBuilder &b, ArrayRef<Value> accs) {
  auto type = cast<VectorType>(accs.front().getType());
  const int64_t width = type.getNumElements();
  Value zero = arith::ConstantOp::create(b, DenseElementsAttr::get(type, 0.0f));
  SmallVector<Value> sums;
  for (size_t group = 0; group < accs.size(); group += width) {
    SmallVector<Value> rows(width, zero);
    for (int64_t t = 0; t < width && group + t < accs.size(); ++t)
      rows[t] = accs[group + t];
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
    Value total = zero;
    for (Value column : rows)
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
static SmallVector<Value> emitBf16RoundTile(KernelEmitter &emitter, const RowAccess &x,
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

void qwen::codegen::cpu::emitBlockedMatmul(KernelEmitter &emitter, MatmulPattern plan,
                                           Value tokens, Value begin, Value end) {
  ImplicitLocOpBuilder &b = emitter.builder();
  qkernel::ScheduleAttr schedule = emitter.options().schedule;
  const int64_t grain = schedule.getGrain(), panel = schedule.getPanel();
  const int64_t mr = schedule.prefillTileSize(0), nr = schedule.prefillTileSize(1);
  RankedTensorType weightType = plan.linear.getWeight().getType();
  const int64_t N = weightType.getDimSize(0), K = weightType.getDimSize(1);

  RowAccess x = emitter.access(plan.gather ? plan.gather.getInput() : plan.linear.getInput());
  RowAccess w = emitter.access(plan.linear.getWeight());
  RowAccess y = emitter.result(0);
  std::optional<RowAccess> rows, bias, residual, scale;
  if (plan.gather)
    rows = emitter.access(plan.gather.getRows());
  if (Value value = plan.linear.getBias())
    bias = emitter.access(value);
  if (plan.residual)
    residual = emitter.access(plan.residual);
  std::array<int64_t, 2> weightBlock{0, 0};
  if (Value value = plan.linear.getWeightScale()) {
    scale = emitter.access(value);
    weightBlock = {(*plan.linear.getWeightBlock())[0], (*plan.linear.getWeightBlock())[1]};
  }

  // Tokens [m, m+mc) x weight rows [n, n+nc): the per-item path's tile and
  // epilogue (bias, then residual, in that order).
  // The rounded (vdpbf16ps) kind rounds each activation vector to bf16 in
  // every tile; a token block's rows are rounded once per panel instead, into
  // a bf16 scratch block the panel's tiles read (the same rounding, so the
  // same bits).
  const bool roundX = x.elementType.isF32() &&
                      schedule.dotFor(mr) == qkernel::DotKind::Avx512Bf16Round &&
                      bf16DotLanes(emitter.options().vectorWidth, K) > 0;
  std::optional<RowAccess> roundedX;
  if (roundX)
    roundedX = RowAccess{emitter.scratch(mr * K, b.getI16Type()), b.getBF16Type(), K};

  // Tokens [m, m+mc) of `xt` rows at `xBase` x weight rows [n, n+nc).
  auto tile = [&](const RowAccess &xt, ArrayRef<Value> xBase, Value m, int64_t mc, Value n,
                  int64_t nc) {
    SmallVector<Value> wBase, wRows;
    for (int64_t j = 0; j < nc; ++j) {
      wRows.push_back(emitter.addIndex(n, emitter.index(j)));
      wBase.push_back(emitter.mulIndex(wRows.back(), K));
    }
    SmallVector<Value> sums;
    if (scale)
      sums = emitFp8DotTile(emitter, xt, xBase, w, wBase, Fp8Weights{*scale, wRows, weightBlock},
                            K);
    else if (mc * nc > 1 && schedule.dotFor(mc) == qkernel::DotKind::Fma)
      sums = emitFmaTile(emitter, xt, xBase, w, wBase, K);
    else if (mc * nc > 1 && (schedule.dotFor(mc) == qkernel::DotKind::Avx512Bf16Round ||
                             (schedule.dotFor(mc) == qkernel::DotKind::Avx512Bf16Split &&
                              xt.elementType.isBF16())))
      sums = emitBf16RoundTile(emitter, xt, xBase, w, wBase, K);
    else
      sums = emitter.emitDotTile(xt, xBase, w, wBase, K);
    for (int64_t i = 0; i < mc; ++i)
      for (int64_t j = 0; j < nc; ++j) {
        Value mi = emitter.addIndex(m, emitter.index(i));
        Value value = sums[i * nc + j];
        if (bias)
          value = arith::AddFOp::create(b, value, emitter.loadF32(*bias, wRows[j]));
        if (residual)
          value = arith::AddFOp::create(
              b, value,
              emitter.loadF32(*residual, emitter.address(*residual, mi, Value(), wRows[j])));
        emitter.storeF32(y, emitter.address(y, mi, Value(), wRows[j]), value);
      }
  };

  // Weight rows [n0, n1) of one panel for tokens [m, m+mc): whole tiles of
  // nr rows, then the panel's leftover rows one by one.
  auto panelRows = [&](Value n0, Value n1, Value m, int64_t mc) {
    SmallVector<Value> xBase;
    for (int64_t i = 0; i < mc; ++i) {
      Value row = emitter.addIndex(m, emitter.index(i));
      if (rows)
        row = emitter.loadIndex(*rows, row);
      xBase.push_back(emitter.address(x, row, Value(), Value()));
    }
    RowAccess xt = x;
    if (roundedX && mc == mr) {
      const int64_t pairs = 2 * bf16DotLanes(emitter.options().vectorWidth, K);
      auto f32Type = VectorType::get({pairs}, b.getF32Type());
      auto bf16Type = VectorType::get({pairs}, b.getBF16Type());
      auto i16Type = VectorType::get({pairs}, b.getI16Type());
      for (int64_t i = 0; i < mc; ++i) {
        emitter.forLoop(emitter.index(0), emitter.index(K), pairs, [&](Value k) {
          Value wide = vector::LoadOp::create(b, f32Type, x.memref,
                                              ValueRange{emitter.addIndex(xBase[i], k)});
          Value bits = arith::BitcastOp::create(b, i16Type,
                                                arith::TruncFOp::create(b, bf16Type, wide));
          vector::StoreOp::create(b, bits, roundedX->memref,
                                  ValueRange{emitter.addIndex(emitter.index(i * K), k)});
        });
        xBase[i] = emitter.index(i * K);
      }
      xt = *roundedX;
    }
    Value count = arith::SubIOp::create(b, n1, n0);
    Value whole = emitter.mulIndex(emitter.divIndex(count, nr), nr);
    Value wholeEnd = emitter.addIndex(n0, whole);
    emitter.forLoop(n0, wholeEnd, nr, [&](Value n) { tile(xt, xBase, m, mc, n, nr); });
    emitter.forLoop(wholeEnd, n1, 1, [&](Value n) { tile(xt, xBase, m, mc, n, 1); });
  };

  Value rowBegin = emitter.mulIndex(begin, grain);
  Value rowEnd = arith::MinSIOp::create(b, emitter.mulIndex(end, grain), emitter.index(N));
  Value mFull = emitter.mulIndex(emitter.divIndex(tokens, mr), mr);
  emitter.forLoop(rowBegin, rowEnd, panel, [&](Value n0) {
    Value n1 = arith::MinSIOp::create(b, emitter.addIndex(n0, emitter.index(panel)), rowEnd);
    emitter.forLoop(emitter.index(0), mFull, mr, [&](Value m) { panelRows(n0, n1, m, mr); });
    // Leftover tokens take one-token tiles, as on the per-item path.
    emitter.forLoop(mFull, tokens, 1, [&](Value m) { panelRows(n0, n1, m, 1); });
  });
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
