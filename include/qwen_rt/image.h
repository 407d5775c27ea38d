//===- image.h - Image decoding and Qwen-VL preprocessing -------*- C++ -*-===//
//
// What HuggingFace's Qwen2-VL / Qwen3-VL / Qwen3.5 image processor does with
// the Pillow backend (Qwen2VLImageProcessorPil), reproduced bit for bit:
//
//   decode (libjpeg-turbo, libpng, libwebp, with Pillow's settings)
//   -> convert_to_rgb (alpha composited onto white, as transformers does)
//   -> smart_resize + Pillow's BICUBIC resize (8-bit separable convolution)
//   -> rescale (x * rescale_factor in double, then float32)
//   -> normalize ((x - mean) / std in float32)
//   -> patchify: rows of [C * temporal_patch * patch * patch] in the
//      merge-size-blocked patch order, a still image repeated over time.
//
// See docs/DESIGN.md, "Images". Every failure is a qwen::rt::Error.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_RT_IMAGE_H
#define QWEN_RT_IMAGE_H

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <memory>
#include <vector>

namespace qwen::rt {

/// An 8-bit RGB image, rows top to bottom, pixels interleaved (H, W, 3).
struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;
};

enum class ImageFormat { Unknown, Png, Jpeg, Webp };

/// The container format from the first bytes (magic numbers), or Unknown.
ImageFormat sniffImageFormat(const uint8_t *data, size_t size);
const char *imageFormatName(ImageFormat format);

/// Decoded images larger than this many pixels are refused before their
/// pixels are decoded (a decompression bomb guard; Pillow refuses at twice
/// its MAX_IMAGE_PIXELS, 2 * 89478485).
constexpr int64_t kMaxDecodedImagePixels = 2 * int64_t(89478485);

/// Decodes a PNG, JPEG or WebP held in memory and converts it to RGB as
/// transformers' `convert_to_rgb` does on the Pillow image `Image.open`
/// returns: images with an alpha band or a transparency key are converted to
/// RGBA and composited onto opaque white, others `.convert("RGB")`. `origin`
/// names the image in errors. Throws Error for empty, truncated or corrupt
/// data, an unsupported format, zero or too many pixels.
RgbImage decodeImage(const uint8_t *data, size_t size, const std::string &origin);

/// Reads and decodes the file at `path`. Throws Error.
RgbImage loadImage(const std::string &path);

/// The image processor settings of a checkpoint's preprocessor_config.json.
/// Missing keys take Qwen2VLImageProcessor's class defaults.
struct ImageProcessorConfig {
  int patchSize = 14;
  int temporalPatchSize = 2;
  int mergeSize = 2;
  int64_t minPixels = 56 * 56;          ///< size.shortest_edge (or min_pixels)
  int64_t maxPixels = 28 * 28 * 1280;   ///< size.longest_edge (or max_pixels)
  bool doResize = true;
  bool doRescale = true;
  double rescaleFactor = 1.0 / 255.0;
  bool doNormalize = true;
  std::array<float, 3> imageMean = {0.48145466f, 0.4578275f, 0.40821073f};
  std::array<float, 3> imageStd = {0.26862954f, 0.26130258f, 0.27577711f};

  /// patch_size * merge_size: what smart_resize rounds the sides to.
  int factor() const { return patchSize * mergeSize; }
};

/// Parses preprocessor_config.json text (`origin` names it in errors).
/// Refuses a `resample` other than 3 (BICUBIC) and nonsensical sizes.
ImageProcessorConfig parseImageProcessorConfig(const std::string &text, const std::string &origin);
/// Reads `path` (a preprocessor_config.json). Throws Error.
ImageProcessorConfig readImageProcessorConfig(const std::string &path);

/// The resized {height, width} (HF's `smart_resize`, Python's float rounding
/// included): both multiples of `factor`, the area within [minPixels,
/// maxPixels] where possible, the aspect ratio kept. Throws Error when the
/// aspect ratio is above 200 or a side is not positive.
std::array<int64_t, 2> smartResize(int64_t height, int64_t width, int64_t factor, int64_t minPixels,
                                   int64_t maxPixels);

/// Pillow's `Image.resize((width, height), Image.BICUBIC)` of an RGB image:
/// the horizontal pass, then the vertical one, each a convolution with
/// 22-bit fixed-point coefficients and clipping to 8 bits; a pass whose size
/// does not change is skipped. Throws Error for a non-positive size.
RgbImage resizeBicubic(const RgbImage &image, int width, int height);

/// The processor's output for one image.
struct PixelValues {
  std::array<int64_t, 3> gridThw = {0, 0, 0}; ///< image_grid_thw: (1, H / patch, W / patch)
  int64_t rows = 0;                           ///< grid_t * grid_h * grid_w
  int64_t rowSize = 0;                        ///< C * temporal_patch * patch * patch
  std::vector<float> data;                    ///< rows * rowSize, row-major
  /// The encoded file it was decoded from, when known: keys the engine's
  /// image cache (image_cache.h), which then skips decoding and encoding it.
  std::shared_ptr<const std::vector<uint8_t>> encoded;
  /// The merged-patch count: the `<|image_pad|>` tokens this image takes.
  int64_t mergedTokens(int mergeSize) const {
    return gridThw[0] * gridThw[1] * gridThw[2] / (int64_t(mergeSize) * mergeSize);
  }
};

/// The `pixel_values` rows and `image_grid_thw` of one decoded image.
PixelValues preprocessImage(const RgbImage &image, const ImageProcessorConfig &config);

/// The pixel values of a resized image (no further resize): rescale,
/// normalize and patchify. The image's sides must be multiples of
/// patch_size * merge_size.
PixelValues patchifyImage(const RgbImage &resized, const ImageProcessorConfig &config);

} // namespace qwen::rt

#endif // QWEN_RT_IMAGE_H
