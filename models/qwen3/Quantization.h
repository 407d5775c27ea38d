//===- Quantization.h - quantization_config reader --------------*- C++ -*-===//
#ifndef QWEN_MODELS_QWEN3_QUANTIZATION_H
#define QWEN_MODELS_QWEN3_QUANTIZATION_H

#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace qwen::models {

/// The weight quantization of a checkpoint (HF quantization_config).
struct WeightQuantization {
  /// FP8 block-wise (quant_method "fp8", Qwen3-*-FP8): float8_e4m3fn
  /// weights with a weight_scale_inv per block of rows x columns; {0, 0}
  /// for an unquantized checkpoint.
  std::array<int64_t, 2> fp8Block{0, 0};
  /// quantization_config.modules_to_not_convert: modules (matched as
  /// substrings of the module name, as HF does) left in the source dtype.
  std::vector<std::string> modulesToNotConvert;
  bool isFp8() const { return fp8Block[0] > 0; }
};

/// Reads `quantization_config` of `config` (absent or null: none). Supported:
/// quant_method "fp8" with fmt "e4m3", activation_scheme "dynamic" and a
/// two-entry weight_block_size; anything else is an error naming the key.
llvm::Expected<WeightQuantization> parseWeightQuantization(const llvm::json::Object &config);

} // namespace qwen::models

#endif // QWEN_MODELS_QWEN3_QUANTIZATION_H
