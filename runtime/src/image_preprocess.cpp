//===- image_preprocess.cpp - The Qwen-VL image processor (Pillow backend) -===//
//
// transformers' Qwen2VLImageProcessorPil (used by Qwen2-VL, Qwen3-VL and
// Qwen3.5) step by step: smart_resize, Pillow's BICUBIC resize
// (libImaging/Resample.c), rescale, normalize and patchify, in the same
// floating-point operations so that the output is bit-identical.
//
//===----------------------------------------------------------------------===//

#include "qwen_rt/error.h"
#include "qwen_rt/image.h"
#include "qwen_rt/json_input.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

// Pillow's coefficients are computed without fused multiply-adds.
#pragma clang fp contract(off)

namespace qwen::rt {

//===----------------------------------------------------------------------===//
// preprocessor_config.json
//===----------------------------------------------------------------------===//

ImageProcessorConfig parseImageProcessorConfig(const std::string &text, const std::string &origin) {
  nlohmann::json json = parseUntrustedJson(text, origin);
  if (!json.is_object())
    throw Error(origin + ": expected a JSON object");
  ImageProcessorConfig config;
  auto fail = [&](const std::string &what) -> Error { return Error(origin + ": " + what); };
  auto getInt = [&](const nlohmann::json &obj, const char *key, int64_t &out, int64_t lo, int64_t hi) {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null())
      return;
    if (!it->is_number_integer())
      throw fail(std::string("'") + key + "' must be an integer");
    int64_t v = it->get<int64_t>();
    if (v < lo || v > hi)
      throw fail(std::string("'") + key + "' is " + std::to_string(v) + ", outside [" + std::to_string(lo) + ", " +
                 std::to_string(hi) + "]");
    out = v;
  };
  auto getBool = [&](const char *key, bool &out) {
    auto it = json.find(key);
    if (it == json.end() || it->is_null())
      return;
    if (!it->is_boolean())
      throw fail(std::string("'") + key + "' must be true or false");
    out = it->get<bool>();
  };
  auto getTriple = [&](const char *key, std::array<float, 3> &out) {
    auto it = json.find(key);
    if (it == json.end() || it->is_null())
      return;
    if (it->is_number()) {
      out.fill(it->get<float>());
      if (!std::isfinite(out[0]))
        throw fail(std::string("'") + key + "' is " + jsonExcerpt(*it) + ", not a finite float");
      return;
    }
    if (!it->is_array() || it->size() != 3)
      throw fail(std::string("'") + key + "' must be a number or a list of 3 numbers");
    for (size_t i = 0; i < 3; ++i) {
      if (!(*it)[i].is_number())
        throw fail(std::string("'") + key + "' must hold numbers");
      // numpy makes a float32 array of the Python floats.
      out[i] = (*it)[i].get<float>();
      if (!std::isfinite(out[i]))
        throw fail(std::string("'") + key + "' holds " + jsonExcerpt((*it)[i]) + ", not a finite float");
    }
  };

  int64_t patch = config.patchSize, temporal = config.temporalPatchSize, merge = config.mergeSize;
  getInt(json, "patch_size", patch, 1, 1024);
  getInt(json, "temporal_patch_size", temporal, 1, 64);
  getInt(json, "merge_size", merge, 1, 64);
  config.patchSize = int(patch);
  config.temporalPatchSize = int(temporal);
  config.mergeSize = int(merge);
  constexpr int64_t MaxArea = int64_t(1) << 40;
  // As the processor's __init__: size.{shortest,longest}_edge, overridden by
  // min_pixels / max_pixels.
  if (auto it = json.find("size"); it != json.end() && !it->is_null()) {
    if (!it->is_object())
      throw fail("'size' must be an object");
    if (!it->contains("shortest_edge") || !it->contains("longest_edge"))
      throw fail("'size' must hold 'shortest_edge' and 'longest_edge' (the min and max pixel counts)");
    getInt(*it, "shortest_edge", config.minPixels, 1, MaxArea);
    getInt(*it, "longest_edge", config.maxPixels, 1, MaxArea);
  }
  getInt(json, "min_pixels", config.minPixels, 1, MaxArea);
  getInt(json, "max_pixels", config.maxPixels, 1, MaxArea);
  if (config.minPixels > config.maxPixels)
    throw fail("min pixels (" + std::to_string(config.minPixels) + ") above max pixels (" +
               std::to_string(config.maxPixels) + ")");
  getBool("do_resize", config.doResize);
  getBool("do_rescale", config.doRescale);
  getBool("do_normalize", config.doNormalize);
  bool convertRgb = true;
  getBool("do_convert_rgb", convertRgb);
  if (!convertRgb)
    throw fail("do_convert_rgb false is not supported (images are always converted to RGB)");
  if (auto it = json.find("rescale_factor"); it != json.end() && !it->is_null()) {
    if (!it->is_number())
      throw fail("'rescale_factor' must be a number");
    config.rescaleFactor = it->get<double>();
    if (!std::isfinite(config.rescaleFactor) || config.rescaleFactor <= 0)
      throw fail("'rescale_factor' is " + jsonExcerpt(*it) + ", not a positive number");
  }
  getTriple("image_mean", config.imageMean);
  getTriple("image_std", config.imageStd);
  for (float s : config.imageStd)
    if (s == 0.0f)
      throw fail("'image_std' must not be zero");
  int64_t resample = 3;
  getInt(json, "resample", resample, 0, 5);
  if (resample != 3)
    throw fail("resample " + std::to_string(resample) + " is not supported (only 3, BICUBIC)");
  return config;
}

ImageProcessorConfig readImageProcessorConfig(const std::string &path) {
  std::ifstream in(path);
  if (!in)
    throw Error(path + ": cannot open the image processor config");
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad())
    throw Error(path + ": cannot read the image processor config");
  return parseImageProcessorConfig(text.str(), path);
}

//===----------------------------------------------------------------------===//
// smart_resize
//===----------------------------------------------------------------------===//

std::array<int64_t, 2> smartResize(int64_t height, int64_t width, int64_t factor, int64_t minPixels,
                                   int64_t maxPixels) {
  if (height <= 0 || width <= 0)
    throw Error("image size " + std::to_string(width) + "x" + std::to_string(height) + " has no pixels");
  if (factor <= 0)
    throw Error("smart_resize: the factor must be positive");
  const double h = double(height), w = double(width), f = double(factor);
  double ratio = double(std::max(height, width)) / double(std::min(height, width));
  if (ratio > 200)
    throw Error("image " + std::to_string(width) + "x" + std::to_string(height) + " has an aspect ratio of " +
                std::to_string(ratio) + ", above the limit of 200");
  // Python's round() on floats rounds half to even, as nearbyint does.
  int64_t hBar = int64_t(std::nearbyint(h / f)) * factor;
  int64_t wBar = int64_t(std::nearbyint(w / f)) * factor;
  if (hBar * wBar > maxPixels) {
    double beta = std::sqrt((h * w) / double(maxPixels));
    hBar = std::max(factor, int64_t(std::floor(h / beta / f)) * factor);
    wBar = std::max(factor, int64_t(std::floor(w / beta / f)) * factor);
  } else if (hBar * wBar < minPixels) {
    double beta = std::sqrt(double(minPixels) / (h * w));
    hBar = int64_t(std::ceil(h * beta / f)) * factor;
    wBar = int64_t(std::ceil(w * beta / f)) * factor;
  }
  return {hBar, wBar};
}

//===----------------------------------------------------------------------===//
// Pillow's BICUBIC resize (libImaging/Resample.c, 8 bits per channel)
//===----------------------------------------------------------------------===//

namespace {

double bicubicFilter(double x) {
  constexpr double a = -0.5;
  if (x < 0.0)
    x = -x;
  if (x < 1.0)
    return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0)
    return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

constexpr double BicubicSupport = 2.0;
constexpr int PrecisionBits = 32 - 8 - 2;

/// precompute_coeffs + normalize_coeffs_8bpc for box (0, inSize): each
/// output sample's first input index, tap count and fixed-point weights.
struct Coefficients {
  int ksize = 0;
  std::vector<int> bounds; // (xmin, count) per output sample
  std::vector<int32_t> weights;
};

Coefficients precomputeCoefficients(int inSize, int outSize) {
  const float in0 = 0.0f, in1 = float(inSize);
  double scale = double(in1 - in0) / outSize;
  double filterscale = scale < 1.0 ? 1.0 : scale;
  double support = BicubicSupport * filterscale;
  Coefficients c;
  c.ksize = int(std::ceil(support)) * 2 + 1;
  c.bounds.resize(size_t(outSize) * 2);
  c.weights.assign(size_t(outSize) * c.ksize, 0);
  std::vector<double> k(c.ksize);
  for (int xx = 0; xx < outSize; ++xx) {
    double center = in0 + (xx + 0.5) * scale;
    double ww = 0.0;
    double ss = 1.0 / filterscale;
    int xmin = int(center - support + 0.5);
    if (xmin < 0)
      xmin = 0;
    int xmax = int(center + support + 0.5);
    if (xmax > inSize)
      xmax = inSize;
    xmax -= xmin;
    for (int x = 0; x < xmax; ++x) {
      double w = bicubicFilter((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (int x = 0; x < xmax; ++x)
      if (ww != 0.0)
        k[x] /= ww;
    for (int x = 0; x < xmax; ++x) {
      double v = k[x];
      c.weights[size_t(xx) * c.ksize + x] =
          v < 0 ? int32_t(-0.5 + v * (1 << PrecisionBits)) : int32_t(0.5 + v * (1 << PrecisionBits));
    }
    c.bounds[2 * xx] = xmin;
    c.bounds[2 * xx + 1] = xmax;
  }
  return c;
}

inline uint8_t clip8(int32_t in) {
  int32_t v = in >> PrecisionBits;
  return uint8_t(v < 0 ? 0 : (v > 255 ? 255 : v));
}

} // namespace

namespace {

/// One horizontal pass over rows [rowOffset, rowOffset + rows) of `in`.
RgbImage horizontalPass(const RgbImage &in, int width, int rowOffset, int rows, const Coefficients &c) {
  RgbImage out;
  out.width = width;
  out.height = rows;
  out.pixels.resize(size_t(width) * rows * 3);
  for (int yy = 0; yy < rows; ++yy) {
    const uint8_t *src = &in.pixels[size_t(yy + rowOffset) * in.width * 3];
    uint8_t *dst = &out.pixels[size_t(yy) * width * 3];
    for (int xx = 0; xx < width; ++xx) {
      const int xmin = c.bounds[2 * xx], count = c.bounds[2 * xx + 1];
      const int32_t *k = &c.weights[size_t(xx) * c.ksize];
      int32_t ss0 = 1 << (PrecisionBits - 1), ss1 = ss0, ss2 = ss0;
      for (int x = 0; x < count; ++x) {
        const uint8_t *p = &src[size_t(x + xmin) * 3];
        ss0 += p[0] * k[x];
        ss1 += p[1] * k[x];
        ss2 += p[2] * k[x];
      }
      dst[3 * xx] = clip8(ss0);
      dst[3 * xx + 1] = clip8(ss1);
      dst[3 * xx + 2] = clip8(ss2);
    }
  }
  return out;
}

/// One vertical pass; `rowOffset` is the input row of the bounds' row 0.
RgbImage verticalPass(const RgbImage &in, int height, int rowOffset, const Coefficients &c) {
  RgbImage out;
  out.width = in.width;
  out.height = height;
  out.pixels.resize(size_t(in.width) * height * 3);
  const size_t stride = size_t(in.width) * 3;
  for (int yy = 0; yy < height; ++yy) {
    const int ymin = c.bounds[2 * yy] - rowOffset, count = c.bounds[2 * yy + 1];
    const int32_t *k = &c.weights[size_t(yy) * c.ksize];
    uint8_t *dst = &out.pixels[size_t(yy) * stride];
    for (size_t xc = 0; xc < stride; ++xc) {
      int32_t ss = 1 << (PrecisionBits - 1);
      for (int y = 0; y < count; ++y)
        ss += in.pixels[size_t(y + ymin) * stride + xc] * k[y];
      dst[xc] = clip8(ss);
    }
  }
  return out;
}

} // namespace

RgbImage resizeBicubic(const RgbImage &image, int width, int height) {
  if (width <= 0 || height <= 0)
    throw Error("resize to " + std::to_string(width) + "x" + std::to_string(height) + ": the size must be positive");
  if (image.width <= 0 || image.height <= 0 ||
      image.pixels.size() != size_t(image.width) * size_t(image.height) * 3)
    throw Error("resize: the source image is empty or malformed");
  const bool needHorizontal = width != image.width;
  const bool needVertical = height != image.height;
  if (!needHorizontal && !needVertical)
    return image;
  // Pillow 13 (ImagingResampleInner): when the height shrinks by more
  // than twice as many pixels as the width, the vertical pass goes first.
  // The order changes the 8-bit rounding between passes, so it must match.
  const bool horizontalFirst =
      !((image.height - height) > 0 && (image.height - height) > (image.width - width) * 2);
  const Coefficients vert = precomputeCoefficients(image.height, height);
  if (!needHorizontal)
    return verticalPass(image, height, 0, vert);
  const Coefficients horiz = precomputeCoefficients(image.width, width);
  if (!needVertical)
    return horizontalPass(image, width, 0, image.height, horiz);
  if (horizontalFirst) {
    // Only the source rows the vertical pass reads.
    const int yFirst = vert.bounds[0];
    const int yLast = vert.bounds[2 * (height - 1)] + vert.bounds[2 * (height - 1) + 1];
    return verticalPass(horizontalPass(image, width, yFirst, yLast - yFirst, horiz), height, yFirst, vert);
  }
  return horizontalPass(verticalPass(image, height, 0, vert), width, 0, height, horiz);
}

//===----------------------------------------------------------------------===//
// Rescale, normalize, patchify
//===----------------------------------------------------------------------===//

PixelValues patchifyImage(const RgbImage &resized, const ImageProcessorConfig &config) {
  const int64_t p = config.patchSize, m = config.mergeSize, t = config.temporalPatchSize;
  const int64_t factor = p * m;
  if (resized.width <= 0 || resized.height <= 0 || resized.width % factor != 0 || resized.height % factor != 0)
    throw Error("patchify: image " + std::to_string(resized.width) + "x" + std::to_string(resized.height) +
                " is not a multiple of " + std::to_string(factor) + " on both sides");
  if (resized.pixels.size() != size_t(resized.width) * size_t(resized.height) * 3)
    throw Error("patchify: malformed image buffer");
  // The value of each 8-bit level: rescale (in double, then float32), then
  // normalize in float32, exactly as numpy does it.
  float level[3][256];
  for (int c = 0; c < 3; ++c)
    for (int v = 0; v < 256; ++v) {
      float x = config.doRescale ? float(double(v) * config.rescaleFactor) : float(v);
      if (config.doNormalize)
        x = (x - config.imageMean[c]) / config.imageStd[c];
      level[c][v] = x;
    }

  PixelValues out;
  const int64_t gh = resized.height / p, gw = resized.width / p;
  out.gridThw = {1, gh, gw};
  out.rows = gh * gw;
  out.rowSize = 3 * t * p * p;
  out.data.resize(size_t(out.rows * out.rowSize));
  float *dst = out.data.data();
  const int64_t W = resized.width;
  // Rows: (block row, block col, row in block, col in block); columns:
  // (channel, frame, y in patch, x in patch).
  for (int64_t bh = 0; bh < gh / m; ++bh)
    for (int64_t bw = 0; bw < gw / m; ++bw)
      for (int64_t mh = 0; mh < m; ++mh)
        for (int64_t mw = 0; mw < m; ++mw) {
          const int64_t y0 = (bh * m + mh) * p, x0 = (bw * m + mw) * p;
          for (int c = 0; c < 3; ++c)
            for (int64_t f = 0; f < t; ++f)
              for (int64_t py = 0; py < p; ++py) {
                const uint8_t *row = &resized.pixels[size_t((y0 + py) * W + x0) * 3];
                for (int64_t px = 0; px < p; ++px)
                  *dst++ = level[c][row[px * 3 + c]];
              }
        }
  return out;
}

PixelValues preprocessImage(const RgbImage &image, const ImageProcessorConfig &config) {
  if (!config.doResize)
    return patchifyImage(image, config);
  auto [h, w] = smartResize(image.height, image.width, config.factor(), config.minPixels, config.maxPixels);
  if (h > INT32_MAX || w > INT32_MAX || h * w > kMaxDecodedImagePixels)
    throw Error("image " + std::to_string(image.width) + "x" + std::to_string(image.height) + " resizes to " +
                std::to_string(w) + "x" + std::to_string(h) + ", too many pixels");
  return patchifyImage(resizeBicubic(image, int(w), int(h)), config);
}

} // namespace qwen::rt
