//===- Qwen3Config.h - Qwen3 config.json reader -----------------*- C++ -*-===//
#ifndef QWEN_MODELS_QWEN3_QWEN3CONFIG_H
#define QWEN_MODELS_QWEN3_QWEN3CONFIG_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <string>
#include <vector>

namespace qwen::models {

/// The facts of a HuggingFace Qwen3 / Qwen3-MoE config.json the compiler needs.
struct Qwen3Config {
  std::string modelType;
  int64_t vocabSize = 0;
  int64_t hiddenSize = 0;
  int64_t intermediateSize = 0;
  int64_t numLayers = 0;
  int64_t numHeads = 0;
  int64_t numKVHeads = 0;
  int64_t headDim = 0;
  int64_t maxPositionEmbeddings = 0;
  double rmsNormEps = 1e-6;
  double ropeTheta = 10000.0;
  bool tieWordEmbeddings = false;
  bool attentionBias = false;
  /// "bf16", "f16" or "f32": the dtype the checkpoint declares.
  std::string weightDType = "bf16";
  int64_t bosTokenId = -1;
  std::vector<int64_t> eosTokenIds;

  // Qwen3-MoE (model_type "qwen3_moe"); numExperts == 0 for dense models.
  int64_t numExperts = 0;
  int64_t numExpertsPerToken = 0;
  int64_t moeIntermediateSize = 0;
  bool normTopkProb = false;
  int64_t decoderSparseStep = 1;
  std::vector<int64_t> mlpOnlyLayers;

  /// Whether decoder layer `layer` has a sparse MoE block (HF's rule).
  bool isMoeLayer(int64_t layer) const;
};

/// Parses config.json text. Every unsupported or inconsistent value is an
/// error that names the key; `path` prefixes the messages.
llvm::Expected<Qwen3Config> parseQwen3Config(llvm::StringRef jsonText,
                                             llvm::StringRef path);

/// Reads and parses a config.json file.
llvm::Expected<Qwen3Config> readQwen3Config(llvm::StringRef path);

} // namespace qwen::models

#endif // QWEN_MODELS_QWEN3_QWEN3CONFIG_H
