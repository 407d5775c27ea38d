//===- tokenizer_roundtrip.cpp - Fuzz target: encode/decode, real Qwen3 ---===//
//
// The input is text for the real Qwen3 tokenizer ($QWEN_FUZZ_TOKENIZER, else
// the one CMake found: ../shared/data/qwen3-tokenizer or the demo
// checkpoint's). Invalid UTF-8 must be refused with an Error; valid text must
// round-trip: decode(encode(x)) is NFC(x), so encoding that text again must
// decode to itself, every id must be in range, and streaming detokenization
// must equal decode.
//
//===----------------------------------------------------------------------===//

#include "qwen_rt/error.h"
#include "qwen_rt/tokenizer.h"

#include <cstdio>
#include <cstdlib>
#include <optional>

using qwen::rt::Tokenizer;

static std::optional<Tokenizer> tokenizer;

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  const char *path = std::getenv("QWEN_FUZZ_TOKENIZER");
  tokenizer.emplace(Tokenizer::fromFile(path ? path : QWEN_FUZZ_TOKENIZER));
  return 0;
}

static void require(bool holds, const char *what) {
  if (!holds) {
    std::fprintf(stderr, "tokenizer_roundtrip: %s\n", what);
    std::abort();
  }
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string_view text(reinterpret_cast<const char *>(data), size);
  bool parseSpecial = size && (data[0] & 1);
  std::vector<int32_t> ids;
  try {
    ids = tokenizer->encode(text, parseSpecial);
  } catch (const qwen::rt::Error &) {
    require(qwen::rt::firstInvalidUtf8Byte(text) != std::string_view::npos, "valid UTF-8 was refused");
    return 0;
  }
  for (int32_t id : ids)
    require(id >= 0 && id < tokenizer->vocabSize(), "an id is out of range");
  std::string decoded = tokenizer->decode(ids);
  require(tokenizer->decode(tokenizer->encode(decoded, parseSpecial)) == decoded,
          "decode(encode(text)) does not round-trip");
  qwen::rt::StreamingDecoder stream(*tokenizer);
  std::string streamed;
  for (int32_t id : ids)
    streamed += stream.push(id);
  streamed += stream.finish();
  require(streamed == decoded, "streaming detokenization differs from decode");
  return 0;
}
