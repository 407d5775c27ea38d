//===- AttentionKernel.cpp - CPU codegen for paged attention --------------===//
//
// One work item per (token, query head): the query row is computed (or
// copied) into a scratch row, then an online softmax walks the token's
// context through its block table, accumulating V in f32.
//
//===----------------------------------------------------------------------===//
#include "passes/Codegen/CPU/KernelEmitter.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

#include <limits>

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen::cpu;

FailureOr<SmallVector<Attribute>>
qwen::codegen::cpu::emitAttentionKernel(KernelEmitter &emitter) {
  func::FuncOp source = emitter.source();
  auto ret = cast<func::ReturnOp>(source.getBody().front().getTerminator());
  qtf::PagedAttentionOp attention;
  source.walk([&](qtf::PagedAttentionOp op) { attention = op; });
  if (!attention || ret.getNumOperands() != 1 || ret.getOperand(0) != attention.getResult())
    return source.emitOpError("attention kernel must return one paged_attention"), failure();

  qtf::KVCacheType cache = attention.getCache().getType();
  RankedTensorType queryType = attention.getQuery().getType();
  const int64_t heads = queryType.getDimSize(1), headDim = queryType.getDimSize(2);
  const int64_t kvHeads = cache.getKvHeads(), group = heads / kvHeads;
  const int64_t layer = attention.getLayer();
  const float scale = static_cast<float>(attention.getScale().convertToDouble());
  std::string tokenSymbol = emitter.leadingSymbol(attention.getResult());

  emitter.createFunction([&](Value item) {
    ImplicitLocOpBuilder &b = emitter.builder();
    const int64_t width = emitter.vectorWidthFor(headDim);
    auto vecType = VectorType::get({width}, b.getF32Type());
    Value query = emitter.scratchRow(headDim);
    Value accumulator = emitter.scratchRow(headDim);
    auto [keys, values] = emitter.kvArrays(attention.getCache());
    RowAccess keyAccess = keys, valueAccess = values;
    RowAccess positions = emitter.access(attention.getPositions());
    RowAccess tokenSeq = emitter.access(attention.getTokenSeq());
    RowAccess blockTable = emitter.access(attention.getBlockTable());
    RowAccess out = emitter.result(0);
    Value P = emitter.dim("P");

    Value token = arith::DivUIOp::create(b, item, emitter.index(heads));
    Value head = arith::RemUIOp::create(b, item, emitter.index(heads));
    Value kvHead = arith::DivUIOp::create(b, head, emitter.index(group));
    emitter.emitRowChain(attention.getQuery(), token, head, query);

    Value zero = arith::ConstantOp::create(b, DenseElementsAttr::get(vecType, 0.0f));
    emitter.forLoop(emitter.index(0), emitter.index(headDim), width, [&](Value d) {
      vector::StoreOp::create(b, zero, accumulator, ValueRange{d});
    });
    Value sequence = emitter.loadIndex(tokenSeq, token);
    Value position = emitter.loadIndex(positions, token);
    Value tableRow = emitter.mulIndex(sequence, P);
    Value contextEnd = emitter.addIndex(position, emitter.index(1));
    Value minusInf = emitter.f32(-std::numeric_limits<float>::infinity());

    ValueRange finals = emitter.forLoop(
        emitter.index(0), contextEnd, 1, ValueRange{minusInf, emitter.f32(0.0f)},
        [&](Value j, ValueRange carried) -> SmallVector<Value> {
          Value base = emitter.addIndex(
              emitter.kvOffset(cache, layer, blockTable, tableRow, j),
              emitter.mulIndex(kvHead, headDim));
          Value dotVector = emitter.forLoop(
              emitter.index(0), emitter.index(headDim), width, ValueRange{zero},
              [&](Value d, ValueRange acc) -> SmallVector<Value> {
                Value q = vector::LoadOp::create(b, vecType, query, ValueRange{d});
                Value k = emitter.loadVectorF32(keyAccess, emitter.addIndex(base, d), width);
                return {vector::FMAOp::create(b, q, k, acc[0])};
              })[0];
          Value score = arith::MulFOp::create(
              b, vector::ReductionOp::create(b, vector::CombiningKind::ADD, dotVector),
              emitter.f32(scale));
          Value runningMax = carried[0], runningSum = carried[1];
          Value newMax = arith::MaximumFOp::create(b, runningMax, score);
          Value correction = math::ExpOp::create(b, arith::SubFOp::create(b, runningMax, newMax));
          Value weight = math::ExpOp::create(b, arith::SubFOp::create(b, score, newMax));
          Value newSum = arith::AddFOp::create(
              b, arith::MulFOp::create(b, runningSum, correction), weight);
          Value correctionVector = vector::BroadcastOp::create(b, vecType, correction);
          Value weightVector = vector::BroadcastOp::create(b, vecType, weight);
          emitter.forLoop(emitter.index(0), emitter.index(headDim), width, [&](Value d) {
            Value acc = vector::LoadOp::create(b, vecType, accumulator, ValueRange{d});
            Value v = emitter.loadVectorF32(valueAccess, emitter.addIndex(base, d), width);
            Value next = vector::FMAOp::create(
                b, weightVector, v, arith::MulFOp::create(b, acc, correctionVector));
            vector::StoreOp::create(b, next, accumulator, ValueRange{d});
          });
          return {newMax, newSum};
        });

    Value inverse = arith::DivFOp::create(b, emitter.f32(1.0f), finals[1]);
    Value inverseVector = vector::BroadcastOp::create(b, vecType, inverse);
    Value outBase = emitter.mulIndex(item, headDim);
    emitter.forLoop(emitter.index(0), emitter.index(headDim), width, [&](Value d) {
      Value acc = vector::LoadOp::create(b, vecType, accumulator, ValueRange{d});
      emitter.storeVectorF32(out, emitter.addIndex(outBase, d),
                             arith::MulFOp::create(b, acc, inverseVector));
    });
  });

  Builder builder(source.getContext());
  return SmallVector<Attribute>{builder.getStringAttr(tokenSymbol),
                                builder.getI64IntegerAttr(heads)};
}
