//===- LayerNorm.cpp - layer_norm rows, for every target ------------------===//
//
// y = (x - mean) * rsqrt(var + eps) * w + b over the last dimension, the
// biased variance of torch.nn.LayerNorm, two passes over a scratch row:
// the sum (mean), then the sum of squared deviations.
//
//===----------------------------------------------------------------------===//
#include "qwen/Passes/Codegen/Common/KernelPatterns.h"
#include "qwen/Passes/Codegen/Common/VisionFamilies.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen;

FailureOr<Grid> qwen::codegen::lowerLayerNormKernel(KernelTarget &t) {
  func::FuncOp source = t.source();
  auto matched = matchSingleOpKernel<qtf::LayerNormOp>(source, "layer_norm");
  if (failed(matched))
    return failure();
  qtf::LayerNormOp norm = matched->first;
  const unsigned output = matched->second;
  auto type = cast<RankedTensorType>(norm.getResult().getType());
  if (type.getRank() != 2)
    return source.emitOpError("layer_norm kernel expects [rows, width]"), failure();
  const int64_t length = type.getDimSize(1);
  const int64_t width = t.rowWidth(length);
  const float eps = static_cast<float>(norm.getEpsilon().convertToDouble());

  t.buildKernel(t.itemThreads(), [&](Value token) {
    ImplicitLocOpBuilder &b = t.builder();
    auto vecType = VectorType::get({width}, b.getF32Type());
    RowAccess input = t.access(norm.getInput()), weight = t.access(norm.getWeight()),
              bias = t.access(norm.getBias()), out = t.result(output);
    Value row = t.scratchRow(length);
    Value inBase = t.address(input, token, Value(), Value());
    Value zero = arith::ConstantOp::create(b, DenseElementsAttr::get(vecType, 0.0f));
    Value sums = t.forLanes(length, width, zero, [&](Value c, Value acc) {
      Value x = t.loadVectorF32(input, t.addIndex(inBase, c), width);
      t.storeScratch(row, c, x);
      return arith::AddFOp::create(b, acc, x).getResult();
    });
    Value sum = t.sumAcrossLanes(vector::ReductionOp::create(b, vector::CombiningKind::ADD, sums));
    Value lengthF = t.f32(static_cast<float>(length));
    Value mean = vector::BroadcastOp::create(b, vecType, arith::DivFOp::create(b, sum, lengthF));
    Value squares = t.forLanes(length, width, zero, [&](Value c, Value acc) {
      Value d = arith::SubFOp::create(b, t.loadScratch(row, c, width), mean);
      return vector::FMAOp::create(b, d, d, acc).getResult();
    });
    Value variance = arith::DivFOp::create(
        b, t.sumAcrossLanes(vector::ReductionOp::create(b, vector::CombiningKind::ADD, squares)),
        lengthF);
    Value scale = vector::BroadcastOp::create(
        b, vecType, t.rsqrt(arith::AddFOp::create(b, variance, t.f32(eps))));
    Value outBase = t.mulIndex(token, length);
    t.forLanes(length, width, [&](Value c) {
      Value d = arith::SubFOp::create(b, t.loadScratch(row, c, width), mean);
      Value normed = arith::MulFOp::create(b, d, scale);
      Value y = arith::AddFOp::create(
          b, arith::MulFOp::create(b, normed, t.loadVectorF32(weight, c, width)),
          t.loadVectorF32(bias, c, width));
      t.store(out, t.addIndex(outBase, c), y);
    });
  });
  return t.gridOf(t.leadingSymbol(norm.getResult()), 1);
}
