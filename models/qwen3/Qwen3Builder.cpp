//===- Qwen3Builder.cpp - Emit the qtf graph of a Qwen3-family model ------===//
//
// The graph follows HF's modeling code op for op (qwen-models.md §1-§4):
// Qwen3 / Qwen3-MoE decoder layers, and for the hybrid families (Qwen3-Next,
// Qwen3.5, Qwen3.5-MoE) zero-centred norms, gated full attention with partial
// RoPE / MRoPE, and Gated DeltaNet layers. Checkpoint layouts that differ
// between releases (Qwen3-Next's grouped projections, the per-head
// interleaved q|gate rows) are undone by naming row slices of the stored
// tensors, so the graph always sees the flat layout; stacking projections
// that share an input is left to the graph passes.
//
//===----------------------------------------------------------------------===//
#include "qwen/Models/Qwen3/Qwen3Builder.h"

#include "qwen/Dialect/QTF/IR/QTF.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

#include <cmath>
#include <numeric>
#include <optional>

using namespace mlir;
using namespace qwen;
using namespace qwen::models;

namespace {
/// A checkpoint tensor, or rows [begin, end) of one ("name[begin:end]").
std::string rowSlice(const std::string &name, int64_t begin, int64_t end) {
  return name + "[" + std::to_string(begin) + ":" + std::to_string(end) + "]";
}

class Qwen3GraphBuilder {
public:
  /// The step arguments the layers read.
  struct StepInputs {
    Value positions, tokenSeq, blockTable, mropePositions, stateSlots;
  };

  Qwen3GraphBuilder(OpBuilder &builder, const Qwen3Config &config,
                    const BuildOptions &options, Location loc)
      : b(builder), config(config), options(options), loc(loc), f32(builder.getF32Type()) {
    if (config.weightDType == "f32")
      weightType = b.getF32Type();
    else if (config.weightDType == "f16")
      weightType = b.getF16Type();
    else
      weightType = b.getBF16Type();
    prefix = config.weightPrefix;
    // Checkpoints saved by the text-only class keep "model." even for a
    // multimodal config.
    if (options.hasTensor && !options.hasTensor(prefix + "embed_tokens.weight") &&
        options.hasTensor("model.embed_tokens.weight"))
      prefix = "model.";
    // Qwen3-Embedding is published as a bare Qwen3Model: no "model." prefix.
    if (options.hasTensor && !options.hasTensor(prefix + "embed_tokens.weight") &&
        options.hasTensor("embed_tokens.weight"))
      prefix = "";
  }

  /// Whether the checkpoint (if one is known) has `name`.
  std::optional<bool> has(const std::string &name) const {
    if (!options.hasTensor)
      return std::nullopt;
    return options.hasTensor(name);
  }

  /// Checkpoint tensors (or row slices) concatenated along rows.
  Value weight(ArrayRef<std::string> sources, ArrayRef<int64_t> shape, Type type = {}) {
    SmallVector<StringRef> names(sources.begin(), sources.end());
    return qtf::WeightOp::create(b, loc, RankedTensorType::get(shape, type ? type : weightType),
                                 b.getStrArrayAttr(names));
  }
  Value weight(const std::string &name, ArrayRef<int64_t> shape, Type type = {}) {
    return weight(ArrayRef<std::string>{name}, shape, type);
  }

  RankedTensorType rows(ArrayRef<int64_t> trailing) {
    SmallVector<int64_t> shape = {ShapedType::kDynamic};
    shape.append(trailing.begin(), trailing.end());
    return RankedTensorType::get(shape, f32);
  }

  /// RMSNorm over the last dimension; zero-centred ((1 + w)) in the hybrid families.
  Value rmsNorm(Value x, const std::string &weightName, int64_t width) {
    return qtf::RmsNormOp::create(b, loc, x.getType(), x, weight(weightName, {width}),
                                  b.getF64FloatAttr(config.rmsNormEps),
                                  config.hybrid ? b.getUnitAttr() : nullptr);
  }

  Value linear(Value x, Value w, int64_t out) {
    return qtf::LinearOp::create(b, loc, rows({out}), x, w, Value());
  }
  Value linear(Value x, const std::string &prefix, int64_t in, int64_t out, bool bias) {
    Value biasValue = bias ? weight(prefix + ".bias", {out}) : Value();
    const std::string name = prefix + ".weight";
    if (!isFp8Weight(prefix)) {
      Value w = weight(name, {out, in});
      return qtf::LinearOp::create(b, loc, rows({out}), x, w, biasValue);
    }
    // Block-wise FP8: the 1-byte weights and their f32 block scales
    // (weight_scale_inv) stay as they are; the kernels apply the scales.
    const std::array<int64_t, 2> block = config.quantization.fp8Block;
    Value w = weight(name, {out, in}, b.getType<Float8E4M3FNType>());
    Value scale = weight(name + "_scale_inv",
                         {llvm::divideCeilSigned(out, block[0]), llvm::divideCeilSigned(in, block[1])}, f32);
    return qtf::LinearOp::create(b, loc, rows({out}), x, w, scale, biasValue,
                                 b.getDenseI64ArrayAttr(block));
  }

  /// A linear over rows [begin, end) of each of `slices` of `module`'s weight,
  /// stacked (the layouts the graph undoes: Qwen3.5's per-head q|gate rows,
  /// Qwen3-Next's grouped projections). Block-wise FP8 slices stay fp8 with
  /// block rows g = gcd of the checkpoint's block rows and every slice's
  /// start and length: each g-row block lies inside one checkpoint block and
  /// takes its scales (row slices of weight_scale_inv, a row repeated when
  /// g is smaller). Aligned slices (g = the block rows) read the scales as
  /// stored.
  Value slicedLinear(Value x, const std::string &module, ArrayRef<std::pair<int64_t, int64_t>> slices,
                     int64_t in) {
    const std::string name = module + ".weight";
    std::vector<std::string> rowsOf;
    int64_t out = 0;
    for (auto [begin, end] : slices) {
      rowsOf.push_back(rowSlice(name, begin, end));
      out += end - begin;
    }
    if (!isFp8Weight(module))
      return linear(x, weight(rowsOf, {out, in}), out);
    const std::array<int64_t, 2> block = config.quantization.fp8Block;
    int64_t g = block[0];
    for (auto [begin, end] : slices)
      g = std::gcd(g, std::gcd(begin, end - begin));
    // One source per run of consecutive scale rows.
    std::vector<std::string> scaleRows;
    int64_t runBegin = -1, runEnd = -1;
    auto flush = [&] {
      if (runBegin >= 0)
        scaleRows.push_back(rowSlice(name + "_scale_inv", runBegin, runEnd));
    };
    for (auto [begin, end] : slices)
      for (int64_t row = begin; row < end; row += g) {
        int64_t scaleRow = row / block[0];
        if (scaleRow == runEnd) {
          ++runEnd;
          continue;
        }
        flush();
        runBegin = scaleRow;
        runEnd = scaleRow + 1;
      }
    flush();
    Value w = weight(rowsOf, {out, in}, b.getType<Float8E4M3FNType>());
    Value scale = weight(scaleRows, {out / g, llvm::divideCeilSigned(in, block[1])}, f32);
    return qtf::LinearOp::create(b, loc, rows({out}), x, w, scale, Value(),
                                 b.getDenseI64ArrayAttr({g, block[1]}));
  }

  /// Whether the linear `module` reads block-wise FP8 weights: in an FP8
  /// checkpoint, the modules whose weight has a weight_scale_inv; without a
  /// checkpoint, those quantization_config.modules_to_not_convert leaves
  /// out (HF skips a module whose name contains an entry).
  bool isFp8Weight(const std::string &module) const {
    if (!config.quantization.isFp8() || !options.fp8Weights)
      return false;
    if (std::optional<bool> scaled = has(module + ".weight_scale_inv"))
      return *scaled;
    return llvm::none_of(config.quantization.modulesToNotConvert, [&](const std::string &skip) {
      return llvm::StringRef(module).contains(skip);
    });
  }

  /// Whether the routed experts `module` are block-wise FP8 (their first
  /// weight `firstWeight`, a tensor name without ".weight", has a
  /// weight_scale_inv). The fused layout ([E, 2I, H], one block grid over
  /// each expert's gate and up rows) stays fp8 only when the block rows
  /// divide I, so that no block holds both gate and up rows; otherwise the
  /// runtime dequantizes it when binding.
  bool fp8Experts(const std::string &module, const std::string &firstWeight) const {
    if (!config.quantization.isFp8() || !options.fp8Weights)
      return false;
    std::string fusedGateUp = module + ".gate_up_proj";
    bool fused = firstWeight == fusedGateUp;
    if (fused && config.moeIntermediateSize % config.quantization.fp8Block[0] != 0)
      return false;
    std::string scaleName = fused ? fusedGateUp + "_scale_inv" : firstWeight + ".weight_scale_inv";
    if (std::optional<bool> scaled = has(scaleName))
      return *scaled;
    return llvm::none_of(config.quantization.modulesToNotConvert, [&](const std::string &skip) {
      return llvm::StringRef(module).contains(skip);
    });
  }

  Value reshape(Value x, ArrayRef<int64_t> trailing) {
    return qtf::ReshapeOp::create(b, loc, rows(trailing), x);
  }

  Value rope(Value x, Value positions, Value tokenSeq) {
    DenseI64ArrayAttr section;
    if (!config.mropeSection.empty())
      section = b.getDenseI64ArrayAttr(config.mropeSection);
    qtf::RopeScalingAttr scaling = ropeScalingAttr();
    // Length-dependent frequencies find the request's rows of the step.
    Value rowsOf = scaling && scaling.dependsOnLength() ? tokenSeq : Value();
    return qtf::RopeOp::create(b, loc, x.getType(), x, positions, rowsOf,
                               b.getF64FloatAttr(config.ropeTheta),
                               b.getI64IntegerAttr(config.rotaryDim), section, scaling);
  }

  /// The config's RoPE scaling as an attribute; null for the default RoPE.
  qtf::RopeScalingAttr ropeScalingAttr() {
    const RopeScaling &s = config.ropeScaling;
    std::optional<qtf::RopeScalingKind> kind = qtf::symbolizeRopeScalingKind(s.type);
    if (s.isDefault() || !kind)
      return {};
    auto factors = [&](const std::vector<double> &list) {
      return list.empty() ? DenseF64ArrayAttr() : b.getDenseF64ArrayAttr(list);
    };
    using llvm::APFloat;
    return qtf::RopeScalingAttr::get(
        b.getContext(), *kind, APFloat(s.factor), s.originalMaxPositions,
        APFloat(s.attentionFactor), APFloat(s.betaFast), APFloat(s.betaSlow), s.truncate,
        APFloat(s.lowFreqFactor), APFloat(s.highFreqFactor), factors(s.shortFactor),
        factors(s.longFactor));
  }

  /// SwiGLU: down(silu(gate(x)) * up(x)).
  Value denseMlp(Value x, const std::string &prefix, int64_t inter) {
    int64_t hidden = config.hiddenSize;
    Value gate = linear(x, prefix + "gate_proj", hidden, inter, false);
    Value up = linear(x, prefix + "up_proj", hidden, inter, false);
    Value act = qtf::SiluMulOp::create(b, loc, gate, up);
    return linear(act, prefix + "down_proj", inter, hidden, false);
  }

  /// Sparse MoE block (qwen-models.md §1.7): router linear, softmax + top-k,
  /// routed experts grouped by expert, the sum over each token's choices, and
  /// the sigmoid-gated shared expert where the model has one. Experts are
  /// stored per expert (stacked at load time) or already fused
  /// (Qwen3.5-MoE's gate_up_proj [E, 2I, H] / down_proj [E, H, I], which
  /// have exactly the stacked layout).
  Value moe(Value x, const std::string &prefix) {
    int64_t hidden = config.hiddenSize, experts = config.numExperts;
    int64_t inter = config.moeIntermediateSize, topK = config.numExpertsPerToken;
    Value logits = linear(x, prefix + "gate", hidden, experts, false);
    auto ids = RankedTensorType::get({ShapedType::kDynamic, topK}, b.getI32Type());
    auto router = qtf::MoeRouterOp::create(
        b, loc, ids, rows({topK}), logits, b.getI64IntegerAttr(topK),
        config.normTopkProb ? b.getUnitAttr() : nullptr);
    std::string fusedGateUp = prefix + "experts.gate_up_proj";
    bool fused = has(fusedGateUp).value_or(config.modelType == "qwen3_5_moe");
    std::vector<std::string> gateUp, down;
    if (fused) {
      gateUp = {fusedGateUp};
      down = {prefix + "experts.down_proj"};
    } else {
      for (int64_t e = 0; e < experts; ++e) {
        std::string expert = prefix + "experts." + std::to_string(e) + ".";
        gateUp.push_back(expert + "gate_proj.weight");
        gateUp.push_back(expert + "up_proj.weight");
        down.push_back(expert + "down_proj.weight");
      }
    }
    Value slots;
    if (fp8Experts(prefix + "experts", fused ? gateUp[0] : gateUp[0].substr(0, gateUp[0].size() - 7))) {
      // Block-wise FP8 experts stay fp8; every expert matrix has its own
      // scale blocks (the fused layout's 2I rows are one matrix, which is the
      // same blocks when br divides I: fp8Experts checks that).
      const std::array<int64_t, 2> block = config.quantization.fp8Block;
      Type f8 = b.getType<Float8E4M3FNType>();
      auto scales = [](const std::vector<std::string> &names) {
        std::vector<std::string> out;
        for (const std::string &name : names)
          out.push_back(name + "_scale_inv");
        return out;
      };
      const int64_t columnsH = llvm::divideCeilSigned(hidden, block[1]);
      const int64_t columnsI = llvm::divideCeilSigned(inter, block[1]);
      Value gateUpScale =
          weight(scales(gateUp), {experts * 2 * llvm::divideCeilSigned(inter, block[0]), columnsH}, f32);
      Value downScale =
          weight(scales(down), {experts * llvm::divideCeilSigned(hidden, block[0]), columnsI}, f32);
      slots = qtf::MoeExpertFfnOp::create(
          b, loc, rows({topK, hidden}), x, router.getIds(), router.getWeights(),
          weight(gateUp, {experts * 2 * inter, hidden}, f8), gateUpScale,
          weight(down, {experts * hidden, inter}, f8), downScale, b.getI64IntegerAttr(experts),
          b.getI64IntegerAttr(inter), b.getDenseI64ArrayAttr(block));
    } else {
      Value gateUpWeight = weight(gateUp, {experts * 2 * inter, hidden});
      Value downWeight = weight(down, {experts * hidden, inter});
      slots = qtf::MoeExpertFfnOp::create(
          b, loc, rows({topK, hidden}), x, router.getIds(), router.getWeights(), gateUpWeight,
          downWeight, b.getI64IntegerAttr(experts), b.getI64IntegerAttr(inter));
    }
    Value routed = qtf::MoeCombineOp::create(b, loc, rows({hidden}), slots);
    if (config.sharedExpertIntermediateSize == 0)
      return routed;
    Value shared = denseMlp(x, prefix + "shared_expert.", config.sharedExpertIntermediateSize);
    Value gate = linear(x, prefix + "shared_expert_gate", hidden, 1, false);
    Value gated = qtf::SigmoidMulOp::create(b, loc, shared, gate);
    return qtf::AddOp::create(b, loc, routed, gated);
  }

  /// Full attention; in the hybrid families q_proj holds per head the query
  /// rows then the output-gate rows, and the output is gated by sigmoid(gate).
  Value attention(Value xn, const std::string &p, Value &cache, int64_t kvLayer,
                  const StepInputs &in) {
    const int64_t hidden = config.hiddenSize, hd = config.headDim;
    const int64_t nH = config.numHeads, nKV = config.numKVHeads;
    bool bias = config.attentionBias;
    Value q, gate;
    if (config.hybrid) {
      SmallVector<std::pair<int64_t, int64_t>> queryRows, gateRows;
      for (int64_t h = 0; h < nH; ++h) {
        queryRows.push_back({2 * h * hd, 2 * h * hd + hd});
        gateRows.push_back({2 * h * hd + hd, 2 * (h + 1) * hd});
      }
      q = slicedLinear(xn, p + "self_attn.q_proj", queryRows, hidden);
      gate = slicedLinear(xn, p + "self_attn.q_proj", gateRows, hidden);
    } else {
      q = linear(xn, p + "self_attn.q_proj", hidden, nH * hd, bias);
    }
    Value k = linear(xn, p + "self_attn.k_proj", hidden, nKV * hd, bias);
    Value v = linear(xn, p + "self_attn.v_proj", hidden, nKV * hd, bias);
    // QK-norm is per head and comes before RoPE.
    Value ropePositions = in.mropePositions ? in.mropePositions : in.positions;
    Value q3 = rope(rmsNorm(reshape(q, {nH, hd}), p + "self_attn.q_norm.weight", hd),
                    ropePositions, in.tokenSeq);
    Value k3 = rope(rmsNorm(reshape(k, {nKV, hd}), p + "self_attn.k_norm.weight", hd),
                    ropePositions, in.tokenSeq);
    Value v3 = reshape(v, {nKV, hd});
    cache = qtf::KVCacheWriteOp::create(b, loc, cache, k3, v3, in.positions, in.tokenSeq,
                                        in.blockTable, b.getI64IntegerAttr(kvLayer));
    const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
    Value attn = qtf::PagedAttentionOp::create(
        b, loc, q3.getType(), q3, cache, in.positions, in.tokenSeq, in.blockTable,
        b.getI64IntegerAttr(kvLayer), b.getF64FloatAttr(scale));
    Value attnRows = reshape(attn, {nH * hd});
    if (gate)
      attnRows = qtf::SigmoidMulOp::create(b, loc, attnRows, gate);
    return linear(attnRows, p + "self_attn.o_proj", nH * hd, hidden, bias);
  }

  /// Gated DeltaNet (qwen-models.md §1.8, §8).
  Value linearAttention(Value xn, const std::string &p, Value &state, int64_t stateLayer,
                        const StepInputs &in) {
    const int64_t hidden = config.hiddenSize;
    const int64_t nk = config.linearNumKeyHeads, nv = config.linearNumValueHeads;
    const int64_t dk = config.linearKeyHeadDim, dv = config.linearValueHeadDim;
    const int64_t keyDim = config.linearKeyDim(), valueDim = config.linearValueDim();
    const int64_t channels = config.linearConvChannels();
    std::string a = p + "linear_attn.";
    Value qkv, z, beta, alpha;
    if (config.groupedLinearProjections) {
      // Qwen3-Next: per key head g, in_proj_qkvz rows [q_g | k_g | v_g | z_g]
      // and in_proj_ba rows [b_g | a_g]; gather them into the flat layout.
      const int64_t r = nv / nk, group = 2 * dk + 2 * r * dv;
      SmallVector<std::pair<int64_t, int64_t>> qkvRows, zRows, bRows, aRows;
      for (int64_t part = 0; part < 3; ++part)
        for (int64_t g = 0; g < nk; ++g) {
          int64_t base = g * group;
          if (part == 0)
            qkvRows.push_back({base, base + dk});
          else if (part == 1)
            qkvRows.push_back({base + dk, base + 2 * dk});
          else
            qkvRows.push_back({base + 2 * dk, base + 2 * dk + r * dv});
        }
      for (int64_t g = 0; g < nk; ++g) {
        int64_t base = g * group + 2 * dk + r * dv;
        zRows.push_back({base, base + r * dv});
        bRows.push_back({g * 2 * r, g * 2 * r + r});
        aRows.push_back({g * 2 * r + r, (g + 1) * 2 * r});
      }
      qkv = slicedLinear(xn, a + "in_proj_qkvz", qkvRows, hidden);
      z = slicedLinear(xn, a + "in_proj_qkvz", zRows, hidden);
      beta = slicedLinear(xn, a + "in_proj_ba", bRows, hidden);
      alpha = slicedLinear(xn, a + "in_proj_ba", aRows, hidden);
    } else {
      qkv = linear(xn, a + "in_proj_qkv", hidden, channels, false);
      z = linear(xn, a + "in_proj_z", hidden, valueDim, false);
      beta = linear(xn, a + "in_proj_b", hidden, nv, false);
      alpha = linear(xn, a + "in_proj_a", hidden, nv, false);
    }

    // conv1d.weight is stored [channels, 1, K]; the kernels read [channels, K].
    Value convWeight = weight(a + "conv1d.weight", {channels, config.linearConvKernel});
    auto conv = qtf::CausalConv1dOp::create(b, loc, qkv.getType(), state.getType(), state, qkv,
                                            convWeight, in.tokenSeq, in.stateSlots,
                                            b.getI64IntegerAttr(stateLayer));
    state = conv.getNewState();
    auto parts = qtf::SplitOp::create(b, loc, TypeRange{rows({keyDim}), rows({keyDim}), rows({valueDim})},
                                      conv.getResult(),
                                      b.getDenseI64ArrayAttr({keyDim, keyDim, valueDim}));
    Value q = reshape(parts.getResult(0), {nk, dk});
    Value k = reshape(parts.getResult(1), {nk, dk});
    Value v = reshape(parts.getResult(2), {nv, dv});
    // A_log is stored f32 in released checkpoints; the decay math is f32.
    Value aLog = weight(a + "A_log", {nv}, f32);
    Value dtBias = weight(a + "dt_bias", {nv}, f32);
    auto rule = qtf::GatedDeltaRuleOp::create(
        b, loc, v.getType(), state.getType(), state, q, k, v, alpha, beta, aLog, dtBias,
        in.tokenSeq, in.stateSlots, b.getI64IntegerAttr(stateLayer),
        b.getF64FloatAttr(1.0 / std::sqrt(static_cast<double>(dk))));
    state = rule.getNewState();
    Value normed = qtf::GatedRmsNormOp::create(
        b, loc, v.getType(), rule.getResult(), reshape(z, {nv, dv}),
        weight(a + "norm.weight", {dv}, f32), b.getF64FloatAttr(config.rmsNormEps));
    return linear(reshape(normed, {valueDim}), a + "out_proj", valueDim, hidden, false);
  }

  OpBuilder &b;
  const Qwen3Config &config;
  const BuildOptions &options;
  Location loc;
  Type f32;
  Type weightType;
  std::string prefix; ///< of the text model's tensors
};
} // namespace

OwningOpRef<ModuleOp>
qwen::models::buildQwen3Graph(MLIRContext &context, const Qwen3Config &config,
                              const BuildOptions &options) {
  context.loadDialect<qtf::QTFDialect, func::FuncDialect>();
  Location loc = NameLoc::get(StringAttr::get(&context, config.modelType));
  OwningOpRef<ModuleOp> module = ModuleOp::create(loc);
  OpBuilder b(&context);
  b.setInsertionPointToEnd(module->getBody());
  Qwen3GraphBuilder g(b, config, options, loc);

  const int64_t hidden = config.hiddenSize;
  Type kvElement = options.kvDtype == "bf16"  ? Type(b.getBF16Type())
                   : options.kvDtype == "f16" ? Type(b.getF16Type())
                                              : Type(g.f32);
  auto kvType = qtf::KVCacheType::get(&context, config.numFullAttentionLayers(),
                                      config.numKVHeads, config.headDim, options.pageSize, kvElement);
  Type i32 = b.getI32Type();
  auto ids = RankedTensorType::get({ShapedType::kDynamic}, i32);
  auto table = RankedTensorType::get({ShapedType::kDynamic, ShapedType::kDynamic}, i32);
  auto logitsType = options.hiddenStates ? g.rows({config.hiddenSize}) : g.rows({config.vocabSize});
  SmallVector<Type> argTypes = {ids, ids, ids, table, ids};
  SmallVector<StringRef> inputNames = {"tokens", "positions", "token_seq", "block_table",
                                       "logit_rows"};
  const bool mrope = !config.mropeSection.empty();
  const bool linear = config.numLinearLayers() > 0;
  if (mrope) {
    argTypes.push_back(RankedTensorType::get({ShapedType::kDynamic, 3}, i32));
    inputNames.push_back("mrope_positions");
  }
  if (linear) {
    argTypes.push_back(ids);
    inputNames.push_back("state_slots");
  }
  // Vision-language checkpoints: per token, the row of image_embeds that
  // replaces its embedding (-1: none), and those rows (the vision tower's
  // merged patches, f32).
  const bool vision = config.vision;
  if (vision) {
    argTypes.push_back(ids);
    inputNames.push_back("image_rows");
    argTypes.push_back(g.rows({hidden}));
    inputNames.push_back("image_embeds");
  }
  argTypes.push_back(kvType);
  SmallVector<Type> resultTypes = {logitsType, kvType};
  Type stateType;
  if (linear) {
    stateType = qtf::LinearStateType::get(
        &context, config.numLinearLayers(), config.linearConvChannels(),
        config.linearConvKernel - 1, config.linearNumValueHeads, config.linearKeyHeadDim,
        config.linearValueHeadDim, g.f32);
    argTypes.push_back(stateType);
    resultTypes.push_back(stateType);
  }
  auto func = func::FuncOp::create(b, loc, "step", b.getFunctionType(argTypes, resultTypes));
  for (auto [index, name] : llvm::enumerate(inputNames))
    func.setArgAttr(index, "qtf.input", b.getStringAttr(name));
  func.setResultAttr(0, "qtf.output",
                     b.getStringAttr(options.hiddenStates ? "hidden_states" : "logits"));
  Block *entry = func.addEntryBlock();
  b.setInsertionPointToStart(entry);
  Qwen3GraphBuilder::StepInputs in;
  Value tokens = entry->getArgument(0), logitRows = entry->getArgument(4);
  in.positions = entry->getArgument(1);
  in.tokenSeq = entry->getArgument(2);
  in.blockTable = entry->getArgument(3);
  unsigned next = 5;
  if (mrope)
    in.mropePositions = entry->getArgument(next++);
  if (linear)
    in.stateSlots = entry->getArgument(next++);
  Value imageRows, imageEmbeds;
  if (vision) {
    imageRows = entry->getArgument(next++);
    imageEmbeds = entry->getArgument(next++);
  }
  Value cache = entry->getArgument(next++);
  Value state = linear ? entry->getArgument(next++) : Value();

  const std::string &prefix = g.prefix;
  Value embedTable = g.weight(prefix + "embed_tokens.weight", {config.vocabSize, hidden});
  Value x = vision ? qtf::MultimodalEmbeddingOp::create(b, loc, g.rows({hidden}), embedTable, tokens,
                                                        imageRows, imageEmbeds)
                         .getResult()
                  : qtf::EmbeddingOp::create(b, loc, g.rows({hidden}), embedTable, tokens).getResult();

  int64_t kvLayer = 0, stateLayer = 0;
  for (int64_t layer = 0; layer < config.numLayers; ++layer) {
    std::string p = prefix + "layers." + std::to_string(layer) + ".";
    Value xn = g.rmsNorm(x, p + "input_layernorm.weight", hidden);
    Value mixed = config.isLinearLayer(layer)
                      ? g.linearAttention(xn, p, state, stateLayer++, in)
                      : g.attention(xn, p, cache, kvLayer++, in);
    Value h = qtf::AddOp::create(b, loc, x, mixed);

    Value hn = g.rmsNorm(h, p + "post_attention_layernorm.weight", hidden);
    Value mlp = config.isMoeLayer(layer) ? g.moe(hn, p + "mlp.")
                                         : g.denseMlp(hn, p + "mlp.", config.intermediateSize);
    x = qtf::AddOp::create(b, loc, h, mlp);
  }

  Value output;
  if (options.hiddenStates) {
    // The norm is per row: normalizing the selected rows only is the same.
    Value selected = qtf::GatherRowsOp::create(b, loc, g.rows({hidden}), x, logitRows);
    output = g.rmsNorm(selected, prefix + "norm.weight", hidden);
  } else {
    Value normed = g.rmsNorm(x, prefix + "norm.weight", hidden);
    Value selected = qtf::GatherRowsOp::create(b, loc, g.rows({hidden}), normed, logitRows);
    Value lmHead = config.tieWordEmbeddings
                       ? embedTable
                       : g.weight("lm_head.weight", {config.vocabSize, hidden});
    output = qtf::LinearOp::create(b, loc, logitsType, selected, lmHead, Value());
  }
  SmallVector<Value> results = {output, cache};
  if (state)
    results.push_back(state);
  func::ReturnOp::create(b, loc, results);
  return module;
}
