//===- config_json.cpp - Fuzz target: config.json -------------------------===//
//
// The input is a checkpoint's config.json, read by the compiler's parser.
//
//===----------------------------------------------------------------------===//

#include "qwen/Models/Qwen3/Qwen3Config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  llvm::StringRef text(reinterpret_cast<const char *>(data), size);
  llvm::Expected<qwen::models::Qwen3Config> config = qwen::models::parseQwen3Config(text, "config.json");
  if (!config) {
    llvm::consumeError(config.takeError());
    return 0;
  }
  // What the builder asks of every layer.
  for (int64_t layer = 0; layer < config->numLayers; ++layer)
    (void)config->isMoeLayer(layer);
  (void)config->numFullAttentionLayers();
  return 0;
}
