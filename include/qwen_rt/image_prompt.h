//===- image_prompt.h - Image tokens and 3-D MRoPE positions ----*- C++ -*-===//
//
// The prompt side of images in Qwen3-VL / Qwen3.5: each `<|image_pad|>` the
// user writes stands for one image and is expanded to that image's merged
// patch count (the processor's convention), and the positions of a prompt
// with images are three rows (t, h, w) as HF's `get_rope_index` computes
// them: text at t = h = w = position; an image whose first token follows
// position p - 1 gets (p + t, p + row, p + col) over its merged grid; the
// text after it resumes at p + max(merged rows, merged cols).
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_RT_IMAGE_PROMPT_H
#define QWEN_RT_IMAGE_PROMPT_H

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace qwen::rt {

/// An image's patch grid (image_grid_thw): frames, rows, columns of patches.
using ImageGrid = std::array<int64_t, 3>;

/// The `<|image_pad|>` tokens one image takes: t * h * w / merge^2.
int64_t imageTokenCount(const ImageGrid &grid, int mergeSize);

/// Replaces the i-th `imagePadId` of `ids` by imageTokenCount(grids[i])
/// copies of it. Throws Error when the number of pad tokens is not the
/// number of images, or a grid does not divide by the merge size.
std::vector<int32_t> expandImagePads(const std::vector<int32_t> &ids, int32_t imagePadId,
                                     const std::vector<ImageGrid> &grids, int mergeSize);

/// Multimodal rotary positions of a prompt.
struct MropePositions {
  int64_t length = 0;
  /// Three rows of `length` positions, row-major: t, then h, then w.
  std::vector<int64_t> rows;
  /// max position + 1 - length (HF's rope_deltas): decode step i (counting
  /// the prompt) sits at position i + ropeDelta in all three rows.
  int64_t ropeDelta = 0;
  int64_t at(int row, int64_t index) const { return rows[size_t(row * length + index)]; }
  /// The position of the first token after the prompt.
  int64_t nextPosition() const { return length + ropeDelta; }
};

/// HF's `get_rope_index` for one sequence (no padding): each maximal run of
/// `imagePadId` tokens is the next image of `grids`, whose merged count it
/// must equal. Throws Error on a mismatch or when images are left over.
MropePositions computeMropePositions(const std::vector<int32_t> &ids, int32_t imagePadId,
                                     const std::vector<ImageGrid> &grids, int mergeSize);

} // namespace qwen::rt

#endif // QWEN_RT_IMAGE_PROMPT_H
