//===- safetensors_index.cpp - Fuzz target: model.safetensors.index.json --===//
//
// The input is the index of a sharded checkpoint whose folder also holds two
// valid shards, model-00001-of-00002.safetensors (tensors a, b) and
// model-00002-of-00002.safetensors (tensor c), so inputs can reach the
// shard-matching code as well as the JSON checks.
//
//===----------------------------------------------------------------------===//

#include "FuzzSupport.h"

#include "qwen_rt/error.h"
#include "qwen_rt/safetensors.h"

using namespace qwen;

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  float values[2] = {1.0f, 2.0f};
  rt::writeSafetensors((fuzz::scratchDir() / "model-00001-of-00002.safetensors").string(),
                       {{"a", rt::DType::F32, {2}, values}, {"b", rt::DType::F32, {1}, values}});
  rt::writeSafetensors((fuzz::scratchDir() / "model-00002-of-00002.safetensors").string(),
                       {{"c", rt::DType::F32, {2}, values}});
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz::writeInput("model.safetensors.index.json", data, size);
  try {
    rt::SafetensorsArchive::openDir(fuzz::scratchDir().string());
  } catch (const rt::Error &) {
  }
  return 0;
}
