//===- chat_parsers_test.cpp - Tests of the reasoning / tool-call parsers -===//

#include "qwen_rt/chat_parsers.h"
#include "qwen_rt/chat.h"
#include "qwen_rt/error.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

using namespace qwen::rt;
using ordered_json = nlohmann::ordered_json;

namespace {

/// Feeds `Pieces` and finishes, checking the streamed shape on the way: the
/// deltas add up to result(), and each call's first delta (only) names it.
ParsedChatOutput parse(const ChatOutputParserOptions &Options, const std::vector<std::string> &Pieces) {
  ChatOutputParser P(Options);
  ParsedChatOutput Sum;
  std::map<int, bool> Named;
  auto Add = [&](const ChatDelta &D) {
    Sum.content += D.content;
    Sum.reasoningContent += D.reasoningContent;
    for (const ToolCallDelta &T : D.toolCalls) {
      if (!Named[T.index]) {
        EXPECT_FALSE(T.id.empty());
        EXPECT_FALSE(T.name.empty());
        EXPECT_EQ(T.index, static_cast<int>(Sum.toolCalls.size()));
        Named[T.index] = true;
        Sum.toolCalls.push_back({T.id, T.name, "", T.inReasoning});
      } else {
        EXPECT_TRUE(T.id.empty() && T.name.empty()) << "call " << T.index << " named twice";
      }
      Sum.toolCalls[static_cast<size_t>(T.index)].arguments += T.arguments;
    }
  };
  for (const std::string &Piece : Pieces)
    Add(P.feed(Piece));
  Add(P.finish());
  const ParsedChatOutput &R = P.result();
  EXPECT_EQ(Sum.content, R.content);
  EXPECT_EQ(Sum.reasoningContent, R.reasoningContent);
  EXPECT_EQ(Sum.toolCalls.size(), R.toolCalls.size());
  for (size_t I = 0; I < std::min(Sum.toolCalls.size(), R.toolCalls.size()); ++I)
    EXPECT_EQ(Sum.toolCalls[I].arguments, R.toolCalls[I].arguments);
  return R;
}

void expectSame(const ParsedChatOutput &A, const ParsedChatOutput &B, const std::string &Where) {
  EXPECT_EQ(A.content, B.content) << Where;
  EXPECT_EQ(A.reasoningContent, B.reasoningContent) << Where;
  ASSERT_EQ(A.toolCalls.size(), B.toolCalls.size()) << Where;
  for (size_t I = 0; I < A.toolCalls.size(); ++I) {
    EXPECT_EQ(A.toolCalls[I].id, B.toolCalls[I].id) << Where;
    EXPECT_EQ(A.toolCalls[I].name, B.toolCalls[I].name) << Where;
    EXPECT_EQ(A.toolCalls[I].arguments, B.toolCalls[I].arguments) << Where;
    EXPECT_EQ(A.toolCalls[I].inReasoning, B.toolCalls[I].inReasoning) << Where;
  }
}

/// The one-shot result, after checking that every split into two pieces,
/// every split into three around each position, and byte-by-byte feeding
/// give the same.
ParsedChatOutput parseEverySplit(const ChatOutputParserOptions &Options, const std::string &Text) {
  ParsedChatOutput Whole = parse(Options, {Text});
  for (size_t I = 0; I <= Text.size(); ++I) {
    expectSame(parse(Options, {Text.substr(0, I), Text.substr(I)}), Whole,
               "split at " + std::to_string(I));
    if (I + 3 <= Text.size())
      expectSame(parse(Options, {Text.substr(0, I), Text.substr(I, 3), Text.substr(I + 3)}), Whole,
                 "3-byte piece at " + std::to_string(I));
  }
  std::vector<std::string> Bytes;
  for (char C : Text)
    Bytes.emplace_back(1, C);
  expectSame(parse(Options, Bytes), Whole, "byte by byte");
  return Whole;
}

ordered_json weatherTools() {
  return ordered_json::parse(R"([
    {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object",
      "properties": {"city": {"type": "string"}, "days": {"type": "integer"},
                     "metric": {"type": "boolean"}, "options": {"type": "object"},
                     "ratio": {"type": ["number", "null"]}, "zip": {"type": "string"}}}}},
    {"type": "function", "function": {"name": "search", "parameters": {"type": "object",
      "properties": {"q": {"type": "string"}}}}}])");
}

TEST(ChatParsersTest, Qwen3ReasoningThenContent) {
  ChatOutputParserOptions O;
  ParsedChatOutput R =
      parseEverySplit(O, "<think>\nLet me think.\n\nStep 2.\n</think>\n\nThe answer is 4.");
  EXPECT_EQ(R.reasoningContent, "Let me think.\n\nStep 2.");
  EXPECT_EQ(R.content, "The answer is 4.");
  EXPECT_TRUE(R.toolCalls.empty());
}

TEST(ChatParsersTest, Qwen35PromptOpensReasoning) {
  ChatOutputParserOptions O;
  O.reasoningOpen = true;
  ParsedChatOutput R = parseEverySplit(O, "Thinking <b>hard</b>.\n</think>\n\nDone.\n");
  EXPECT_EQ(R.reasoningContent, "Thinking <b>hard</b>.");
  EXPECT_EQ(R.content, "Done.\n");
  // Reasoning cut short by max_tokens: all of it is reasoning.
  ParsedChatOutput Cut = parseEverySplit(O, "Still thinking\n\n");
  EXPECT_EQ(Cut.reasoningContent, "Still thinking");
  EXPECT_EQ(Cut.content, "");
  // Thinking off, or reasoning not parsed: all content.
  O.parseReasoning = false;
  EXPECT_EQ(parseEverySplit(O, "<think>x</think>y").content, "<think>x</think>y");
}

TEST(ChatParsersTest, Qwen3JsonToolCalls) {
  ChatOutputParserOptions O;
  O.toolCallIdPrefix = "call_7_";
  ParsedChatOutput R = parseEverySplit(
      O, "I'll check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": "
         "\"Paris\", \"nested\": {\"a\": [1, {\"b\": \"}\"}]}}}\n</tool_call>\n<tool_call>\n"
         "{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>");
  EXPECT_EQ(R.content, "I'll check."); // the newline before <tool_call> is formatting
  ASSERT_EQ(R.toolCalls.size(), 2u);
  EXPECT_EQ(R.toolCalls[0].id, "call_7_0");
  EXPECT_EQ(R.toolCalls[0].name, "get_weather");
  EXPECT_EQ(R.toolCalls[0].arguments, "{\"city\": \"Paris\", \"nested\": {\"a\": [1, {\"b\": \"}\"}]}}");
  EXPECT_EQ(R.toolCalls[1].id, "call_7_1");
  EXPECT_EQ(R.toolCalls[1].arguments, "{}");
  EXPECT_FALSE(R.toolCalls[0].inReasoning);
}

TEST(ChatParsersTest, Qwen35XmlToolCallsAreTypedBySchema) {
  ChatOutputParserOptions O;
  O.reasoningOpen = true;
  O.tools = weatherTools();
  ParsedChatOutput R = parseEverySplit(
      O, "The user wants weather.\n</think>\n\n<tool_call>\n<function=get_weather>\n"
         "<parameter=city>\nNew\nYork\n</parameter>\n<parameter=days>\n3\n</parameter>\n"
         "<parameter=metric>\nTrue\n</parameter>\n<parameter=options>\n{\"hourly\": true}\n"
         "</parameter>\n<parameter=ratio>\nnull\n</parameter>\n<parameter=zip>\n10001\n"
         "</parameter>\n<parameter=extra>\n5\n</parameter>\n</function>\n</tool_call>\n"
         "<tool_call>\n<function=search>\n</function>\n</tool_call>");
  EXPECT_EQ(R.reasoningContent, "The user wants weather.");
  EXPECT_EQ(R.content, "");
  ASSERT_EQ(R.toolCalls.size(), 2u);
  EXPECT_EQ(R.toolCalls[0].name, "get_weather");
  // Strings stay strings ("10001" too), unknown parameters are strings.
  EXPECT_EQ(R.toolCalls[0].arguments,
            "{\"city\": \"New\\nYork\", \"days\": 3, \"metric\": true, \"options\": {\"hourly\": "
            "true}, \"ratio\": null, \"zip\": \"10001\", \"extra\": \"5\"}");
  EXPECT_EQ(R.toolCalls[1].name, "search");
  EXPECT_EQ(R.toolCalls[1].arguments, "{}");
  EXPECT_EQ(ordered_json::parse(R.toolCalls[0].arguments)["days"], 3);
}

TEST(ChatParsersTest, StringValuesStreamAsGenerated) {
  // A long string argument (code, a document) reaches the client as it is
  // generated; other types are sent once whole.
  ChatOutputParserOptions O;
  O.tools = weatherTools();
  ChatOutputParser P(O);
  auto Args = [](const ChatDelta &D) {
    EXPECT_EQ(D.toolCalls.size(), 1u);
    return D.toolCalls.empty() ? std::string() : D.toolCalls[0].arguments;
  };
  ChatDelta D = P.feed("<tool_call>\n<function=get_weather>\n<parameter=city>\nSan\n");
  ASSERT_EQ(D.toolCalls.size(), 1u);
  EXPECT_EQ(D.toolCalls[0].name, "get_weather");
  EXPECT_EQ(D.toolCalls[0].arguments, "{\"city\": \"San"); // the newline may be the last
  EXPECT_EQ(Args(P.feed("Jose \"CA\"</para")), "\\nJose \\\"CA\\\"");
  EXPECT_EQ(Args(P.feed("meter>\n<parameter=days>\n4")), "\", \"days\": ");
  EXPECT_EQ(Args(P.feed("2\n</parameter>\n</function>\n</tool_call>")), "42}");
  P.finish();
  EXPECT_EQ(P.result().toolCalls[0].arguments, "{\"city\": \"San\\nJose \\\"CA\\\"\", \"days\": 42}");
}

TEST(ChatParsersTest, ToolCallInsideThinkIsKept) {
  // vLLM drops these when streaming (vllm#39056); here they are tool calls,
  // marked as emitted in the reasoning.
  ChatOutputParserOptions O;
  O.reasoningOpen = true;
  O.tools = weatherTools();
  ParsedChatOutput R = parseEverySplit(
      O, "I should search.\n<tool_call>\n<function=search>\n<parameter=q>\ncats\n</parameter>\n"
         "</function>\n</tool_call>\nDone thinking.\n</think>\n\nHere.");
  EXPECT_EQ(R.reasoningContent, "I should search.\nDone thinking.");
  EXPECT_EQ(R.content, "Here.");
  ASSERT_EQ(R.toolCalls.size(), 1u);
  EXPECT_TRUE(R.toolCalls[0].inReasoning);
  EXPECT_EQ(R.toolCalls[0].arguments, "{\"q\": \"cats\"}");
}

TEST(ChatParsersTest, MalformedTagsStayText) {
  ChatOutputParserOptions O;
  const std::string Text = "a < b <tool_call>\nnot json</tool_call> <tool_call>{\"x\": 1}"
                           "</tool_call><tool_call></tool_call> and </think> <thin";
  ParsedChatOutput R = parseEverySplit(O, Text);
  EXPECT_EQ(R.content, Text);
  EXPECT_TRUE(R.reasoningContent.empty());
  EXPECT_TRUE(R.toolCalls.empty());
  // Tool calls not asked for stay text.
  O.parseToolCalls = false;
  const std::string Call = "<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>";
  EXPECT_EQ(parseEverySplit(O, Call).content, Call);
}

TEST(ChatParsersTest, StrayTextInsideACallIsKept) {
  ChatOutputParserOptions O;
  ParsedChatOutput R = parseEverySplit(
      O, "<tool_call>\n<function=f>\nnote <x> here\n<parameter=a>\n1\n</parameter>\n</function>"
         "\n</tool_call>");
  ASSERT_EQ(R.toolCalls.size(), 1u);
  EXPECT_EQ(R.toolCalls[0].arguments, "{\"a\": \"1\"}");
  EXPECT_EQ(R.content, "note <x> here\n");
}

TEST(ChatParsersTest, UnterminatedToolCallsEndAtFinish) {
  ChatOutputParserOptions O;
  ParsedChatOutput J =
      parseEverySplit(O, "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": [1, 2");
  ASSERT_EQ(J.toolCalls.size(), 1u);
  EXPECT_EQ(J.toolCalls[0].arguments, "{\"a\": [1, 2");
  // A model that forgot the call object's brace keeps its arguments' own.
  ParsedChatOutput Brace =
      parseEverySplit(O, "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1}\n</tool_call>");
  EXPECT_EQ(Brace.toolCalls[0].arguments, "{\"a\": 1}");
  ParsedChatOutput X = parseEverySplit(O, "<tool_call>\n<function=g>\n<parameter=p>\nhalf");
  ASSERT_EQ(X.toolCalls.size(), 1u);
  EXPECT_EQ(X.toolCalls[0].arguments, "{\"p\": \"half\"}");
  // Only the start of a tag: text.
  EXPECT_EQ(parseEverySplit(O, "x <tool_call>\n{\"na").content, "x <tool_call>\n{\"na");
}

TEST(ChatParsersTest, RandomTagSoupNeverDependsOnTheSplits) {
  // Random mixtures of tags, partial tags and text, fed in random pieces:
  // always the one-shot result (the deltas' shape is checked by parse()).
  const std::vector<std::string> Fragments = {
      "<think>", "</think>", "<tool_call>", "</tool_call>", "\n", "\n\n", " ", "x", "yz",
      "<", "{", "}", "\"", "<think", "</tool_", "{\"name\": \"f\", \"arguments\": ",
      "{\"a\": 1}", "<function=f>", "<function=g>", "<parameter=city>", "<parameter=q>",
      "</parameter>", "</function>", "<parameter=", "null", "12", "true"};
  std::mt19937 Rng(5);
  ChatOutputParserOptions Plain, Open;
  Open.reasoningOpen = true;
  Open.tools = weatherTools();
  for (int Case = 0; Case < 400; ++Case) {
    std::string Text;
    int Length = 1 + int(Rng() % 24);
    for (int I = 0; I < Length; ++I)
      Text += Fragments[Rng() % Fragments.size()];
    for (const ChatOutputParserOptions *O : {&Plain, &Open}) {
      ParsedChatOutput Whole = parse(*O, {Text});
      for (int Trial = 0; Trial < 4; ++Trial) {
        std::vector<std::string> Pieces;
        for (size_t At = 0; At < Text.size();) {
          size_t N = 1 + Rng() % 7;
          Pieces.push_back(Text.substr(At, N));
          At += N;
        }
        expectSame(parse(*O, Pieces), Whole, "case " + std::to_string(Case) + ": " + Text);
      }
    }
  }
}

TEST(ChatParsersTest, OpenAIShapes) {
  ChatOutputParserOptions O;
  O.toolCallIdPrefix = "call_x_";
  ChatOutputParser P(O);
  EXPECT_EQ(toOpenAIDelta(P.feed("<think>\nhm\n</think>\n\nOK")).dump(),
            R"({"reasoning_content":"hm","content":"OK"})");
  EXPECT_EQ(toOpenAIDelta(P.feed("\n<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\"")).dump(),
            R"({"tool_calls":[{"index":0,"id":"call_x_0","type":"function","function":{"name":"f","arguments":"{\"a\""}}]})");
  EXPECT_EQ(toOpenAIDelta(P.feed(": 1}}\n</tool_call>")).dump(),
            R"({"tool_calls":[{"index":0,"function":{"arguments":": 1}"}}]})");
  EXPECT_EQ(toOpenAIDelta(P.finish()).dump(), "{}");
  EXPECT_EQ(toOpenAIMessage(P.result()).dump(),
            R"({"role":"assistant","content":"OK","reasoning_content":"hm","tool_calls":[{"id":"call_x_0","type":"function","function":{"name":"f","arguments":"{\"a\": 1}"}}]})");
  ParsedChatOutput OnlyCalls;
  OnlyCalls.toolCalls.push_back({"c", "f", "{}", false});
  EXPECT_TRUE(toOpenAIMessage(OnlyCalls)["content"].is_null());
  EXPECT_EQ(toOpenAIMessage(ParsedChatOutput())["content"], "");
}

TEST(ChatParsersTest, Errors) {
  ChatOutputParserOptions O;
  O.tools = ordered_json::object();
  EXPECT_THROW(ChatOutputParser{O}, Error);
  O.tools = ordered_json::array({1});
  EXPECT_THROW(ChatOutputParser{O}, Error);
  ChatOutputParser P{ChatOutputParserOptions()};
  P.finish();
  EXPECT_TRUE(P.finished());
  EXPECT_THROW(P.feed("x"), Error);
  EXPECT_THROW(P.finish(), Error);
}


/// What the model generated after a prompt, parsed and put back into the
/// conversation as the assistant's turn, renders as prompt + generated text
/// + <|im_end|>: the channels keep exactly what the template writes back, so
/// the next request's prompt extends this one (what prefix caching needs).
void expectRoundTrip(ChatTemplateStyle Style, bool Thinking, const ordered_json &Tools,
                     const std::string &Generated) {
  ChatTemplate Template(Style);
  ChatTemplateOptions Options;
  Options.enableThinking = Thinking;
  std::vector<ChatMessage> History = {{"system", "Be brief."}, {"user", "Weather in Paris?"}};
  std::string Prompt = Template.render(History, Tools, Options);

  ChatOutputParserOptions ParserOptions;
  ParserOptions.reasoningOpen = Template.generationOpensReasoning(Options);
  ParserOptions.tools = Tools;
  ParsedChatOutput R = parseEverySplit(ParserOptions, Generated);

  ChatMessage Turn("assistant", R.content);
  Turn.reasoningContent = R.reasoningContent;
  for (const ParsedToolCall &Call : R.toolCalls)
    Turn.toolCalls.push_back({Call.id, Call.name, Call.arguments}); // a JSON string, as clients send
  History.push_back(Turn);
  Options.addGenerationPrompt = false;
  EXPECT_EQ(Template.render(History, Tools, Options), Prompt + Generated + "<|im_end|>\n")
      << chatTemplateStyleName(Style) << (Thinking ? " thinking" : "");
}

TEST(ChatParsersTest, ParsedTurnsRenderBackToTheGeneratedText) {
  ordered_json Tools = weatherTools();
  expectRoundTrip(ChatTemplateStyle::Qwen3, true, nullptr,
                  "<think>\nThe user asks.\n\nCheck.\n</think>\n\nIt is sunny.\n\nEnjoy.");
  expectRoundTrip(ChatTemplateStyle::Qwen3, false, nullptr, "It is sunny.");
  expectRoundTrip(ChatTemplateStyle::Qwen3, true, Tools,
                  "<think>\nNeed the tool.\n</think>\n\nI'll check.\n<tool_call>\n{\"name\": "
                  "\"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": 2}}\n"
                  "</tool_call>\n<tool_call>\n{\"name\": \"search\", \"arguments\": {\"q\": "
                  "\"Paris\"}}\n</tool_call>");
  expectRoundTrip(ChatTemplateStyle::Qwen3, false, Tools,
                  "<tool_call>\n{\"name\": \"search\", \"arguments\": {\"q\": \"Paris\"}}\n"
                  "</tool_call>");
  expectRoundTrip(ChatTemplateStyle::Qwen35, true, nullptr,
                  "The user asks.\n\nCheck.\n</think>\n\nIt is sunny.");
  expectRoundTrip(ChatTemplateStyle::Qwen35, false, nullptr, "It is sunny.");
  expectRoundTrip(ChatTemplateStyle::Qwen35, true, Tools,
                  "Need the tool.\n</think>\n\nLet me look.\n\n<tool_call>\n<function=get_weather>\n"
                  "<parameter=city>\nParis\n</parameter>\n<parameter=days>\n2\n</parameter>\n"
                  "<parameter=options>\n{\"hourly\": true}\n</parameter>\n</function>\n"
                  "</tool_call>\n<tool_call>\n<function=search>\n<parameter=q>\nParis news\n"
                  "</parameter>\n</function>\n</tool_call>");
  expectRoundTrip(ChatTemplateStyle::Qwen35, false, Tools,
                  "<tool_call>\n<function=search>\n<parameter=q>\nParis\n</parameter>\n"
                  "</function>\n</tool_call>");
}

} // namespace
