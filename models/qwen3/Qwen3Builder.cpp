//===- Qwen3Builder.cpp - Emit the qtf graph of a Qwen3 model -------------===//
//
// The graph follows HF Qwen3ForCausalLM op for op (qwen-models.md §2.4);
// layout rewrites such as stacking q|k|v are left to the graph passes.
//
//===----------------------------------------------------------------------===//
#include "models/qwen3/Qwen3Builder.h"

#include "dialects/QTF/IR/QTF.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

using namespace mlir;
using namespace qwen;
using namespace qwen::models;

namespace {
class Qwen3GraphBuilder {
public:
  Qwen3GraphBuilder(OpBuilder &builder, const Qwen3Config &config,
                    Location loc)
      : b(builder), config(config), loc(loc), f32(builder.getF32Type()) {
    if (config.weightDType == "f32")
      weightType = b.getF32Type();
    else if (config.weightDType == "f16")
      weightType = b.getF16Type();
    else
      weightType = b.getBF16Type();
  }

  /// One checkpoint tensor (graph passes stack several into one later).
  Value weight(const std::string &name, ArrayRef<int64_t> shape) {
    return qtf::WeightOp::create(b, loc, RankedTensorType::get(shape, weightType),
                                 b.getStrArrayAttr({name}));
  }

  RankedTensorType rows(ArrayRef<int64_t> trailing) {
    SmallVector<int64_t> shape = {ShapedType::kDynamic};
    shape.append(trailing.begin(), trailing.end());
    return RankedTensorType::get(shape, f32);
  }

  Value rmsNorm(Value x, const std::string &weightName, int64_t width) {
    return qtf::RmsNormOp::create(b, loc, x.getType(), x,
                                  weight(weightName, {width}),
                                  b.getF64FloatAttr(config.rmsNormEps),
                                  /*zero_centered=*/nullptr);
  }

  Value linear(Value x, const std::string &prefix, int64_t in, int64_t out,
               bool bias) {
    Value w = weight(prefix + ".weight", {out, in});
    Value biasValue = bias ? weight(prefix + ".bias", {out}) : Value();
    return qtf::LinearOp::create(b, loc, rows({out}), x, w, biasValue);
  }

  Value reshapeHeads(Value x, int64_t heads) {
    return qtf::ReshapeOp::create(b, loc, rows({heads, config.headDim}), x);
  }

  Value rope(Value x, Value positions) {
    return qtf::RopeOp::create(b, loc, x.getType(), x, positions,
                               b.getF64FloatAttr(config.ropeTheta),
                               b.getI64IntegerAttr(config.headDim));
  }

  /// SwiGLU: down(silu(gate(x)) * up(x)).
  Value denseMlp(Value x, const std::string &prefix) {
    int64_t hidden = config.hiddenSize, inter = config.intermediateSize;
    Value gate = linear(x, prefix + "gate_proj", hidden, inter, false);
    Value up = linear(x, prefix + "up_proj", hidden, inter, false);
    Value act = qtf::SiluMulOp::create(b, loc, gate, up);
    return linear(act, prefix + "down_proj", inter, hidden, false);
  }

  /// Sparse MoE block (qwen-models.md §1.7): router linear, softmax + top-k,
  /// routed experts grouped by expert, then the sum over each token's choices.
  /// The per-expert checkpoint tensors are stacked at load time.
  Value moe(Value x, const std::string &prefix) {
    int64_t hidden = config.hiddenSize, experts = config.numExperts;
    int64_t inter = config.moeIntermediateSize, topK = config.numExpertsPerToken;
    Value logits = linear(x, prefix + "gate", hidden, experts, false);
    auto ids = RankedTensorType::get({ShapedType::kDynamic, topK}, b.getI32Type());
    auto router = qtf::MoeRouterOp::create(
        b, loc, ids, rows({topK}), logits, b.getI64IntegerAttr(topK),
        config.normTopkProb ? b.getUnitAttr() : nullptr);
    SmallVector<Attribute> gateUp, down;
    for (int64_t e = 0; e < experts; ++e) {
      std::string expert = prefix + "experts." + std::to_string(e) + ".";
      gateUp.push_back(b.getStringAttr(expert + "gate_proj.weight"));
      gateUp.push_back(b.getStringAttr(expert + "up_proj.weight"));
      down.push_back(b.getStringAttr(expert + "down_proj.weight"));
    }
    Value gateUpWeight = qtf::WeightOp::create(
        b, loc, RankedTensorType::get({experts * 2 * inter, hidden}, weightType),
        b.getArrayAttr(gateUp));
    Value downWeight = qtf::WeightOp::create(
        b, loc, RankedTensorType::get({experts * hidden, inter}, weightType),
        b.getArrayAttr(down));
    Value slots = qtf::MoeExpertFfnOp::create(
        b, loc, rows({topK, hidden}), x, router.getIds(), router.getWeights(),
        gateUpWeight, downWeight, b.getI64IntegerAttr(experts), b.getI64IntegerAttr(inter));
    return qtf::MoeCombineOp::create(b, loc, rows({hidden}), slots);
  }

  const Qwen3Config &cfg() const { return config; }

  OpBuilder &b;
  const Qwen3Config &config;
  Location loc;
  Type f32;
  Type weightType;
};
} // namespace

OwningOpRef<ModuleOp>
qwen::models::buildQwen3Graph(MLIRContext &context, const Qwen3Config &config,
                              const BuildOptions &options) {
  context.loadDialect<qtf::QTFDialect, func::FuncDialect>();
  Location loc = NameLoc::get(StringAttr::get(&context, "qwen3"));
  OwningOpRef<ModuleOp> module = ModuleOp::create(loc);
  OpBuilder b(&context);
  b.setInsertionPointToEnd(module->getBody());
  Qwen3GraphBuilder g(b, config, loc);

  const int64_t hidden = config.hiddenSize, hd = config.headDim;
  const int64_t nH = config.numHeads, nKV = config.numKVHeads;
  auto kvType = qtf::KVCacheType::get(&context, config.numLayers, nKV, hd,
                                      options.pageSize, g.f32);
  Type i32 = b.getI32Type();
  auto ids = RankedTensorType::get({ShapedType::kDynamic}, i32);
  auto table = RankedTensorType::get({ShapedType::kDynamic, ShapedType::kDynamic}, i32);
  auto logitsType = g.rows({config.vocabSize});
  auto funcType = b.getFunctionType({ids, ids, ids, table, ids, kvType},
                                    {logitsType, kvType});
  auto func = func::FuncOp::create(b, loc, "step", funcType);
  const char *inputNames[] = {"tokens", "positions", "token_seq", "block_table",
                              "logit_rows"};
  for (auto [index, name] : llvm::enumerate(inputNames))
    func.setArgAttr(index, "qtf.input", b.getStringAttr(name));
  Block *entry = func.addEntryBlock();
  b.setInsertionPointToStart(entry);
  Value tokens = entry->getArgument(0), positions = entry->getArgument(1),
        tokenSeq = entry->getArgument(2), blockTable = entry->getArgument(3),
        logitRows = entry->getArgument(4), cache = entry->getArgument(5);

  Value embedTable = g.weight("model.embed_tokens.weight", {config.vocabSize, hidden});
  Value x = qtf::EmbeddingOp::create(b, loc, g.rows({hidden}), embedTable, tokens);
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));

  for (int64_t layer = 0; layer < config.numLayers; ++layer) {
    std::string p = "model.layers." + std::to_string(layer) + ".";
    Value xn = g.rmsNorm(x, p + "input_layernorm.weight", hidden);
    bool bias = config.attentionBias;
    Value q = g.linear(xn, p + "self_attn.q_proj", hidden, nH * hd, bias);
    Value k = g.linear(xn, p + "self_attn.k_proj", hidden, nKV * hd, bias);
    Value v = g.linear(xn, p + "self_attn.v_proj", hidden, nKV * hd, bias);
    // QK-norm is per head and comes before RoPE.
    Value q3 = g.rope(g.rmsNorm(g.reshapeHeads(q, nH), p + "self_attn.q_norm.weight", hd),
                      positions);
    Value k3 = g.rope(g.rmsNorm(g.reshapeHeads(k, nKV), p + "self_attn.k_norm.weight", hd),
                      positions);
    Value v3 = g.reshapeHeads(v, nKV);
    cache = qtf::KVCacheWriteOp::create(b, loc, cache, k3, v3, positions,
                                        tokenSeq, blockTable,
                                        b.getI64IntegerAttr(layer));
    Value attn = qtf::PagedAttentionOp::create(
        b, loc, q3.getType(), q3, cache, positions, tokenSeq, blockTable,
        b.getI64IntegerAttr(layer), b.getF64FloatAttr(scale));
    Value attnRows = qtf::ReshapeOp::create(b, loc, g.rows({nH * hd}), attn);
    Value o = g.linear(attnRows, p + "self_attn.o_proj", nH * hd, hidden, bias);
    Value h = qtf::AddOp::create(b, loc, x, o);

    Value hn = g.rmsNorm(h, p + "post_attention_layernorm.weight", hidden);
    Value mlp = config.isMoeLayer(layer) ? g.moe(hn, p + "mlp.")
                                         : g.denseMlp(hn, p + "mlp.");
    x = qtf::AddOp::create(b, loc, h, mlp);
  }

  Value normed = g.rmsNorm(x, "model.norm.weight", hidden);
  Value selected = qtf::GatherRowsOp::create(b, loc, g.rows({hidden}), normed, logitRows);
  Value lmHead = config.tieWordEmbeddings
                     ? embedTable
                     : g.weight("lm_head.weight", {config.vocabSize, hidden});
  Value logits = qtf::LinearOp::create(b, loc, logitsType, selected, lmHead, Value());
  func::ReturnOp::create(b, loc, ValueRange{logits, cache});
  return module;
}
