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

#include "qwen_rt/engine.h"
#include "qwen_rt/image.h"

#include <array>
#include <cstddef>
#include <functional>
#include <string>
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

/// One image as the language model takes it: its patch grid and its
/// merged-patch rows (imageTokenCount(grid) x hidden_size f32), the output
/// of the vision program.
struct ImageEmbedding {
  ImageGrid grid = {0, 0, 0};
  std::vector<float> rows;
};

/// A prompt with images, ready for Engine::step: the expanded ids, their
/// three position rows, and every image's rows in prompt order.
struct ImagePrompt {
  std::vector<int32_t> ids;
  MropePositions positions;
  std::vector<float> embeds;          ///< all image rows, row-major, hidden wide
  std::vector<int32_t> imageTokens;   ///< index in ids of each row of embeds
  int64_t hidden = 0;
  int64_t rowCount() const { return int64_t(imageTokens.size()); }
  /// The chunk of tokens [begin, end) of sequence `seq`, with the image rows
  /// and positions that fall in it (a chunk may split an image's run).
  Engine::SequenceChunk chunk(int seq, int64_t begin, int64_t end) const;
};

/// `ids` holds one `imagePadId` per image (as a user writes the prompt),
/// each expanded to its image's merged-patch count, or is already expanded
/// (more pads than images: each run must be its image's count); the rows are
/// gathered and the positions computed. Throws Error when the counts of
/// placeholders and images differ, an image's rows do not match its grid or
/// are not `hidden` wide.
ImagePrompt buildImagePrompt(const std::vector<int32_t> &ids, const std::vector<ImageEmbedding> &images,
                             int32_t imagePadId, int mergeSize, int64_t hidden);

/// The image processor settings of the engine's checkpoint
/// (preprocessor_config.json in its folder). Throws Error for a model that
/// takes no images or a checkpoint without the file.
ImageProcessorConfig imageProcessorConfig(const Engine &engine);

/// Decoded and preprocessed for `engine` (imageProcessorConfig): what
/// prepareImagePrompt takes. `origins` name the images in errors (a corrupt,
/// truncated or unsupported image is an Error).
std::vector<PixelValues> preprocessImages(const Engine &engine, const std::vector<std::vector<uint8_t>> &encoded,
                                          const std::vector<std::string> &origins);

/// Reads image embeddings saved by a test or another runtime (a debug path
/// standing in for the vision program): a safetensors file with `grid_thw`
/// (int32 or int64 [I, 3]) and `embeds` (float32 [rows, hidden], every
/// image's merged-patch rows in order). Throws Error when the rows do not
/// add up to the grids' merged counts.
std::vector<ImageEmbedding> readImageEmbeddings(const std::string &path, int mergeSize);

/// Turns preprocessed images into their merged-patch rows: the artifact's
/// vision program.
using ImageEncoder = std::function<std::vector<ImageEmbedding>(const std::vector<PixelValues> &)>;

/// The vision program's rows for a batch split per image: rows
/// [sum of tokens, width] in image order become one ImageEmbedding per grid.
/// Throws Error when the width is not the language model's `hidden` (a
/// vision_config.out_hidden_size that does not fit) or the row counts do not
/// match the grids.
std::vector<ImageEmbedding> splitImageEmbeddings(const ImageEmbeddings &encoded, const std::vector<ImageGrid> &grids,
                                                 int mergeSize, int64_t hidden);

/// The encoder of `engine`'s artifact: Engine::encodeImages, split per image.
/// Throws Error for an artifact whose model takes no images, or one without
/// a vision program (compiled with --no-vision).
ImageEncoder visionEncoder(Engine &engine);

/// The one call a front end makes for a prompt with images: checks the
/// engine takes images, encodes them with `encode` (visionEncoder(engine)
/// when empty) and builds the prompt. `ids`: one `<|image_pad|>` per image,
/// or expanded. The placeholders and the context are checked before encoding.
ImagePrompt prepareImagePrompt(Engine &engine, const std::vector<int32_t> &ids,
                               const std::vector<PixelValues> &images, ImageEncoder encode = {});

/// Engine-side checks of an already encoded prompt: the model takes images
/// and its context holds the expanded prompt. Throws Error.
ImagePrompt prepareImagePrompt(const Engine &engine, const std::vector<int32_t> &ids,
                               const std::vector<ImageEmbedding> &images);

} // namespace qwen::rt

#endif // QWEN_RT_IMAGE_PROMPT_H
