//===- Qwen3VisionBuilder.h - The qtf graph of the Qwen3.5 ViT --*- C++ -*-===//
#ifndef QWEN_MODELS_QWEN3_QWEN3VISIONBUILDER_H
#define QWEN_MODELS_QWEN3_QWEN3VISIONBUILDER_H

#include "models/qwen3/Quantization.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/Error.h"

#include <functional>
#include <optional>
#include <string>

namespace qwen::models {

/// A checkpoint's `vision_config` (Qwen3_5VisionConfig / Qwen3_5MoeVisionConfig,
/// whose towers are the same), defaults as HF's class.
struct VisionConfig {
  int64_t depth = 27;
  int64_t hiddenSize = 1152;
  int64_t intermediateSize = 4304;
  int64_t numHeads = 16;
  int64_t inChannels = 3;
  int64_t patchSize = 16;
  int64_t temporalPatchSize = 2;
  int64_t spatialMergeSize = 2;
  int64_t outHiddenSize = 3584;
  int64_t numPositionEmbeddings = 2304;
  double ropeTheta = 10000.0;
  /// hidden_act of the blocks' MLP: gelu_pytorch_tanh (tanh) or gelu (erf).
  bool tanhGelu = true;
  /// Element type of the stored weights: "f32", "bf16" or "f16".
  std::string weightDType = "bf16";
  std::string prefix = "model.visual.";
  /// The checkpoint's quantization_config (the text model's): block-wise FP8
  /// checkpoints keep the tower's quantized linears f8E4M3FN with their
  /// weight_scale_inv blocks, as the text model's.
  WeightQuantization quantization;
  /// Whether the checkpoint has a tensor of this name (set when compiling
  /// from a checkpoint): a linear is fp8 when its weight has a
  /// weight_scale_inv; without a checkpoint, unless
  /// quantization.modulesToNotConvert names it.
  std::function<bool(const std::string &)> hasTensor;

  int64_t headDim() const { return hiddenSize / numHeads; }
  int64_t patchRowSize() const { return inChannels * temporalPatchSize * patchSize * patchSize; }
  int64_t mergeUnit() const { return spatialMergeSize * spatialMergeSize; }
};

/// The `vision_config` of config.json's text (`path` names it in errors);
/// std::nullopt for a text-only config. `weightDType` is the text model's (the
/// checkpoint's).
llvm::Expected<std::optional<VisionConfig>>
parseVisionConfig(llvm::StringRef jsonText, llvm::StringRef path, llvm::StringRef weightDType);

/// Appends `func.func @vision` to `module`: the tower of Qwen3_5VisionModel
/// over the patches of a batch of images, from pixel_values rows to the
/// merger's output (what replaces the image pads), [N / merge^2,
/// out_hidden_size]. Its inputs (qtf.input) are pixel_values [N, C*T*P*P],
/// pos_indices / pos_weights [N, 4], rope_cos / rope_sin [N, head_dim / 2]
/// and segment_bounds [N, 2], computed by the runtime from each image's grid
/// (qwen_rt/vision_inputs.h); the result carries qtf.output = "vision_embeddings".
void buildQwen3VisionGraph(mlir::ModuleOp module, const VisionConfig &config);

} // namespace qwen::models

#endif // QWEN_MODELS_QWEN3_QWEN3VISIONBUILDER_H
