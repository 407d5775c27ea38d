//===- Qwen3VisionBuilder.cpp - The qtf graph of the Qwen3.5 ViT ----------===//
//
// Qwen3_5VisionModel.forward op for op (transformers models/qwen3_5; the
// Qwen3.5-MoE tower is the same code): the Conv3d patch embedding, whose
// kernel equals its stride, is a linear over each flattened pixel_values row;
// the learned position grid resampled to the image (4 taps per patch from
// the host) is added; each block is LayerNorm -> qkv (bias) -> 2-D rotary on
// q and k -> attention within the patch's image -> proj -> residual,
// LayerNorm -> fc1 -> GELU -> fc2 -> residual; the merger is LayerNorm ->
// each 2x2 block's rows side by side -> fc1 -> exact GELU -> fc2. No
// DeepStack taps (Qwen3.5 has none).
//
//===----------------------------------------------------------------------===//
#include "qwen/Models/Qwen3/Qwen3VisionBuilder.h"
#include "qwen/Models/Qwen3/Qwen3Config.h"
#include "models/qwen3/JsonInteger.h"

#include "qwen/Dialect/QTF/IR/QTF.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/Support/JSON.h"

#include <cmath>

using namespace mlir;
using namespace qwen;
using namespace qwen::models;

static llvm::Error configError(llvm::StringRef path, const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 path + ": vision_config: " + message);
}

llvm::Expected<std::optional<VisionConfig>>
qwen::models::parseVisionConfig(llvm::StringRef jsonText, llvm::StringRef path,
                                llvm::StringRef weightDType) {
  llvm::Expected<llvm::json::Value> json = parseConfigJson(jsonText, path);
  if (!json)
    return json.takeError();
  const llvm::json::Object *root = json->getAsObject();
  const llvm::json::Object *vision = root ? root->getObject("vision_config") : nullptr;
  if (!vision)
    return std::optional<VisionConfig>();
  VisionConfig c;
  c.weightDType = weightDType.str();
  std::string problem;
  auto integer = [&](llvm::StringRef key, int64_t &field) {
    const llvm::json::Value *value = vision->get(key);
    if (!value || value->kind() == llvm::json::Value::Null)
      return;
    std::optional<int64_t> number = getJsonInteger(*value);
    if (!number || *number <= 0)
      problem = "'" + key.str() + "' must be a positive integer";
    else
      field = *number;
  };
  integer("depth", c.depth);
  integer("hidden_size", c.hiddenSize);
  integer("intermediate_size", c.intermediateSize);
  integer("num_heads", c.numHeads);
  integer("in_channels", c.inChannels);
  integer("patch_size", c.patchSize);
  integer("temporal_patch_size", c.temporalPatchSize);
  integer("spatial_merge_size", c.spatialMergeSize);
  integer("out_hidden_size", c.outHiddenSize);
  integer("num_position_embeddings", c.numPositionEmbeddings);
  if (!problem.empty())
    return configError(path, problem);
  if (const llvm::json::Object *rope = vision->getObject("rope_parameters")) {
    if (std::optional<double> theta = rope->getNumber("rope_theta"))
      c.ropeTheta = *theta;
    if (std::optional<llvm::StringRef> type = rope->getString("rope_type"); type && *type != "axial")
      return configError(path, "rope_type \"" + *type + "\" is not supported (axial)");
  }
  std::string act = vision->getString("hidden_act").value_or("gelu_pytorch_tanh").str();
  if (act == "gelu_pytorch_tanh" || act == "gelu_new")
    c.tanhGelu = true;
  else if (act == "gelu")
    c.tanhGelu = false;
  else
    return configError(path, "hidden_act \"" + act + "\" is not supported (gelu_pytorch_tanh, gelu)");
  if (c.hiddenSize % c.numHeads != 0 || c.headDim() % 4 != 0)
    return configError(path, "hidden_size / num_heads must be a multiple of 4 (2-D rotary)");
  const auto side = static_cast<int64_t>(std::llround(std::sqrt(double(c.numPositionEmbeddings))));
  if (side * side != c.numPositionEmbeddings)
    return configError(path, "num_position_embeddings must be a square");
  return std::optional<VisionConfig>(c);
}

namespace {
class VisionGraphBuilder {
public:
  VisionGraphBuilder(OpBuilder &b, const VisionConfig &c, Location loc)
      : b(b), c(c), loc(loc), f32(b.getF32Type()) {
    weightType = c.weightDType == "f32"   ? Type(b.getF32Type())
                 : c.weightDType == "f16" ? Type(b.getF16Type())
                                          : Type(b.getBF16Type());
  }

  RankedTensorType rows(ArrayRef<int64_t> trailing, Type element = {}) {
    SmallVector<int64_t> shape = {ShapedType::kDynamic};
    shape.append(trailing.begin(), trailing.end());
    return RankedTensorType::get(shape, element ? element : f32);
  }
  Value weight(const std::string &name, ArrayRef<int64_t> shape) {
    return qtf::WeightOp::create(b, loc, RankedTensorType::get(shape, weightType),
                                 b.getStrArrayAttr({c.prefix + name}));
  }
  Value linear(Value x, const std::string &name, int64_t in, int64_t out) {
    Value bias = weight(name + ".bias", {out});
    if (!isFp8Weight(name))
      return qtf::LinearOp::create(b, loc, rows({out}), x, weight(name + ".weight", {out, in}), bias);
    // Block-wise FP8: the 1-byte weights and their f32 block scales stay as
    // stored; the matmul kernels apply the scales (as the text model's).
    const std::array<int64_t, 2> block = c.quantization.fp8Block;
    Value w = qtf::WeightOp::create(b, loc, RankedTensorType::get({out, in}, b.getType<Float8E4M3FNType>()),
                                    b.getStrArrayAttr({c.prefix + name + ".weight"}));
    Value scale = qtf::WeightOp::create(
        b, loc,
        RankedTensorType::get({llvm::divideCeilSigned(out, block[0]), llvm::divideCeilSigned(in, block[1])}, f32),
        b.getStrArrayAttr({c.prefix + name + ".weight_scale_inv"}));
    return qtf::LinearOp::create(b, loc, rows({out}), x, w, scale, bias, b.getDenseI64ArrayAttr(block));
  }
  /// Whether the linear `name` (under the tower's prefix) reads block-wise
  /// FP8 weights: with a checkpoint, those whose weight has a
  /// weight_scale_inv (HF's quantizer converts nn.Linear only, so the Conv3d
  /// patch embedding never is); without one, the linears
  /// modules_to_not_convert does not name (a substring of the module, as HF
  /// matches).
  bool isFp8Weight(const std::string &name) const {
    if (!c.quantization.isFp8() || name == "patch_embed.proj")
      return false;
    const std::string module = c.prefix + name;
    if (c.hasTensor)
      return c.hasTensor(module + ".weight_scale_inv");
    return llvm::none_of(c.quantization.modulesToNotConvert,
                         [&](const std::string &skip) { return llvm::StringRef(module).contains(skip); });
  }
  Value layerNorm(Value x, const std::string &name, int64_t width) {
    return qtf::LayerNormOp::create(b, loc, x.getType(), x, weight(name + ".weight", {width}),
                                    weight(name + ".bias", {width}), b.getF64FloatAttr(1e-6));
  }
  Value gelu(Value x, bool tanh) {
    auto kind = tanh ? qtf::GeluApproximation::Tanh : qtf::GeluApproximation::Erf;
    return qtf::GeluOp::create(b, loc, x,
                               qtf::GeluApproximationAttr::get(b.getContext(), kind));
  }
  Value reshape(Value x, ArrayRef<int64_t> trailing) {
    return qtf::ReshapeOp::create(b, loc, rows(trailing), x);
  }

  /// Qwen3_5VisionBlock.
  Value block(Value x, const std::string &p, Value cos, Value sin, Value bounds) {
    const int64_t hidden = c.hiddenSize, heads = c.numHeads, hd = c.headDim();
    Value xn = layerNorm(x, p + "norm1", hidden);
    // qkv rows are q | k | v, each head-major (reshape(N, 3, heads, hd)).
    Value qkv = linear(xn, p + "attn.qkv", hidden, 3 * hidden);
    auto split = qtf::SplitOp::create(b, loc, TypeRange{rows({hidden}), rows({hidden}), rows({hidden})},
                                      qkv, b.getDenseI64ArrayAttr({hidden, hidden, hidden}));
    auto rotate = [&](Value v) {
      Value heads3 = reshape(v, {heads, hd});
      return qtf::RotaryEmbeddingOp::create(b, loc, heads3.getType(), heads3, cos, sin)
          .getResult();
    };
    Value q = rotate(split.getResult(0)), k = rotate(split.getResult(1));
    Value v = reshape(split.getResult(2), {heads, hd});
    Value o = qtf::SegmentAttentionOp::create(b, loc, q.getType(), q, k, v, bounds,
                                              b.getF64FloatAttr(1.0 / std::sqrt(double(hd))));
    Value h = qtf::AddOp::create(b, loc, x,
                                 linear(reshape(o, {hidden}), p + "attn.proj", hidden, hidden));
    Value hn = layerNorm(h, p + "norm2", hidden);
    Value up = gelu(linear(hn, p + "mlp.linear_fc1", hidden, c.intermediateSize), c.tanhGelu);
    return qtf::AddOp::create(b, loc, h,
                              linear(up, p + "mlp.linear_fc2", c.intermediateSize, hidden));
  }

  OpBuilder &b;
  const VisionConfig &c;
  Location loc;
  Type f32, weightType;
};
} // namespace

void qwen::models::buildQwen3VisionGraph(ModuleOp module, const VisionConfig &config) {
  MLIRContext *context = module.getContext();
  context->loadDialect<qtf::QTFDialect, func::FuncDialect>();
  Location loc = NameLoc::get(StringAttr::get(context, "vision"));
  OpBuilder b(context);
  b.setInsertionPointToEnd(module.getBody());
  VisionGraphBuilder g(b, config, loc);
  const int64_t hidden = config.hiddenSize, half = config.headDim() / 2;
  const int64_t merged = hidden * config.mergeUnit();
  Type i32 = b.getI32Type();

  SmallVector<Type> argTypes = {g.rows({config.patchRowSize()}), g.rows({4}, i32), g.rows({4}),
                                g.rows({half}), g.rows({half}), g.rows({2}, i32)};
  const char *names[] = {"pixel_values", "pos_indices", "pos_weights",
                         "rope_cos",     "rope_sin",    "segment_bounds"};
  auto outType = g.rows({config.outHiddenSize});
  auto func = func::FuncOp::create(b, loc, "vision", b.getFunctionType(argTypes, {outType}));
  for (auto [index, name] : llvm::enumerate(names))
    func.setArgAttr(index, "qtf.input", b.getStringAttr(name));
  func.setResultAttr(0, "qtf.output", b.getStringAttr("vision_embeddings"));
  Block *entry = func.addEntryBlock();
  b.setInsertionPointToStart(entry);
  Value pixels = entry->getArgument(0), cos = entry->getArgument(3), sin = entry->getArgument(4);
  Value bounds = entry->getArgument(5);

  // Conv3d with kernel == stride over a [C, T, P, P] patch: a linear over the
  // flattened row (the weight [hidden, C, T, P, P] read as [hidden, C*T*P*P]).
  Value x = g.linear(pixels, "patch_embed.proj", config.patchRowSize(), hidden);
  Value table = g.weight("pos_embed.weight", {config.numPositionEmbeddings, hidden});
  Value pos = qtf::WeightedGatherOp::create(b, loc, g.rows({hidden}), table,
                                            entry->getArgument(1), entry->getArgument(2));
  x = qtf::AddOp::create(b, loc, x, pos);
  for (int64_t layer = 0; layer < config.depth; ++layer)
    x = g.block(x, "blocks." + std::to_string(layer) + ".", cos, sin, bounds);

  Value normed = g.layerNorm(x, "merger.norm", hidden);
  Value blocks = qtf::MergeRowsOp::create(b, loc, g.rows({merged}), normed,
                                          b.getI64IntegerAttr(config.mergeUnit()));
  Value h = g.gelu(g.linear(blocks, "merger.linear_fc1", merged, merged), /*tanh=*/false);
  Value out = g.linear(h, "merger.linear_fc2", merged, config.outHiddenSize);
  func::ReturnOp::create(b, loc, out);
}
