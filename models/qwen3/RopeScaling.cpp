//===- RopeScaling.cpp - rope_scaling / rope_parameters reader ------------===//
//
// Mirrors transformers 5's standardize_rope_params and the _compute_*_parameters
// functions of modeling_rope_utils.py: which keys each rope type needs, their
// defaults, and the attention factor HF derives when none is given.
//
//===----------------------------------------------------------------------===//
#include "models/qwen3/RopeScaling.h"
#include "models/qwen3/JsonInteger.h"

#include <algorithm>
#include <cmath>
#include <optional>

using namespace qwen::models;
using llvm::json::Object;

namespace {
/// Reads typed keys of one rope object and keeps the first error.
class ParamReader {
public:
  ParamReader(llvm::StringRef type, const Object &params) : type(type.str()), params(params) {}

  std::optional<double> number(llvm::StringRef key, bool required) {
    const llvm::json::Value *value = params.get(key);
    if (!value || value->kind() == llvm::json::Value::Null) {
      if (required)
        fail("rope type \"" + type + "\" needs '" + key.str() + "'");
      return std::nullopt;
    }
    std::optional<double> number = value->getAsNumber();
    if (!number || !std::isfinite(*number))
      fail("rope parameter '" + key.str() + "' must be a finite number");
    return number;
  }
  std::vector<double> list(llvm::StringRef key, size_t length) {
    std::vector<double> result;
    const llvm::json::Value *value = params.get(key);
    if (!value || value->kind() == llvm::json::Value::Null) {
      fail("rope type \"" + type + "\" needs '" + key.str() + "'");
      return result;
    }
    const llvm::json::Array *array = value->getAsArray();
    for (size_t i = 0; array && i < array->size(); ++i) {
      std::optional<double> number = (*array)[i].getAsNumber();
      if (!number || !std::isfinite(*number) || *number <= 0.0)
        return fail("rope parameter '" + key.str() + "' must list positive numbers"), result;
      result.push_back(*number);
    }
    if (!array)
      fail("rope parameter '" + key.str() + "' must be a list of numbers");
    else if (result.size() != length)
      fail("rope parameter '" + key.str() + "' must have rotary_dim / 2 = " +
           std::to_string(length) + " entries, got " + std::to_string(result.size()));
    return result;
  }
  /// `factor`: required unless `fallback` is given; at least 1.
  double factor(std::optional<double> fallback = std::nullopt) {
    std::optional<double> value = number("factor", !fallback);
    double result = value.value_or(fallback.value_or(1.0));
    if (error.empty() && result < 1.0)
      fail("rope parameter 'factor' must be at least 1, got " + std::to_string(result));
    return result;
  }
  void fail(const std::string &message) {
    if (error.empty())
      error = message;
  }

  std::string type;
  const Object &params;
  std::string error;
};

/// HF's get_mscale: the yarn attention scaling of a context extended `scale` times.
double yarnMscale(double scale, double mscale = 1.0) {
  return scale <= 1.0 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
}
} // namespace

int64_t RopeScaling::maxContext(int64_t maxPositionEmbeddings) const {
  auto scaled = [&](int64_t length) {
    double extended = std::floor(static_cast<double>(length) * factor);
    return extended >= static_cast<double>(INT32_MAX) ? int64_t(INT32_MAX)
                                                       : static_cast<int64_t>(extended);
  };
  if (type == "linear" || type == "dynamic")
    return std::max(maxPositionEmbeddings, scaled(maxPositionEmbeddings));
  if (type == "yarn" || type == "llama3")
    return std::max(maxPositionEmbeddings, scaled(originalMaxPositions));
  return maxPositionEmbeddings;
}

llvm::Expected<RopeScaling>
qwen::models::parseRopeScaling(llvm::StringRef type, const Object &params, const Object &config,
                               int64_t maxPositionEmbeddings, int64_t rotaryDim) {
  RopeScaling scaling;
  scaling.type = type.str();
  if (type == "default" || type == "mrope")
    return scaling.type = "default", scaling;
  ParamReader reader(type, params);
  // yarn, llama3 and longrope scale relative to the pretraining context:
  // a model-level key first (HF: Phi3's exception), then the rope object's,
  // then max_position_embeddings.
  auto originalContext = [&]() -> int64_t {
    const llvm::json::Value *value = config.get("original_max_position_embeddings");
    if (!value || value->kind() == llvm::json::Value::Null)
      value = params.get("original_max_position_embeddings");
    if (!value || value->kind() == llvm::json::Value::Null)
      return maxPositionEmbeddings;
    std::optional<int64_t> length = getJsonInteger(*value);
    if (!length || *length <= 0)
      reader.fail("'original_max_position_embeddings' must be a positive integer");
    return length.value_or(0);
  };

  if (type == "linear") {
    scaling.factor = reader.factor();
  } else if (type == "dynamic") {
    scaling.factor = reader.factor();
    scaling.originalMaxPositions = maxPositionEmbeddings;
  } else if (type == "yarn") {
    scaling.factor = reader.factor();
    scaling.originalMaxPositions = originalContext();
    // HF: `get("beta_fast") or 32`, so 0 also means the default.
    scaling.betaFast = reader.number("beta_fast", false).value_or(0.0);
    scaling.betaSlow = reader.number("beta_slow", false).value_or(0.0);
    if (scaling.betaFast == 0.0)
      scaling.betaFast = 32.0;
    if (scaling.betaSlow == 0.0)
      scaling.betaSlow = 1.0;
    if (scaling.betaFast < 0.0 || scaling.betaSlow < 0.0)
      reader.fail("rope parameters 'beta_fast' and 'beta_slow' must be positive");
    if (const llvm::json::Value *truncate = params.get("truncate");
        truncate && truncate->kind() != llvm::json::Value::Null) {
      if (std::optional<bool> flag = truncate->getAsBoolean())
        scaling.truncate = *flag;
      else
        reader.fail("rope parameter 'truncate' must be true or false");
    }
    std::optional<double> attention = reader.number("attention_factor", false);
    std::optional<double> mscale = reader.number("mscale", false);
    std::optional<double> mscaleAllDim = reader.number("mscale_all_dim", false);
    if (attention)
      scaling.attentionFactor = *attention;
    else if (mscale.value_or(0.0) != 0.0 && mscaleAllDim.value_or(0.0) != 0.0)
      scaling.attentionFactor =
          yarnMscale(scaling.factor, *mscale) / yarnMscale(scaling.factor, *mscaleAllDim);
    else
      scaling.attentionFactor = yarnMscale(scaling.factor);
  } else if (type == "llama3") {
    scaling.factor = reader.factor();
    scaling.originalMaxPositions = originalContext();
    scaling.lowFreqFactor = reader.number("low_freq_factor", true).value_or(1.0);
    scaling.highFreqFactor = reader.number("high_freq_factor", true).value_or(4.0);
    if (reader.error.empty() &&
        !(scaling.lowFreqFactor > 0.0 && scaling.highFreqFactor > scaling.lowFreqFactor))
      reader.fail("rope parameters need 0 < 'low_freq_factor' < 'high_freq_factor'");
  } else if (type == "longrope") {
    scaling.originalMaxPositions = originalContext();
    if (scaling.originalMaxPositions > 0)
      scaling.factor = reader.factor(static_cast<double>(maxPositionEmbeddings) /
                                     static_cast<double>(scaling.originalMaxPositions));
    scaling.shortFactor = reader.list("short_factor", static_cast<size_t>(rotaryDim / 2));
    scaling.longFactor = reader.list("long_factor", static_cast<size_t>(rotaryDim / 2));
    std::optional<double> attention = reader.number("attention_factor", false);
    if (attention)
      scaling.attentionFactor = *attention;
    else if (scaling.factor > 1.0 && scaling.originalMaxPositions > 1)
      scaling.attentionFactor =
          std::sqrt(1.0 + std::log(scaling.factor) /
                              std::log(static_cast<double>(scaling.originalMaxPositions)));
  } else {
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        "rope type \"%s\" is not supported (supported: \"default\", \"linear\", \"dynamic\", "
        "\"yarn\", \"llama3\", \"longrope\")",
        type.str().c_str());
  }
  if (reader.error.empty() && !(scaling.attentionFactor > 0.0))
    reader.fail("rope parameter 'attention_factor' must be positive");
  if (!reader.error.empty())
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "%s", reader.error.c_str());
  return scaling;
}
