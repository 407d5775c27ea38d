//===- protocol.h - OpenAI request parsing and error bodies -----*- C++ -*-===//
//
// The OpenAI-compatible request schema, parsed and validated into plain
// structs before anything reaches the engine. Everything here is pure (no
// engine, no sockets), so every bad-input case is a unit test: a request that
// does not fit the schema becomes an ApiError with the HTTP status and the
// {"error": {"message", "type", "param", "code"}} body OpenAI clients expect.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_SERVER_PROTOCOL_H
#define QWEN_SERVER_PROTOCOL_H

#include "qwen_rt/chat.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace qwen::serve {

/// A request the server refuses, with everything its error body needs.
class ApiError : public std::runtime_error {
public:
  ApiError(int status, std::string message, std::string type, std::string param = "", std::string code = "")
      : std::runtime_error(message), Status(status), Type(std::move(type)), Param(std::move(param)),
        Code(std::move(code)) {}
  int status() const { return Status; }
  /// {"error": {"message", "type", "param", "code"}}; param and code are null when empty.
  nlohmann::ordered_json body() const;

  /// 400 invalid_request_error about `param`.
  static ApiError badRequest(const std::string &message, const std::string &param = "",
                             const std::string &code = "");

private:
  int Status;
  std::string Type, Param, Code;
};

/// Sampling and stopping, shared by chat and text completions. Unset values
/// fall back to the checkpoint's generation_config.json, then OpenAI's defaults.
struct SamplingOptions {
  std::optional<float> temperature, topP, minP;
  std::optional<int> topK;
  std::optional<uint64_t> seed;
  float presencePenalty = 0, frequencyPenalty = 0, repetitionPenalty = 1;
  std::optional<int64_t> maxTokens; ///< max_tokens or max_completion_tokens
  std::vector<std::string> stop;    ///< stop strings, matched on the text, not returned
  std::vector<int32_t> stopTokenIds;
  bool ignoreEos = false;
  bool logprobs = false;
  int topLogprobs = 0;
  bool stream = false;
  bool includeUsage = false; ///< stream_options.include_usage
};

struct ChatRequest {
  std::string model;
  std::vector<rt::ChatMessage> messages;
  SamplingOptions sampling;
  std::optional<bool> enableThinking; ///< chat_template_kwargs.enable_thinking
  /// The request's "tools", validated, in the client's key order (the
  /// templates render them as the client wrote them).
  nlohmann::ordered_json tools = nlohmann::ordered_json::array();
  /// "none", "auto", "required" (some call must start the answer) or
  /// "function" (a call of forcedFunction must).
  std::string toolChoice = "auto";
  std::string forcedFunction; ///< tool_choice {"type": "function", "function": {"name"}}
  /// The answer must start with a tool call ("required" or a named function).
  bool forcesToolCall() const { return toolChoice == "required" || toolChoice == "function"; }
};

struct CompletionRequest {
  std::string model;
  std::optional<std::string> promptText; ///< a string prompt
  std::vector<int32_t> promptIds;        ///< a token-id prompt (when promptText is empty)
  SamplingOptions sampling;
};

/// POST /v1/embeddings: either texts or token-id sequences (OpenAI's
/// `input` does not mix them), one embedding per entry.
struct EmbeddingRequest {
  std::string model;
  std::vector<std::string> texts;             ///< `input` as strings
  std::vector<std::vector<int32_t>> tokenIds; ///< `input` as token ids (when texts is empty)
  bool base64 = false;                        ///< encoding_format "base64"
};

/// Inputs one embeddings request may hold (OpenAI's own bound).
constexpr size_t kMaxEmbeddingInputs = 2048;

/// What the parsers check requests against.
struct ParseLimits {
  std::vector<std::string> modelNames; ///< names the server answers to
  int64_t vocabSize = 0;               ///< token ids must be below it
  int64_t maxModelLen = 0;             ///< max_tokens must not exceed it
  int64_t hiddenSize = 0;              ///< the embeddings' width (`dimensions` must equal it)
};

/// Parses a request body: JSON (keys kept in order), then the schema.
/// Throws ApiError (400 for malformed JSON, invalid UTF-8, wrong types and
/// out-of-range values; 404 for an unknown model).
nlohmann::ordered_json parseJsonBody(const std::string &body);
ChatRequest parseChatRequest(const nlohmann::ordered_json &body, const ParseLimits &limits);
CompletionRequest parseCompletionRequest(const nlohmann::ordered_json &body, const ParseLimits &limits);
EmbeddingRequest parseEmbeddingRequest(const nlohmann::ordered_json &body, const ParseLimits &limits);

/// The start of the answer that tool_choice forces, in the template's own
/// tool-call format (as it renders a call in the history, so the parser reads
/// forced + generated text like a generated call): "<tool_call>\n" for
/// "required", plus the function's opening for a named one; empty otherwise.
/// The prompt must be rendered with thinking off, so the answer starts here.
std::string forcedToolCallPrefix(const ChatRequest &request, rt::ChatTemplateStyle style);

/// The bytes of `values` as little-endian float32, base64-encoded: OpenAI's
/// encoding_format "base64".
std::string base64Floats(const std::vector<float> &values);

/// True when `text` is well-formed UTF-8 (no overlongs, surrogates or code
/// points above U+10FFFF).
bool isValidUtf8(const std::string &text);

} // namespace qwen::serve

#endif // QWEN_SERVER_PROTOCOL_H
