//===- tokenizer_load.cpp - Fuzz target: tokenizer.json -------------------===//
//
// The input is a tokenizer.json; one that loads must also encode and decode.
//
//===----------------------------------------------------------------------===//

#include "qwen_rt/error.h"
#include "qwen_rt/tokenizer.h"

#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  try {
    qwen::rt::Tokenizer tokenizer = qwen::rt::Tokenizer::fromJsonString(
        std::string_view(reinterpret_cast<const char *>(data), size), "fuzz/tokenizer.json");
    std::vector<int32_t> ids = tokenizer.encode("Hello, world! <|im_end|> 3.14 \xc3\xa9t\xc3\xa9 \n\n  x");
    tokenizer.decode(ids);
    tokenizer.decode({0, 1, tokenizer.vocabSize() - 1});
  } catch (const qwen::rt::Error &) {
  }
  return 0;
}
