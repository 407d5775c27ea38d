//===- Qwen3Config.cpp - Qwen3 config.json reader -------------------------===//
#include "models/qwen3/Qwen3Config.h"

#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"

#include <algorithm>

using namespace qwen::models;
using llvm::json::Object;

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
  llvm::Error takeError() {
    if (error.empty())
      return llvm::Error::success();
    return llvm::createStringError(llvm::inconvertibleErrorCode(), error);
  }

private:
  int64_t intValue(llvm::StringRef key, const llvm::json::Value &value) {
    if (std::optional<int64_t> number = value.getAsInteger())
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

llvm::Expected<Qwen3Config>
qwen::models::parseQwen3Config(llvm::StringRef jsonText, llvm::StringRef path) {
  llvm::Expected<llvm::json::Value> parsed = llvm::json::parse(jsonText);
  if (!parsed)
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(), "%s: malformed JSON: %s",
        path.str().c_str(), llvm::toString(parsed.takeError()).c_str());
  const Object *root = parsed->getAsObject();
  if (!root)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "%s: top level must be a JSON object",
                                   path.str().c_str());
  ConfigReader reader(*root, path);
  Qwen3Config config;
  config.modelType = reader.optionalString("model_type", "");
  if (config.modelType != "qwen3" && config.modelType != "qwen3_moe") {
    if (config.modelType.empty())
      reader.fail("missing 'model_type' (expected \"qwen3\" or \"qwen3_moe\")");
    else
      reader.fail("model_type \"" + config.modelType +
                  "\" is not supported yet (supported: \"qwen3\", \"qwen3_moe\")");
    return reader.takeError();
  }

  config.vocabSize = reader.requiredInt("vocab_size");
  if (config.modelType == "qwen3_moe") {
    // Class defaults of Qwen3MoeConfig where a key is absent; note that
    // norm_topk_prob defaults to false although released checkpoints say true.
    // transformers v5 writes the attribute-map alias num_local_experts.
    config.numExperts = reader.optionalInt(
        "num_experts", reader.optionalInt("num_local_experts", 128));
    config.numExpertsPerToken = reader.optionalInt("num_experts_per_tok", 8);
    config.moeIntermediateSize = reader.optionalInt("moe_intermediate_size", 768);
    config.normTopkProb = reader.optionalBool("norm_topk_prob", false);
    config.decoderSparseStep = reader.optionalInt("decoder_sparse_step", 1);
    if (const llvm::json::Value *layers = root->get("mlp_only_layers")) {
      if (const llvm::json::Array *list = layers->getAsArray()) {
        for (const llvm::json::Value &layer : *list)
          if (std::optional<int64_t> index = layer.getAsInteger())
            config.mlpOnlyLayers.push_back(*index);
          else
            reader.fail("'mlp_only_layers' must list layer indices");
      } else if (layers->kind() != llvm::json::Value::Null) {
        reader.fail("'mlp_only_layers' must be a list");
      }
    }
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
    }
  }
  config.hiddenSize = reader.requiredInt("hidden_size");
  config.intermediateSize = reader.optionalInt("intermediate_size", 0);
  config.numLayers = reader.requiredInt("num_hidden_layers");
  config.numHeads = reader.requiredInt("num_attention_heads");
  config.numKVHeads = reader.optionalInt("num_key_value_heads", config.numHeads);
  config.headDim = reader.optionalInt(
      "head_dim", config.numHeads > 0 ? config.hiddenSize / config.numHeads : 0);
  config.maxPositionEmbeddings =
      reader.optionalInt("max_position_embeddings", 32768);
  config.rmsNormEps = reader.optionalNumber(*root, "rms_norm_eps", 1e-6);
  config.tieWordEmbeddings = reader.optionalBool("tie_word_embeddings", false);
  config.attentionBias = reader.optionalBool("attention_bias", false);
  config.bosTokenId = reader.optionalInt("bos_token_id", -1);

  // transformers v5 folds rope_theta and rope_scaling into rope_parameters;
  // read the nested form first, then the top-level keys.
  config.ropeTheta = reader.optionalNumber(*root, "rope_theta", 10000.0);
  std::string ropeType = "default";
  for (llvm::StringRef key : {"rope_scaling", "rope_parameters"}) {
    const llvm::json::Value *value = root->get(key);
    if (!value || value->kind() == llvm::json::Value::Null)
      continue;
    const Object *rope = value->getAsObject();
    if (!rope) {
      reader.fail("key '" + key.str() + "' must be an object or null");
      continue;
    }
    config.ropeTheta = reader.optionalNumber(*rope, "rope_theta", config.ropeTheta);
    for (llvm::StringRef typeKey : {"rope_type", "type"})
      if (std::optional<llvm::StringRef> type = rope->getString(typeKey))
        ropeType = type->str();
    if (reader.optionalNumber(*rope, "partial_rotary_factor", 1.0) != 1.0)
      reader.fail("partial_rotary_factor other than 1.0 is not supported for "
                  "qwen3");
  }
  if (ropeType != "default")
    reader.fail("rope type \"" + ropeType +
                "\" is not supported yet (supported: \"default\")");

  std::string act = reader.optionalString("hidden_act", "silu");
  if (act != "silu")
    reader.fail("hidden_act \"" + act + "\" is not supported (expected silu)");
  if (reader.optionalBool("use_sliding_window", false))
    reader.fail("use_sliding_window=true is not supported yet");
  if (const llvm::json::Array *types = root->getArray("layer_types"))
    for (const llvm::json::Value &type : *types)
      if (type.getAsString() != std::optional<llvm::StringRef>("full_attention"))
        reader.fail("layer_types other than \"full_attention\" are not "
                    "supported for qwen3");

  std::string dtypeName = reader.optionalString(
      "torch_dtype", reader.optionalString("dtype", "bfloat16"));
  config.weightDType = dtypeFromTorchName(dtypeName);
  if (config.weightDType.empty())
    reader.fail("dtype \"" + dtypeName +
                "\" is not supported (bfloat16, float16, float32)");

  if (const llvm::json::Value *eos = root->get("eos_token_id")) {
    if (std::optional<int64_t> id = eos->getAsInteger())
      config.eosTokenIds.push_back(*id);
    else if (const llvm::json::Array *ids = eos->getAsArray())
      for (const llvm::json::Value &id : *ids)
        if (std::optional<int64_t> value = id.getAsInteger())
          config.eosTokenIds.push_back(*value);
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
  if (config.headDim % 2 != 0)
    reader.fail("head_dim must be even for rotary embeddings");
  if (config.rmsNormEps <= 0)
    reader.fail("rms_norm_eps must be positive");
  if (config.ropeTheta <= 0)
    reader.fail("rope_theta must be positive");

  if (llvm::Error error = reader.takeError())
    return std::move(error);
  return config;
}

bool Qwen3Config::isMoeLayer(int64_t layer) const {
  return numExperts > 0 && (layer + 1) % decoderSparseStep == 0 &&
         std::find(mlpOnlyLayers.begin(), mlpOnlyLayers.end(), layer) == mlpOnlyLayers.end();
}

llvm::Expected<Qwen3Config> qwen::models::readQwen3Config(llvm::StringRef path) {
  llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> buffer =
      llvm::MemoryBuffer::getFile(path);
  if (!buffer)
    return llvm::createStringError(buffer.getError(), "cannot read %s: %s",
                                   path.str().c_str(),
                                   buffer.getError().message().c_str());
  return parseQwen3Config((*buffer)->getBuffer(), path);
}
