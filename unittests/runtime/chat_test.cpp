//===- chat_test.cpp - Tests of the chat prompt formatter -----------------===//

#include "qwen_rt/chat.h"
#include "qwen_rt/error.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

using namespace qwen::rt;
using ordered_json = nlohmann::ordered_json;

namespace {

bool endsWith(const std::string &S, const std::string &Tail) {
  return S.size() >= Tail.size() && S.compare(S.size() - Tail.size(), Tail.size(), Tail) == 0;
}

ordered_json readJson(const std::string &Path) {
  std::ifstream In(Path, std::ios::binary);
  EXPECT_TRUE(In.good()) << "cannot read " << Path;
  std::ostringstream S;
  S << In.rdbuf();
  return ordered_json::parse(S.str());
}

/// Every conversation of the reference corpus (HF apply_chat_template with
/// the checkpoint's own template, scripts/gen_chat_reference.py): the same
/// bytes, or an Error where the template raised one.
void checkReferences(const std::string &File, ChatTemplateStyle Style) {
  ordered_json Ref = readJson(std::string(QWEN_SOURCE_DIR) + "/test/data/chat/" + File);
  ASSERT_EQ(Ref["style"], chatTemplateStyleName(Style));
  // The corpus was made with the template the renderer calls verified.
  uint64_t Fingerprint = std::stoull(Ref["template_fnv1a"].get<std::string>(), nullptr, 16);
  ASSERT_EQ(ChatTemplate::verifiedStyle(Fingerprint), Style);
  ChatTemplate Template(Style);
  ASSERT_GE(Ref["cases"].size(), 100u);
  size_t Rendered = 0, Refused = 0;
  for (const ordered_json &Case : Ref["cases"]) {
    ChatTemplateOptions Options;
    Options.addGenerationPrompt = Case["add_generation_prompt"].get<bool>();
    Options.enableThinking = Case["enable_thinking"] != false;
    std::string Name = Case["name"].get<std::string>() + " (add_generation_prompt " +
                       Case["add_generation_prompt"].dump() + ", enable_thinking " +
                       Case["enable_thinking"].dump() + ")";
    std::vector<ChatMessage> Messages = parseChatMessages(Case["messages"]);
    if (Case["expected"].is_null()) {
      EXPECT_THROW(Template.render(Messages, Case["tools"], Options), Error) << Name;
      ++Refused;
      continue;
    }
    EXPECT_EQ(Template.render(Messages, Case["tools"], Options), Case["expected"].get<std::string>())
        << Name;
    ++Rendered;
  }
  EXPECT_GT(Rendered, 90u);
  std::printf("%s: %zu byte-exact renders, %zu refusals\n", File.c_str(), Rendered, Refused);
}

TEST(ChatTest, Qwen3MatchesHFReferences) {
  checkReferences("qwen3_reference.json", ChatTemplateStyle::Qwen3);
}

TEST(ChatTest, Qwen35MatchesHFReferences) {
  checkReferences("qwen35_reference.json", ChatTemplateStyle::Qwen35);
}

TEST(ChatTest, SingleUserMessage) {
  std::vector<ChatMessage> M = {{"user", "Hello!"}};
  EXPECT_EQ(formatChatPrompt(M, true, true), "<|im_start|>user\nHello!<|im_end|>\n"
                                             "<|im_start|>assistant\n");
  EXPECT_EQ(formatChatPrompt(M), "<|im_start|>user\nHello!<|im_end|>\n"
                                 "<|im_start|>assistant\n<think>\n\n</think>\n\n");
  EXPECT_EQ(formatChatPrompt(M, false), "<|im_start|>user\nHello!<|im_end|>\n");
  EXPECT_EQ(formatChatPrompt(M, false, false), formatChatPrompt(M, false, true));
}

TEST(ChatTest, Conversation) {
  std::vector<ChatMessage> M = {{"system", "You are helpful."},
                                {"user", "What is 2+2?"},
                                {"assistant", "4"},
                                {"user", "And 3+3?"}};
  EXPECT_EQ(formatChatPrompt(M, true, true), "<|im_start|>system\nYou are helpful.<|im_end|>\n"
                                             "<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
                                             "<|im_start|>assistant\n4<|im_end|>\n"
                                             "<|im_start|>user\nAnd 3+3?<|im_end|>\n"
                                             "<|im_start|>assistant\n");
}

TEST(ChatTest, EmptyMessagesAreRefused) {
  // The templates fail on messages[0] (Qwen3) or say so (Qwen3.5).
  EXPECT_THROW(formatChatPrompt({}, true, true), Error);
  EXPECT_THROW(ChatTemplate(ChatTemplateStyle::Qwen35).render({}), Error);
}

TEST(ChatTest, HistoricalReasoningIsDropped) {
  // As in the Qwen3 template: the reasoning of earlier assistant turns is removed.
  std::vector<ChatMessage> M = {{"user", "Hi"},
                                {"assistant", "<think>\nThe user greets.\n</think>\n\nHello!"},
                                {"user", "Bye"}};
  EXPECT_EQ(formatChatPrompt(M, true, true), "<|im_start|>user\nHi<|im_end|>\n"
                                             "<|im_start|>assistant\nHello!<|im_end|>\n"
                                             "<|im_start|>user\nBye<|im_end|>\n"
                                             "<|im_start|>assistant\n");
}

TEST(ChatTest, FinalAssistantTurnKeepsThinkBlock) {
  std::vector<ChatMessage> M = {{"user", "Hi"}, {"assistant", "<think>\nhmm\n</think>\n\nHello!"}};
  EXPECT_EQ(formatChatPrompt(M, false), "<|im_start|>user\nHi<|im_end|>\n"
                                        "<|im_start|>assistant\n<think>\nhmm\n</think>\n\n"
                                        "Hello!<|im_end|>\n");
}

TEST(ChatTest, ToolResponses) {
  std::vector<ChatMessage> M = {{"user", "Weather?"},
                                {"assistant", "Let me check."},
                                {"tool", "{\"temp\": 20}"},
                                {"tool", "{\"wind\": 3}"}};
  EXPECT_EQ(formatChatPrompt(M, true, true),
            "<|im_start|>user\nWeather?<|im_end|>\n"
            "<|im_start|>assistant\nLet me check.<|im_end|>\n"
            "<|im_start|>user\n<tool_response>\n{\"temp\": 20}\n</tool_response>"
            "\n<tool_response>\n{\"wind\": 3}\n</tool_response><|im_end|>\n"
            "<|im_start|>assistant\n");
}


TEST(ChatTest, TemplateIsPickedFromTheCheckpoint) {
  ChatTemplate T = ChatTemplate::fromCheckpoint(std::string(QWEN_SOURCE_DIR) +
                                                "/models/checkpoints/qwen3-demo");
  EXPECT_EQ(T.style(), ChatTemplateStyle::Qwen3);
  EXPECT_TRUE(T.verified());
  EXPECT_THROW(ChatTemplate::fromCheckpoint("/nonexistent/checkpoint"), Error);

  // chat_template.jinja wins over tokenizer_config.json; a variant of a
  // known template is accepted but not verified; anything else is refused.
  namespace fs = std::filesystem;
  fs::path Dir = fs::temp_directory_path() / ("qwen_chat_test_" + std::to_string(::getpid()));
  fs::create_directories(Dir);
  std::ofstream(Dir / "tokenizer_config.json") << R"({"chat_template": "{{ messages }}"})";
  try {
    ChatTemplate::fromCheckpoint(Dir.string());
    ADD_FAILURE() << "an unknown template was accepted";
  } catch (const Error &E) {
    EXPECT_NE(std::string(E.what()).find("unsupported chat template"), std::string::npos);
  }
  std::ofstream(Dir / "chat_template.jinja")
      << "{%- macro render_content(c) %}{%- endmacro %} <function=example_function_name> "
         "{%- if enable_thinking is false %}{%- endif %}\n";
  ChatTemplate Variant = ChatTemplate::fromCheckpoint(Dir.string());
  EXPECT_EQ(Variant.style(), ChatTemplateStyle::Qwen35);
  EXPECT_FALSE(Variant.verified());
  fs::remove_all(Dir);
}

TEST(ChatTest, GenerationOpensReasoningOnlyForQwen35Thinking) {
  ChatTemplateOptions On, Off, NoPrompt;
  Off.enableThinking = false;
  NoPrompt.addGenerationPrompt = false;
  ChatTemplate Q35(ChatTemplateStyle::Qwen35), Q3(ChatTemplateStyle::Qwen3);
  EXPECT_TRUE(Q35.generationOpensReasoning(On));
  EXPECT_FALSE(Q35.generationOpensReasoning(Off));
  EXPECT_FALSE(Q35.generationOpensReasoning(NoPrompt));
  EXPECT_FALSE(Q3.generationOpensReasoning(On));
  std::vector<ChatMessage> M = {{"user", "Hi"}};
  EXPECT_TRUE(endsWith(Q35.render(M, nullptr, On), "<think>\n"));
}

TEST(ChatTest, ParseChatMessagesRefusesWhatItCannotRender) {
  auto Parse = [](const char *Text) { return parseChatMessages(ordered_json::parse(Text)); };
  std::vector<ChatMessage> M = Parse(R"([
    {"role": "developer", "content": [{"type": "text", "text": "a"}, {"text": "b"}]},
    {"role": "assistant", "content": null, "reasoning_content": "r",
     "tool_calls": [{"id": "c1", "type": "function",
                     "function": {"name": "f", "arguments": "{\"x\": 1}"}}]},
    {"role": "tool", "tool_call_id": "c1", "name": "f", "content": "ok"}])");
  ASSERT_EQ(M.size(), 3u);
  EXPECT_EQ(M[0].role, "system");
  EXPECT_EQ(*M[0].contentParts, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(M[1].content, "");
  EXPECT_EQ(*M[1].reasoningContent, "r");
  EXPECT_EQ(M[1].toolCalls[0].arguments, "{\"x\": 1}");
  EXPECT_EQ(M[2].toolCallId, "c1");
  for (const char *Bad : {
           R"({"role": "user"})",
           R"([{"content": "no role"}])",
           R"([{"role": "robot", "content": "x"}])",
           R"([{"role": "user", "content": 5}])",
           R"([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}])",
           R"([{"role": "user", "content": [{"type": "text"}]}])",
           R"([{"role": "user", "content": "x", "tool_calls": []}])",
           R"([{"role": "assistant", "tool_calls": [{"function": {"arguments": "{}"}}]}])",
           R"([{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": 3}}]}])",
           R"([{"role": "assistant", "content": "x", "reasoning_content": 1}])"})
    EXPECT_THROW(Parse(Bad), Error) << Bad;
  // Qwen3.5 iterates the arguments: they must be a JSON object.
  std::vector<ChatMessage> Args = Parse(R"([{"role": "user", "content": "q"},
    {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "[1]"}}]}])");
  EXPECT_THROW(ChatTemplate(ChatTemplateStyle::Qwen35).render(Args), Error);
  Args[1].toolCalls[0].arguments = "{not json";
  EXPECT_THROW(ChatTemplate(ChatTemplateStyle::Qwen35).render(Args), Error);
  // Qwen3 renders a string verbatim, as its template does.
  EXPECT_NE(ChatTemplate(ChatTemplateStyle::Qwen3).render(Args).find("\"arguments\": {not json}"),
            std::string::npos);
}

TEST(ChatTest, ToPythonJsonWritesWhatJsonDumpsWrites) {
  auto Dump = [](const char *Text) { return toPythonJson(ordered_json::parse(Text)); };
  EXPECT_EQ(Dump(R"({"b": [1, 2.5, true, null], "a": {}})"), R"({"b": [1, 2.5, true, null], "a": {}})");
  // Python's float repr: shortest round trip, exponent outside [-4, 16).
  EXPECT_EQ(Dump("[1e16, 1e15, 0.0001, 1e-05, -0.0, 100.0, 123.456, 5e-324]"),
            "[1e+16, 1000000000000000.0, 0.0001, 1e-05, -0.0, 100.0, 123.456, 5e-324]");
  EXPECT_EQ(Dump("[1.7976931348623157e308, 1.5e-7, 12345678901234567890]"),
            "[1.7976931348623157e+308, 1.5e-07, 12345678901234567890]");
  // ensure_ascii=False: UTF-8 as is; control characters escaped.
  EXPECT_EQ(Dump(R"(["é😀\u2028", "\u0001\"\\/\n\t\b\f\r"])"),
            "[\"é😀\u2028\", \"\\u0001\\\"\\\\/\\n\\t\\b\\f\\r\"]");
}

} // namespace
