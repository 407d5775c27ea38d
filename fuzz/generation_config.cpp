//===- generation_config.cpp - Fuzz target: generation_config.json --------===//
//
// The input is a checkpoint folder's generation_config.json.
//
//===----------------------------------------------------------------------===//

#include "FuzzSupport.h"

#include "qwen_rt/error.h"
#include "qwen_rt/generation_config.h"

using namespace qwen;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz::writeInput("generation_config.json", data, size);
  try {
    rt::readGenerationConfig(fuzz::scratchDir().string());
  } catch (const rt::Error &) {
  }
  return 0;
}
