//===- Quantization.cpp - quantization_config reader ----------------------===//
//
// Qwen's FP8 releases carry
//   "quantization_config": {"quant_method": "fp8", "fmt": "e4m3",
//                           "activation_scheme": "dynamic",
//                           "weight_block_size": [128, 128]}
// (transformers' FineGrainedFP8Config). Linear weights stay fp8 in memory
// (qtf.linear with a block scale operand); the kernels apply the scales.
//
//===----------------------------------------------------------------------===//
#include "models/qwen3/Quantization.h"
#include "models/qwen3/JsonInteger.h"

#include <optional>
#include <string>

using namespace qwen::models;
using llvm::json::Object;

static llvm::Error quantizationError(const std::string &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), "quantization_config: %s",
                                 message.c_str());
}

llvm::Expected<WeightQuantization>
qwen::models::parseWeightQuantization(const Object &config) {
  WeightQuantization quantization;
  const llvm::json::Value *value = config.get("quantization_config");
  if (!value || value->kind() == llvm::json::Value::Null)
    return quantization;
  const Object *q = value->getAsObject();
  if (!q)
    return quantizationError("must be an object");
  std::optional<llvm::StringRef> method = q->getString("quant_method");
  if (!method)
    return quantizationError("missing 'quant_method' (a string)");
  if (*method != "fp8")
    return quantizationError("quant_method \"" + method->str() +
                             "\" is not supported (supported: \"fp8\", block-wise float8_e4m3fn)");
  if (std::optional<llvm::StringRef> fmt = q->getString("fmt"); fmt && *fmt != "e4m3")
    return quantizationError("fmt \"" + fmt->str() + "\" is not supported (expected \"e4m3\")");
  if (std::optional<llvm::StringRef> scheme = q->getString("activation_scheme");
      scheme && *scheme != "dynamic")
    return quantizationError("activation_scheme \"" + scheme->str() +
                             "\" is not supported (expected \"dynamic\")");
  const llvm::json::Array *block = q->getArray("weight_block_size");
  if (!block)
    return quantizationError("fp8 needs 'weight_block_size' (per-tensor FP8 is not supported)");
  std::optional<int64_t> rows = block->size() == 2 ? getJsonInteger((*block)[0]) : std::nullopt;
  std::optional<int64_t> columns = block->size() == 2 ? getJsonInteger((*block)[1]) : std::nullopt;
  if (!rows || !columns || *rows <= 0 || *columns <= 0)
    return quantizationError("'weight_block_size' must be two positive integers");
  quantization.fp8Block = {*rows, *columns};
  if (const llvm::json::Value *skip = q->get("modules_to_not_convert");
      skip && skip->kind() != llvm::json::Value::Null) {
    const llvm::json::Array *names = skip->getAsArray();
    if (!names)
      return quantizationError("'modules_to_not_convert' must be a list of module names");
    for (const llvm::json::Value &name : *names) {
      std::optional<llvm::StringRef> text = name.getAsString();
      if (!text)
        return quantizationError("'modules_to_not_convert' must be a list of module names");
      quantization.modulesToNotConvert.push_back(text->str());
    }
  }
  return quantization;
}
