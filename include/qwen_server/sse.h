//===- sse.h - Server-sent events framing -----------------------*- C++ -*-===//
//
// OpenAI streams are server-sent events: each chunk is one "data:" line with
// a JSON object followed by a blank line, and the stream ends with
// "data: [DONE]". JSON never contains a raw newline (nlohmann escapes them),
// so one data line per event is always enough.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_SERVER_SSE_H
#define QWEN_SERVER_SSE_H

#include <nlohmann/json.hpp>

#include <string>

namespace qwen::serve {

/// "data: {json}\n\n"
inline std::string sseEvent(const nlohmann::json &payload) {
  return "data: " + payload.dump(-1, ' ', /*ensure_ascii=*/false, nlohmann::json::error_handler_t::replace) + "\n\n";
}

/// The event that ends an OpenAI stream.
inline std::string sseDone() { return "data: [DONE]\n\n"; }

} // namespace qwen::serve

#endif // QWEN_SERVER_SSE_H
