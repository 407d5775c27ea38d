//===- AttentionKernel.cpp - CPU codegen for paged attention --------------===//
//
// One work item per (token, group of query heads): the `tile[0]` query heads
// of one GQA group share every K / V row their token's context loads from the
// paged cache. The context is walked in fixed blocks of `tile[1]` keys (the
// head row's vector width) from key 0, the last block masked: the block's
// scores are one vector (a transposed tree sums the keys' partial dots), one
// vector exp gives their weights (MLIR's polynomial exp), and the online
// softmax rescales once per block. A query's arithmetic depends only on its
// own context, never on its step, batch or work item, so a token's output is
// bit-identical alone (decode) or in any prefill batch.
//
// Items run head block by head block (consecutive items reuse one kv head's
// K / V rows from cache), each in a balanced token order (0, T-1, 1, T-2,
// ...): the runtime's contiguous chunks of items carry about equal causal
// work.
//
// Phases (KernelPhase names, in order; test/Codegen/CPU/attention-phases.mlir):
//   attention.load_q          the query rows (q-norm / rope chain) -> `queries`
//   attention.init            zero `accumulators`, the context bounds
//   attention.key_loop        per block of keys of the context:
//     attention.scores          s = (q . k_j) scale -> `scores`, per head
//     attention.online_softmax  block max, one vector exp, (m, l) carried
//     attention.accumulate_v    `accumulators` = c `accumulators` + sum w v_j,
//                               tile[2] vectors of every head per pass
//   attention.finalize        out rows = `accumulators` / l
//
//===----------------------------------------------------------------------===//
#include "passes/Codegen/CPU/KernelEmitter.h"
#include "qwen/Passes/Codegen/Common/KernelPhase.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Math/Transforms/Passes.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#include <limits>

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen::cpu;
using qwen::codegen::KernelPhase;

namespace {

/// The emitter of one attention work item, one method per phase. Values
/// named in a phase's comment are the members it leaves for the next ones.
class CpuAttention {
public:
  CpuAttention(KernelEmitter &e, qtf::PagedAttentionOp attention, ArrayRef<int64_t> tile,
               Value tokens)
      : e(e), b(e.builder()), attention(attention), cache(attention.getCache().getType()),
        headsPerItem(tile[0]), keyBlock(tile[1]), valueVectors(tile[2]), tokens(tokens) {
    RankedTensorType queryType = attention.getQuery().getType();
    heads = queryType.getDimSize(1);
    headDim = queryType.getDimSize(2);
    group = heads / cache.getKvHeads();
    scale = static_cast<float>(attention.getScale().convertToDouble());
    width = e.rowWidth(headDim);
    vecType = VectorType::get({width}, b.getF32Type());
    blockType = VectorType::get({keyBlock}, b.getF32Type());
  }

  void emit(Value item) {
    bindOperands();
    loadQueries(item);
    init();
    SmallVector<Value> initial;
    for (int64_t g = 0; g < headsPerItem; ++g)
      initial.append({minusInf, e.f32(0.0f)});
    ValueRange finals;
    {
      KernelPhase phase(b, "attention.key_loop");
      finals = e.forLoop(e.index(0), contextEnd, keyBlock, initial,
                         [&](Value first, ValueRange carried) {
                           return keyBlockStep(first, carried);
                         });
    }
    finalize(finals);
  }

  /// The vector exps of the softmax weights, for the polynomial approximation.
  ArrayRef<Operation *> vectorExps() const { return exps; }

private:
  /// Scratch rows and the operands' row accesses.
  void bindOperands() {
    for (int64_t g = 0; g < headsPerItem; ++g) {
      queries.push_back(e.scratchRow(headDim));
      accumulators.push_back(e.scratchRow(headDim));
    }
    partials = e.scratchRow(headsPerItem * keyBlock * width);
    rowBases = e.scratch(keyBlock, b.getIndexType());
    weights = e.scratchRow(headsPerItem * keyBlock);
    std::tie(keys, values) = e.kvArrays(attention.getCache());
    positions = e.access(attention.getPositions());
    tokenSeq = e.access(attention.getTokenSeq());
    blockTable = e.access(attention.getBlockTable());
    out = e.result(0);
    tableWidth = e.dim("P");
  }

  /// item = head block * T + rank: consecutive items share their kv head
  /// (its context's K / V rows stay in cache from one token to the next).
  /// token (rank r of the balanced order: r even -> r/2, odd -> T-1-r/2),
  /// firstHead, kvHead of the item; the query rows in `queries`.
  void loadQueries(Value item) {
    KernelPhase phase(b, "attention.load_q");
    Value rank = arith::RemUIOp::create(b, item, tokens);
    firstHead = e.mulIndex(arith::DivUIOp::create(b, item, tokens), headsPerItem);
    kvHead = e.divIndex(firstHead, group);
    Value half = e.divIndex(rank, 2);
    Value odd = arith::CmpIOp::create(b, arith::CmpIPredicate::ne, e.remIndex(rank, 2),
                                      e.index(0));
    Value mirrored = arith::SubIOp::create(b, arith::SubIOp::create(b, tokens, e.index(1)), half);
    token = arith::SelectOp::create(b, odd, mirrored, half);
    for (int64_t g = 0; g < headsPerItem; ++g)
      e.emitRowChain(attention.getQuery(), token, e.addIndex(firstHead, e.index(g)), queries[g]);
  }

  /// `accumulators` = 0; tableRow and contextEnd = position + 1 of the token.
  void init() {
    KernelPhase phase(b, "attention.init");
    zero = arith::ConstantOp::create(b, DenseElementsAttr::get(vecType, 0.0f));
    for (Value accumulator : accumulators)
      e.forLoop(e.index(0), e.index(headDim), width, [&](Value d) {
        vector::StoreOp::create(b, zero, accumulator, ValueRange{d});
      });
    Value sequence = e.loadIndex(tokenSeq, token);
    Value position = e.loadIndex(positions, token);
    tableRow = e.mulIndex(sequence, tableWidth);
    contextEnd = e.addIndex(position, e.index(1));
    minusInf = e.f32(-std::numeric_limits<float>::infinity());
  }

  /// The block of keys from `first`: returns the new (max, sum) per head;
  /// `accumulators` updated in place.
  SmallVector<Value> keyBlockStep(Value first, ValueRange carried) {
    Value count = arith::MinUIOp::create(
        b, arith::SubIOp::create(b, contextEnd, first), e.index(keyBlock));
    SmallVector<Value> scores = blockScores(first, count);
    SmallVector<Value> next, corrections;
    {
      KernelPhase phase(b, "attention.online_softmax");
      Value mask = vector::CreateMaskOp::create(
          b, VectorType::get({keyBlock}, b.getI1Type()), ValueRange{count});
      for (int64_t g = 0; g < headsPerItem; ++g) {
        auto [max, sum, correction] = softmaxStep(g, mask, scores[g], carried[2 * g],
                                                  carried[2 * g + 1]);
        next.append({max, sum});
        corrections.push_back(correction);
      }
    }
    accumulateValues(count, corrections);
    return next;
  }

  /// Flat offset of the kv head's row of key `j`.
  Value rowBase(Value j) {
    return e.addIndex(e.kvOffset(cache, attention.getLayer(), blockTable, tableRow, j),
                      e.mulIndex(kvHead, headDim));
  }

  /// The scores (q_g . k_{first+k}) scale of the block's `count` keys, one
  /// vector per head (lanes from `count` on undefined). Each key row is
  /// loaded once for every head of the item; its lane-wise partial dots go
  /// to `partials`, summed per key afterwards by one transposed tree. The
  /// rows' offsets go to `rowBases` for the value rows.
  SmallVector<Value> blockScores(Value first, Value count) {
    KernelPhase phase(b, "attention.scores");
    e.forLoop(e.index(0), count, 1, [&](Value k) {
      Value base = rowBase(e.addIndex(first, k));
      memref::StoreOp::create(b, base, rowBases, ValueRange{k});
      SmallVector<Value> init(headsPerItem, zero);
      ValueRange dots = e.forLoop(
          e.index(0), e.index(headDim), width, init,
          [&](Value d, ValueRange acc) -> SmallVector<Value> {
            Value key = e.loadVectorF32(keys, e.addIndex(base, d), width);
            SmallVector<Value> next;
            for (int64_t g = 0; g < headsPerItem; ++g) {
              Value q = vector::LoadOp::create(b, vecType, queries[g], ValueRange{d});
              next.push_back(vector::FMAOp::create(b, q, key, acc[g]));
            }
            return next;
          });
      for (int64_t g = 0; g < headsPerItem; ++g) {
        Value row = e.addIndex(k, e.index(g * keyBlock));
        vector::StoreOp::create(b, dots[g], partials, ValueRange{e.mulIndex(row, width)});
      }
    });
    SmallVector<Value> scores;
    Value scaleVector = vector::BroadcastOp::create(b, blockType, e.f32(scale));
    for (int64_t g = 0; g < headsPerItem; ++g) {
      SmallVector<Value> rows;
      for (int64_t k = 0; k < keyBlock; ++k)
        rows.push_back(vector::LoadOp::create(b, vecType, partials,
                                              ValueRange{e.index((g * keyBlock + k) * width)}));
      scores.push_back(arith::MulFOp::create(b, transposedSum(rows), scaleVector));
    }
    return scores;
  }

  /// Lane k = the sum of rows[k]'s lanes, for keyBlock == width rows: each
  /// level adds the two halves of every row's segment of partial sums
  /// (pairs of vectors, shuffled), halving the segments and the vectors.
  Value transposedSum(SmallVector<Value> rows) {
    for (int64_t segment = width; segment > 1; segment /= 2) {
      SmallVector<int64_t> low, high;
      for (int64_t source = 0; source < 2; ++source)
        for (int64_t start = 0; start < width; start += segment)
          for (int64_t lane = 0; lane < segment / 2; ++lane) {
            low.push_back(source * width + start + lane);
            high.push_back(source * width + start + segment / 2 + lane);
          }
      SmallVector<Value> next;
      for (size_t i = 0; i < rows.size(); i += 2)
        next.push_back(arith::AddFOp::create(
            b, vector::ShuffleOp::create(b, rows[i], rows[i + 1], low),
            vector::ShuffleOp::create(b, rows[i], rows[i + 1], high)));
      rows = std::move(next);
    }
    return rows.front();
  }

  /// Head g's online-softmax step over the block: its weights into
  /// `weights`[g]; returns (max, sum, correction of the old accumulator).
  std::tuple<Value, Value, Value> softmaxStep(int64_t g, Value mask, Value scores, Value max,
                                              Value sum) {
    Value offset = e.index(g * keyBlock);
    Value minusInfs = vector::BroadcastOp::create(b, blockType, minusInf);
    Value s = arith::SelectOp::create(b, mask, scores, minusInfs);
    Value newMax = arith::MaximumFOp::create(
        b, max, vector::ReductionOp::create(b, vector::CombiningKind::MAXIMUMF, s));
    // exp(-inf) = 0 the first time: the zero accumulator stays zero.
    Value correction = math::ExpOp::create(b, arith::SubFOp::create(b, max, newMax));
    auto exp = math::ExpOp::create(
        b, arith::SubFOp::create(b, s, vector::BroadcastOp::create(b, blockType, newMax)));
    exps.push_back(exp);
    Value w = arith::SelectOp::create(
        b, mask, exp, arith::ConstantOp::create(b, DenseElementsAttr::get(blockType, 0.0f)));
    vector::StoreOp::create(b, w, weights, ValueRange{offset});
    Value blockSum = vector::ReductionOp::create(b, vector::CombiningKind::ADD, w);
    Value newSum = arith::AddFOp::create(b, arith::MulFOp::create(b, sum, correction), blockSum);
    return {newMax, newSum, correction};
  }

  /// `accumulators`[g] = correction_g `accumulators`[g] + sum_k w_gk v_k,
  /// each value row loaded once for every head of the item. The head row in
  /// passes of `valueVectors` vectors: the pass's accumulators of every head
  /// stay in registers over the block's keys.
  void accumulateValues(Value count, ArrayRef<Value> corrections) {
    KernelPhase phase(b, "attention.accumulate_v");
    e.forLoop(e.index(0), e.index(headDim), valueVectors * width, [&](Value d0) {
      SmallVector<Value> columns, init;
      for (int64_t c = 0; c < valueVectors; ++c)
        columns.push_back(e.addIndex(d0, e.index(c * width)));
      for (int64_t g = 0; g < headsPerItem; ++g) {
        Value correction = vector::BroadcastOp::create(b, vecType, corrections[g]);
        for (Value d : columns)
          init.push_back(arith::MulFOp::create(
              b, vector::LoadOp::create(b, vecType, accumulators[g], ValueRange{d}), correction));
      }
      ValueRange sums = e.forLoop(
          e.index(0), count, 1, init, [&](Value k, ValueRange acc) -> SmallVector<Value> {
            Value base = memref::LoadOp::create(b, rowBases, ValueRange{k});
            SmallVector<Value> v, next;
            for (Value d : columns)
              v.push_back(e.loadVectorF32(values, e.addIndex(base, d), width));
            for (int64_t g = 0; g < headsPerItem; ++g) {
              Value w = vector::BroadcastOp::create(
                  b, vecType,
                  memref::LoadOp::create(b, weights,
                                         ValueRange{e.addIndex(k, e.index(g * keyBlock))}));
              for (int64_t c = 0; c < valueVectors; ++c)
                next.push_back(vector::FMAOp::create(b, w, v[c], acc[g * valueVectors + c]));
            }
            return next;
          });
      for (int64_t g = 0; g < headsPerItem; ++g)
        for (int64_t c = 0; c < valueVectors; ++c)
          vector::StoreOp::create(b, sums[g * valueVectors + c], accumulators[g],
                                  ValueRange{columns[c]});
    });
  }

  /// Output rows (token, head) = `accumulators` / sum.
  void finalize(ValueRange finals) {
    KernelPhase phase(b, "attention.finalize");
    for (int64_t g = 0; g < headsPerItem; ++g) {
      Value inverse = arith::DivFOp::create(b, e.f32(1.0f), finals[2 * g + 1]);
      Value inverseVector = vector::BroadcastOp::create(b, vecType, inverse);
      Value row = e.addIndex(e.mulIndex(token, heads), e.addIndex(firstHead, e.index(g)));
      Value outBase = e.mulIndex(row, headDim);
      e.forLoop(e.index(0), e.index(headDim), width, [&](Value d) {
        Value acc = vector::LoadOp::create(b, vecType, accumulators[g], ValueRange{d});
        e.storeVectorF32(out, e.addIndex(outBase, d),
                         arith::MulFOp::create(b, acc, inverseVector));
      });
    }
  }

  KernelEmitter &e;
  ImplicitLocOpBuilder &b;
  qtf::PagedAttentionOp attention;
  qtf::KVCacheType cache;
  int64_t headsPerItem, keyBlock, valueVectors;
  Value tokens;
  int64_t heads, headDim, group, width;
  float scale;
  VectorType vecType, blockType;
  SmallVector<Value> queries, accumulators;
  Value partials, weights, rowBases, tableWidth;
  RowAccess keys, values, positions, tokenSeq, blockTable, out;
  Value token, firstHead, kvHead, zero, tableRow, contextEnd, minusInf;
  SmallVector<Operation *> exps;
};

/// Rewrites the softmax's vector exps (only those) into MLIR's polynomial
/// approximation: LLVM would otherwise scalarize them into libm calls.
/// `listener` (the kernel pattern's) hears of the ops it creates and erases.
LogicalResult approximateExps(MLIRContext *ctx, ArrayRef<Operation *> exps,
                              OpBuilder::Listener *listener) {
  if (exps.empty())
    return success();
  auto isExp = [](StringRef name) { return name == math::ExpOp::getOperationName(); };
  RewritePatternSet patterns(ctx);
  populateMathPolynomialApproximationPatterns(patterns, isExp);
  GreedyRewriteConfig config;
  config.setStrictness(GreedyRewriteStrictness::ExistingAndNewOps);
  config.enableFolding(false);
  config.setListener(dyn_cast_if_present<RewriterBase::Listener>(listener));
  return applyOpPatternsGreedily(exps, std::move(patterns), config);
}

} // namespace

FailureOr<SmallVector<Attribute>>
qwen::codegen::cpu::emitAttentionKernel(KernelEmitter &emitter) {
  func::FuncOp source = emitter.source();
  auto ret = cast<func::ReturnOp>(source.getBody().front().getTerminator());
  qtf::PagedAttentionOp attention;
  source.walk([&](qtf::PagedAttentionOp op) { attention = op; });
  if (!attention || ret.getNumOperands() != 1 || ret.getOperand(0) != attention.getResult())
    return source.emitOpError("attention kernel must return one paged_attention"), failure();

  // tile = [query heads per item, keys per block, value vectors per pass]
  // (qwen-select-schedule).
  const int64_t heads = attention.getQuery().getType().getDimSize(1);
  const int64_t group = heads / attention.getCache().getType().getKvHeads();
  ArrayRef<int64_t> tile = emitter.options().schedule.getTile()
                               ? emitter.options().schedule.getTile().asArrayRef()
                               : ArrayRef<int64_t>();
  const int64_t width = emitter.rowWidth(attention.getQuery().getType().getDimSize(2));
  const int64_t vectors = attention.getQuery().getType().getDimSize(2) / width;
  if (tile.size() != 3 || tile[0] < 1 || group % tile[0] || tile[1] != width || tile[2] < 1 ||
      vectors % tile[2])
    return source.emitOpError("attention schedule needs tile = [query heads per item "
                              "dividing the GQA group, keys per block = the head row's "
                              "vector width ")
               << width << ", value vectors per pass dividing " << vectors << "]",
           failure();

  Builder builder(source.getContext());
  std::string tokenSymbol = emitter.leadingSymbol(attention.getResult());
  if (tokenSymbol.empty()) // LowerKernels reports the untraceable grid.
    return SmallVector<Attribute>{builder.getStringAttr(tokenSymbol),
                                  builder.getI64IntegerAttr(heads / tile[0])};
  SmallVector<Operation *> exps;
  emitter.createFunction([&](Value item) {
    CpuAttention kernel(emitter, attention, tile, emitter.dim(tokenSymbol));
    kernel.emit(item);
    exps.append(kernel.vectorExps().begin(), kernel.vectorExps().end());
  });
  if (failed(approximateExps(source.getContext(), exps, emitter.builder().getListener())))
    return source.emitOpError("could not approximate the softmax exps"), failure();

  return SmallVector<Attribute>{builder.getStringAttr(tokenSymbol),
                                builder.getI64IntegerAttr(heads / tile[0])};
}

void qwen::codegen::cpu::populateAttentionPatterns(RewritePatternSet &patterns,
                                                   CpuKernelLowering &lowering) {
  patterns.add<CpuKernelPattern>(patterns.getContext(), qkernel::KernelKind::Attention,
                                 emitAttentionKernel, lowering);
}
