//===- manifest.cpp - Fuzz target: an artifact's manifest.json ------------===//
//
// The input is manifest.json of an artifact folder. One that validates is
// also planned for a small engine, where its sizes are multiplied out.
//
//===----------------------------------------------------------------------===//

#include "FuzzSupport.h"

#include "qwen_rt/artifact.h"
#include "qwen_rt/engine.h"
#include "qwen_rt/error.h"

using namespace qwen;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz::writeInput("manifest.json", data, size);
  try {
    rt::Artifact artifact = rt::Artifact::open(fuzz::scratchDir().string());
    rt::EngineOptions options;
    options.maxSequences = 2;
    options.maxBatchTokens = 64;
    rt::planMemory(artifact, options);
  } catch (const rt::Error &) {
  }
  return 0;
}
