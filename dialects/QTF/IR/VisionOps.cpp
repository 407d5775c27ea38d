//===- VisionOps.cpp - Verifiers of the vision-encoder ops ----------------===//
//
// The shape contracts of layer_norm, rotary_embedding, segment_attention,
// weighted_gather and merge_rows (QTFOps.td, "Vision encoder").
//
//===----------------------------------------------------------------------===//
#include "qwen/Dialect/QTF/IR/QTF.h"

using namespace mlir;
using namespace qwen::qtf;

/// Two dimensions agree unless both are static and differ.
static bool agree(int64_t a, int64_t b) {
  return ShapedType::isDynamic(a) || ShapedType::isDynamic(b) || a == b;
}

static RankedTensorType typeOf(Value v) { return cast<RankedTensorType>(v.getType()); }

LogicalResult LayerNormOp::verify() {
  RankedTensorType input = typeOf(getInput());
  if (input != getResult().getType())
    return emitOpError("result type must equal the input type");
  const int64_t width = input.getShape().back();
  for (auto [name, value] : {std::pair<StringRef, Value>{"weight", getWeight()},
                             std::pair<StringRef, Value>{"bias", getBias()}}) {
    RankedTensorType type = typeOf(value);
    if (type.getRank() != 1 || !agree(type.getDimSize(0), width))
      return emitOpError() << name << " must be 1-D with the size of the last input "
                           << "dimension (" << width << ")";
  }
  if (getEpsilon().convertToDouble() <= 0.0)
    return emitOpError("epsilon must be positive");
  return success();
}

LogicalResult RotaryEmbeddingOp::verify() {
  RankedTensorType input = typeOf(getInput());
  if (input.getRank() != 3)
    return emitOpError("expects [tokens, heads, head_dim] input");
  if (input != getResult().getType())
    return emitOpError("result type must equal the input type");
  const int64_t headDim = input.getDimSize(2);
  if (headDim % 2 != 0)
    return emitOpError("head_dim must be even");
  for (auto [name, value] : {std::pair<StringRef, Value>{"cos", getCos()},
                             std::pair<StringRef, Value>{"sin", getSin()}}) {
    RankedTensorType type = typeOf(value);
    if (type.getRank() != 2 || !agree(type.getDimSize(0), input.getDimSize(0)) ||
        type.getDimSize(1) != headDim / 2 || !type.getElementType().isF32())
      return emitOpError() << name << " must be [tokens, " << headDim / 2 << "] f32";
  }
  return success();
}

LogicalResult SegmentAttentionOp::verify() {
  RankedTensorType query = typeOf(getQuery());
  if (query.getRank() != 3)
    return emitOpError("expects [tokens, heads, head_dim] query");
  if (typeOf(getKey()) != query || typeOf(getValue()) != query ||
      getResult().getType() != query)
    return emitOpError("key, value and result must have the query type");
  RankedTensorType bounds = typeOf(getSegmentBounds());
  if (bounds.getRank() != 2 || bounds.getDimSize(1) != 2 ||
      !agree(bounds.getDimSize(0), query.getDimSize(0)))
    return emitOpError("segment_bounds must be [tokens, 2] (begin, end of each token's segment)");
  if (getScale().convertToDouble() <= 0.0)
    return emitOpError("scale must be positive");
  return success();
}

LogicalResult WeightedGatherOp::verify() {
  RankedTensorType table = typeOf(getTable()), indices = typeOf(getIndices()),
                   weights = typeOf(getWeights()), result = typeOf(getResult());
  if (table.getRank() != 2 || !table.hasStaticShape())
    return emitOpError("table must be a static [rows, width] tensor");
  if (indices.getRank() != 2 || ShapedType::isDynamic(indices.getDimSize(1)))
    return emitOpError("indices must be [tokens, taps] with a static tap count");
  if (weights.getRank() != 2 || !weights.getElementType().isF32() ||
      !agree(weights.getDimSize(0), indices.getDimSize(0)) ||
      weights.getDimSize(1) != indices.getDimSize(1))
    return emitOpError("weights must be f32 of the indices' shape");
  if (result.getRank() != 2 || !agree(result.getDimSize(0), indices.getDimSize(0)) ||
      result.getDimSize(1) != table.getDimSize(1))
    return emitOpError("result must be [tokens, ") << table.getDimSize(1) << "]";
  return success();
}

LogicalResult MergeRowsOp::verify() {
  RankedTensorType input = typeOf(getInput()), result = typeOf(getResult());
  const int64_t factor = static_cast<int64_t>(getFactor());
  if (factor < 1)
    return emitOpError("factor must be positive");
  if (input.getRank() != 2 || result.getRank() != 2 ||
      input.getElementType() != result.getElementType())
    return emitOpError("expects 2-D input and result of one element type");
  if (result.getDimSize(1) != factor * input.getDimSize(1))
    return emitOpError("result rows must be ") << factor * input.getDimSize(1) << " wide";
  if (!input.isDynamicDim(0) && !result.isDynamicDim(0) &&
      input.getDimSize(0) != factor * result.getDimSize(0))
    return emitOpError("input rows must be factor times the result rows");
  return success();
}
