//===- RopeScaling.h - rope_scaling / rope_parameters reader ----*- C++ -*-===//
#ifndef QWEN_MODELS_QWEN3_ROPESCALING_H
#define QWEN_MODELS_QWEN3_ROPESCALING_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"

#include <cstdint>
#include <string>
#include <vector>

namespace qwen::models {

/// A config's RoPE scaling with HF's defaults applied: every field is the
/// value transformers' modeling_rope_utils computes with.
struct RopeScaling {
  /// "default", "linear", "dynamic", "yarn", "llama3" or "longrope".
  std::string type = "default";
  double factor = 1.0;
  /// yarn, llama3, longrope: the pretraining context; dynamic:
  /// max_position_embeddings (HF scales relative to it).
  int64_t originalMaxPositions = 0;
  /// Multiplies cos and sin (yarn, longrope).
  double attentionFactor = 1.0;
  double betaFast = 32.0, betaSlow = 1.0; ///< yarn
  bool truncate = true;                   ///< yarn
  double lowFreqFactor = 1.0, highFreqFactor = 4.0; ///< llama3
  std::vector<double> shortFactor, longFactor;     ///< longrope

  bool isDefault() const { return type == "default"; }
  /// The longest sequence the scaled RoPE is meant for, which the artifact
  /// accepts: max_position_embeddings, extended by `factor` for linear and
  /// dynamic, to original * factor for yarn and llama3.
  int64_t maxContext(int64_t maxPositionEmbeddings) const;
};

/// Reads the scaling of rope type `type` from `params` (the rope_scaling /
/// rope_parameters object). `config` is the object holding the model keys
/// (a top-level original_max_position_embeddings wins, as in HF);
/// `rotaryDim` is the number of rotated dims. Errors name the key.
llvm::Expected<RopeScaling> parseRopeScaling(llvm::StringRef type, const llvm::json::Object &params,
                                             const llvm::json::Object &config,
                                             int64_t maxPositionEmbeddings, int64_t rotaryDim);

} // namespace qwen::models

#endif // QWEN_MODELS_QWEN3_ROPESCALING_H
