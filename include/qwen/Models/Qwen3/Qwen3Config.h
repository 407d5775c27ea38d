//===- Qwen3Config.h - Qwen3 config.json reader -----------------*- C++ -*-===//
#ifndef QWEN_MODELS_QWEN3_QWEN3CONFIG_H
#define QWEN_MODELS_QWEN3_QWEN3CONFIG_H

#include "models/qwen3/Quantization.h"
#include "models/qwen3/RopeScaling.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"

#include <cstdint>
#include <string>
#include <vector>

namespace qwen::models {

/// The facts of a HuggingFace config.json the compiler needs, for the Qwen3
/// families: qwen3, qwen3_moe, qwen3_next, qwen3_5 and qwen3_5_moe (the text
/// model; Qwen3.5's keys are read from its `text_config`).
struct Qwen3Config {
  /// The top-level model_type.
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
  /// rope_scaling / rope_parameters beyond theta (type "default": none).
  RopeScaling ropeScaling;
  bool tieWordEmbeddings = false;
  bool attentionBias = false;
  /// quantization_config (FP8 block-wise weights).
  WeightQuantization quantization;
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

  bool alwaysRenormalize = false; ///< Qwen3.5-MoE: no norm_topk_prob, always true
  /// Shared expert with a sigmoid gate (Qwen3-Next, Qwen3.5-MoE); 0 = none.
  int64_t sharedExpertIntermediateSize = 0;

  // Hybrid families (qwen3_next, qwen3_5, qwen3_5_moe).
  /// Zero-centred RMSNorms, gated attention and Gated DeltaNet layers.
  bool hybrid = false;
  /// Prefix of the text model's tensors: "model." or, in Qwen3.5 VL
  /// checkpoints, "model.language_model.".
  std::string weightPrefix = "model.";
  /// Per layer: true for linear attention (Gated DeltaNet), false for full.
  std::vector<bool> linearLayers;
  /// Rotated dims per head (head_dim * partial_rotary_factor).
  int64_t rotaryDim = 0;
  /// Interleaved MRoPE sections (temporal, height, width); empty = plain RoPE.
  std::vector<int64_t> mropeSection;
  int64_t linearNumKeyHeads = 0, linearNumValueHeads = 0;
  int64_t linearKeyHeadDim = 0, linearValueHeadDim = 0;
  int64_t linearConvKernel = 0;
  /// Qwen3-Next stores in_proj_qkvz / in_proj_ba grouped per key head;
  /// Qwen3.5 stores flat in_proj_qkv / z / b / a.
  bool groupedLinearProjections = false;

  /// Vision-language checkpoints (a top-level `vision_config`): the language
  /// model takes image embeddings in place of `<|image_pad|>` rows.
  bool vision = false;
  int64_t imageTokenId = -1, visionStartTokenId = -1, visionEndTokenId = -1;
  int64_t spatialMergeSize = 0; ///< vision_config.spatial_merge_size

  /// Whether decoder layer `layer` has a sparse MoE block (HF's rule).
  bool isMoeLayer(int64_t layer) const;
  bool isLinearLayer(int64_t layer) const {
    return hybrid && linearLayers[static_cast<size_t>(layer)];
  }
  int64_t numFullAttentionLayers() const;
  /// The longest sequence the artifact accepts (see RopeScaling::maxContext).
  int64_t maxContext() const { return ropeScaling.maxContext(maxPositionEmbeddings); }
  int64_t numLinearLayers() const { return numLayers - numFullAttentionLayers(); }
  int64_t linearKeyDim() const { return linearNumKeyHeads * linearKeyHeadDim; }
  int64_t linearValueDim() const { return linearNumValueHeads * linearValueHeadDim; }
  int64_t linearConvChannels() const { return 2 * linearKeyDim() + linearValueDim(); }
};

/// Parses config.json text. Every unsupported or inconsistent value is an
/// error that names the key; `path` prefixes the messages.
llvm::Expected<Qwen3Config> parseQwen3Config(llvm::StringRef jsonText,
                                             llvm::StringRef path);

/// The text of the config.json at `path`: read once, it serves both
/// parseQwen3Config and parseVisionConfig.
llvm::Expected<std::string> readConfigText(llvm::StringRef path);

/// config.json text as JSON. Nesting deeper than limits::kMaxJsonDepth is an
/// error (llvm::json::parse recurses once per level); `path` prefixes the
/// messages.
llvm::Expected<llvm::json::Value> parseConfigJson(llvm::StringRef jsonText, llvm::StringRef path);

} // namespace qwen::models

#endif // QWEN_MODELS_QWEN3_QWEN3CONFIG_H
