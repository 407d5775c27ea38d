//===- AttentionKernel.cpp - CPU codegen for paged attention --------------===//
//
// One work item per (token, query head): the query row is computed (or
// copied) into a scratch row, then an online softmax walks the token's
// context through its block table, accumulating V in f32.
//
// Phases (KernelPhase names, in order; test/Codegen/CPU/attention-phases.mlir):
//   attention.load_q          the query row (q-norm / rope chain) -> `query`
//   attention.init            zero `accumulator`, the context bounds
//   attention.key_loop        per key j of the context:
//     attention.scores          s = (q . k_j) scale
//     attention.online_softmax  (m, l) carried by the loop
//     attention.accumulate_v    `accumulator` = w v_j + c `accumulator`
//   attention.finalize        out row = `accumulator` / l
// The online-softmax math is Common/AttentionMath's, shared with the GPU.
//
//===----------------------------------------------------------------------===//
#include "passes/Codegen/CPU/KernelEmitter.h"
#include "qwen/Passes/Codegen/Common/AttentionMath.h"
#include "qwen/Passes/Codegen/Common/KernelPhase.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

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
  CpuAttention(KernelEmitter &e, qtf::PagedAttentionOp attention)
      : e(e), b(e.builder()), attention(attention), cache(attention.getCache().getType()) {
    RankedTensorType queryType = attention.getQuery().getType();
    heads = queryType.getDimSize(1);
    headDim = queryType.getDimSize(2);
    group = heads / cache.getKvHeads();
    scale = static_cast<float>(attention.getScale().convertToDouble());
    width = e.rowWidth(headDim);
    vecType = VectorType::get({width}, b.getF32Type());
  }

  void emit(Value item) {
    bindOperands();
    loadQuery(item);
    init();
    ValueRange finals;
    {
      KernelPhase phase(b, "attention.key_loop");
      finals = e.forLoop(e.index(0), contextEnd, 1, ValueRange{minusInf, e.f32(0.0f)},
                         [&](Value j, ValueRange carried) { return keyStep(j, carried); });
    }
    finalize(item, finals[1]);
  }

private:
  /// Scratch rows and the operands' row accesses.
  void bindOperands() {
    query = e.scratchRow(headDim);
    accumulator = e.scratchRow(headDim);
    std::tie(keys, values) = e.kvArrays(attention.getCache());
    positions = e.access(attention.getPositions());
    tokenSeq = e.access(attention.getTokenSeq());
    blockTable = e.access(attention.getBlockTable());
    out = e.result(0);
    tableWidth = e.dim("P");
  }

  /// token, head, kvHead of the item; the query row (through its rms_norm /
  /// rope chain) in `query`.
  void loadQuery(Value item) {
    KernelPhase phase(b, "attention.load_q");
    token = arith::DivUIOp::create(b, item, e.index(heads));
    Value head = arith::RemUIOp::create(b, item, e.index(heads));
    kvHead = arith::DivUIOp::create(b, head, e.index(group));
    e.emitRowChain(attention.getQuery(), token, head, query);
  }

  /// `accumulator` = 0; tableRow and contextEnd = position + 1 of the token.
  void init() {
    KernelPhase phase(b, "attention.init");
    zero = arith::ConstantOp::create(b, DenseElementsAttr::get(vecType, 0.0f));
    e.forLoop(e.index(0), e.index(headDim), width, [&](Value d) {
      vector::StoreOp::create(b, zero, accumulator, ValueRange{d});
    });
    Value sequence = e.loadIndex(tokenSeq, token);
    Value position = e.loadIndex(positions, token);
    tableRow = e.mulIndex(sequence, tableWidth);
    contextEnd = e.addIndex(position, e.index(1));
    minusInf = e.f32(-std::numeric_limits<float>::infinity());
  }

  /// Key j: returns the new (max, sum); `accumulator` updated in place.
  SmallVector<Value> keyStep(Value j, ValueRange carried) {
    Value base = e.addIndex(e.kvOffset(cache, attention.getLayer(), blockTable, tableRow, j),
                            e.mulIndex(kvHead, headDim));
    Value score = scoreOf(base);
    codegen::OnlineSoftmaxStep step = [&] {
      KernelPhase phase(b, "attention.online_softmax");
      return codegen::onlineSoftmaxStep(b, vecType, carried[0], carried[1], score);
    }();
    accumulateValues(base, step);
    return {step.max, step.sum};
  }

  /// (q . k) * scale for the key row at `base`.
  Value scoreOf(Value base) {
    KernelPhase phase(b, "attention.scores");
    Value dotVector =
        e.forLoop(e.index(0), e.index(headDim), width, ValueRange{zero},
                  [&](Value d, ValueRange acc) -> SmallVector<Value> {
                    Value q = vector::LoadOp::create(b, vecType, query, ValueRange{d});
                    Value k = e.loadVectorF32(keys, e.addIndex(base, d), width);
                    return {vector::FMAOp::create(b, q, k, acc[0])};
                  })[0];
    return arith::MulFOp::create(
        b, vector::ReductionOp::create(b, vector::CombiningKind::ADD, dotVector), e.f32(scale));
  }

  /// `accumulator` = weight v + correction `accumulator` for the value row at `base`.
  void accumulateValues(Value base, const codegen::OnlineSoftmaxStep &step) {
    KernelPhase phase(b, "attention.accumulate_v");
    e.forLoop(e.index(0), e.index(headDim), width, [&](Value d) {
      Value acc = vector::LoadOp::create(b, vecType, accumulator, ValueRange{d});
      Value v = e.loadVectorF32(values, e.addIndex(base, d), width);
      vector::StoreOp::create(b, codegen::accumulateValue(b, step, acc, v), accumulator,
                              ValueRange{d});
    });
  }

  /// Output row `item` = `accumulator` / sum.
  void finalize(Value item, Value sum) {
    KernelPhase phase(b, "attention.finalize");
    Value inverse = arith::DivFOp::create(b, e.f32(1.0f), sum);
    Value inverseVector = vector::BroadcastOp::create(b, vecType, inverse);
    Value outBase = e.mulIndex(item, headDim);
    e.forLoop(e.index(0), e.index(headDim), width, [&](Value d) {
      Value acc = vector::LoadOp::create(b, vecType, accumulator, ValueRange{d});
      e.storeVectorF32(out, e.addIndex(outBase, d), arith::MulFOp::create(b, acc, inverseVector));
    });
  }

  KernelEmitter &e;
  ImplicitLocOpBuilder &b;
  qtf::PagedAttentionOp attention;
  qtf::KVCacheType cache;
  int64_t heads, headDim, group, width;
  float scale;
  VectorType vecType;
  Value query, accumulator, tableWidth;
  RowAccess keys, values, positions, tokenSeq, blockTable, out;
  Value token, kvHead, zero, tableRow, contextEnd, minusInf;
};

} // namespace

FailureOr<SmallVector<Attribute>>
qwen::codegen::cpu::emitAttentionKernel(KernelEmitter &emitter) {
  func::FuncOp source = emitter.source();
  auto ret = cast<func::ReturnOp>(source.getBody().front().getTerminator());
  qtf::PagedAttentionOp attention;
  source.walk([&](qtf::PagedAttentionOp op) { attention = op; });
  if (!attention || ret.getNumOperands() != 1 || ret.getOperand(0) != attention.getResult())
    return source.emitOpError("attention kernel must return one paged_attention"), failure();

  std::string tokenSymbol = emitter.leadingSymbol(attention.getResult());
  emitter.createFunction([&](Value item) { CpuAttention(emitter, attention).emit(item); });

  Builder builder(source.getContext());
  const int64_t heads = attention.getQuery().getType().getDimSize(1);
  return SmallVector<Attribute>{builder.getStringAttr(tokenSymbol),
                                builder.getI64IntegerAttr(heads)};
}

void qwen::codegen::cpu::populateAttentionPatterns(RewritePatternSet &patterns,
                                                   CpuKernelLowering &lowering) {
  patterns.add<CpuKernelPattern>(patterns.getContext(), qkernel::KernelKind::Attention,
                                 emitAttentionKernel, lowering);
}
