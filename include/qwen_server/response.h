//===- response.h - Sampled tokens to OpenAI response objects ---*- C++ -*-===//
//
// One request's response, assembled from its sampled tokens as they arrive:
// the streamed chunks (chat.completion.chunk / text_completion) that each
// token completes, and at the end the whole body (chat.completion /
// text_completion) with usage. Text goes through the stop-string matcher
// and, for chats, through the reasoning and tool-call parser; logprobs stay
// with the token they belong to. Pure: no engine and no sockets, so a scripted
// token stream tests it.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_SERVER_RESPONSE_H
#define QWEN_SERVER_RESPONSE_H

#include "qwen_rt/chat_parsers.h"
#include "qwen_rt/generate.h"
#include "qwen_rt/sampling.h"
#include "qwen_rt/tokenizer.h"
#include "qwen_server/text_output.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace qwen::serve {

struct ResponseSpec {
  bool chat = false; ///< chat.completion(.chunk), else text_completion
  std::string id, model;
  int64_t created = 0;
  int64_t promptTokens = 0;
  bool includeUsage = false; ///< streams end with a usage chunk
  bool logprobs = false;
  std::vector<std::string> stops;
  /// Chats: how the output splits into content, reasoning and tool calls
  /// (nullopt: all of it is content).
  std::optional<rt::ChatOutputParserOptions> parser;
  /// The start of the answer that the prompt already holds (tool_choice
  /// forcing: the opening of a tool call). The parser reads it before the
  /// generated text; it is neither counted in completion_tokens nor sent as
  /// content.
  std::string forcedPrefix;
};

class ResponseAssembler {
public:
  using json = nlohmann::ordered_json;

  ResponseAssembler(const rt::Tokenizer &tokenizer, ResponseSpec spec);

  /// A chat stream's first chunk (delta.role = "assistant").
  json roleChunk() const;
  /// One sampled token (a stop token included: it counts as generated but
  /// adds no text). Returns the chunks it completes; none while text is held
  /// back. After stopped(), tokens are ignored.
  std::vector<json> push(int32_t token, bool isStop, rt::FinishReason finish, const rt::TokenLogprobs *logprobs);
  /// Prompt tokens the prefix cache supplied (usage.prompt_tokens_details).
  void setCachedPromptTokens(int64_t tokens) { CachedPromptTokens = tokens; }
  /// A stop string ended the text: the request should be cancelled.
  bool stopped() const { return Text.stopped(); }
  /// The generation ended: the chunks of the held-back text, the chunk with
  /// finish_reason and, with includeUsage, the usage chunk.
  std::vector<json> finish();
  /// The complete response object; after finish().
  json body() const;

  int64_t completionTokens() const { return CompletionTokens; }
  /// "stop", "length" or "tool_calls".
  const std::string &finishReason() const { return FinishReason; }

private:
  /// The chunk of a delta of text (and the logprobs of the token that ended it).
  std::optional<json> chunkFor(const std::string &text, const json *logprobs);
  json chunk(json choice) const;
  json usage() const;
  /// One token's logprobs in the endpoint's format.
  json logprobsEntry(int32_t token, const rt::TokenLogprobs &lp);
  /// The chunk of what the forced prefix told the parser, once, before any other.
  void flushForcedPrefix(std::vector<json> &chunks);
  /// Removes the forced prefix from the front of the content, where the
  /// parser puts it back when the generated rest is no tool call.
  void dropForcedText(rt::ChatDelta &delta);

  const rt::Tokenizer &Tok;
  ResponseSpec Spec;
  TextOutput Text;
  std::optional<rt::ChatOutputParser> Parser;
  rt::ChatDelta ForcedDelta; ///< the parser's delta for Spec.forcedPrefix, not yet sent
  std::string ForcedUnsaid;  ///< the part of the forced prefix content may still start with
  size_t ForcedDropped = 0;  ///< bytes dropped from the front of the parser's content
  int64_t CompletionTokens = 0;
  int64_t CachedPromptTokens = 0;
  std::string FinishReason = "length";
  bool Finished = false;

  // The whole response, for body().
  std::string Content;
  json ChatLogprobs = json::array(); ///< chat: logprobs.content entries
  json TextLogprobs;                 ///< completions: tokens / token_logprobs / top_logprobs / text_offset
  int64_t TextOffset = 0;
};

} // namespace qwen::serve

#endif // QWEN_SERVER_RESPONSE_H
