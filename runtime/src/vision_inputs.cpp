//===- vision_inputs.cpp - Host-side inputs of the vision tower -----------===//
//
// Each number is computed with the float32 operations, in the order, of the
// HF code named in vision_inputs.h (transformers/vision_utils.py and
// models/qwen3_5/modeling_qwen3_5.py).
//
//===----------------------------------------------------------------------===//
#include "qwen_rt/vision_inputs.h"

#include "qwen_rt/error.h"

#include <algorithm>
#include <cmath>
#include <string>

using namespace qwen::rt;

void qwen::rt::validateVisionGeometry(const VisionGeometry &g) {
  auto positive = [](int64_t v) { return v > 0; };
  if (!positive(g.hiddenSize) || !positive(g.numHeads) || !positive(g.patchSize) ||
      !positive(g.temporalPatchSize) || !positive(g.spatialMergeSize) ||
      !positive(g.inChannels) || !positive(g.outHiddenSize))
    throw Error("vision_config: sizes must be positive");
  if (g.hiddenSize % g.numHeads != 0 || g.headDim() % 4 != 0)
    throw Error("vision_config: hidden_size / num_heads must be a multiple of 4 (2-D rotary)");
  const auto side = static_cast<int64_t>(std::sqrt(static_cast<double>(g.numPositionEmbeddings)));
  if (side < 1 || side * side != g.numPositionEmbeddings)
    throw Error("vision_config: num_position_embeddings (" +
                std::to_string(g.numPositionEmbeddings) + ") must be a square");
}

namespace {
/// HF `_interpolation_axis_taps_weights`, bilinear, align_corners=True,
/// border padding: taps floor, floor + 1 (clamped) and their hat weights.
void axisTaps(int64_t index, int64_t size, int64_t side, int64_t taps[2], float weights[2]) {
  const float src = static_cast<float>(index) * static_cast<float>(side - 1) /
                    static_cast<float>(std::max<int64_t>(size - 1, 1));
  const float floor = std::floor(src);
  for (int offset = 0; offset < 2; ++offset) {
    taps[offset] = std::clamp<int64_t>(static_cast<int64_t>(floor) + offset, 0, side - 1);
    const float distance = std::fabs((src - floor) - static_cast<float>(offset));
    weights[offset] = std::max(1.0f - distance, 0.0f);
  }
}
} // namespace

VisionInputs qwen::rt::buildVisionInputs(const std::vector<PixelValues> &images,
                                         const VisionGeometry &g) {
  validateVisionGeometry(g);
  const int64_t merge = g.spatialMergeSize, rowSize = g.patchRowSize();
  const int64_t side = static_cast<int64_t>(std::sqrt(static_cast<double>(g.numPositionEmbeddings)));
  const int64_t quarter = g.headDim() / 4, half = g.headDim() / 2;
  // Qwen3_5VisionRotaryEmbedding.compute_axial_rope_parameters: spatial_dim =
  // head_dim / 2, inv_freq = 1 / theta^(arange(0, spatial_dim, 2) / spatial_dim).
  std::vector<float> invFreq(static_cast<size_t>(quarter));
  for (int64_t i = 0; i < quarter; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(half);
    invFreq[size_t(i)] = 1.0f / std::pow(static_cast<float>(g.ropeTheta), exponent);
  }

  VisionInputs in;
  for (const PixelValues &image : images) {
    const auto [t, h, w] = image.gridThw;
    if (t < 1 || h < 1 || w < 1 || h % merge != 0 || w % merge != 0)
      throw Error("image grid (" + std::to_string(t) + ", " + std::to_string(h) + ", " +
                  std::to_string(w) + ") does not divide by spatial_merge_size " +
                  std::to_string(merge));
    if (image.rowSize != rowSize || image.rows != t * h * w ||
        static_cast<int64_t>(image.data.size()) != image.rows * rowSize)
      throw Error("image pixel_values rows of " + std::to_string(image.rowSize) +
                  " values do not match the vision tower's patch rows of " +
                  std::to_string(rowSize) + " (patch_size, temporal_patch_size, channels)");
    in.pixels.insert(in.pixels.end(), image.data.begin(), image.data.end());
    const int64_t blocksW = w / merge;
    for (int64_t frame = 0; frame < t; ++frame) {
      const auto begin = static_cast<int32_t>(in.patches + frame * h * w);
      const auto end = static_cast<int32_t>(begin + h * w);
      for (int64_t within = 0; within < h * w; ++within) {
        // The merge-blocked order (block_row, block_col, in_row, in_col).
        const int64_t inCol = within % merge, inRow = (within / merge) % merge;
        const int64_t blockCol = (within / (merge * merge)) % blocksW;
        const int64_t blockRow = within / (merge * merge * blocksW);
        const int64_t row = blockRow * merge + inRow, col = blockCol * merge + inCol;

        int64_t hTaps[2], wTaps[2];
        float hWeights[2], wWeights[2];
        axisTaps(row, h, side, hTaps, hWeights);
        axisTaps(col, w, side, wTaps, wWeights);
        for (int a = 0; a < 2; ++a)
          for (int c = 0; c < 2; ++c) {
            in.posIndices.push_back(static_cast<int32_t>(hTaps[a] * side + wTaps[c]));
            in.posWeights.push_back(hWeights[a] * wWeights[c]);
          }

        for (int64_t i = 0; i < half; ++i) {
          const float position = static_cast<float>(i < quarter ? row : col);
          const float angle = position * invFreq[size_t(i % quarter)];
          in.ropeCos.push_back(std::cos(angle));
          in.ropeSin.push_back(std::sin(angle));
        }
        in.segmentBounds.push_back(begin);
        in.segmentBounds.push_back(end);
      }
    }
    in.patches += image.rows;
    in.mergedTokens.push_back(image.rows / g.mergeUnit());
  }
  return in;
}
