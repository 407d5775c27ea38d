//===- response.cpp - Sampled tokens to OpenAI response objects -----------===//

#include "qwen_server/response.h"

#include <algorithm>
#include <cmath>

namespace qwen::serve {

using json = ResponseAssembler::json;

namespace {

/// JSON has no infinity; OpenAI reports impossible tokens as -9999.
double finiteLogprob(float logprob) { return std::isfinite(logprob) ? double(logprob) : -9999.0; }

json byteList(const std::string &bytes) {
  json list = json::array();
  for (unsigned char c : bytes)
    list.push_back(int(c));
  return list;
}

} // namespace

ResponseAssembler::ResponseAssembler(const rt::Tokenizer &tokenizer, ResponseSpec spec)
    : Tok(tokenizer), Spec(std::move(spec)), Text(tokenizer, Spec.stops, /*skipSpecial=*/true) {
  if (Spec.chat && Spec.parser) {
    Parser.emplace(*Spec.parser);
    // The forced opening of a tool call is parsed as if generated, so the
    // generated rest completes it; its delta waits for the stream to start.
    if (!Spec.forcedPrefix.empty()) {
      ForcedUnsaid = Spec.forcedPrefix;
      ForcedDelta = Parser->feed(Spec.forcedPrefix);
      dropForcedText(ForcedDelta);
    }
  }
  TextLogprobs = {{"tokens", json::array()},
                  {"token_logprobs", json::array()},
                  {"top_logprobs", json::array()},
                  {"text_offset", json::array()}};
}

json ResponseAssembler::chunk(json choice) const {
  json c = {{"id", Spec.id},
            {"object", Spec.chat ? "chat.completion.chunk" : "text_completion"},
            {"created", Spec.created},
            {"model", Spec.model},
            {"choices", json::array({std::move(choice)})}};
  if (Spec.includeUsage)
    c["usage"] = nullptr;
  return c;
}

json ResponseAssembler::usage() const {
  return {{"prompt_tokens", Spec.promptTokens},
          {"completion_tokens", CompletionTokens},
          {"total_tokens", Spec.promptTokens + CompletionTokens},
          {"prompt_tokens_details", {{"cached_tokens", CachedPromptTokens}}}};
}

json ResponseAssembler::roleChunk() const {
  return chunk({{"index", 0},
                {"delta", {{"role", "assistant"}, {"content", ""}}},
                {"logprobs", nullptr},
                {"finish_reason", nullptr}});
}

json ResponseAssembler::logprobsEntry(int32_t token, const rt::TokenLogprobs &lp) {
  std::string bytes = Tok.tokenBytes(token);
  if (Spec.chat) {
    json top = json::array();
    for (const rt::TokenLogprob &t : lp.top) {
      std::string b = Tok.tokenBytes(t.token);
      top.push_back({{"token", b}, {"logprob", finiteLogprob(t.logprob)}, {"bytes", byteList(b)}});
    }
    json entry = {{"token", bytes},
                  {"logprob", finiteLogprob(lp.chosen.logprob)},
                  {"bytes", byteList(bytes)},
                  {"top_logprobs", top}};
    ChatLogprobs.push_back(entry);
    return {{"content", json::array({entry})}};
  }
  json top = json::object();
  for (const rt::TokenLogprob &t : lp.top)
    top[Tok.tokenBytes(t.token)] = finiteLogprob(t.logprob);
  json entry = {{"tokens", json::array({bytes})},
                {"token_logprobs", json::array({finiteLogprob(lp.chosen.logprob)})},
                {"top_logprobs", json::array({top})},
                {"text_offset", json::array({TextOffset})}};
  TextLogprobs["tokens"].push_back(bytes);
  TextLogprobs["token_logprobs"].push_back(finiteLogprob(lp.chosen.logprob));
  TextLogprobs["top_logprobs"].push_back(top);
  TextLogprobs["text_offset"].push_back(TextOffset);
  return entry;
}

std::optional<json> ResponseAssembler::chunkFor(const std::string &text, const json *logprobs) {
  Content += text;
  TextOffset += int64_t(text.size());
  json choice = {{"index", 0}};
  if (Spec.chat) {
    json delta = json::object();
    if (Parser) {
      rt::ChatDelta d = Parser->feed(text);
      dropForcedText(d);
      delta = rt::toOpenAIDelta(d);
    } else if (!text.empty()) {
      delta["content"] = text;
    }
    if (delta.empty() && !logprobs)
      return std::nullopt;
    choice["delta"] = delta;
  } else {
    if (text.empty() && !logprobs)
      return std::nullopt;
    choice["text"] = text;
  }
  choice["logprobs"] = logprobs ? *logprobs : json(nullptr);
  choice["finish_reason"] = nullptr;
  return chunk(std::move(choice));
}

void ResponseAssembler::dropForcedText(rt::ChatDelta &delta) {
  // A tool call opened: the forced text was its start, not content.
  if (!delta.toolCalls.empty())
    ForcedUnsaid.clear();
  if (ForcedUnsaid.empty() || delta.content.empty())
    return;
  size_t n = 0;
  while (n < ForcedUnsaid.size() && n < delta.content.size() && ForcedUnsaid[n] == delta.content[n])
    ++n;
  delta.content.erase(0, n);
  ForcedDropped += n;
  // Content other than the forced text: the rest of it is never said.
  ForcedUnsaid = delta.content.empty() ? ForcedUnsaid.substr(n) : std::string();
}

void ResponseAssembler::flushForcedPrefix(std::vector<json> &chunks) {
  if (ForcedDelta.empty())
    return;
  chunks.push_back(chunk(
      {{"index", 0}, {"delta", rt::toOpenAIDelta(ForcedDelta)}, {"logprobs", nullptr}, {"finish_reason", nullptr}}));
  ForcedDelta = {};
}

std::vector<json> ResponseAssembler::push(int32_t token, bool isStop, rt::FinishReason finish,
                                          const rt::TokenLogprobs *logprobs) {
  std::vector<json> chunks;
  if (Finished || Text.stopped())
    return chunks;
  flushForcedPrefix(chunks);
  ++CompletionTokens;
  if (finish == rt::FinishReason::Stop)
    FinishReason = "stop";
  if (isStop)
    return chunks;
  std::string text = Text.push(token);
  if (Text.stopped())
    FinishReason = "stop";
  std::optional<json> lp;
  if (Spec.logprobs && logprobs)
    lp = logprobsEntry(token, *logprobs);
  if (std::optional<json> c = chunkFor(text, lp ? &*lp : nullptr))
    chunks.push_back(std::move(*c));
  return chunks;
}

std::vector<json> ResponseAssembler::finish() {
  std::vector<json> chunks;
  if (Finished)
    return chunks;
  flushForcedPrefix(chunks);
  if (std::optional<json> c = chunkFor(Text.finish(), nullptr))
    chunks.push_back(std::move(*c));
  if (Parser) {
    // The parser's last words (text it held back as a possible tag).
    rt::ChatDelta d = Parser->finish();
    dropForcedText(d);
    if (!d.empty())
      chunks.push_back(
          chunk({{"index", 0}, {"delta", rt::toOpenAIDelta(d)}, {"logprobs", nullptr}, {"finish_reason", nullptr}}));
    if (!Parser->result().toolCalls.empty() && FinishReason == "stop")
      FinishReason = "tool_calls";
  }
  Finished = true;
  if (Spec.chat)
    chunks.push_back(
        chunk({{"index", 0}, {"delta", json::object()}, {"logprobs", nullptr}, {"finish_reason", FinishReason}}));
  else
    chunks.push_back(chunk({{"index", 0}, {"text", ""}, {"logprobs", nullptr}, {"finish_reason", FinishReason}}));
  if (Spec.includeUsage) {
    json last = chunk(nullptr);
    last["choices"] = json::array();
    last["usage"] = usage();
    chunks.push_back(std::move(last));
  }
  return chunks;
}

json ResponseAssembler::body() const {
  json choice = {{"index", 0}};
  if (Spec.chat) {
    json message;
    if (Parser) {
      rt::ParsedChatOutput output = Parser->result();
      output.content.erase(0, ForcedDropped);
      message = rt::toOpenAIMessage(output);
    }
    else
      message = {{"role", "assistant"}, {"content", Content}};
    choice["message"] = message;
    choice["logprobs"] = Spec.logprobs ? json{{"content", ChatLogprobs}} : json(nullptr);
  } else {
    choice["text"] = Content;
    choice["logprobs"] = Spec.logprobs ? TextLogprobs : json(nullptr);
  }
  choice["finish_reason"] = FinishReason;
  return {{"id", Spec.id},
          {"object", Spec.chat ? "chat.completion" : "text_completion"},
          {"created", Spec.created},
          {"model", Spec.model},
          {"choices", json::array({choice})},
          {"usage", usage()}};
}

} // namespace qwen::serve
