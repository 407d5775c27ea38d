//===- protocol_test.cpp - Tests of OpenAI request parsing ----------------===//

#include "qwen_server/protocol.h"

#include <gtest/gtest.h>

using namespace qwen::serve;
using json = nlohmann::ordered_json;

namespace {

ParseLimits limits() {
  ParseLimits l;
  l.modelNames = {"demo"};
  l.vocabSize = 1000;
  l.maxModelLen = 512;
  return l;
}

/// The ApiError a completion body raises (status 0: none).
ApiError completionError(const json &body) {
  try {
    parseCompletionRequest(body, limits());
  } catch (const ApiError &e) {
    return e;
  }
  return ApiError(0, "no error", "");
}

ApiError chatError(const json &body) {
  try {
    parseChatRequest(body, limits());
  } catch (const ApiError &e) {
    return e;
  }
  return ApiError(0, "no error", "");
}

json completion(json extra) {
  json body = {{"model", "demo"}, {"prompt", "hello"}};
  body.update(extra);
  return body;
}

TEST(ProtocolTest, CompletionDefaultsAndFields) {
  CompletionRequest r = parseCompletionRequest(completion({{"max_tokens", 7},
                                                           {"temperature", 0.5},
                                                           {"top_k", -1},
                                                           {"seed", 42},
                                                           {"stop", "\n\n"},
                                                           {"stop_token_ids", {5, 6}},
                                                           {"ignore_eos", true},
                                                           {"stream", true},
                                                           {"stream_options", {{"include_usage", true}}},
                                                           {"logprobs", 3},
                                                           {"user", "ignored"}}),
                                               limits());
  EXPECT_EQ(*r.promptText, "hello");
  EXPECT_EQ(*r.sampling.maxTokens, 7);
  EXPECT_FLOAT_EQ(*r.sampling.temperature, 0.5f);
  EXPECT_EQ(*r.sampling.topK, 0); // -1 means no limit
  EXPECT_EQ(*r.sampling.seed, 42u);
  EXPECT_EQ(r.sampling.stop, std::vector<std::string>{"\n\n"});
  EXPECT_EQ(r.sampling.stopTokenIds, (std::vector<int32_t>{5, 6}));
  EXPECT_TRUE(r.sampling.ignoreEos && r.sampling.stream && r.sampling.includeUsage && r.sampling.logprobs);
  EXPECT_EQ(r.sampling.topLogprobs, 3);
  EXPECT_FALSE(r.sampling.topP.has_value()); // unset: the checkpoint decides

  CompletionRequest nulls = parseCompletionRequest(completion({{"temperature", nullptr}, {"stop", nullptr}}), limits());
  EXPECT_FALSE(nulls.sampling.temperature.has_value());
  EXPECT_TRUE(nulls.sampling.stop.empty());
}

TEST(ProtocolTest, PromptShapes) {
  EXPECT_EQ(parseCompletionRequest(completion({{"prompt", {1, 2, 3}}}), limits()).promptIds,
            (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(*parseCompletionRequest(completion({{"prompt", {"one"}}}), limits()).promptText, "one");
  EXPECT_EQ(parseCompletionRequest(completion({{"prompt", {{4, 5}}}}), limits()).promptIds,
            (std::vector<int32_t>{4, 5}));
  EXPECT_EQ(completionError(completion({{"prompt", {"one", "two"}}})).status(), 400);
  EXPECT_EQ(completionError(completion({{"prompt", json::array()}})).status(), 400);
  EXPECT_EQ(completionError(completion({{"prompt", ""}})).status(), 400);
  EXPECT_EQ(completionError(completion({{"prompt", {1, 1000}}})).status(), 400); // outside the vocabulary
  EXPECT_EQ(completionError(completion({{"prompt", {1, -1}}})).status(), 400);
  EXPECT_EQ(completionError(completion({{"prompt", {1, "x"}}})).status(), 400);
  EXPECT_EQ(completionError(completion({{"prompt", 3.5}})).status(), 400);
}

TEST(ProtocolTest, WrongTypesAndRangesNameTheParameter) {
  struct Case {
    json extra;
    std::string param;
  } cases[] = {
      {{{"max_tokens", "10"}}, "max_tokens"},        {{{"max_tokens", 0}}, "max_tokens"},
      {{{"max_tokens", 513}}, "max_tokens"},         {{{"max_tokens", 2.5}}, "max_tokens"},
      {{{"temperature", -0.1}}, "temperature"},      {{{"temperature", 2.5}}, "temperature"},
      {{{"temperature", "hot"}}, "temperature"},     {{{"top_p", 0}}, "top_p"},
      {{{"top_p", 1.5}}, "top_p"},                   {{{"top_k", -2}}, "top_k"},
      {{{"min_p", 2}}, "min_p"},                     {{{"presence_penalty", 3}}, "presence_penalty"},
      {{{"frequency_penalty", -3}}, "frequency_penalty"}, {{{"repetition_penalty", 0}}, "repetition_penalty"},
      {{{"seed", "1"}}, "seed"},                     {{{"stop", 5}}, "stop"},
      {{{"stop", {"a", 5}}}, "stop"},                {{{"stop", {""}}}, "stop"},
      {{{"stop_token_ids", 5}}, "stop_token_ids"},   {{{"stop_token_ids", {5000}}}, "stop_token_ids"},
      {{{"ignore_eos", 1}}, "ignore_eos"},           {{{"stream", "true"}}, "stream"},
      {{{"stream_options", {{"include_usage", true}}}}, "stream_options"}, // without stream
      {{{"n", 2}}, "n"},                             {{{"logprobs", 21}}, "logprobs"},
      {{{"logit_bias", {{"5", 10}}}}, "logit_bias"}, {{{"echo", true}}, "echo"},
      {{{"response_format", {{"type", "json_object"}}}}, "response_format"},
  };
  for (const Case &c : cases) {
    ApiError e = completionError(completion(c.extra));
    EXPECT_EQ(e.status(), 400) << c.extra.dump();
    EXPECT_EQ(e.body()["error"]["param"], c.param) << c.extra.dump();
    EXPECT_EQ(e.body()["error"]["type"], "invalid_request_error");
  }
}

TEST(ProtocolTest, ModelIsRequiredAndKnown) {
  EXPECT_EQ(completionError({{"prompt", "x"}}).status(), 400);
  ApiError e = completionError({{"model", "gpt-4"}, {"prompt", "x"}});
  EXPECT_EQ(e.status(), 404);
  EXPECT_EQ(e.body()["error"]["code"], "model_not_found");
  EXPECT_EQ(completionError({{"model", 5}, {"prompt", "x"}}).status(), 400);
}

TEST(ProtocolTest, ChatMessagesToolsAndKwargs) {
  json body = {{"model", "demo"},
               {"messages",
                {{{"role", "developer"}, {"content", "be brief"}},
                 {{"role", "user"}, {"content", {{{"type", "text"}, {"text", "hi"}}}}},
                 {{"role", "assistant"},
                  {"content", nullptr},
                  {"tool_calls",
                   {{{"id", "c1"}, {"type", "function"}, {"function", {{"name", "f"}, {"arguments", "{}"}}}}}}},
                 {{"role", "tool"}, {"tool_call_id", "c1"}, {"content", "42"}}}},
               {"tools", {{{"type", "function"}, {"function", {{"name", "f"}, {"parameters", json::object()}}}}}},
               {"tool_choice", "auto"},
               {"max_completion_tokens", 9},
               {"logprobs", true},
               {"top_logprobs", 2},
               {"chat_template_kwargs", {{"enable_thinking", false}}}};
  ChatRequest r = parseChatRequest(body, limits());
  ASSERT_EQ(r.messages.size(), 4u);
  EXPECT_EQ(r.messages[0].role, "system");
  EXPECT_EQ(r.messages[2].toolCalls.size(), 1u);
  EXPECT_EQ(r.tools.size(), 1u);
  EXPECT_EQ(*r.sampling.maxTokens, 9);
  EXPECT_EQ(r.sampling.topLogprobs, 2);
  EXPECT_EQ(r.enableThinking, false);
}

TEST(ProtocolTest, BadChats) {
  auto chat = [](json extra) {
    json body = {{"model", "demo"}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}};
    body.update(extra);
    return body;
  };
  EXPECT_EQ(chatError(chat({{"messages", json::array()}})).status(), 400);
  EXPECT_EQ(chatError(chat({{"messages", "hi"}})).status(), 400);
  EXPECT_EQ(chatError(chat({{"messages", {{{"role", "robot"}, {"content", "x"}}}}})).status(), 400);
  EXPECT_EQ(chatError(chat({{"messages", {{{"role", "user"}, {"content", 5}}}}})).status(), 400);
  EXPECT_EQ(chatError(chat({{"messages", {{{"role", "user"}, {"content", {{{"type", "image_url"}}}}}}}})).status(),
            400);
  EXPECT_EQ(chatError(chat({{"top_logprobs", 2}})).status(), 400); // needs logprobs
  EXPECT_EQ(chatError(chat({{"tools", "f"}})).status(), 400);
  EXPECT_EQ(chatError(chat({{"tools", {{{"type", "function"}}}}})).status(), 400);
  EXPECT_EQ(chatError(chat({{"tool_choice", "required"}})).status(), 400);
  EXPECT_EQ(chatError(chat({{"tool_choice", {{"type", "function"}, {"function", {{"name", "f"}}}}}})).status(), 400);
  EXPECT_EQ(chatError(chat({{"chat_template_kwargs", {{"enable_thinking", "no"}}}})).status(), 400);
  EXPECT_EQ(chatError(chat({{"max_completion_tokens", -1}})).status(), 400);
}

TEST(ProtocolTest, ToolChoiceForcing) {
  auto chat = [](json extra) {
    json body = {{"model", "demo"},
                 {"messages", {{{"role", "user"}, {"content", "hi"}}}},
                 {"tools",
                  {{{"type", "function"}, {"function", {{"name", "get_weather"}}}},
                   {{"type", "function"}, {"function", {{"name", "search"}}}}}}};
    body.update(extra);
    return body;
  };
  auto named = [](const std::string &name) {
    return json{{"type", "function"}, {"function", {{"name", name}}}};
  };
  ChatRequest required = parseChatRequest(chat({{"tool_choice", "required"}}), limits());
  EXPECT_EQ(required.toolChoice, "required");
  EXPECT_TRUE(required.forcesToolCall());
  EXPECT_EQ(forcedToolCallPrefix(required, qwen::rt::ChatTemplateStyle::Qwen3), "<tool_call>\n");
  EXPECT_EQ(forcedToolCallPrefix(required, qwen::rt::ChatTemplateStyle::Qwen35), "<tool_call>\n");

  ChatRequest fn = parseChatRequest(chat({{"tool_choice", named("search")}}), limits());
  EXPECT_EQ(fn.toolChoice, "function");
  EXPECT_EQ(fn.forcedFunction, "search");
  EXPECT_TRUE(fn.forcesToolCall());
  // The openings the templates render for a call in the history.
  EXPECT_EQ(forcedToolCallPrefix(fn, qwen::rt::ChatTemplateStyle::Qwen3),
            "<tool_call>\n{\"name\": \"search\", \"arguments\": ");
  EXPECT_EQ(forcedToolCallPrefix(fn, qwen::rt::ChatTemplateStyle::Qwen35), "<tool_call>\n<function=search>\n");

  ChatRequest autoChoice = parseChatRequest(chat({{"tool_choice", "auto"}}), limits());
  EXPECT_FALSE(autoChoice.forcesToolCall());
  EXPECT_EQ(forcedToolCallPrefix(autoChoice, qwen::rt::ChatTemplateStyle::Qwen3), "");

  // Unknown names, malformed objects and forcing without tools are 400s.
  ApiError unknown = chatError(chat({{"tool_choice", named("nope")}}));
  EXPECT_EQ(unknown.status(), 400);
  EXPECT_NE(std::string(unknown.what()).find("nope"), std::string::npos);
  EXPECT_EQ(unknown.body()["error"]["param"], "tool_choice");
  EXPECT_EQ(chatError(chat({{"tool_choice", "any"}})).status(), 400);
  EXPECT_EQ(chatError(chat({{"tool_choice", 3}})).status(), 400);
  EXPECT_EQ(chatError(chat({{"tool_choice", {{"type", "tool"}, {"function", {{"name", "search"}}}}}})).status(), 400);
  EXPECT_EQ(chatError(chat({{"tool_choice", {{"type", "function"}}}})).status(), 400);
  EXPECT_EQ(chatError(chat({{"tool_choice", {{"type", "function"}, {"function", {{"name", ""}}}}}})).status(), 400);
  json noTools = chat({{"tool_choice", "required"}});
  noTools.erase("tools");
  EXPECT_EQ(chatError(noTools).status(), 400);
  noTools["tool_choice"] = named("search");
  EXPECT_EQ(chatError(noTools).status(), 400);
  noTools["tool_choice"] = "none";
  EXPECT_EQ(chatError(noTools).status(), 0);
}

TEST(ProtocolTest, JsonBodies) {
  EXPECT_EQ(parseJsonBody("{\"a\": 1}")["a"], 1);
  auto status = [](const std::string &body) {
    try {
      parseJsonBody(body);
    } catch (const ApiError &e) {
      return e.status();
    }
    return 0;
  };
  EXPECT_EQ(status("{\"a\": "), 400);
  EXPECT_EQ(status(""), 400);
  EXPECT_EQ(status("[1]"), 400);
  EXPECT_EQ(status("{\"a\": \"\xff\"}"), 400);
  // Key order is kept (tools render as the client wrote them).
  json ordered = parseJsonBody("{\"z\": 1, \"a\": 2}");
  EXPECT_EQ(ordered.begin().key(), "z");
}

TEST(ProtocolTest, Utf8Validation) {
  EXPECT_TRUE(isValidUtf8("plain"));
  EXPECT_TRUE(isValidUtf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  EXPECT_FALSE(isValidUtf8("caf\xc3"));             // truncated
  EXPECT_FALSE(isValidUtf8("\xc0\xaf"));            // overlong
  EXPECT_FALSE(isValidUtf8("\xed\xa0\x80"));        // surrogate
  EXPECT_FALSE(isValidUtf8("\xf4\x90\x80\x80"));    // above U+10FFFF
  EXPECT_FALSE(isValidUtf8("\x80"));                // lone continuation
  EXPECT_FALSE(isValidUtf8("\xe2\x28\xa1"));        // bad continuation
}

TEST(ProtocolTest, ErrorBodyShape) {
  json body = ApiError(429, "busy", "rate_limit_error", "", "queue_full").body();
  EXPECT_EQ(body, json::parse(R"({"error": {"message": "busy", "type": "rate_limit_error", "param": null,
                                            "code": "queue_full"}})"));
}

} // namespace
