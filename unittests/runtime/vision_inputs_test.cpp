//===- vision_inputs_test.cpp - Vision-tower host inputs vs HuggingFace ---===//
//
// test/data/vision_tower/<case>/reference.safetensors is written by
// scripts/gen_vision_reference.py from transformers' vision_utils and
// Qwen3_5VisionRotaryEmbedding on the same images.
//
//===----------------------------------------------------------------------===//
#include "qwen_rt/error.h"
#include "qwen_rt/safetensors.h"
#include "qwen_rt/vision_inputs.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>

using namespace qwen::rt;

namespace {

const std::string CaseDir = std::string(QWEN_SOURCE_DIR) + "/test/data/vision_tower/qwen35_f32/";
const std::string ImageDir = std::string(QWEN_SOURCE_DIR) + "/test/data/vision/";

const SafetensorsArchive &reference() {
  static SafetensorsArchive archive = SafetensorsArchive::openFile(CaseDir + "reference.safetensors");
  return archive;
}

template <typename T> std::vector<T> values(const TensorView &t) {
  std::vector<T> out(size_t(t.numel()));
  EXPECT_EQ(t.nbytes, out.size() * sizeof(T)) << t.name;
  if (t.nbytes == out.size() * sizeof(T))
    std::memcpy(out.data(), t.data, t.nbytes);
  return out;
}

/// The tiny case's vision_config (scripts/gen_vision_reference.py).
VisionGeometry tinyGeometry() {
  VisionGeometry g;
  g.hiddenSize = 64;
  g.numHeads = 4;
  g.numPositionEmbeddings = 2304;
  g.outHiddenSize = 32;
  return g;
}

const std::map<std::string, std::vector<std::string>> Sets = {
    {"one", {"real_coffee_420.jpg"}},
    {"two", {"real_chelsea_tall_422.jpg", "real_astronaut_progressive.jpg"}}};

TEST(VisionInputs, MatchHuggingFace) {
  const ImageProcessorConfig config = readImageProcessorConfig(CaseDir + "preprocessor_config.json");
  const VisionGeometry g = tinyGeometry();
  for (const auto &[set, files] : Sets) {
    std::vector<PixelValues> images;
    for (const std::string &file : files)
      images.push_back(preprocessImage(loadImage(ImageDir + file), config));
    const VisionInputs in = buildVisionInputs(images, g);
    const std::string p = set + ".";
    // pixel_values: bit for bit (image.h's promise).
    EXPECT_EQ(in.pixels, values<float>(reference().get(p + "pixel_values"))) << set;
    const std::vector<int64_t> indices = values<int64_t>(reference().get(p + "interp_indices"));
    ASSERT_EQ(in.posIndices.size(), indices.size()) << set;
    for (size_t i = 0; i < indices.size(); ++i)
      EXPECT_EQ(in.posIndices[i], indices[i]) << set << " tap " << i;
    // The same float32 operations in the same order: equal bits.
    EXPECT_EQ(in.posWeights, values<float>(reference().get(p + "interp_weights"))) << set;

    // HF's cos / sin are [N, head_dim], the second half repeating the first.
    const std::vector<float> cos = values<float>(reference().get(p + "cos"));
    const std::vector<float> sin = values<float>(reference().get(p + "sin"));
    const int64_t hd = g.headDim(), half = hd / 2;
    ASSERT_EQ(in.ropeCos.size(), size_t(in.patches * half)) << set;
    ASSERT_EQ(cos.size(), size_t(in.patches * hd)) << set;
    float worst = 0.0f;
    for (int64_t n = 0; n < in.patches; ++n)
      for (int64_t i = 0; i < hd; ++i) {
        const size_t ours = size_t(n * half + i % half), theirs = size_t(n * hd + i);
        worst = std::max({worst, std::fabs(in.ropeCos[ours] - cos[theirs]),
                          std::fabs(in.ropeSin[ours] - sin[theirs])});
      }
    // libm and torch may round cos / sin differently in the last bit.
    EXPECT_LE(worst, 1e-6f) << set;

    const std::vector<int32_t> cu = values<int32_t>(reference().get(p + "cu_seqlens"));
    ASSERT_EQ(in.segmentBounds.size(), size_t(2 * in.patches));
    for (size_t s = 0; s + 1 < cu.size(); ++s)
      for (int32_t n = cu[s]; n < cu[s + 1]; ++n) {
        EXPECT_EQ(in.segmentBounds[size_t(2 * n)], cu[s]) << set << " patch " << n;
        EXPECT_EQ(in.segmentBounds[size_t(2 * n + 1)], cu[s + 1]) << set << " patch " << n;
      }
    ASSERT_EQ(in.mergedTokens.size(), files.size());
    int64_t merged = 0;
    for (int64_t m : in.mergedTokens)
      merged += m;
    EXPECT_EQ(merged, reference().get(p + "embeddings").shape[0]) << set;
  }
}

TEST(VisionInputs, RefusesMismatchedRows) {
  VisionGeometry g = tinyGeometry();
  PixelValues image;
  image.gridThw = {1, 2, 2};
  image.rows = 4;
  image.rowSize = 3 * 2 * 14 * 14; // a patch size of 14: another checkpoint's
  image.data.assign(size_t(image.rows * image.rowSize), 0.0f);
  try {
    buildVisionInputs({image}, g);
    FAIL() << "expected an Error";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("do not match the vision tower's patch rows"),
              std::string::npos)
        << e.what();
  }
  g.numPositionEmbeddings = 48;
  EXPECT_THROW(validateVisionGeometry(g), Error);
}

} // namespace
