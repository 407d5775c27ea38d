//===- safetensors_file.cpp - Fuzz target: a safetensors file -------------===//
//
// The input is a whole safetensors file: header length, JSON header, data.
//
//===----------------------------------------------------------------------===//

#include "qwen_rt/error.h"
#include "qwen_rt/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  try {
    for (const qwen::rt::TensorView &tensor : qwen::rt::parseSafetensorsBytes(data, size, "fuzz.safetensors"))
      qwen::rt::findNonFinite(tensor); // reads every byte the header claims
  } catch (const qwen::rt::Error &) {
  }
  return 0;
}
