//===- image_dump.cpp - qwen-image-dump: an image's pixel_values ----------===//
//
//   qwen-image-dump IMAGE PREPROCESSOR_CONFIG OUT.safetensors
//
// Writes what the runtime makes of IMAGE under a preprocessor_config.json:
// `decoded` (uint8 H x W x 3), `resized` (uint8), `pixel_values` (float32
// rows x C*T*P*P) and `image_grid_thw` (int64 x 3). A test tool:
// `scripts/gen_image_reference.py --compare` runs it next to HuggingFace's
// processor on any image files and reports the differences.
//
//===----------------------------------------------------------------------===//

#include "qwen_rt/error.h"
#include "qwen_rt/image.h"
#include "qwen_rt/safetensors.h"

#include <cstdio>

using namespace qwen::rt;

int main(int argc, char **argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: qwen-image-dump IMAGE PREPROCESSOR_CONFIG OUT.safetensors\n");
    return 2;
  }
  try {
    RgbImage decoded = loadImage(argv[1]);
    ImageProcessorConfig config = readImageProcessorConfig(argv[2]);
    RgbImage resized = decoded;
    if (config.doResize) {
      auto [h, w] = smartResize(decoded.height, decoded.width, config.factor(), config.minPixels, config.maxPixels);
      resized = resizeBicubic(decoded, int(w), int(h));
    }
    PixelValues px = patchifyImage(resized, config);
    writeSafetensors(argv[3], {{"decoded", DType::U8, {decoded.height, decoded.width, 3}, decoded.pixels.data()},
                               {"resized", DType::U8, {resized.height, resized.width, 3}, resized.pixels.data()},
                               {"pixel_values", DType::F32, {px.rows, px.rowSize}, px.data.data()},
                               {"image_grid_thw", DType::I64, {3}, px.gridThw.data()}});
  } catch (const Error &e) {
    std::fprintf(stderr, "qwen-image-dump: %s\n", e.what());
    return 1;
  }
  return 0;
}
