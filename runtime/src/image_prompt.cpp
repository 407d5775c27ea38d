//===- image_prompt.cpp - Image tokens and 3-D MRoPE positions ------------===//

#include "qwen_rt/image_prompt.h"
#include "qwen_rt/error.h"

#include <algorithm>
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

} // namespace qwen::rt
