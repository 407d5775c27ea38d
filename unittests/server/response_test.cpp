//===- response_test.cpp - Tests of response assembly ---------------------===//
//
// Scripted token streams (the demo checkpoint's real Qwen3 tokenizer) through
// ResponseAssembler: what the streamed chunks add up to equals the body, stop
// strings are cut across tokens, and chats split into reasoning_content,
// content and tool_calls, which the tiny demo model never emits by itself.
//
//===----------------------------------------------------------------------===//

#include "qwen_server/response.h"

#include <gtest/gtest.h>

using namespace qwen;
using namespace qwen::serve;
using json = nlohmann::ordered_json;

namespace {

const rt::Tokenizer &tokenizer() {
  static rt::Tokenizer tok =
      rt::Tokenizer::fromFile(std::string(QWEN_SOURCE_DIR) + "/models/checkpoints/qwen3-demo/tokenizer.json");
  return tok;
}

int32_t imEnd() { return *tokenizer().tokenToId("<|im_end|>"); }

/// What a stream of chunks adds up to.
struct Streamed {
  std::string text, content, reasoning;
  json toolCalls = json::array(); ///< [{id, name, arguments}] by index
  std::string finishReason;
  json usage;
  size_t logprobEntries = 0;
};

Streamed collect(const std::vector<json> &chunks, bool chat) {
  Streamed s;
  for (const json &c : chunks) {
    if (c["choices"].empty()) {
      s.usage = c["usage"];
      continue;
    }
    const json &choice = c["choices"][0];
    if (!choice["finish_reason"].is_null())
      s.finishReason = choice["finish_reason"];
    if (!choice["logprobs"].is_null())
      s.logprobEntries += chat ? choice["logprobs"]["content"].size() : choice["logprobs"]["tokens"].size();
    if (!chat) {
      s.text += choice["text"].get<std::string>();
      continue;
    }
    const json &d = choice["delta"];
    if (d.contains("content") && d["content"].is_string())
      s.content += d["content"].get<std::string>();
    if (d.contains("reasoning_content"))
      s.reasoning += d["reasoning_content"].get<std::string>();
    if (d.contains("tool_calls"))
      for (const json &t : d["tool_calls"]) {
        size_t index = t["index"];
        if (index == s.toolCalls.size()) {
          EXPECT_TRUE(t.contains("id") && t["function"].contains("name")) << "a call's first delta names it";
          s.toolCalls.push_back({{"id", t["id"]}, {"name", t["function"]["name"]}, {"arguments", ""}});
        }
        s.toolCalls[index]["arguments"] =
            s.toolCalls[index]["arguments"].get<std::string>() + t["function"]["arguments"].get<std::string>();
      }
  }
  return s;
}

/// Feeds `text` token by token (then an optional stop token) and finishes.
std::vector<json> feed(ResponseAssembler &r, const std::string &text, std::optional<int32_t> stopToken,
                       rt::FinishReason last = rt::FinishReason::Length) {
  std::vector<int32_t> ids = tokenizer().encode(text);
  std::vector<json> chunks;
  for (size_t i = 0; i < ids.size() && !r.stopped(); ++i) {
    rt::FinishReason finish = !stopToken && i + 1 == ids.size() ? last : rt::FinishReason::Running;
    for (json &c : r.push(ids[i], false, finish, nullptr))
      chunks.push_back(std::move(c));
  }
  if (stopToken && !r.stopped())
    for (json &c : r.push(*stopToken, true, rt::FinishReason::Stop, nullptr))
      chunks.push_back(std::move(c));
  for (json &c : r.finish())
    chunks.push_back(std::move(c));
  return chunks;
}

ResponseSpec chatSpec() {
  ResponseSpec spec;
  spec.chat = true;
  spec.id = "chatcmpl-test";
  spec.model = "demo";
  spec.promptTokens = 11;
  spec.includeUsage = true;
  spec.parser = rt::ChatOutputParserOptions();
  spec.parser->toolCallIdPrefix = "call_t_";
  return spec;
}

TEST(ResponseTest, CompletionStreamEqualsBody) {
  ResponseSpec spec;
  spec.id = "cmpl-test";
  spec.model = "demo";
  spec.promptTokens = 5;
  spec.includeUsage = true;
  ResponseAssembler r(tokenizer(), spec);
  const std::string text = " to a summer's day? Thou art more lovely \xe2\x80\x94 and more temperate";
  Streamed s = collect(feed(r, text, std::nullopt), false);
  json body = r.body();
  EXPECT_EQ(s.text, text);
  EXPECT_EQ(body["choices"][0]["text"], text);
  EXPECT_EQ(body["object"], "text_completion");
  EXPECT_EQ(s.finishReason, "length");
  EXPECT_EQ(body["choices"][0]["finish_reason"], "length");
  int64_t n = int64_t(tokenizer().encode(text).size());
  EXPECT_EQ(s.usage, json({{"prompt_tokens", 5},
                           {"completion_tokens", n},
                           {"total_tokens", 5 + n},
                           {"prompt_tokens_details", {{"cached_tokens", 0}}}}));
  EXPECT_EQ(body["usage"], s.usage);
}

TEST(ResponseTest, StopStringAcrossTokensIsNotReturned) {
  ResponseSpec spec;
  spec.id = "cmpl-test";
  spec.stops = {"more lov"};
  ResponseAssembler r(tokenizer(), spec);
  Streamed s = collect(feed(r, " Thou art more lovely and more temperate", std::nullopt), false);
  EXPECT_TRUE(r.stopped());
  EXPECT_EQ(s.text, " Thou art ");
  EXPECT_EQ(r.body()["choices"][0]["text"], " Thou art ");
  EXPECT_EQ(s.finishReason, "stop");
  // Counted: the tokens up to the one that completed the stop string.
  EXPECT_EQ(r.completionTokens(), int64_t(tokenizer().encode(" Thou art more lovely").size()));
}

TEST(ResponseTest, StopTokenEndsWithStop) {
  ResponseSpec spec;
  spec.id = "cmpl-test";
  ResponseAssembler r(tokenizer(), spec);
  Streamed s = collect(feed(r, " to a", imEnd()), false);
  EXPECT_EQ(s.text, " to a");
  EXPECT_EQ(s.finishReason, "stop");
  EXPECT_EQ(r.completionTokens(), int64_t(tokenizer().encode(" to a").size()) + 1);
}

TEST(ResponseTest, ChatReasoningThenContent) {
  ResponseAssembler r(tokenizer(), chatSpec());
  std::vector<json> chunks = {r.roleChunk()};
  for (json &c : feed(r, "<think>\nThe user greets me.\n</think>\n\nHello there!", imEnd()))
    chunks.push_back(std::move(c));
  EXPECT_EQ(chunks[0]["choices"][0]["delta"]["role"], "assistant");
  Streamed s = collect(chunks, true);
  EXPECT_EQ(s.reasoning, "The user greets me.");
  EXPECT_EQ(s.content, "Hello there!");
  EXPECT_EQ(s.finishReason, "stop");
  json message = r.body()["choices"][0]["message"];
  EXPECT_EQ(message["reasoning_content"], "The user greets me.");
  EXPECT_EQ(message["content"], "Hello there!");
  EXPECT_FALSE(message.contains("tool_calls"));
  EXPECT_EQ(r.body()["object"], "chat.completion");
  EXPECT_EQ(chunks.back()["choices"], json::array()); // the usage chunk closes the stream
}

TEST(ResponseTest, ChatQwen3JsonToolCall) {
  ResponseAssembler r(tokenizer(), chatSpec());
  Streamed s = collect(feed(r,
                            "<think>\nNeed weather.\n</think>\n\n<tool_call>\n{\"name\": \"get_weather\", "
                            "\"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
                            imEnd()),
                       true);
  EXPECT_EQ(s.finishReason, "tool_calls");
  ASSERT_EQ(s.toolCalls.size(), 1u);
  EXPECT_EQ(s.toolCalls[0]["id"], "call_t_0");
  EXPECT_EQ(s.toolCalls[0]["name"], "get_weather");
  EXPECT_EQ(json::parse(s.toolCalls[0]["arguments"].get<std::string>()), json({{"city", "Paris"}}));
  json message = r.body()["choices"][0]["message"];
  EXPECT_TRUE(message["content"].is_null());
  EXPECT_EQ(message["tool_calls"][0]["type"], "function");
  EXPECT_EQ(message["tool_calls"][0]["function"]["name"], "get_weather");
  EXPECT_EQ(message["tool_calls"][0]["function"]["arguments"], s.toolCalls[0]["arguments"]);
  EXPECT_EQ(r.body()["choices"][0]["finish_reason"], "tool_calls");
}

TEST(ResponseTest, ChatXmlToolCallInsideThinkStreams) {
  ResponseSpec spec = chatSpec();
  spec.parser->reasoningOpen = true; // Qwen3.5: the prompt opened <think>
  spec.parser->tools = json::parse(R"([{"type": "function", "function": {"name": "search", "parameters":
      {"type": "object", "properties": {"q": {"type": "string"}, "n": {"type": "integer"}}}}}])");
  ResponseAssembler r(tokenizer(), spec);
  Streamed s = collect(feed(r,
                            "I should search.\n<tool_call>\n<function=search>\n<parameter=q>\ncats\n</parameter>\n"
                            "<parameter=n>\n3\n</parameter>\n</function>\n</tool_call>\nDone.\n</think>\n\nHere.",
                            imEnd()),
                       true);
  EXPECT_EQ(s.reasoning, "I should search.\nDone.");
  EXPECT_EQ(s.content, "Here.");
  ASSERT_EQ(s.toolCalls.size(), 1u);
  EXPECT_EQ(s.toolCalls[0]["arguments"], "{\"q\": \"cats\", \"n\": 3}");
  EXPECT_EQ(r.body()["choices"][0]["message"]["tool_calls"].size(), 1u);
  EXPECT_EQ(s.finishReason, "tool_calls");
}

/// tool_choice forcing: the prompt ends with the opening of the call, which
/// the parser reads first; the generated rest completes it.
TEST(ResponseTest, ForcedQwen3CallNamesTheFunction) {
  ResponseSpec spec = chatSpec();
  spec.forcedPrefix = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": ";
  ResponseAssembler r(tokenizer(), spec);
  const std::string generated = "{\"city\": \"Paris\"}}\n</tool_call>";
  std::vector<json> chunks = feed(r, generated, imEnd());
  // The forced text is not generated: not counted, not content.
  EXPECT_EQ(r.completionTokens(), int64_t(tokenizer().encode(generated).size()) + 1);
  Streamed s = collect(chunks, true);
  EXPECT_EQ(s.content, "");
  EXPECT_EQ(s.finishReason, "tool_calls");
  ASSERT_EQ(s.toolCalls.size(), 1u);
  EXPECT_EQ(s.toolCalls[0]["id"], "call_t_0");
  EXPECT_EQ(s.toolCalls[0]["name"], "get_weather");
  EXPECT_EQ(json::parse(s.toolCalls[0]["arguments"].get<std::string>()), json({{"city", "Paris"}}));
  // The first tool-call delta names the call, and comes first.
  const json &first = chunks[0]["choices"][0]["delta"];
  ASSERT_TRUE(first.contains("tool_calls"));
  EXPECT_EQ(first["tool_calls"][0]["function"]["name"], "get_weather");
  // Streamed == non-streamed.
  json body = r.body();
  json message = body["choices"][0]["message"];
  EXPECT_TRUE(message["content"].is_null());
  ASSERT_EQ(message["tool_calls"].size(), 1u);
  EXPECT_EQ(message["tool_calls"][0]["id"], s.toolCalls[0]["id"]);
  EXPECT_EQ(message["tool_calls"][0]["function"]["name"], "get_weather");
  EXPECT_EQ(message["tool_calls"][0]["function"]["arguments"], s.toolCalls[0]["arguments"]);
  EXPECT_EQ(body["choices"][0]["finish_reason"], "tool_calls");
  EXPECT_EQ(body["usage"], s.usage);
}

TEST(ResponseTest, ForcedXmlCallNamesTheFunction) {
  ResponseSpec spec = chatSpec();
  spec.forcedPrefix = "<tool_call>\n<function=search>\n";
  spec.parser->tools = json::parse(R"([{"type": "function", "function": {"name": "search", "parameters":
      {"type": "object", "properties": {"q": {"type": "string"}, "n": {"type": "integer"}}}}}])");
  ResponseAssembler r(tokenizer(), spec);
  Streamed s = collect(
      feed(r, "<parameter=q>\ncats\n</parameter>\n<parameter=n>\n3\n</parameter>\n</function>\n</tool_call>", imEnd()),
      true);
  EXPECT_EQ(s.content, "");
  EXPECT_EQ(s.finishReason, "tool_calls");
  ASSERT_EQ(s.toolCalls.size(), 1u);
  EXPECT_EQ(s.toolCalls[0]["name"], "search");
  EXPECT_EQ(s.toolCalls[0]["arguments"], "{\"q\": \"cats\", \"n\": 3}");
  json message = r.body()["choices"][0]["message"];
  ASSERT_EQ(message["tool_calls"].size(), 1u);
  EXPECT_EQ(message["tool_calls"][0]["function"]["name"], "search");
  EXPECT_EQ(message["tool_calls"][0]["function"]["arguments"], s.toolCalls[0]["arguments"]);
}

TEST(ResponseTest, ForcedRequiredCallLetsTheModelName) {
  ResponseSpec spec = chatSpec();
  spec.forcedPrefix = "<tool_call>\n"; // tool_choice "required"
  ResponseAssembler r(tokenizer(), spec);
  Streamed s = collect(feed(r, "{\"name\": \"f\", \"arguments\": {\"x\": 1}}\n</tool_call>", imEnd()), true);
  EXPECT_EQ(s.finishReason, "tool_calls");
  ASSERT_EQ(s.toolCalls.size(), 1u);
  EXPECT_EQ(s.toolCalls[0]["name"], "f");
  EXPECT_EQ(json::parse(s.toolCalls[0]["arguments"].get<std::string>()), json({{"x", 1}}));
  EXPECT_EQ(r.body()["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"], s.toolCalls[0]["arguments"]);
}

TEST(ResponseTest, ForcedRequiredCallNotMadeIsContentWithoutTheForcedText) {
  // "required", but the model writes no call: its text is content, the
  // forced "<tool_call>\n" is not, and nothing is a tool call.
  ResponseSpec spec = chatSpec();
  spec.forcedPrefix = "<tool_call>\n";
  ResponseAssembler r(tokenizer(), spec);
  Streamed s = collect(feed(r, "Twinkle, twinkle, little star", imEnd()), true);
  EXPECT_EQ(s.content, "Twinkle, twinkle, little star");
  EXPECT_TRUE(s.toolCalls.empty());
  EXPECT_EQ(s.finishReason, "stop");
  json message = r.body()["choices"][0]["message"];
  EXPECT_EQ(message["content"], s.content);
  EXPECT_FALSE(message.contains("tool_calls"));
}

TEST(ResponseTest, ForcedXmlCallOfNonsenseKeepsItsName) {
  // A model that writes no parameters after the forced opening: still a
  // call of the named function, and no forced text in the content.
  ResponseSpec spec = chatSpec();
  spec.forcedPrefix = "<tool_call>\n<function=search>\n";
  ResponseAssembler r(tokenizer(), spec);
  Streamed s = collect(feed(r, "Twinkle, twinkle, little star", imEnd()), true);
  ASSERT_EQ(s.toolCalls.size(), 1u);
  EXPECT_EQ(s.toolCalls[0]["name"], "search");
  EXPECT_EQ(s.content.find("<tool_call>"), std::string::npos);
  EXPECT_EQ(s.finishReason, "tool_calls");
  json message = r.body()["choices"][0]["message"];
  EXPECT_EQ(message["tool_calls"][0]["function"]["arguments"], s.toolCalls[0]["arguments"]);
  EXPECT_EQ(message["content"].is_null() ? std::string() : message["content"].get<std::string>(), s.content);
}

TEST(ResponseTest, ForcedCallCutShortEndsWithItsArgumentsSoFar) {
  // max_tokens ran out inside the call: the call is returned with the
  // arguments generated so far, and finish_reason says "length".
  ResponseSpec spec = chatSpec();
  spec.forcedPrefix = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": ";
  ResponseAssembler r(tokenizer(), spec);
  Streamed s = collect(feed(r, "{\"city\": \"Par", std::nullopt), true);
  EXPECT_EQ(s.finishReason, "length");
  ASSERT_EQ(s.toolCalls.size(), 1u);
  EXPECT_EQ(s.toolCalls[0]["name"], "get_weather");
  json message = r.body()["choices"][0]["message"];
  ASSERT_EQ(message["tool_calls"].size(), 1u);
  EXPECT_EQ(message["tool_calls"][0]["function"]["arguments"], s.toolCalls[0]["arguments"]);
  EXPECT_EQ(r.body()["choices"][0]["finish_reason"], "length");
}

TEST(ResponseTest, ToolCallsStayContentWithoutParser) {
  ResponseSpec spec = chatSpec();
  spec.parser->parseToolCalls = false; // no tools offered, or tool_choice "none"
  ResponseAssembler r(tokenizer(), spec);
  const std::string text = "<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>";
  Streamed s = collect(feed(r, text, imEnd()), true);
  EXPECT_EQ(s.content, text);
  EXPECT_TRUE(s.toolCalls.empty());
  EXPECT_EQ(s.finishReason, "stop");
}

TEST(ResponseTest, LogprobsStayWithTheirTokens) {
  ResponseSpec spec = chatSpec();
  spec.logprobs = true;
  spec.parser.reset();
  ResponseAssembler r(tokenizer(), spec);
  std::vector<int32_t> ids = tokenizer().encode(" to a summer's");
  std::vector<json> chunks;
  for (int32_t id : ids) {
    rt::TokenLogprobs lp;
    lp.chosen = {id, -0.25f};
    lp.top = {{id, -0.25f}, {7, -1.5f}};
    for (json &c : r.push(id, false, rt::FinishReason::Running, &lp))
      chunks.push_back(std::move(c));
  }
  for (json &c : r.finish())
    chunks.push_back(std::move(c));
  Streamed s = collect(chunks, true);
  EXPECT_EQ(s.logprobEntries, ids.size());
  json entries = r.body()["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(entries.size(), ids.size());
  std::string joined;
  for (const json &e : entries) {
    joined += e["token"].get<std::string>();
    EXPECT_EQ(e["logprob"], -0.25);
    EXPECT_EQ(e["top_logprobs"].size(), 2u);
  }
  EXPECT_EQ(joined, " to a summer's");
}

TEST(ResponseTest, CompletionLogprobsFormat) {
  ResponseSpec spec;
  spec.logprobs = true;
  ResponseAssembler r(tokenizer(), spec);
  std::vector<int32_t> ids = tokenizer().encode(" to a");
  for (int32_t id : ids) {
    rt::TokenLogprobs lp;
    lp.chosen = {id, -std::numeric_limits<float>::infinity()};
    r.push(id, false, rt::FinishReason::Running, &lp);
  }
  r.finish();
  json lp = r.body()["choices"][0]["logprobs"];
  EXPECT_EQ(lp["tokens"].size(), ids.size());
  EXPECT_EQ(lp["token_logprobs"][0], -9999.0); // JSON has no -inf
  EXPECT_EQ(lp["text_offset"][0], 0);
  EXPECT_EQ(lp["text_offset"][1], int64_t(tokenizer().tokenBytes(ids[0]).size()));
}

} // namespace
