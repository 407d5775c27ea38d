//===- vision_inputs.h - Host-side inputs of the vision tower ---*- C++ -*-===//
//
// What HF's Qwen3-VL / Qwen3.5 vision model (Qwen3_5VisionModel.forward)
// derives from `image_grid_thw` before its first layer, computed on the host
// in the same float32 arithmetic so the compiled tower needs no per-image
// constants:
//
//   pos-embed taps   get_vision_interpolation_indices_and_weights (bilinear,
//                    align_corners): 4 table rows and weights per patch, in
//                    the merge-blocked patch order of pixel_values
//   rotary cos/sin   Qwen3_5VisionRotaryEmbedding over the (row, col) of
//                    each patch (get_vision_position_ids): [h angles | w
//                    angles], head_dim / 2 per patch (the second half of HF's
//                    cos/sin repeats the first)
//   segment bounds   cu_seqlens as [begin, end) of each patch's frame
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_RT_VISION_INPUTS_H
#define QWEN_RT_VISION_INPUTS_H

#include "qwen_rt/image.h"

#include <cstdint>
#include <vector>

namespace qwen::rt {

/// The vision_config numbers the host side needs.
struct VisionGeometry {
  int64_t hiddenSize = 0;
  int64_t numHeads = 0;
  int64_t patchSize = 16;
  int64_t temporalPatchSize = 2;
  int64_t spatialMergeSize = 2;
  int64_t inChannels = 3;
  int64_t numPositionEmbeddings = 0; ///< a square: side * side
  int64_t outHiddenSize = 0;
  double ropeTheta = 10000.0;

  int64_t headDim() const { return hiddenSize / numHeads; }
  /// in_channels * temporal_patch * patch * patch: one pixel_values row.
  int64_t patchRowSize() const { return inChannels * temporalPatchSize * patchSize * patchSize; }
  int64_t mergeUnit() const { return spatialMergeSize * spatialMergeSize; }
};

/// The inputs of one run of the vision program over a batch of images.
struct VisionInputs {
  int64_t patches = 0;                      ///< N: rows over all images
  std::vector<float> pixels;                ///< [N, patchRowSize], images in order
  std::vector<int32_t> posIndices;          ///< [N, 4]
  std::vector<float> posWeights;            ///< [N, 4]
  std::vector<float> ropeCos, ropeSin;      ///< [N, head_dim / 2]
  std::vector<int32_t> segmentBounds;       ///< [N, 2]
  std::vector<int64_t> mergedTokens;        ///< per image: N_i / merge^2
};

/// Checks `geometry` (throws Error on a config the tower cannot have).
void validateVisionGeometry(const VisionGeometry &geometry);

/// The tower's inputs for `images` (each from preprocessImage with the
/// checkpoint's patch and merge sizes). Throws Error when an image's rows do
/// not match the geometry.
VisionInputs buildVisionInputs(const std::vector<PixelValues> &images,
                               const VisionGeometry &geometry);

} // namespace qwen::rt

#endif // QWEN_RT_VISION_INPUTS_H
