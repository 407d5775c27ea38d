//===- Qwen3Config.cpp - Qwen3 config.json reader -------------------------===//
#include "qwen/Models/Qwen3/Qwen3Config.h"
#include "models/qwen3/JsonInteger.h"
#include "models/qwen3/RopeScaling.h"

#include "qwen_rt/limits.h"

#include "llvm/ADT/StringSwitch.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"

#include <algorithm>
#include <cmath>

using namespace qwen::models;
using llvm::json::Object;
namespace limits = qwen::limits;

namespace {
/// Small helper that reads typed keys and remembers the first error.
class ConfigReader {
public:
  ConfigReader(const Object &object, llvm::StringRef path)
      : object(object), path(path.str()) {}

  int64_t requiredInt(llvm::StringRef key) {
    const llvm::json::Value *value = object.get(key);
    if (!value)
      return fail("missing required key '" + key.str() + "'"), 0;
    return intValue(key, *value);
  }
  int64_t optionalInt(llvm::StringRef key, int64_t fallback) {
    const llvm::json::Value *value = object.get(key);
    if (!value || value->kind() == llvm::json::Value::Null)
      return fallback;
    return intValue(key, *value);
  }
  double optionalNumber(const Object &from, llvm::StringRef key,
                        double fallback) {
    const llvm::json::Value *value = from.get(key);
    if (!value || value->kind() == llvm::json::Value::Null)
      return fallback;
    if (std::optional<double> number = value->getAsNumber())
      return *number;
    fail("key '" + key.str() + "' must be a number");
    return fallback;
  }
  bool optionalBool(llvm::StringRef key, bool fallback) {
    const llvm::json::Value *value = object.get(key);
    if (!value || value->kind() == llvm::json::Value::Null)
      return fallback;
    if (std::optional<bool> flag = value->getAsBoolean())
      return *flag;
    fail("key '" + key.str() + "' must be true or false");
    return fallback;
  }
  std::string optionalString(llvm::StringRef key, llvm::StringRef fallback) {
    const llvm::json::Value *value = object.get(key);
    if (!value || value->kind() == llvm::json::Value::Null)
      return fallback.str();
    if (std::optional<llvm::StringRef> text = value->getAsString())
      return text->str();
    fail("key '" + key.str() + "' must be a string");
    return fallback.str();
  }
  void fail(const std::string &message) {
    if (error.empty())
      error = path + ": " + message;
  }
  bool failed() const { return !error.empty(); }
  /// Records an error when `value` exceeds `max` (a bound of limits.h).
  void requireAtMost(llvm::StringRef key, int64_t value, int64_t max) {
    if (value > max)
      fail("'" + key.str() + "' is " + std::to_string(value) + ", more than the supported " +
           std::to_string(max));
  }
  llvm::Error takeError() {
    if (error.empty())
      return llvm::Error::success();
    return llvm::createStringError(llvm::inconvertibleErrorCode(), error);
  }

private:
  int64_t intValue(llvm::StringRef key, const llvm::json::Value &value) {
    if (std::optional<int64_t> number = getJsonInteger(value))
      return *number;
    fail("key '" + key.str() + "' must be an integer");
    return 0;
  }

  const Object &object;
  std::string path;
  std::string error;
};
} // namespace

static std::string dtypeFromTorchName(llvm::StringRef name) {
  if (name == "bfloat16")
    return "bf16";
  if (name == "float16" || name == "half")
    return "f16";
  if (name == "float32" || name == "float")
    return "f32";
  return "";
}

/// Reads an optional list of layer indices.
static std::vector<int64_t> readLayerList(const Object &object, llvm::StringRef key,
                                          ConfigReader &reader) {
  std::vector<int64_t> layers;
  const llvm::json::Value *value = object.get(key);
  if (!value || value->kind() == llvm::json::Value::Null)
    return layers;
  const llvm::json::Array *list = value->getAsArray();
  if (!list) {
    reader.fail("'" + key.str() + "' must be a list");
    return layers;
  }
  if (static_cast<int64_t>(list->size()) > limits::kMaxLayers) {
    reader.fail("'" + key.str() + "' lists " + std::to_string(list->size()) +
                " layers, more than the supported " + std::to_string(limits::kMaxLayers));
    return layers;
  }
  for (const llvm::json::Value &layer : *list)
    if (std::optional<int64_t> index = getJsonInteger(layer))
      layers.push_back(*index);
    else
      reader.fail("'" + key.str() + "' must list layer indices");
  return layers;
}

/// Model types read by this parser, and the family each belongs to.
static std::string familyOf(llvm::StringRef modelType) {
  for (llvm::StringRef family : {"qwen3", "qwen3_moe", "qwen3_next", "qwen3_5", "qwen3_5_moe"})
    if (modelType == family)
      return family.str();
  return llvm::StringSwitch<std::string>(modelType)
      .Case("qwen3_5_text", "qwen3_5")
      .Case("qwen3_5_moe_text", "qwen3_5_moe")
      .Default("");
}

llvm::Expected<Qwen3Config>
qwen::models::parseQwen3Config(llvm::StringRef jsonText, llvm::StringRef path) {
  llvm::Expected<llvm::json::Value> parsed = parseConfigJson(jsonText, path);
  if (!parsed)
    return parsed.takeError();
  const Object *root = parsed->getAsObject();
  if (!root)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "%s: top level must be a JSON object",
                                   path.str().c_str());
  ConfigReader top(*root, path);
  Qwen3Config config;
  std::string modelType = top.optionalString("model_type", "");
  config.modelType = familyOf(modelType);
  if (config.modelType.empty()) {
    const char *supported = "\"qwen3\", \"qwen3_moe\", \"qwen3_next\", \"qwen3_5\", \"qwen3_5_moe\"";
    if (modelType.empty())
      top.fail(std::string("missing 'model_type' (supported: ") + supported + ")");
    else
      top.fail("model_type \"" + modelType + "\" is not supported yet (supported: " +
               supported + ")");
    return top.takeError();
  }
  const bool isQwen35 = config.modelType == "qwen3_5" || config.modelType == "qwen3_5_moe";
  config.hybrid = isQwen35 || config.modelType == "qwen3_next";

  // Qwen3.5 checkpoints are multimodal: the text model's keys live in
  // text_config, its weights under model.language_model.
  const Object *textObject = root;
  if (const llvm::json::Value *nested = root->get("text_config")) {
    textObject = nested->getAsObject();
    if (!textObject)
      return top.fail("'text_config' must be an object"), top.takeError();
    config.weightPrefix = "model.language_model.";
  }
  if (const llvm::json::Value *vision = root->get("vision_config")) {
    const Object *visionObject = vision->getAsObject();
    if (!visionObject)
      return top.fail("'vision_config' must be an object"), top.takeError();
    // Class defaults of Qwen3_5Config / Qwen3_5VisionConfig.
    config.vision = true;
    config.imageTokenId = top.optionalInt("image_token_id", 248056);
    config.visionStartTokenId = top.optionalInt("vision_start_token_id", 248053);
    config.visionEndTokenId = top.optionalInt("vision_end_token_id", 248054);
    ConfigReader visionReader(*visionObject, path.str() + " (vision_config)");
    config.spatialMergeSize = visionReader.optionalInt("spatial_merge_size", 2);
    if (config.spatialMergeSize <= 0 || config.spatialMergeSize > 64)
      visionReader.fail("'spatial_merge_size' must be in [1, 64]");
    if (visionReader.failed())
      return visionReader.takeError();
  }
  const Object &text = *textObject;
  ConfigReader reader(text, textObject == root ? path.str() : path.str() + " (text_config)");

  config.vocabSize = reader.requiredInt("vocab_size");
  if (config.modelType != "qwen3") {
    // Class defaults where a key is absent. Qwen3-MoE's norm_topk_prob
    // defaults to false although released checkpoints say true; transformers
    // v5 writes the attribute-map alias num_local_experts.
    bool isMoe = config.modelType == "qwen3_moe" || config.modelType == "qwen3_next" ||
                 config.modelType == "qwen3_5_moe";
    const bool next = config.modelType == "qwen3_next";
    int64_t defaultExperts = !isMoe ? 0 : next ? 512 : isQwen35 ? 256 : 128;
    config.numExperts = reader.optionalInt(
        "num_experts", reader.optionalInt("num_local_experts", defaultExperts));
    config.numExpertsPerToken =
        reader.optionalInt("num_experts_per_tok", next ? 10 : 8);
    config.moeIntermediateSize =
        reader.optionalInt("moe_intermediate_size", next || isQwen35 ? 512 : 768);
    config.alwaysRenormalize = isQwen35;
    config.normTopkProb = isQwen35 || reader.optionalBool("norm_topk_prob", next);
    if (!isQwen35) {
      config.decoderSparseStep = reader.optionalInt("decoder_sparse_step", 1);
      config.mlpOnlyLayers = readLayerList(text, "mlp_only_layers", reader);
    }
    if (next || isQwen35)
      config.sharedExpertIntermediateSize = reader.optionalInt(
          "shared_expert_intermediate_size", isMoe ? 512 : 0);
    if (config.numExperts < 0)
      reader.fail("'num_experts' must not be negative");
    if (config.numExperts > 0) {
      if (config.numExpertsPerToken <= 0 || config.numExpertsPerToken > config.numExperts)
        reader.fail("'num_experts_per_tok' (" + std::to_string(config.numExpertsPerToken) +
                    ") must be in [1, num_experts = " + std::to_string(config.numExperts) + "]");
      if (config.moeIntermediateSize <= 0)
        reader.fail("'moe_intermediate_size' must be positive");
      if (config.decoderSparseStep <= 0)
        reader.fail("'decoder_sparse_step' must be positive");
      if (config.sharedExpertIntermediateSize < 0)
        reader.fail("'shared_expert_intermediate_size' must not be negative");
    } else {
      config.sharedExpertIntermediateSize = 0;
    }
  }
  config.hiddenSize = reader.requiredInt("hidden_size");
  config.intermediateSize = reader.optionalInt("intermediate_size", 0);
  config.numLayers = reader.requiredInt("num_hidden_layers");
  config.numHeads = reader.requiredInt("num_attention_heads");
  config.numKVHeads = reader.optionalInt("num_key_value_heads", config.numHeads);
  config.headDim = reader.optionalInt(
      "head_dim", config.hybrid ? 256 : config.numHeads > 0 ? config.hiddenSize / config.numHeads : 0);
  config.maxPositionEmbeddings =
      reader.optionalInt("max_position_embeddings", 32768);
  config.rmsNormEps = reader.optionalNumber(text, "rms_norm_eps", 1e-6);
  // Tie can be given at the top level, in text_config, or both; the model
  // class that owns lm_head reads the top-level config, so that one wins.
  config.tieWordEmbeddings = reader.optionalBool("tie_word_embeddings", false);
  if (textObject != root)
    config.tieWordEmbeddings = top.optionalBool("tie_word_embeddings", config.tieWordEmbeddings);
  config.attentionBias = reader.optionalBool("attention_bias", false);
  config.bosTokenId = reader.optionalInt("bos_token_id", top.optionalInt("bos_token_id", -1));

  // Bounds before anything loops over layers or multiplies sizes (limits.h).
  reader.requireAtMost("vocab_size", config.vocabSize, limits::kMaxVocabSize);
  reader.requireAtMost("hidden_size", config.hiddenSize, limits::kMaxModelDim);
  reader.requireAtMost("intermediate_size", config.intermediateSize, limits::kMaxModelDim);
  reader.requireAtMost("num_hidden_layers", config.numLayers, limits::kMaxLayers);
  reader.requireAtMost("num_attention_heads", config.numHeads, limits::kMaxHeads);
  reader.requireAtMost("num_key_value_heads", config.numKVHeads, limits::kMaxHeads);
  reader.requireAtMost("head_dim", config.headDim, limits::kMaxHeadDim);
  reader.requireAtMost("max_position_embeddings", config.maxPositionEmbeddings,
                       limits::kMaxPositions);
  reader.requireAtMost("num_experts", config.numExperts, limits::kMaxExperts);
  reader.requireAtMost("moe_intermediate_size", config.moeIntermediateSize, limits::kMaxModelDim);
  reader.requireAtMost("shared_expert_intermediate_size", config.sharedExpertIntermediateSize,
                       limits::kMaxModelDim);
  if (reader.failed())
    return reader.takeError();

  // transformers v5 folds rope_theta, rope_scaling and partial_rotary_factor
  // into rope_parameters; read the nested form first, then the top-level keys.
  config.ropeTheta = reader.optionalNumber(text, "rope_theta", 10000.0);
  double partialRotary = reader.optionalNumber(
      text, "partial_rotary_factor",
      top.optionalNumber(*root, "partial_rotary_factor", config.hybrid ? 0.25 : 1.0));
  std::string ropeType = "default";
  const Object *ropeObject = nullptr; // where the rope type was given
  bool mropeInterleaved = true;
  for (llvm::StringRef key : {"rope_scaling", "rope_parameters"}) {
    const llvm::json::Value *value = text.get(key);
    if (!value || value->kind() == llvm::json::Value::Null)
      continue;
    const Object *rope = value->getAsObject();
    if (!rope) {
      reader.fail("key '" + key.str() + "' must be an object or null");
      continue;
    }
    config.ropeTheta = reader.optionalNumber(*rope, "rope_theta", config.ropeTheta);
    partialRotary = reader.optionalNumber(*rope, "partial_rotary_factor", partialRotary);
    for (llvm::StringRef typeKey : {"rope_type", "type"})
      if (std::optional<llvm::StringRef> type = rope->getString(typeKey))
        ropeType = type->str(), ropeObject = rope;
    if (const llvm::json::Value *section = rope->get("mrope_section");
        section && section->kind() != llvm::json::Value::Null) {
      config.mropeSection.clear();
      const llvm::json::Array *list = section->getAsArray();
      if (list)
        for (const llvm::json::Value &entry : *list)
          if (std::optional<int64_t> size = getJsonInteger(entry))
            config.mropeSection.push_back(*size);
      if (!list || config.mropeSection.size() != 3)
        reader.fail("'mrope_section' must list three integers");
    }
    if (std::optional<bool> interleaved = rope->getBoolean("mrope_interleaved"))
      mropeInterleaved = *interleaved;
  }
  if (!config.mropeSection.empty() && !mropeInterleaved)
    reader.fail("mrope_interleaved=false is not supported (Qwen3.5 uses interleaved MRoPE)");
  if (!(partialRotary > 0.0 && partialRotary <= 1.0))
    reader.fail("partial_rotary_factor must be in (0, 1], got " + std::to_string(partialRotary));
  config.rotaryDim = static_cast<int64_t>(static_cast<double>(config.headDim) * partialRotary);
  if (ropeObject) {
    llvm::Expected<RopeScaling> scaling = parseRopeScaling(
        ropeType, *ropeObject, text, config.maxPositionEmbeddings, config.rotaryDim);
    if (scaling)
      config.ropeScaling = std::move(*scaling);
    else
      reader.fail(llvm::toString(scaling.takeError()));
  }
  if (!config.mropeSection.empty()) {
    int64_t sum = 0;
    for (int64_t size : config.mropeSection) {
      if (size < 0 || size > limits::kMaxHeadDim)
        reader.fail("'mrope_section' entries must be in [0, " + std::to_string(limits::kMaxHeadDim) +
                    "], got " + std::to_string(size));
      sum += std::clamp<int64_t>(size, 0, limits::kMaxHeadDim);
    }
    if (sum != config.rotaryDim / 2)
      reader.fail("'mrope_section' must sum to half the rotary dimension (" +
                  std::to_string(config.rotaryDim / 2) + "), got " + std::to_string(sum));
  }

  std::string act = reader.optionalString("hidden_act", "silu");
  if (act != "silu")
    reader.fail("hidden_act \"" + act + "\" is not supported (expected silu)");
  if (reader.optionalBool("use_sliding_window", false))
    reader.fail("use_sliding_window=true is not supported yet");

  // Layer kinds: explicit layer_types, else every full_attention_interval-th
  // layer is full attention (hybrid families).
  const llvm::json::Value *types = text.get("layer_types");
  const bool explicitLayerTypes = types && types->kind() != llvm::json::Value::Null;
  if (explicitLayerTypes) {
    const llvm::json::Array *list = types->getAsArray();
    if (!list)
      reader.fail("'layer_types' must be a list");
    for (size_t i = 0; list && i < list->size(); ++i) {
      std::optional<llvm::StringRef> type = (*list)[i].getAsString();
      if (type == std::optional<llvm::StringRef>("full_attention"))
        config.linearLayers.push_back(false);
      else if (config.hybrid && type == std::optional<llvm::StringRef>("linear_attention"))
        config.linearLayers.push_back(true);
      else
        reader.fail("layer_types[" + std::to_string(i) + "] is not supported for " +
                    config.modelType + " (expected " +
                    (config.hybrid ? "\"full_attention\" or \"linear_attention\")"
                                   : "\"full_attention\")"));
    }
  } else if (config.hybrid && config.numLayers > 0) {
    int64_t interval = reader.optionalInt("full_attention_interval", 4);
    if (interval <= 0)
      reader.fail("'full_attention_interval' must be positive");
    else
      for (int64_t i = 0; i < config.numLayers; ++i)
        config.linearLayers.push_back((i + 1) % interval != 0);
  }
  if ((config.hybrid || explicitLayerTypes) && config.numLayers > 0 &&
      static_cast<int64_t>(config.linearLayers.size()) != config.numLayers)
    reader.fail("'layer_types' has " + std::to_string(config.linearLayers.size()) +
                " entries for " + std::to_string(config.numLayers) + " layers");
  if (!config.hybrid)
    config.linearLayers.assign(static_cast<size_t>(std::max<int64_t>(config.numLayers, 0)), false);

  if (config.hybrid) {
    config.groupedLinearProjections = config.modelType == "qwen3_next";
    config.linearNumKeyHeads = reader.optionalInt("linear_num_key_heads", 16);
    config.linearNumValueHeads = reader.optionalInt("linear_num_value_heads", 32);
    config.linearKeyHeadDim = reader.optionalInt("linear_key_head_dim", 128);
    config.linearValueHeadDim = reader.optionalInt("linear_value_head_dim", 128);
    config.linearConvKernel = reader.optionalInt("linear_conv_kernel_dim", 4);
  }

  std::string dtypeName = reader.optionalString(
      "torch_dtype", reader.optionalString(
                         "dtype", top.optionalString(
                                      "torch_dtype", top.optionalString("dtype", "bfloat16"))));
  config.weightDType = dtypeFromTorchName(dtypeName);
  if (config.weightDType.empty())
    reader.fail("dtype \"" + dtypeName +
                "\" is not supported (bfloat16, float16, float32)");

  for (const Object *object : {textObject, root}) {
    if (!config.eosTokenIds.empty())
      break;
    if (const llvm::json::Value *eos = object->get("eos_token_id")) {
      if (std::optional<int64_t> id = getJsonInteger(*eos))
        config.eosTokenIds.push_back(*id);
      else if (const llvm::json::Array *ids = eos->getAsArray())
        for (const llvm::json::Value &id : *ids)
          if (std::optional<int64_t> value = getJsonInteger(id))
            config.eosTokenIds.push_back(*value);
    }
  }

  auto requirePositive = [&](llvm::StringRef key, int64_t value) {
    if (value <= 0)
      reader.fail("'" + key.str() + "' must be positive, got " +
                  std::to_string(value));
  };
  requirePositive("vocab_size", config.vocabSize);
  requirePositive("hidden_size", config.hiddenSize);
  bool anyDense = config.numExperts == 0;
  for (int64_t layer = 0; layer < config.numLayers && !anyDense; ++layer)
    anyDense = !config.isMoeLayer(layer);
  if (anyDense)
    requirePositive("intermediate_size", config.intermediateSize);
  requirePositive("num_hidden_layers", config.numLayers);
  requirePositive("num_attention_heads", config.numHeads);
  requirePositive("num_key_value_heads", config.numKVHeads);
  requirePositive("head_dim", config.headDim);
  requirePositive("max_position_embeddings", config.maxPositionEmbeddings);
  if (config.numHeads > 0 && config.numKVHeads > 0 &&
      config.numHeads % config.numKVHeads != 0)
    reader.fail("num_attention_heads (" + std::to_string(config.numHeads) +
                ") must be a multiple of num_key_value_heads (" +
                std::to_string(config.numKVHeads) + ")");
  if (config.rotaryDim <= 0 || config.rotaryDim % 2 != 0)
    reader.fail("the rotary dimension (head_dim * partial_rotary_factor = " +
                std::to_string(config.rotaryDim) + ") must be even and positive");
  // JSON numbers beyond double's range (1e400) arrive as infinities.
  if (!(config.rmsNormEps > 0) || !std::isfinite(config.rmsNormEps))
    reader.fail("rms_norm_eps must be positive and finite");
  if (!(config.ropeTheta > 0) || !std::isfinite(config.ropeTheta))
    reader.fail("rope_theta must be positive and finite");
  if (config.hybrid) {
    requirePositive("linear_num_key_heads", config.linearNumKeyHeads);
    requirePositive("linear_num_value_heads", config.linearNumValueHeads);
    requirePositive("linear_key_head_dim", config.linearKeyHeadDim);
    requirePositive("linear_value_head_dim", config.linearValueHeadDim);
    reader.requireAtMost("linear_num_key_heads", config.linearNumKeyHeads, limits::kMaxHeads);
    reader.requireAtMost("linear_num_value_heads", config.linearNumValueHeads, limits::kMaxHeads);
    reader.requireAtMost("linear_key_head_dim", config.linearKeyHeadDim, limits::kMaxHeadDim);
    reader.requireAtMost("linear_value_head_dim", config.linearValueHeadDim, limits::kMaxHeadDim);
    reader.requireAtMost("linear_conv_kernel_dim", config.linearConvKernel, limits::kMaxConvKernel);
    if (config.linearConvKernel < 2)
      reader.fail("'linear_conv_kernel_dim' must be at least 2, got " +
                  std::to_string(config.linearConvKernel));
    if (config.linearNumKeyHeads > 0 &&
        config.linearNumValueHeads % config.linearNumKeyHeads != 0)
      reader.fail("linear_num_value_heads (" + std::to_string(config.linearNumValueHeads) +
                  ") must be a multiple of linear_num_key_heads (" +
                  std::to_string(config.linearNumKeyHeads) + ")");
  }
  if (config.numLayers > 0 && config.numFullAttentionLayers() == 0)
    reader.fail("the model has no full_attention layer; at least one is required");

  if (llvm::Expected<WeightQuantization> quantization = parseWeightQuantization(*root))
    config.quantization = *quantization;
  else
    top.fail(llvm::toString(quantization.takeError()));

  if (llvm::Error error = top.takeError())
    return std::move(error);
  if (llvm::Error error = reader.takeError())
    return std::move(error);
  return config;
}

int64_t Qwen3Config::numFullAttentionLayers() const {
  int64_t full = 0;
  for (bool linear : linearLayers)
    full += !linear;
  return full;
}

bool Qwen3Config::isMoeLayer(int64_t layer) const {
  // decoder_sparse_step <= 0 is reported by the parser; never divide by it.
  return numExperts > 0 && decoderSparseStep > 0 && (layer + 1) % decoderSparseStep == 0 &&
         std::find(mlpOnlyLayers.begin(), mlpOnlyLayers.end(), layer) == mlpOnlyLayers.end();
}

llvm::Expected<llvm::json::Value> qwen::models::parseConfigJson(llvm::StringRef jsonText,
                                                              llvm::StringRef path) {
  if (size_t at = limits::findJsonNestingBeyond(std::string_view(jsonText.data(), jsonText.size()));
      at != std::string_view::npos)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "%s: JSON nested deeper than %d levels (at byte %zu)",
                                   path.str().c_str(), limits::kMaxJsonDepth, at);
  llvm::Expected<llvm::json::Value> parsed = llvm::json::parse(jsonText);
  if (!parsed)
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(), "%s: malformed JSON: %s",
        path.str().c_str(), llvm::toString(parsed.takeError()).c_str());
  return parsed;
}

llvm::Expected<std::string> qwen::models::readConfigText(llvm::StringRef path) {
  llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> buffer =
      llvm::MemoryBuffer::getFile(path);
  if (!buffer)
    return llvm::createStringError(buffer.getError(), "cannot read %s: %s",
                                   path.str().c_str(),
                                   buffer.getError().message().c_str());
  return (*buffer)->getBuffer().str();
}
