//===- serve_request.cpp - Fuzz target: the server's request bodies -------===//
//
// The input is the body of a POST to /v1/chat/completions or /v1/completions
// as a client sends it: parsed and validated as the server does before
// anything reaches the engine, and a chat request's messages rendered through
// both chat templates. Every bad body must end as an ApiError (or the
// template's Error), never as a crash or an uncaught exception.
//
//===----------------------------------------------------------------------===//

#include "qwen_rt/chat.h"
#include "qwen_rt/error.h"
#include "qwen_server/protocol.h"

using namespace qwen;

namespace {
const serve::ParseLimits &limits() {
  static const serve::ParseLimits value{{"qwen"}, /*vocabSize=*/151936, /*maxModelLen=*/4096};
  return value;
}

void renderWith(rt::ChatTemplateStyle style, const serve::ChatRequest &request) {
  rt::ChatTemplateOptions options;
  options.enableThinking = request.enableThinking.value_or(true);
  try {
    rt::ChatTemplate(style).render(request.messages, request.tools, options);
  } catch (const rt::Error &) {
  }
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const std::string body(reinterpret_cast<const char *>(data), size);
  try {
    nlohmann::ordered_json json = serve::parseJsonBody(body);
    // The same body through both routes: their schemas overlap (model,
    // sampling), and each must refuse what belongs to the other cleanly.
    try {
      serve::ChatRequest chat = serve::parseChatRequest(json, limits());
      renderWith(rt::ChatTemplateStyle::Qwen3, chat);
      renderWith(rt::ChatTemplateStyle::Qwen35, chat);
    } catch (const serve::ApiError &) {
    }
    serve::parseCompletionRequest(json, limits());
  } catch (const serve::ApiError &) {
  }
  return 0;
}
