//===- vision_embed.cpp - qwen-vision-embed: images to vision embeddings --===//
//
//   qwen-vision-embed ARTIFACT CHECKPOINT_DIR OUT.safetensors IMAGE...
//
// Preprocesses the images under CHECKPOINT_DIR/preprocessor_config.json, runs
// the artifact's vision program (qwen-compile --vision) over them as one
// batch through Engine::encodeImages (the API the language model's image
// prompts use) and writes `embeddings` (float32 [merged tokens, out_hidden_size],
// images in order), `tokens_per_image` (int64) and `grid_thw` (int64
// [images, 3]): for comparisons with HF's model.visual (test/E2E/vision-*.test).
//
//===----------------------------------------------------------------------===//
#include "qwen_rt/engine.h"
#include "qwen_rt/error.h"
#include "qwen_rt/image.h"
#include "qwen_rt/safetensors.h"

#include <chrono>
#include <cstdio>

using namespace qwen::rt;

int main(int argc, char **argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: qwen-vision-embed ARTIFACT CHECKPOINT_DIR OUT.safetensors IMAGE...\n");
    return 2;
  }
  try {
    const std::string checkpoint = argv[2];
    EngineOptions options;
    options.checkpointDir = checkpoint;
    options.maxSequences = 1;
    options.maxBatchTokens = 64;
    std::unique_ptr<Engine> engine = Engine::load(argv[1], options);
    ImageProcessorConfig config = readImageProcessorConfig(checkpoint + "/preprocessor_config.json");
    std::vector<PixelValues> images;
    std::vector<int64_t> grids;
    for (int i = 4; i < argc; ++i) {
      images.push_back(preprocessImage(loadImage(argv[i]), config));
      grids.insert(grids.end(), images.back().gridThw.begin(), images.back().gridThw.end());
    }
    engine->visionGeometry(); // binds the vision weights, outside the timing
    const auto start = std::chrono::steady_clock::now();
    ImageEmbeddings out = engine->encodeImages(images);
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    const int64_t rows = out.width ? int64_t(out.rows.size()) / out.width : 0;
    writeSafetensors(argv[3], {{"embeddings", DType::F32, {rows, out.width}, out.rows.data()},
                               {"tokens_per_image", DType::I64, {int64_t(out.tokensPerImage.size())},
                                out.tokensPerImage.data()},
                               {"grid_thw", DType::I64, {int64_t(images.size()), 3}, grids.data()}});
    int64_t patches = 0;
    for (const PixelValues &image : images)
      patches += image.rows;
    std::printf("%lld images, %lld patches, %lld embeddings of %lld\n", (long long)images.size(),
                (long long)patches, (long long)rows, (long long)out.width);
    std::fprintf(stderr, "vision program: %.1f ms on %d threads\n", ms, engine->numThreads());
  } catch (const Error &e) {
    std::fprintf(stderr, "qwen-vision-embed: %s\n", e.what());
    return 1;
  }
  return 0;
}
