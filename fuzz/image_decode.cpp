//===- image_decode.cpp - Fuzz target: image files ------------------------===//
//
// The input is an image file as a user or an API request hands it over
// (PNG, JPEG, WebP or anything else), decoded and then preprocessed as the
// Qwen3.5 processor does with small pixel bounds (so that a valid input
// runs the resize and patchify quickly).
//
//===----------------------------------------------------------------------===//

#include "qwen_rt/error.h"
#include "qwen_rt/image.h"

using namespace qwen;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  rt::RgbImage image;
  try {
    image = rt::decodeImage(data, size, "fuzz-input");
  } catch (const rt::Error &) {
    return 0;
  }
  // Keep the fuzzer fast: large (valid) images are not interesting here.
  if (int64_t(image.width) * image.height > 4096 * 4096)
    return 0;
  rt::ImageProcessorConfig config;
  config.patchSize = 16;
  config.minPixels = 32 * 32;
  config.maxPixels = 64 * 64;
  config.imageMean = {0.5f, 0.5f, 0.5f};
  config.imageStd = {0.5f, 0.5f, 0.5f};
  try {
    rt::PixelValues px = rt::preprocessImage(image, config);
    if (px.data.size() != size_t(px.rows * px.rowSize))
      __builtin_trap();
  } catch (const rt::Error &) {
  }
  return 0;
}
