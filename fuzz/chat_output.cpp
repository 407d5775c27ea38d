//===- chat_output.cpp - Fuzz target: the reasoning / tool-call parser ----===//
//
// The input is model output, which a server must treat as untrusted as a
// request: the first byte picks the parser's options, the rest is fed in
// pieces whose lengths come from the input too. Streaming must settle to the
// same message as one feed of the whole text, and never crash.
//
//===----------------------------------------------------------------------===//

#include "qwen_rt/chat_parsers.h"
#include "qwen_rt/error.h"

#include <cstdlib>

using namespace qwen;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  rt::ChatOutputParserOptions options;
  options.reasoningOpen = data[0] & 1;
  options.parseReasoning = data[0] & 2;
  options.parseToolCalls = data[0] & 4;
  if (data[0] & 8)
    options.tools = nlohmann::ordered_json::parse(
        R"([{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":)"
        R"({"n":{"type":"integer"},"b":{"type":"boolean"},"o":{"type":"object"},"s":{"type":"string"}}}}}])");
  const std::string_view text(reinterpret_cast<const char *>(data + 1), size - 1);

  rt::ChatOutputParser whole(options);
  whole.feed(text);
  whole.finish();

  rt::ChatOutputParser pieces(options);
  size_t at = 0, step = 1 + (data[0] >> 4);
  while (at < text.size()) {
    size_t n = std::min(step, text.size() - at);
    pieces.feed(text.substr(at, n));
    at += n;
    step = 1 + (step * 7 + 3) % 13;
  }
  pieces.finish();
  if (rt::toOpenAIMessage(whole.result()) != rt::toOpenAIMessage(pieces.result()))
    std::abort();
  return 0;
}
