//===- image_test.cpp - Image decoding and preprocessing vs HuggingFace ---===//
//
// The references in test/data/vision/reference.safetensors are written by
// scripts/gen_image_reference.py from Pillow and transformers'
// Qwen2VLImageProcessorPil (the Qwen3-VL / Qwen3.5 image processor) and
// Qwen3_5Model.get_rope_index. Everything is compared bit for bit.
//
//===----------------------------------------------------------------------===//

#include "qwen_rt/error.h"
#include "qwen_rt/image.h"
#include "qwen_rt/image_prompt.h"
#include "qwen_rt/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <string>

using namespace qwen::rt;

namespace {

const std::string DataDir = std::string(QWEN_SOURCE_DIR) + "/test/data/vision/";

const SafetensorsArchive &reference() {
  static SafetensorsArchive archive = SafetensorsArchive::openFile(DataDir + "reference.safetensors");
  return archive;
}

ImageProcessorConfig config(const std::string &name) {
  return readImageProcessorConfig(DataDir + "preprocessor_config." + name + ".json");
}

std::vector<std::string> imagesWith(const std::string &suffix) {
  std::vector<std::string> out;
  for (const std::string &name : reference().names())
    if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
      out.push_back(name.substr(0, name.size() - suffix.size()));
  return out;
}

std::vector<int64_t> ints(const TensorView &t) {
  EXPECT_EQ(t.dtype, DType::I64) << t.name;
  std::vector<int64_t> out(size_t(t.numel()));
  if (t.nbytes)
    std::memcpy(out.data(), t.data, t.nbytes);
  return out;
}

RgbImage imageOf(const TensorView &t) {
  EXPECT_EQ(t.dtype, DType::U8);
  EXPECT_EQ(t.shape.size(), 3u);
  RgbImage image;
  image.height = int(t.shape[0]);
  image.width = int(t.shape[1]);
  image.pixels.assign(t.data, t.data + t.nbytes);
  return image;
}

/// Compares an image with a reference: the same size and bytes; on a
/// mismatch the message gives the count and the largest difference.
void expectSameImage(const RgbImage &ours, const TensorView &ref, const std::string &what) {
  ASSERT_EQ(ref.shape.size(), 3u) << what;
  ASSERT_EQ(ours.height, ref.shape[0]) << what;
  ASSERT_EQ(ours.width, ref.shape[1]) << what;
  ASSERT_EQ(ours.pixels.size(), ref.nbytes) << what;
  size_t mismatches = 0;
  int maxDiff = 0;
  for (size_t i = 0; i < ref.nbytes; ++i) {
    int d = std::abs(int(ours.pixels[i]) - int(ref.data[i]));
    if (d) {
      ++mismatches;
      maxDiff = std::max(maxDiff, d);
    }
  }
  EXPECT_EQ(mismatches, 0u) << what << ": " << mismatches << " of " << ref.nbytes
                            << " bytes differ, by up to " << maxDiff;
}

/// Per row: the sum of the bytes and the sum of (index + 1) * byte (what
/// the generator stores for images too large to keep whole).
std::vector<int64_t> fingerprint(const RgbImage &image) {
  std::vector<int64_t> out;
  const size_t stride = size_t(image.width) * 3;
  for (int y = 0; y < image.height; ++y) {
    int64_t sum = 0, weighted = 0;
    for (size_t i = 0; i < stride; ++i) {
      int64_t v = image.pixels[size_t(y) * stride + i];
      sum += v;
      weighted += int64_t(i + 1) * v;
    }
    out.push_back(sum);
    out.push_back(weighted);
  }
  return out;
}

std::vector<uint8_t> readBytes(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

/// The message of the Error `fn` throws ("" when it throws none).
template <typename Fn> std::string errorOf(Fn fn) {
  try {
    fn();
  } catch (const Error &e) {
    return e.what();
  }
  return "";
}

std::vector<int32_t> ids32(const std::vector<int64_t> &ids) { return std::vector<int32_t>(ids.begin(), ids.end()); }

std::vector<ImageGrid> gridsOf(const TensorView &t) {
  std::vector<int64_t> flat = ints(t);
  std::vector<ImageGrid> out;
  for (size_t i = 0; i + 2 < flat.size(); i += 3)
    out.push_back({flat[i], flat[i + 1], flat[i + 2]});
  return out;
}

uint32_t crc32(const uint8_t *data, size_t size) {
  uint32_t crc = 0xffffffffu;
  for (size_t i = 0; i < size; ++i) {
    crc ^= data[i];
    for (int k = 0; k < 8; ++k)
      crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

/// A PNG signature and IHDR (8-bit RGB) with the given size, then IEND.
std::vector<uint8_t> pngHeader(uint32_t width, uint32_t height) {
  std::vector<uint8_t> out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  auto be32 = [&](uint32_t v) {
    for (int s = 24; s >= 0; s -= 8)
      out.push_back(uint8_t(v >> s));
  };
  auto chunk = [&](const char *type, const std::vector<uint8_t> &body) {
    be32(uint32_t(body.size()));
    size_t start = out.size();
    out.insert(out.end(), type, type + 4);
    out.insert(out.end(), body.begin(), body.end());
    be32(crc32(&out[start], out.size() - start));
  };
  std::vector<uint8_t> ihdr;
  for (uint32_t v : {width, height})
    for (int s = 24; s >= 0; s -= 8)
      ihdr.push_back(uint8_t(v >> s));
  ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});
  chunk("IHDR", ihdr);
  chunk("IEND", {});
  return out;
}

} // namespace

TEST(ImageDecode, MatchesPillowConvertToRgb) {
  std::vector<std::string> names = imagesWith(".decoded");
  ASSERT_GE(names.size(), 18u);
  for (const std::string &name : names) {
    SCOPED_TRACE(name);
    RgbImage ours = loadImage(DataDir + name);
    expectSameImage(ours, reference().get(name + ".decoded"), name + " decoded");
  }
}

TEST(ImageDecode, LargeImagesMatchPillowFingerprints) {
  std::vector<std::string> names = imagesWith(".decoded_fp");
  // The real photos (scikit-image's coffee, chelsea and astronaut re-encoded
  // as baseline 4:2:0, baseline 4:2:2 and progressive JPEGs) and large.jpg.
  EXPECT_EQ(names, (std::vector<std::string>{"large.jpg", "real_astronaut_progressive.jpg",
                                             "real_chelsea_tall_422.jpg", "real_coffee_420.jpg"}));
  for (const std::string &name : names) {
    SCOPED_TRACE(name);
    RgbImage ours = loadImage(DataDir + name);
    const TensorView &want = reference().get(name + ".decoded_fp");
    ASSERT_EQ(want.shape[0], ours.height);
    EXPECT_EQ(fingerprint(ours), ints(want));
  }
}

TEST(ImagePreprocess, RealQwen35BoundsMatchHuggingFace) {
  // Under the checkpoint's own bounds (small images grow to 65536 pixels).
  ImageProcessorConfig qwen35 = config("qwen35");
  std::vector<std::string> names = imagesWith(".qwen35_resized_fp");
  ASSERT_EQ(names.size(), 7u); // the three real photos among them
  for (const std::string &name : names) {
    SCOPED_TRACE(name);
    RgbImage decoded = loadImage(DataDir + name);
    auto [h, w] = smartResize(decoded.height, decoded.width, qwen35.factor(), qwen35.minPixels, qwen35.maxPixels);
    RgbImage resized = resizeBicubic(decoded, int(w), int(h));
    EXPECT_EQ(fingerprint(resized), ints(reference().get(name + ".qwen35_resized_fp")));
    PixelValues px = preprocessImage(decoded, qwen35);
    std::vector<int64_t> grid = ints(reference().get(name + ".qwen35_grid_thw"));
    EXPECT_EQ(std::vector<int64_t>(px.gridThw.begin(), px.gridThw.end()), grid);
    // The generator checked HF's pixel values against the patchified levels
    // of its resize; ours are the same function of ours.
    PixelValues fromResized = patchifyImage(resized, qwen35);
    EXPECT_EQ(0, std::memcmp(px.data.data(), fromResized.data.data(), px.data.size() * sizeof(float)));
  }
}

TEST(ImageResize, MatchesPillowBicubic) {
  // Pillow's resize of Pillow's decode: the resize alone.
  for (const std::string &name : imagesWith(".decoded")) {
    SCOPED_TRACE(name);
    const TensorView &want = reference().get(name + ".resized");
    RgbImage decoded = imageOf(reference().get(name + ".decoded"));
    expectSameImage(resizeBicubic(decoded, int(want.shape[1]), int(want.shape[0])), want, name + " resized");
  }
}

TEST(ImageResize, MatchesPillowAtAssortedSizes) {
  RgbImage source = imageOf(reference().get("resize.source"));
  int count = 0;
  for (const std::string &name : reference().names()) {
    if (name.rfind("resize.", 0) != 0 || name == "resize.source")
      continue;
    const TensorView &want = reference().get(name);
    expectSameImage(resizeBicubic(source, int(want.shape[1]), int(want.shape[0])), want, name);
    ++count;
  }
  EXPECT_EQ(count, 15);
}

TEST(ImagePreprocess, MatchesHuggingFaceProcessor) {
  ImageProcessorConfig test = config("test");
  std::vector<std::string> names = imagesWith(".resized");
  ASSERT_GE(names.size(), 19u);
  for (const std::string &name : names) {
    SCOPED_TRACE(name);
    RgbImage decoded = loadImage(DataDir + name);
    const TensorView &want = reference().get(name + ".resized");
    auto [h, w] = smartResize(decoded.height, decoded.width, test.factor(), test.minPixels, test.maxPixels);
    RgbImage resized = resizeBicubic(decoded, int(w), int(h));
    expectSameImage(resized, want, name + " decoded and resized");
    PixelValues px = preprocessImage(decoded, test);
    std::vector<int64_t> grid = ints(reference().get(name + ".grid_thw"));
    EXPECT_EQ(std::vector<int64_t>(px.gridThw.begin(), px.gridThw.end()), grid);
    EXPECT_EQ(px.rows, grid[0] * grid[1] * grid[2]);
    EXPECT_EQ(px.rowSize, 3 * 2 * 16 * 16);
    EXPECT_EQ(px.data.size(), size_t(px.rows * px.rowSize));
  }
}

TEST(ImagePreprocess, PixelValuesBitExact) {
  ImageProcessorConfig tiny = config("tiny");
  std::vector<std::string> names = imagesWith(".pixel_values");
  ASSERT_EQ(names.size(), 3u);
  for (const std::string &name : names) {
    SCOPED_TRACE(name);
    PixelValues px = preprocessImage(loadImage(DataDir + name), tiny);
    const TensorView &want = reference().get(name + ".pixel_values");
    ASSERT_EQ(want.dtype, DType::F32);
    ASSERT_EQ(want.shape, (std::vector<int64_t>{px.rows, px.rowSize}));
    std::vector<int64_t> grid = ints(reference().get(name + ".pixel_values_grid_thw"));
    EXPECT_EQ(std::vector<int64_t>(px.gridThw.begin(), px.gridThw.end()), grid);
    const float *ref = reinterpret_cast<const float *>(want.data);
    size_t mismatches = 0;
    float maxDiff = 0;
    for (size_t i = 0; i < px.data.size(); ++i)
      if (std::memcmp(&px.data[i], &ref[i], sizeof(float)) != 0) {
        ++mismatches;
        maxDiff = std::max(maxDiff, std::abs(px.data[i] - ref[i]));
      }
    EXPECT_EQ(mismatches, 0u) << "up to " << maxDiff;
    EXPECT_EQ(px.mergedTokens(tiny.mergeSize), grid[1] * grid[2] / 4);
  }
}

TEST(ImagePreprocess, SmartResizeMatchesHuggingFace) {
  ImageProcessorConfig qwen35 = config("qwen35");
  const TensorView &table = reference().get("smart_resize");
  std::vector<int64_t> rows = ints(table);
  ASSERT_EQ(table.shape[1], 4);
  for (size_t i = 0; i + 3 < rows.size(); i += 4) {
    auto [h, w] = smartResize(rows[i], rows[i + 1], qwen35.factor(), qwen35.minPixels, qwen35.maxPixels);
    EXPECT_EQ(h, rows[i + 2]) << rows[i] << "x" << rows[i + 1];
    EXPECT_EQ(w, rows[i + 3]) << rows[i] << "x" << rows[i + 1];
  }
  // Python's round() on x.5 rounds to even: 48 / 32 = 1.5 -> 2, 80 / 32 = 2.5 -> 2.
  EXPECT_EQ(smartResize(48, 80, 32, 1, 1 << 30), (std::array<int64_t, 2>{64, 64}));
}

TEST(ImagePreprocess, ReadsQwen35Config) {
  ImageProcessorConfig c = config("qwen35");
  EXPECT_EQ(c.patchSize, 16);
  EXPECT_EQ(c.mergeSize, 2);
  EXPECT_EQ(c.temporalPatchSize, 2);
  EXPECT_EQ(c.factor(), 32);
  EXPECT_EQ(c.minPixels, 65536);
  EXPECT_EQ(c.maxPixels, 16777216);
  EXPECT_EQ(c.imageMean, (std::array<float, 3>{0.5f, 0.5f, 0.5f}));
  EXPECT_EQ(c.imageStd, (std::array<float, 3>{0.5f, 0.5f, 0.5f}));
  EXPECT_EQ(c.rescaleFactor, 1.0 / 255.0);
  // The older keys override size, as the processor's constructor does.
  ImageProcessorConfig legacy = parseImageProcessorConfig(
      R"({"size": {"shortest_edge": 100, "longest_edge": 1000}, "min_pixels": 200, "max_pixels": 2000})", "cfg");
  EXPECT_EQ(legacy.minPixels, 200);
  EXPECT_EQ(legacy.maxPixels, 2000);
  EXPECT_NE(errorOf([] { parseImageProcessorConfig(R"({"resample": 2})", "cfg"); }).find("BICUBIC"),
            std::string::npos);
  EXPECT_NE(errorOf([] { parseImageProcessorConfig(R"({"patch_size": "16"})", "cfg"); }).find("patch_size"),
            std::string::npos);
  EXPECT_EQ(errorOf([] { parseImageProcessorConfig("[", "cfg"); }).rfind("cfg", 0), 0u);
  EXPECT_EQ(errorOf([] { parseImageProcessorConfig(std::string(500, '[') + std::string(500, ']'), "cfg"); })
                .rfind("cfg", 0),
            0u);
  EXPECT_NE(errorOf([] { parseImageProcessorConfig(R"({"image_mean": 1e39})", "cfg"); }).find("finite"),
            std::string::npos);
  EXPECT_NE(errorOf([] { parseImageProcessorConfig(R"({"rescale_factor": -1})", "cfg"); }).find("positive"),
            std::string::npos);
  EXPECT_NE(errorOf([] { parseImageProcessorConfig(R"({"size": {"shortest_edge": 10}})", "cfg"); })
                .find("longest_edge"),
            std::string::npos);
  EXPECT_NE(errorOf([] { parseImageProcessorConfig(R"({"image_std": [0.5, 0, 0.5]})", "cfg"); }).find("zero"),
            std::string::npos);
}

TEST(ImagePrompt, MropePositionsMatchGetRopeIndex) {
  for (const char *key : {"one", "two", "tall", "text"}) {
    SCOPED_TRACE(key);
    std::string prefix = std::string("rope.") + key + ".";
    std::vector<int32_t> ids = ids32(ints(reference().get(prefix + "input_ids")));
    std::vector<ImageGrid> grids = gridsOf(reference().get(prefix + "grids"));
    MropePositions pos = computeMropePositions(ids, 248056, grids, 2);
    std::vector<int64_t> want = ints(reference().get(prefix + "positions"));
    EXPECT_EQ(pos.rows, want);
    EXPECT_EQ(pos.ropeDelta, ints(reference().get(prefix + "delta"))[0]);
    EXPECT_EQ(pos.nextPosition(), int64_t(ids.size()) + pos.ropeDelta);
  }
  // The example of the issue: an image after position p starts at p + 1.
  std::vector<int32_t> ids = {10, 11, 248053, 248056, 248056, 248056, 248056, 248056, 248056, 248054, 12};
  MropePositions pos = computeMropePositions(ids, 248056, {{1, 4, 6}}, 2);
  EXPECT_EQ(pos.at(0, 3), 3);
  EXPECT_EQ(pos.at(1, 8), 3 + 1);
  EXPECT_EQ(pos.at(2, 8), 3 + 2);
  EXPECT_EQ(pos.at(0, 9), 3 + 3); // <|vision_end|>: max + 1
  EXPECT_EQ(pos.nextPosition(), 8);
}

TEST(ImagePrompt, ExpandsImagePads) {
  // Qwen3VLProcessor's own expansion of a prompt with two images, whose
  // grids come from our preprocessing of the same files.
  const int32_t pad = int32_t(ints(reference().get("expand.pad_id"))[0]);
  std::vector<int32_t> in = ids32(ints(reference().get("expand.in")));
  std::vector<ImageGrid> grids;
  for (const char *file : {"photo_420.jpg", "rgba.png"})
    grids.push_back(preprocessImage(loadImage(DataDir + file), config("test")).gridThw);
  EXPECT_EQ(grids, gridsOf(reference().get("expand.grids")));
  std::vector<int32_t> expanded = expandImagePads(in, pad, grids, 2);
  EXPECT_EQ(expanded, ids32(ints(reference().get("expand.out"))));
  MropePositions pos = computeMropePositions(expanded, pad, grids, 2);
  EXPECT_EQ(pos.rows, ints(reference().get("expand.positions")));
  EXPECT_EQ(pos.ropeDelta, ints(reference().get("expand.delta"))[0]);
  EXPECT_NE(errorOf([&] { expandImagePads(in, pad, {grids[0]}, 2); }).find("2 image placeholders for 1 images"),
            std::string::npos);
  EXPECT_NE(errorOf([&] { computeMropePositions({248056, 248056, 5}, 248056, {{1, 4, 4}}, 2); }).find("takes 4"),
            std::string::npos);
  EXPECT_NE(errorOf([&] { computeMropePositions({248056, 5, 248056}, 248056, {{1, 2, 2}}, 2); }).find("more image"),
            std::string::npos);
  EXPECT_NE(errorOf([&] { computeMropePositions({5}, 248056, {{1, 2, 2}}, 2); }).find("0 of the 1"),
            std::string::npos);
  EXPECT_NE(errorOf([&] { expandImagePads({248056}, 248056, {{1, 3, 2}}, 2); }).find("merge size"),
            std::string::npos);
}

TEST(ImagePrompt, SplitsVisionRowsPerImage) {
  // The vision program's rows for two images (4 and 2 merged tokens, width
  // 3) become one ImageEmbedding per image, in order.
  ImageEmbeddings encoded;
  encoded.width = 3;
  encoded.tokensPerImage = {4, 2};
  for (int i = 0; i < 18; ++i)
    encoded.rows.push_back(float(i));
  const std::vector<ImageGrid> grids = {{1, 4, 4}, {1, 2, 4}};
  std::vector<ImageEmbedding> images = splitImageEmbeddings(encoded, grids, 2, 3);
  ASSERT_EQ(images.size(), 2u);
  EXPECT_EQ(images[0].grid, grids[0]);
  EXPECT_EQ(images[1].grid, grids[1]);
  ASSERT_EQ(images[0].rows.size(), 12u);
  ASSERT_EQ(images[1].rows.size(), 6u);
  EXPECT_EQ(images[0].rows.front(), 0.0f);
  EXPECT_EQ(images[1].rows.front(), 12.0f);
  EXPECT_EQ(images[1].rows.back(), 17.0f);
  // A tower whose out_hidden_size is not the language model's width.
  EXPECT_NE(errorOf([&] { splitImageEmbeddings(encoded, grids, 2, 4); }).find("3 wide (vision_config.out_hidden_size)"),
            std::string::npos);
  // Row counts that do not match the grids, or the image count.
  EXPECT_NE(errorOf([&] { splitImageEmbeddings(encoded, {{1, 4, 4}, {1, 4, 4}}, 2, 3); }).find("returned 2 rows for image 2"),
            std::string::npos);
  EXPECT_NE(errorOf([&] { splitImageEmbeddings(encoded, {grids[0]}, 2, 3); }).find("returned 2 images for 1"),
            std::string::npos);
  encoded.rows.pop_back();
  EXPECT_NE(errorOf([&] { splitImageEmbeddings(encoded, grids, 2, 3); }).find("fewer rows"), std::string::npos);
}

TEST(ImageErrors, CorruptTruncatedAndUnsupported) {
  struct Case {
    const char *file;
    const char *message;
  } cases[] = {
      {"bad_truncated.jpg", "truncated"},   {"bad_truncated.png", "truncated"},
      {"bad_truncated.webp", "WebP"},       {"bad_crc.png", "corrupt"},
      {"bad_header.jpg", "corrupt"},        {"unsupported.gif", "unsupported image format"},
  };
  for (const Case &c : cases) {
    std::string message = errorOf([&] { loadImage(DataDir + c.file); });
    EXPECT_NE(message.find(c.message), std::string::npos) << c.file << ": '" << message << "'";
    EXPECT_NE(message.find(c.file), std::string::npos) << "the error names the file: " << message;
  }
  EXPECT_NE(errorOf([] { loadImage(DataDir + "no_such_file.png"); }).find("cannot open"), std::string::npos);
  uint8_t nothing = 0;
  EXPECT_NE(errorOf([&] { decodeImage(&nothing, 0, "empty"); }).find("empty"), std::string::npos);
  // Truncations of a small JPEG, PNG and WebP: an Error each time, as in
  // Pillow, except that a PNG may lose its IEND chunk (Pillow stops
  // reading once it has the pixels).
  for (auto [name, tail] : {std::pair<const char *, size_t>{"gray.jpg", 0}, {"palette_trns.png", 12},
                            {"lossless.webp", 0}, {"photo_444_progressive.jpg", 0}}) {
    const std::string file = name;
    std::vector<uint8_t> bytes = readBytes(DataDir + file);
    for (size_t n = 1; n < bytes.size() - tail; n += (n + 8 < bytes.size() ? 5 : 1))
      EXPECT_FALSE(errorOf([&] { decodeImage(bytes.data(), n, file); }).empty()) << file << " cut at " << n;
  }
}

TEST(ImageErrors, ZeroSizeAndPixelBombs) {
  std::vector<uint8_t> zero = pngHeader(0, 16);
  EXPECT_NE(errorOf([&] { decodeImage(zero.data(), zero.size(), "zero.png"); }).find("zero.png"), std::string::npos);
  std::vector<uint8_t> bomb = pngHeader(100000, 100000);
  std::string bombMessage = errorOf([&] { decodeImage(bomb.data(), bomb.size(), "bomb.png"); });
  EXPECT_NE(bombMessage.find("limit"), std::string::npos) << bombMessage;
  // A JPEG whose frame header claims 65000 x 65000 pixels.
  std::vector<uint8_t> jpeg = {0xff, 0xd8, 0xff, 0xc0, 0, 11, 8, 0xfd, 0xe8, 0xfd, 0xe8, 1, 1, 0x11, 0,
                               0xff, 0xda, 0, 8,    1, 1,  0, 0, 63,   0};
  EXPECT_NE(errorOf([&] { decodeImage(jpeg.data(), jpeg.size(), "bomb.jpg"); }).find("limit"), std::string::npos);
  RgbImage empty;
  EXPECT_FALSE(errorOf([&] { preprocessImage(empty, ImageProcessorConfig()); }).empty());
  EXPECT_FALSE(errorOf([&] { resizeBicubic(empty, 32, 32); }).empty());
}

TEST(ImageErrors, AspectRatioAndPixelLimits) {
  // 402 x 2: an aspect ratio of 201, which HF refuses too.
  RgbImage extreme = loadImage(DataDir + "extreme_aspect.png");
  EXPECT_NE(errorOf([&] { preprocessImage(extreme, config("test")); }).find("aspect ratio"), std::string::npos);
  // Above max_pixels: resized down, within the bound.
  ImageProcessorConfig test = config("test");
  PixelValues px = preprocessImage(loadImage(DataDir + "large.jpg"), test);
  EXPECT_LE(px.gridThw[1] * px.gridThw[2] * 16 * 16, test.maxPixels);
  EXPECT_EQ(px.gridThw[1] % 2, 0);
  EXPECT_EQ(px.gridThw[2] % 2, 0);
}
