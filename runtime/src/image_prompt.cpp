//===- image_prompt.cpp - Image tokens and 3-D MRoPE positions ------------===//

#include "qwen_rt/image_prompt.h"
#include "qwen_rt/error.h"
#include "qwen_rt/safetensors.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>

namespace qwen::rt {

namespace {

void checkGrid(const ImageGrid &grid, int mergeSize, size_t index) {
  if (mergeSize <= 0)
    throw Error("the merge size must be positive");
  if (grid[0] <= 0 || grid[1] <= 0 || grid[2] <= 0 || grid[1] % mergeSize != 0 || grid[2] % mergeSize != 0)
    throw Error("image " + std::to_string(index + 1) + " has the grid (" + std::to_string(grid[0]) + ", " +
                std::to_string(grid[1]) + ", " + std::to_string(grid[2]) + "), not positive multiples of the merge size " +
                std::to_string(mergeSize));
}

} // namespace

int64_t imageTokenCount(const ImageGrid &grid, int mergeSize) {
  return grid[0] * grid[1] * grid[2] / (int64_t(mergeSize) * mergeSize);
}

std::vector<int32_t> expandImagePads(const std::vector<int32_t> &ids, int32_t imagePadId,
                                     const std::vector<ImageGrid> &grids, int mergeSize) {
  size_t pads = size_t(std::count(ids.begin(), ids.end(), imagePadId));
  if (pads != grids.size())
    throw Error("the prompt has " + std::to_string(pads) + " image placeholders for " + std::to_string(grids.size()) +
                " images");
  std::vector<int32_t> out;
  size_t next = 0;
  for (int32_t id : ids) {
    if (id != imagePadId) {
      out.push_back(id);
      continue;
    }
    checkGrid(grids[next], mergeSize, next);
    out.insert(out.end(), size_t(imageTokenCount(grids[next], mergeSize)), imagePadId);
    ++next;
  }
  return out;
}

MropePositions computeMropePositions(const std::vector<int32_t> &ids, int32_t imagePadId,
                                     const std::vector<ImageGrid> &grids, int mergeSize) {
  MropePositions out;
  const int64_t n = int64_t(ids.size());
  out.length = n;
  out.rows.assign(size_t(3 * n), 0);
  int64_t current = 0;
  size_t image = 0;
  int64_t maxPosition = -1;
  auto put = [&](int64_t index, int64_t t, int64_t h, int64_t w) {
    out.rows[size_t(index)] = t;
    out.rows[size_t(n + index)] = h;
    out.rows[size_t(2 * n + index)] = w;
    maxPosition = std::max({maxPosition, t, h, w});
  };
  for (int64_t i = 0; i < n;) {
    if (ids[size_t(i)] != imagePadId) {
      put(i, current, current, current);
      ++current;
      ++i;
      continue;
    }
    int64_t end = i;
    while (end < n && ids[size_t(end)] == imagePadId)
      ++end;
    if (image >= grids.size())
      throw Error("the prompt has more image token runs than the " + std::to_string(grids.size()) + " images");
    const ImageGrid &grid = grids[image];
    checkGrid(grid, mergeSize, image);
    const int64_t gh = grid[1] / mergeSize, gw = grid[2] / mergeSize;
    const int64_t expected = grid[0] * gh * gw;
    if (end - i != expected)
      throw Error("image " + std::to_string(image + 1) + " takes " + std::to_string(expected) +
                  " image tokens but the prompt has a run of " + std::to_string(end - i));
    int64_t index = i;
    for (int64_t t = 0; t < grid[0]; ++t)
      for (int64_t r = 0; r < gh; ++r)
        for (int64_t c = 0; c < gw; ++c)
          put(index++, current + t, current + r, current + c);
    current += std::max(gh, gw);
    ++image;
    i = end;
  }
  if (image != grids.size())
    throw Error("the prompt has image tokens for " + std::to_string(image) + " of the " +
                std::to_string(grids.size()) + " images");
  out.ropeDelta = n == 0 ? 0 : maxPosition + 1 - n;
  return out;
}

namespace {
/// `ids` with one pad per image expanded; ids whose pads are already more
/// than the images are taken as expanded (computeMropePositions checks their
/// runs against the grids).
std::vector<int32_t> expandOnce(const std::vector<int32_t> &ids, int32_t imagePadId,
                                const std::vector<ImageGrid> &grids, int mergeSize) {
  if (size_t(std::count(ids.begin(), ids.end(), imagePadId)) > grids.size() && !grids.empty())
    return ids;
  return expandImagePads(ids, imagePadId, grids, mergeSize);
}
} // namespace

ImagePrompt buildImagePrompt(const std::vector<int32_t> &ids, const std::vector<ImageEmbedding> &images,
                             int32_t imagePadId, int mergeSize, int64_t hidden) {
  std::vector<ImageGrid> grids;
  for (const ImageEmbedding &image : images)
    grids.push_back(image.grid);
  ImagePrompt out;
  out.hidden = hidden;
  out.ids = expandOnce(ids, imagePadId, grids, mergeSize);
  out.positions = computeMropePositions(out.ids, imagePadId, grids, mergeSize);
  for (size_t i = 0; i < images.size(); ++i) {
    const int64_t rows = imageTokenCount(images[i].grid, mergeSize);
    if (int64_t(images[i].rows.size()) != rows * hidden)
      throw Error("image " + std::to_string(i + 1) + " has " + std::to_string(images[i].rows.size()) +
                  " embedding values; its grid takes " + std::to_string(rows) + " rows of " +
                  std::to_string(hidden));
    out.embeds.insert(out.embeds.end(), images[i].rows.begin(), images[i].rows.end());
  }
  for (size_t k = 0; k < out.ids.size(); ++k)
    if (out.ids[k] == imagePadId)
      out.imageTokens.push_back(int32_t(k));
  return out;
}

Engine::SequenceChunk ImagePrompt::chunk(int seq, int64_t begin, int64_t end) const {
  const int64_t n = int64_t(ids.size());
  if (begin < 0 || end > n || begin >= end)
    throw Error("ImagePrompt::chunk: [" + std::to_string(begin) + ", " + std::to_string(end) +
                ") is not a non-empty range of the " + std::to_string(n) + " tokens");
  Engine::SequenceChunk c{seq, std::vector<int32_t>(ids.begin() + begin, ids.begin() + end)};
  auto first = std::lower_bound(imageTokens.begin(), imageTokens.end(), int32_t(begin));
  auto last = std::lower_bound(imageTokens.begin(), imageTokens.end(), int32_t(end));
  for (auto it = first; it != last; ++it) {
    c.imageRows.push_back(int32_t(*it - begin));
    const size_t row = size_t(it - imageTokens.begin());
    c.imageEmbeds.insert(c.imageEmbeds.end(), embeds.begin() + long(row * size_t(hidden)),
                         embeds.begin() + long((row + 1) * size_t(hidden)));
  }
  c.mropePositions.resize(size_t(3 * (end - begin)));
  for (int axis = 0; axis < 3; ++axis)
    for (int64_t k = begin; k < end; ++k) {
      const int64_t position = positions.at(axis, k);
      if (position > INT32_MAX)
        throw Error("the rotary position " + std::to_string(position) + " does not fit in 32 bits");
      c.mropePositions[size_t(axis * (end - begin) + (k - begin))] = int32_t(position);
    }
  return c;
}

std::vector<ImageEmbedding> readImageEmbeddings(const std::string &path, int mergeSize) {
  SafetensorsArchive file = SafetensorsArchive::openFile(path);
  const TensorView &grids = file.get("grid_thw"), &embeds = file.get("embeds");
  if (grids.shape.size() != 2 || grids.shape[1] != 3 || (grids.dtype != DType::I32 && grids.dtype != DType::I64))
    throw Error(path + ": grid_thw must be int32 or int64 [images, 3]");
  if (embeds.shape.size() != 2 || embeds.dtype != DType::F32)
    throw Error(path + ": embeds must be float32 [rows, hidden]");
  const int64_t hidden = embeds.shape[1], total = embeds.shape[0];
  std::vector<ImageEmbedding> images(size_t(grids.shape[0]));
  int64_t row = 0;
  for (size_t i = 0; i < images.size(); ++i) {
    for (size_t d = 0; d < 3; ++d) {
      const size_t at = 3 * i + d;
      int64_t v = 0;
      if (grids.dtype == DType::I32) {
        int32_t x;
        std::memcpy(&x, grids.data + at * 4, 4);
        v = x;
      } else {
        std::memcpy(&v, grids.data + at * 8, 8);
      }
      images[i].grid[d] = v;
    }
    checkGrid(images[i].grid, mergeSize, i);
    const int64_t rows = imageTokenCount(images[i].grid, mergeSize);
    if (row + rows > total)
      throw Error(path + ": the grids take more rows than embeds' " + std::to_string(total));
    images[i].rows.resize(size_t(rows * hidden));
    std::memcpy(images[i].rows.data(), embeds.data + size_t(row * hidden) * sizeof(float),
                size_t(rows * hidden) * sizeof(float));
    row += rows;
  }
  if (row != total)
    throw Error(path + ": embeds has " + std::to_string(total) + " rows, the grids take " + std::to_string(row));
  return images;
}

ImageProcessorConfig imageProcessorConfig(const Engine &engine) {
  if (!engine.acceptsImages())
    throw Error("this model takes no images (its checkpoint has no vision_config)");
  const std::string path = engine.checkpointDir() + "/preprocessor_config.json";
  if (engine.checkpointDir().empty() || !std::ifstream(path).good())
    throw Error("the checkpoint has no preprocessor_config.json (" + path +
                "): the image preprocessing of this model is unknown");
  return readImageProcessorConfig(path);
}

std::vector<PixelValues> preprocessImages(const Engine &engine, const std::vector<std::vector<uint8_t>> &encoded,
                                          const std::vector<std::string> &origins) {
  std::vector<PixelValues> out;
  if (encoded.empty())
    return out;
  const ImageProcessorConfig config = imageProcessorConfig(engine);
  if (config.mergeSize != engine.spatialMergeSize())
    throw Error("preprocessor_config.json has merge_size " + std::to_string(config.mergeSize) +
                " but the model's vision_config has spatial_merge_size " + std::to_string(engine.spatialMergeSize()));
  // The vision program's patch rows are fixed by vision_config: a processor
  // that cuts other patches is refused before any image is decoded.
  if (std::optional<VisionProgramSpec> vision = parseVisionProgram(engine.artifact())) {
    const VisionGeometry &g = vision->geometry;
    if (config.patchSize != g.patchSize || config.temporalPatchSize != g.temporalPatchSize)
      throw Error("preprocessor_config.json has patch_size " + std::to_string(config.patchSize) +
                  " and temporal_patch_size " + std::to_string(config.temporalPatchSize) +
                  " but the model's vision_config has " + std::to_string(g.patchSize) + " and " +
                  std::to_string(g.temporalPatchSize));
  }
  ImageCache &cache = engine.imageCache();
  for (size_t i = 0; i < encoded.size(); ++i) {
    auto bytes = std::make_shared<const std::vector<uint8_t>>(encoded[i]);
    std::optional<PixelValues> pixels = cache.pixels(bytes);
    if (!pixels) {
      const std::string origin = i < origins.size() ? origins[i] : "image " + std::to_string(i + 1);
      pixels = preprocessImage(decodeImage(bytes->data(), bytes->size(), origin), config);
      cache.storePixels(bytes, *pixels);
    }
    pixels->encoded = bytes;
    out.push_back(std::move(*pixels));
  }
  return out;
}

std::vector<ImageEmbedding> splitImageEmbeddings(const ImageEmbeddings &encoded, const std::vector<ImageGrid> &grids,
                                                 int mergeSize, int64_t hidden) {
  if (encoded.width != hidden)
    throw Error("the vision program's embeddings are " + std::to_string(encoded.width) +
                " wide (vision_config.out_hidden_size) but the language model's hidden size is " +
                std::to_string(hidden) + ": the checkpoint's vision tower does not fit its language model");
  if (encoded.tokensPerImage.size() != grids.size())
    throw Error("the vision program returned " + std::to_string(encoded.tokensPerImage.size()) + " images for " +
                std::to_string(grids.size()));
  std::vector<ImageEmbedding> out(grids.size());
  size_t offset = 0;
  for (size_t i = 0; i < grids.size(); ++i) {
    const int64_t rows = encoded.tokensPerImage[i];
    if (rows != imageTokenCount(grids[i], mergeSize))
      throw Error("the vision program returned " + std::to_string(rows) + " rows for image " + std::to_string(i + 1) +
                  ", whose grid takes " + std::to_string(imageTokenCount(grids[i], mergeSize)));
    const size_t values = size_t(rows * hidden);
    if (offset + values > encoded.rows.size())
      throw Error("the vision program returned fewer rows than its images take");
    out[i].grid = grids[i];
    out[i].rows.assign(encoded.rows.begin() + long(offset), encoded.rows.begin() + long(offset + values));
    offset += values;
  }
  if (offset != encoded.rows.size())
    throw Error("the vision program returned more rows than its images take");
  return out;
}

ImageEncoder visionEncoder(Engine &engine) {
  if (!engine.acceptsImages())
    throw Error("this model takes no images (its checkpoint has no vision_config)");
  if (!engine.hasVision())
    throw Error("this artifact has no vision program (compiled with --no-vision): recompile the checkpoint "
                "without --no-vision to pass images, or pass the image embeddings (qwen-run logits --image-embeds)");
  Engine *e = &engine;
  return [e](const std::vector<PixelValues> &images) -> std::vector<ImageEmbedding> {
    const VisionGeometry &geometry = e->visionGeometry();
    std::vector<ImageGrid> grids;
    for (const PixelValues &image : images) {
      if (image.rowSize != geometry.patchRowSize())
        throw Error("the image's patches have " + std::to_string(image.rowSize) +
                    " values but the vision program takes " + std::to_string(geometry.patchRowSize()) +
                    " (patch_size " + std::to_string(geometry.patchSize) + ", temporal_patch_size " +
                    std::to_string(geometry.temporalPatchSize) +
                    "): the checkpoint's preprocessor_config.json does not match its vision_config");
      grids.push_back(image.gridThw);
    }
    // Images the cache has rows for are not encoded again.
    ImageCache &cache = e->imageCache();
    std::vector<ImageEmbedding> out(images.size());
    std::vector<PixelValues> missing;
    std::vector<size_t> missingAt;
    for (size_t i = 0; i < images.size(); ++i) {
      std::optional<std::vector<float>> rows = images[i].encoded ? cache.rows(images[i].encoded) : std::nullopt;
      if (rows) {
        out[i] = ImageEmbedding{images[i].gridThw, std::move(*rows)};
      } else {
        missing.push_back(images[i]);
        missingAt.push_back(i);
      }
    }
    if (missing.empty())
      return out;
    std::vector<ImageGrid> missingGrids;
    for (size_t i : missingAt)
      missingGrids.push_back(grids[i]);
    std::vector<ImageEmbedding> encoded =
        splitImageEmbeddings(e->encodeImages(missing), missingGrids, std::max(e->spatialMergeSize(), 1),
                             e->modelInfo().value("hidden_size", int64_t(0)));
    for (size_t k = 0; k < missingAt.size(); ++k) {
      if (images[missingAt[k]].encoded)
        cache.storeRows(images[missingAt[k]].encoded, encoded[k].rows);
      out[missingAt[k]] = std::move(encoded[k]);
    }
    return out;
  };
}

ImagePrompt prepareImagePrompt(const Engine &engine, const std::vector<int32_t> &ids,
                               const std::vector<ImageEmbedding> &images) {
  if (!images.empty() && !engine.acceptsImages())
    throw Error("this model takes no images (its checkpoint has no vision_config)");
  ImagePrompt prompt =
      buildImagePrompt(ids, images, engine.imageTokenId(), std::max(engine.spatialMergeSize(), 1),
                       engine.modelInfo().value("hidden_size", int64_t(0)));
  if (int64_t(prompt.ids.size()) > engine.maxContext())
    throw Error("the prompt takes " + std::to_string(prompt.ids.size()) + " tokens with its images (" +
                std::to_string(prompt.rowCount()) + " image tokens), more than the context of " +
                std::to_string(engine.maxContext()) + " tokens");
  return prompt;
}

ImagePrompt prepareImagePrompt(Engine &engine, const std::vector<int32_t> &ids,
                               const std::vector<PixelValues> &images, ImageEncoder encode) {
  if (!images.empty() && !engine.acceptsImages())
    throw Error("this model takes no images (its checkpoint has no vision_config)");
  std::vector<ImageEmbedding> embedded;
  if (!images.empty()) {
    // Grids first: a prompt whose placeholders do not match fails before any encoding.
    std::vector<ImageGrid> grids;
    for (const PixelValues &image : images)
      grids.push_back(image.gridThw);
    const std::vector<int32_t> expanded = expandOnce(ids, engine.imageTokenId(), grids, engine.spatialMergeSize());
    computeMropePositions(expanded, engine.imageTokenId(), grids, engine.spatialMergeSize());
    const size_t length = expanded.size();
    if (int64_t(length) > engine.maxContext())
      throw Error("the prompt takes " + std::to_string(length) + " tokens with its images, more than the context of " +
                  std::to_string(engine.maxContext()) + " tokens");
    embedded = (encode ? encode : visionEncoder(engine))(images);
    if (embedded.size() != images.size())
      throw Error("the vision encoder returned " + std::to_string(embedded.size()) + " images for " +
                  std::to_string(images.size()));
  }
  return prepareImagePrompt(static_cast<const Engine &>(engine), ids, embedded);
}

} // namespace qwen::rt
