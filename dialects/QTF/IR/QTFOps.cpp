//===- QTFOps.cpp - qtf op verifiers ------------------------------------===//
//
// Verifiers check the shape contracts that codegen relies on, so a builder
// bug is reported at the op that broke it rather than as wrong numbers.
//
//===----------------------------------------------------------------------===//
#include "qwen/Dialect/QTF/IR/QTF.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"

using namespace mlir;
using namespace qwen::qtf;

/// Two dimensions agree unless both are static and differ.
static bool dimsAgree(int64_t a, int64_t b) {
  return ShapedType::isDynamic(a) || ShapedType::isDynamic(b) || a == b;
}

static RankedTensorType rankedOf(Value v) {
  return cast<RankedTensorType>(v.getType());
}

LogicalResult WeightOp::verify() {
  if (getSources().empty())
    return emitOpError("needs at least one source tensor name");
  if (!getResult().getType().hasStaticShape())
    return emitOpError("result must have a static shape");
  if (isa<Float8E4M3FNType>(getResult().getType().getElementType()) &&
      getResult().getType().getRank() != 2)
    return emitOpError("an f8E4M3FN weight must be 2-D [out, in] (block-wise FP8)");
  return success();
}

LogicalResult EmbeddingOp::verify() {
  RankedTensorType table = rankedOf(getTable()), ids = rankedOf(getIds()),
                   result = rankedOf(getResult());
  if (table.getRank() != 2 || ids.getRank() != 1 || result.getRank() != 2)
    return emitOpError("expects a 2-D table, 1-D ids and a 2-D result");
  if (!dimsAgree(result.getDimSize(0), ids.getDimSize(0)) ||
      !dimsAgree(result.getDimSize(1), table.getDimSize(1)))
    return emitOpError("result must be [num ids, embedding width]");
  return success();
}

LogicalResult MultimodalEmbeddingOp::verify() {
  RankedTensorType table = rankedOf(getTable()), ids = rankedOf(getIds()),
                   rows = rankedOf(getImageRows()), embeds = rankedOf(getImageEmbeds()),
                   result = rankedOf(getResult());
  if (table.getRank() != 2 || ids.getRank() != 1 || rows.getRank() != 1 ||
      embeds.getRank() != 2 || result.getRank() != 2)
    return emitOpError("expects a 2-D table, 1-D ids and image rows, 2-D image "
                       "embeddings and a 2-D result");
  if (!dimsAgree(rows.getDimSize(0), ids.getDimSize(0)))
    return emitOpError("image rows must have one entry per id");
  if (!dimsAgree(embeds.getDimSize(1), table.getDimSize(1)))
    return emitOpError("image embeddings must be as wide as the table");
  if (!embeds.getElementType().isF32() || !result.getElementType().isF32())
    return emitOpError("image embeddings and the result must be f32");
  if (!dimsAgree(result.getDimSize(0), ids.getDimSize(0)) ||
      !dimsAgree(result.getDimSize(1), table.getDimSize(1)))
    return emitOpError("result must be [num ids, embedding width]");
  return success();
}

LogicalResult RmsNormOp::verify() {
  RankedTensorType input = rankedOf(getInput()), weight = rankedOf(getWeight());
  if (input != getResult().getType())
    return emitOpError("result type must equal the input type");
  if (weight.getRank() != 1 ||
      !dimsAgree(weight.getDimSize(0), input.getShape().back()))
    return emitOpError("weight must be 1-D with the size of the last input "
                       "dimension (")
           << input.getShape().back() << ")";
  if (getEpsilon().convertToDouble() <= 0.0)
    return emitOpError("epsilon must be positive");
  return success();
}

LogicalResult LinearOp::verify() {
  RankedTensorType input = rankedOf(getInput()), weight = rankedOf(getWeight()),
                   result = rankedOf(getResult());
  if (input.getRank() != 2 || weight.getRank() != 2 || result.getRank() != 2)
    return emitOpError("expects 2-D input, weight and result");
  if (!dimsAgree(input.getDimSize(1), weight.getDimSize(1)))
    return emitOpError("input features (")
           << input.getDimSize(1) << ") must match weight columns ("
           << weight.getDimSize(1) << ")";
  if (!dimsAgree(result.getDimSize(0), input.getDimSize(0)) ||
      !dimsAgree(result.getDimSize(1), weight.getDimSize(0)))
    return emitOpError("result must be [rows, weight rows]");
  if (Value bias = getBias()) {
    RankedTensorType biasType = rankedOf(bias);
    if (biasType.getRank() != 1 ||
        !dimsAgree(biasType.getDimSize(0), weight.getDimSize(0)))
      return emitOpError("bias must be 1-D with one entry per weight row");
  }
  if (isa<Float8E4M3FNType>(input.getElementType()) ||
      isa<Float8E4M3FNType>(result.getElementType()))
    return emitOpError("fp8 is a weight format only; input and result must be wider floats");
  // Block-wise FP8: the scales and the block come with an f8E4M3FN weight,
  // and only with it.
  const bool fp8 = isa<Float8E4M3FNType>(weight.getElementType());
  Value scale = getWeightScale();
  if (fp8 && !scale)
    return emitOpError("an f8E4M3FN weight needs a block scale operand");
  if (!fp8 && scale)
    return emitOpError("a block scale operand needs an f8E4M3FN weight, got ")
           << weight.getElementType();
  if (static_cast<bool>(getWeightBlockAttr()) != fp8)
    return emitOpError("weight_block is required with a block scale and only with it");
  if (!fp8)
    return success();
  ArrayRef<int64_t> block = *getWeightBlock();
  if (block.size() != 2 || block[0] <= 0 || block[1] <= 0)
    return emitOpError("weight_block must be two positive sizes [rows, columns]");
  if (!weight.hasStaticShape())
    return emitOpError("an f8E4M3FN weight must have a static shape");
  RankedTensorType scaleType = rankedOf(scale);
  SmallVector<int64_t> want = {llvm::divideCeilSigned(weight.getDimSize(0), block[0]),
                               llvm::divideCeilSigned(weight.getDimSize(1), block[1])};
  if (scaleType.getShape() != ArrayRef<int64_t>(want))
    return emitOpError("block scale shape [")
           << scaleType.getShape() << "] does not match " << weight << " in blocks of "
           << block[0] << "x" << block[1] << ", which needs [" << ArrayRef<int64_t>(want)
           << "]";
  return success();
}

LogicalResult SplitOp::verify() {
  RankedTensorType input = rankedOf(getInput());
  ArrayRef<int64_t> sizes = getSizes();
  if (sizes.size() != getResults().size())
    return emitOpError("needs one size per result");
  int64_t total = 0;
  for (auto [size, result] : llvm::zip(sizes, getResults())) {
    RankedTensorType type = rankedOf(result);
    if (size <= 0)
      return emitOpError("sizes must be positive");
    if (type.getRank() != input.getRank() || type.getShape().back() != size ||
        !dimsAgree(type.getDimSize(0), input.getDimSize(0)))
      return emitOpError("result ") << type << " does not match size " << size;
    total += size;
  }
  if (total != input.getShape().back())
    return emitOpError("sizes sum to ")
           << total << " but the last dimension is " << input.getShape().back();
  return success();
}

LogicalResult ReshapeOp::verify() {
  RankedTensorType input = rankedOf(getInput()), result = rankedOf(getResult());
  auto rowElements = [](RankedTensorType t) {
    int64_t n = 1;
    for (int64_t d : t.getShape().drop_front())
      n *= d;
    return n;
  };
  if (input.getRank() < 2 || result.getRank() < 2)
    return emitOpError("expects rank >= 2");
  if (!dimsAgree(input.getDimSize(0), result.getDimSize(0)))
    return emitOpError("must keep the leading dimension");
  if (ShapedType::isDynamicShape(input.getShape().drop_front()) ||
      ShapedType::isDynamicShape(result.getShape().drop_front()) ||
      rowElements(input) != rowElements(result))
    return emitOpError("must keep the number of elements per row");
  return success();
}

LogicalResult RopeOp::verify() {
  RankedTensorType input = rankedOf(getInput());
  if (input.getRank() != 3)
    return emitOpError("expects [tokens, heads, head_dim]");
  if (input != getResult().getType())
    return emitOpError("result type must equal the input type");
  int64_t rotary = static_cast<int64_t>(getRotaryDim()), headDim = input.getDimSize(2);
  if (rotary <= 0 || rotary % 2 != 0 || rotary > headDim)
    return emitOpError("rotary_dim (")
           << rotary << ") must be even, positive and at most head_dim ("
           << headDim << ")";
  if (getTheta().convertToDouble() <= 0.0)
    return emitOpError("theta must be positive");
  RankedTensorType positions = rankedOf(getPositions());
  if (std::optional<ArrayRef<int64_t>> section = getMropeSection()) {
    if (section->size() != 3)
      return emitOpError("mrope_section must have 3 entries (temporal, height, width)");
    int64_t sum = 0;
    for (int64_t s : *section) {
      if (s < 0)
        return emitOpError("mrope_section entries must not be negative");
      sum += s;
    }
    if (sum != rotary / 2)
      return emitOpError("mrope_section must sum to rotary_dim / 2 (")
             << rotary / 2 << "), got " << sum;
    if (positions.getRank() != 2 || positions.getDimSize(1) != 3)
      return emitOpError("with mrope_section, positions must be [tokens, 3]");
  } else if (positions.getRank() != 1) {
    return emitOpError("positions must be [tokens]");
  }
  RopeScalingAttr scaling = getScalingAttr();
  bool needsRows = scaling && scaling.dependsOnLength();
  if (needsRows != static_cast<bool>(getTokenSeq()))
    return emitOpError(needsRows ? "with dynamic or longrope scaling, token_seq is required"
                                 : "token_seq is only taken with dynamic or longrope scaling");
  if (getTokenSeq() && (rankedOf(getTokenSeq()).getRank() != 1 ||
                        !dimsAgree(rankedOf(getTokenSeq()).getDimSize(0), input.getDimSize(0))))
    return emitOpError("token_seq must be [tokens]");
  if (scaling && scaling.getKind() == RopeScalingKind::LongRope &&
      static_cast<int64_t>(scaling.getShortFactor().size()) != rotary / 2)
    return emitOpError("longrope factors must have rotary_dim / 2 (")
           << rotary / 2 << ") entries, got " << scaling.getShortFactor().size();
  return success();
}

LogicalResult SigmoidMulOp::verify() {
  RankedTensorType input = rankedOf(getInput()), gate = rankedOf(getGate());
  if (gate == input)
    return success();
  if (input.getRank() == 2 && gate.getRank() == 2 && gate.getDimSize(1) == 1 &&
      dimsAgree(gate.getDimSize(0), input.getDimSize(0)))
    return success();
  return emitOpError("gate must have the input's shape or be one column, got ")
         << gate << " for " << input;
}

/// The value of a [tokens, heads, width] operand, or failure with a message.
static LogicalResult verifyHeads(Operation *op, StringRef what, Value value,
                                 int64_t heads, int64_t width) {
  RankedTensorType type = rankedOf(value);
  if (type.getRank() != 3 || type.getDimSize(1) != heads || type.getDimSize(2) != width)
    return op->emitOpError() << what << " must be [tokens, " << heads << ", " << width
                             << "], got " << type;
  return success();
}

static LogicalResult verifyStateLayer(Operation *op, LinearStateType state, int64_t layer,
                                      Type result) {
  if (result != state)
    return op->emitOpError("new_state must have the state type");
  if (layer < 0 || layer >= state.getLayers())
    return op->emitOpError("layer ") << layer << " is out of range [0, " << state.getLayers()
                                     << ")";
  return success();
}

LogicalResult CausalConv1dOp::verify() {
  LinearStateType state = getState().getType();
  if (failed(verifyStateLayer(*this, state, static_cast<int64_t>(getLayer()),
                              getNewState().getType())))
    return failure();
  RankedTensorType input = rankedOf(getInput()), weight = rankedOf(getWeight());
  int64_t channels = state.getConvChannels();
  if (input.getRank() != 2 || input.getDimSize(1) != channels)
    return emitOpError("input must be [tokens, ") << channels << "]";
  if (getResult().getType() != input)
    return emitOpError("result type must equal the input type");
  if (weight.getRank() != 2 || weight.getDimSize(0) != channels ||
      weight.getDimSize(1) != state.getConvWindow() + 1)
    return emitOpError("weight must be [") << channels << ", " << state.getConvWindow() + 1
                                           << "] (channels, kernel size)";
  return success();
}

LogicalResult GatedDeltaRuleOp::verify() {
  LinearStateType state = getState().getType();
  if (failed(verifyStateLayer(*this, state, static_cast<int64_t>(getLayer()),
                              getNewState().getType())))
    return failure();
  const int64_t heads = state.getHeads(), dk = state.getKeyDim(), dv = state.getValueDim();
  RankedTensorType query = rankedOf(getQuery());
  if (query.getRank() != 3 || query.getDimSize(2) != dk)
    return emitOpError("query must be [tokens, key_heads, ") << dk << "]";
  int64_t keyHeads = query.getDimSize(1);
  if (keyHeads <= 0 || heads % keyHeads != 0)
    return emitOpError("value heads (") << heads << ") must be a multiple of key heads ("
                                        << keyHeads << ")";
  if (failed(verifyHeads(*this, "key", getKey(), keyHeads, dk)) ||
      failed(verifyHeads(*this, "value", getValue(), heads, dv)))
    return failure();
  for (auto [what, value] : {std::pair<StringRef, Value>{"a", getA()}, {"b", getB()}}) {
    RankedTensorType type = rankedOf(value);
    if (type.getRank() != 2 || type.getDimSize(1) != heads)
      return emitOpError() << what << " must be [tokens, " << heads << "]";
  }
  for (auto [what, value] :
       {std::pair<StringRef, Value>{"a_log", getALog()}, {"dt_bias", getDtBias()}}) {
    RankedTensorType type = rankedOf(value);
    if (type.getRank() != 1 || type.getDimSize(0) != heads)
      return emitOpError() << what << " must be [" << heads << "]";
  }
  if (getResult().getType() != rankedOf(getValue()))
    return emitOpError("result type must equal the value type");
  if (getScale().convertToDouble() <= 0.0)
    return emitOpError("scale must be positive");
  return success();
}

LogicalResult GatedRmsNormOp::verify() {
  RankedTensorType input = rankedOf(getInput()), weight = rankedOf(getWeight());
  if (input.getRank() != 3)
    return emitOpError("expects [tokens, heads, head_dim]");
  if (rankedOf(getGate()) != input || getResult().getType() != input)
    return emitOpError("gate and result must have the input type");
  if (weight.getRank() != 1 || weight.getDimSize(0) != input.getDimSize(2))
    return emitOpError("weight must be [") << input.getDimSize(2) << "]";
  if (getEpsilon().convertToDouble() <= 0.0)
    return emitOpError("epsilon must be positive");
  return success();
}

/// Checks a [tokens, kv_heads, head_dim] tensor against the cache geometry.
static LogicalResult verifyKVOperand(Operation *op, StringRef what,
                                     RankedTensorType type,
                                     KVCacheType cache) {
  if (type.getRank() != 3 || type.getDimSize(1) != cache.getKvHeads() ||
      type.getDimSize(2) != cache.getHeadDim())
    return op->emitOpError() << what << " must be [tokens, "
                             << cache.getKvHeads() << ", "
                             << cache.getHeadDim() << "], got " << type;
  return success();
}

LogicalResult KVCacheWriteOp::verify() {
  KVCacheType cache = getCache().getType();
  if (getResult().getType() != cache)
    return emitOpError("result must have the cache type");
  if (static_cast<int64_t>(getLayer()) >= cache.getLayers())
    return emitOpError("layer ") << getLayer() << " is out of range [0, "
                                 << cache.getLayers() << ")";
  if (failed(verifyKVOperand(*this, "keys", rankedOf(getKeys()), cache)) ||
      failed(verifyKVOperand(*this, "values", rankedOf(getValues()), cache)))
    return failure();
  if (rankedOf(getBlockTable()).getRank() != 2)
    return emitOpError("block_table must be [sequences, pages]");
  return success();
}

LogicalResult PagedAttentionOp::verify() {
  KVCacheType cache = getCache().getType();
  RankedTensorType query = rankedOf(getQuery());
  if (query.getRank() != 3 || query.getDimSize(2) != cache.getHeadDim())
    return emitOpError("query must be [tokens, heads, ")
           << cache.getHeadDim() << "]";
  if (query.getDimSize(1) % cache.getKvHeads() != 0)
    return emitOpError("query heads (")
           << query.getDimSize(1) << ") must be a multiple of kv heads ("
           << cache.getKvHeads() << ")";
  if (getResult().getType() != query)
    return emitOpError("result type must equal the query type");
  if (static_cast<int64_t>(getLayer()) >= cache.getLayers())
    return emitOpError("layer ") << getLayer() << " is out of range [0, "
                                 << cache.getLayers() << ")";
  if (rankedOf(getBlockTable()).getRank() != 2)
    return emitOpError("block_table must be [sequences, pages]");
  return success();
}

LogicalResult GatherRowsOp::verify() {
  RankedTensorType input = rankedOf(getInput()), rows = rankedOf(getRows()),
                   result = rankedOf(getResult());
  if (input.getRank() != 2 || rows.getRank() != 1 || result.getRank() != 2)
    return emitOpError("expects a 2-D input, 1-D rows and a 2-D result");
  if (!dimsAgree(result.getDimSize(0), rows.getDimSize(0)) ||
      result.getDimSize(1) != input.getDimSize(1))
    return emitOpError("result must be [num rows, input width]");
  return success();
}

LogicalResult MoeRouterOp::verify() {
  RankedTensorType logits = rankedOf(getLogits()), ids = rankedOf(getIds()),
                   weights = rankedOf(getWeights());
  int64_t topK = static_cast<int64_t>(getTopK());
  if (logits.getRank() != 2 || ids.getRank() != 2 || weights.getRank() != 2)
    return emitOpError("expects [tokens, experts] logits and [tokens, top_k] results");
  if (topK <= 0 || topK > logits.getDimSize(1))
    return emitOpError("top_k (") << topK << ") must be in [1, "
                                  << logits.getDimSize(1) << "]";
  if (ids.getDimSize(1) != topK || weights.getDimSize(1) != topK ||
      !dimsAgree(ids.getDimSize(0), logits.getDimSize(0)) ||
      !dimsAgree(weights.getDimSize(0), logits.getDimSize(0)))
    return emitOpError("results must be [tokens, ") << topK << "]";
  return success();
}

LogicalResult MoeExpertFfnOp::verify() {
  RankedTensorType input = rankedOf(getInput()), ids = rankedOf(getIds()),
                   weights = rankedOf(getWeights()), gateUp = rankedOf(getGateUp()),
                   down = rankedOf(getDown()), result = rankedOf(getResult());
  int64_t experts = static_cast<int64_t>(getNumExperts());
  int64_t inter = static_cast<int64_t>(getIntermediateSize());
  if (input.getRank() != 2 || ids.getRank() != 2 || weights != RankedTensorType::get(
          ids.getShape(), weights.getElementType()))
    return emitOpError("expects [tokens, hidden] input and matching [tokens, top_k] "
                       "ids and weights");
  int64_t hidden = input.getDimSize(1);
  if (gateUp.getRank() != 2 || gateUp.getDimSize(0) != experts * 2 * inter ||
      gateUp.getDimSize(1) != hidden)
    return emitOpError("gate_up must be [") << experts * 2 * inter << ", " << hidden << "]";
  if (down.getRank() != 2 || down.getDimSize(0) != experts * hidden ||
      down.getDimSize(1) != inter)
    return emitOpError("down must be [") << experts * hidden << ", " << inter << "]";
  if (result.getRank() != 3 || result.getDimSize(1) != ids.getDimSize(1) ||
      result.getDimSize(2) != hidden)
    return emitOpError("result must be [tokens, top_k, hidden]");
  // Block-wise FP8: both weights f8E4M3FN, both scales and the block, or none.
  auto isFp8 = [](RankedTensorType t) { return isa<Float8E4M3FNType>(t.getElementType()); };
  Value gateUpScale = getGateUpScale(), downScale = getDownScale();
  bool quantized = static_cast<bool>(gateUpScale);
  if (static_cast<bool>(downScale) != quantized ||
      static_cast<bool>(getWeightBlockAttr()) != quantized || isFp8(gateUp) != quantized ||
      isFp8(down) != quantized)
    return emitOpError("block-wise FP8 experts need f8E4M3FN gate_up and down weights, both "
                       "scales and weight_block; unquantized experts none of them");
  if (!quantized)
    return success();
  ArrayRef<int64_t> block = *getWeightBlock();
  if (block.size() != 2 || block[0] <= 0 || block[1] <= 0)
    return emitOpError("weight_block must be two positive sizes [rows, columns]");
  auto checkScale = [&](Value scale, StringRef name, int64_t matrices, int64_t rows,
                        int64_t columns) -> LogicalResult {
    SmallVector<int64_t> want = {matrices * llvm::divideCeilSigned(rows, block[0]),
                                 llvm::divideCeilSigned(columns, block[1])};
    if (rankedOf(scale).getShape() != ArrayRef<int64_t>(want))
      return emitOpError() << name << " shape [" << rankedOf(scale).getShape()
                           << "] does not match " << matrices << " matrices of " << rows << "x"
                           << columns << " in blocks of " << block[0] << "x" << block[1]
                           << ", which needs [" << ArrayRef<int64_t>(want) << "]";
    return success();
  };
  if (failed(checkScale(gateUpScale, "gate_up_scale", experts * 2, inter, hidden)))
    return failure();
  return checkScale(downScale, "down_scale", experts, hidden, inter);
}

LogicalResult MoeCombineOp::verify() {
  RankedTensorType slots = rankedOf(getSlots()), result = rankedOf(getResult());
  if (slots.getRank() != 3 || result.getRank() != 2 ||
      result.getDimSize(1) != slots.getDimSize(2) ||
      !dimsAgree(result.getDimSize(0), slots.getDimSize(0)))
    return emitOpError("expects [tokens, top_k, hidden] -> [tokens, hidden]");
  return success();
}

#define GET_OP_CLASSES
#include "qwen/Dialect/QTF/IR/QTFOps.cpp.inc"
