//===- SegmentAttention.cpp - non-causal attention within segments --------===//
//
// One work item per (query row, head): an online softmax (running max m and
// sum l, accumulator in a scratch row) over the keys s with
// bounds[t][0] <= s < bounds[t][1], scores q.k * scale in f32, then
// out = acc / l. Every lane of an item gets the same score (sumAcrossLanes),
// so m and l are uniform and the accumulator columns stay lane-private.
//
//===----------------------------------------------------------------------===//
#include "qwen/Passes/Codegen/Common/KernelPatterns.h"
#include "qwen/Passes/Codegen/Common/VisionFamilies.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

#include <limits>

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen;

FailureOr<Grid> qwen::codegen::lowerSegmentAttentionKernel(KernelTarget &t) {
  func::FuncOp source = t.source();
  auto matched = matchSingleOpKernel<qtf::SegmentAttentionOp>(source, "segment_attention");
  if (failed(matched))
    return failure();
  qtf::SegmentAttentionOp attention = matched->first;
  const unsigned output = matched->second;
  auto type = cast<RankedTensorType>(attention.getResult().getType());
  const int64_t heads = type.getDimSize(1), headDim = type.getDimSize(2);
  const int64_t width =
      t.rowWidth(headDim);
  const float scale = static_cast<float>(attention.getScale().convertToDouble());

  t.buildKernel(t.itemThreads(), [&](Value item) {
    ImplicitLocOpBuilder &b = t.builder();
    auto vecType = VectorType::get({width}, b.getF32Type());
    RowAccess query = t.access(attention.getQuery()), key = t.access(attention.getKey()),
              value = t.access(attention.getValue()),
              bounds = t.access(attention.getSegmentBounds()), out = t.result(output);
    Value token = t.divIndex(item, heads);
    Value head = t.remIndex(item, heads);
    Value begin = t.loadIndex(bounds, t.mulIndex(token, 2));
    Value end = t.loadIndex(bounds, t.addIndex(t.mulIndex(token, 2), t.index(1)));
    Value zero = arith::ConstantOp::create(b, DenseElementsAttr::get(vecType, 0.0f));
    Value acc = t.scratchRow(headDim);
    t.forLanes(headDim, width, [&](Value c) { t.storeScratch(acc, c, zero); });
    Value qBase = t.address(query, token, head, Value());

    Value minusInf = t.f32(-std::numeric_limits<float>::infinity());
    ValueRange state = t.forLoop(
        begin, end, 1, ValueRange{minusInf, t.f32(0.0f)},
        [&](Value s, ValueRange carried) -> SmallVector<Value> {
          Value m = carried[0], l = carried[1];
          Value kBase = t.address(key, s, head, Value());
          Value partial = t.forLanes(headDim, width, zero, [&](Value c, Value sum) {
            Value q = t.loadVectorF32(query, t.addIndex(qBase, c), width);
            Value k = t.loadVectorF32(key, t.addIndex(kBase, c), width);
            return vector::FMAOp::create(b, q, k, sum).getResult();
          });
          Value dot = t.sumAcrossLanes(
              vector::ReductionOp::create(b, vector::CombiningKind::ADD, partial));
          Value score = arith::MulFOp::create(b, dot, t.f32(scale));
          Value mNew = arith::MaximumFOp::create(b, m, score);
          Value correction = math::ExpOp::create(b, arith::SubFOp::create(b, m, mNew));
          Value p = math::ExpOp::create(b, arith::SubFOp::create(b, score, mNew));
          Value lNew = arith::AddFOp::create(b, arith::MulFOp::create(b, l, correction), p);
          Value correctionVec = vector::BroadcastOp::create(b, vecType, correction);
          Value pVec = vector::BroadcastOp::create(b, vecType, p);
          Value vBase = t.address(value, s, head, Value());
          t.forLanes(headDim, width, [&](Value c) {
            Value v = t.loadVectorF32(value, t.addIndex(vBase, c), width);
            Value scaled = arith::MulFOp::create(b, t.loadScratch(acc, c, width), correctionVec);
            t.storeScratch(acc, c, vector::FMAOp::create(b, pVec, v, scaled));
          });
          return {mNew, lNew};
        });
    Value inverse = vector::BroadcastOp::create(
        b, vecType, arith::DivFOp::create(b, t.f32(1.0f), state[1]));
    Value outBase = t.mulIndex(item, headDim);
    t.forLanes(headDim, width, [&](Value c) {
      t.store(out, t.addIndex(outBase, c),
              arith::MulFOp::create(b, t.loadScratch(acc, c, width), inverse));
    });
  });
  return t.gridOf(t.leadingSymbol(attention.getResult()), heads);
}
