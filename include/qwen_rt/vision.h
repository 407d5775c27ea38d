//===- vision.h - The artifact's vision program: images to embeddings -*- C++ -*-===//
//
// An artifact compiled with `qwen-compile --vision` has a second program,
// the manifest's "vision" section (docs/ARTIFACT.md): the Qwen3.5 vision
// tower from pixel_values rows to the embeddings that replace each image's
// <|image_pad|> tokens. VisionEncoder binds its weights and runs it for a
// batch of preprocessed images (qwen_rt/image.h), with the inputs the host
// derives from each image's grid (qwen_rt/vision_inputs.h).
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_RT_VISION_H
#define QWEN_RT_VISION_H

#include "qwen_rt/artifact.h"
#include "qwen_rt/vision_inputs.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace qwen::rt {

class BoundProgram;
class Executor;
class ThreadPool;
class WeightStore;

/// The vision embeddings of a batch of images.
struct ImageEmbeddings {
  int64_t width = 0;                   ///< out_hidden_size (the language model's hidden size)
  std::vector<float> rows;             ///< [sum of tokensPerImage, width], images in order
  std::vector<int64_t> tokensPerImage; ///< merged patches: each image's <|image_pad|> count
};

/// The manifest's "vision" section, parsed and checked.
struct VisionProgramSpec {
  VisionGeometry geometry;
  int64_t depth = 0;
  std::vector<InputSpec> inputs;
  std::vector<WeightSpec> weights;
  std::vector<BufferSpec> buffers;
  std::vector<ProgramEntry> program;
  int outputBuffer = -1; ///< index into buffers
};

/// The vision section of `artifact`'s manifest; std::nullopt when it has
/// none (compiled without --vision, or a text-only model). Throws Error for
/// a malformed section.
std::optional<VisionProgramSpec> parseVisionProgram(const Artifact &artifact);

/// Bytes of the vision program's inputs and activation buffers for a run
/// over `patches` patches (the memory plan).
uint64_t visionActivationBytes(const VisionProgramSpec &spec, int64_t patches);

/// The vision program on the CPU (Executor::bindVision's default): the
/// kernels of `artifact`'s kernels.so on `pool`.
std::unique_ptr<BoundProgram> bindHostVisionProgram(const Artifact &artifact, const VisionProgramSpec &spec,
                                                    WeightStore weights, ThreadPool &pool);

/// Runs the vision program of an artifact where `executor` runs its step
/// program (the CPU, or the GPU of a CUDA artifact).
class VisionEncoder {
public:
  /// Binds the program's weights from `checkpointDir` (read on `pool`) on
  /// `executor`. Throws Error when the artifact has no vision program (with
  /// what to do about it) or the weights do not bind.
  VisionEncoder(const Artifact &artifact, const std::string &checkpointDir, ThreadPool &pool, Executor &executor);
  ~VisionEncoder();
  VisionEncoder(const VisionEncoder &) = delete;
  VisionEncoder &operator=(const VisionEncoder &) = delete;

  const VisionGeometry &geometry() const { return Spec.geometry; }
  const VisionProgramSpec &spec() const { return Spec; }
  /// Bytes of the vision weights bound.
  uint64_t weightBytes() const;
  /// Bytes of the activations (inputs and buffers) of a run over `patches` patches.
  uint64_t activationBytes(int64_t patches) const;

  /// The embeddings of `images` (each from preprocessImage under the
  /// checkpoint's preprocessor_config.json). Throws Error.
  ImageEmbeddings encode(const std::vector<PixelValues> &images);

private:
  struct Impl;
  VisionProgramSpec Spec;
  std::unique_ptr<Impl> P;
};

} // namespace qwen::rt

#endif // QWEN_RT_VISION_H
