//===- chat_parsers.h - Reasoning and tool-call output parsers --*- C++ -*-===//
//
// Splits what a Qwen3 / Qwen3.5 model generates into the three channels of an
// OpenAI chat message: `content`, `reasoning_content` (the <think> block) and
// `tool_calls`. Text arrives in deltas, as an incremental detokenizer yields
// it; every feed() returns what can be said for sure so far, in the shape of
// OpenAI's streamed chunks. A non-streaming response is the same parser fed
// once and finished: the result never depends on where the text was split.
//
// Tool calls are recognized in both formats, whichever the template asked for:
//  - Qwen3: <tool_call>\n{"name": NAME, "arguments": {...}}\n</tool_call>
//  - Qwen3.5 / Qwen3-Coder: <tool_call>\n<function=NAME>\n<parameter=P>\nVALUE
//    \n</parameter>\n...</function>\n</tool_call>, with VALUE typed by the
//    tool's JSON schema (number, boolean, object, ...) into JSON arguments;
//    string values stream as they are generated.
// A tool call inside the <think> block is a tool call too (reported with
// inReasoning set), where vLLM drops it when streaming.
//
// Nothing is lost: text that turns out not to be a well-formed tag goes to
// the channel it appeared in, verbatim.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_RT_CHAT_PARSERS_H
#define QWEN_RT_CHAT_PARSERS_H

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace qwen::rt {

struct ChatOutputParserOptions {
  /// The prompt ends inside an open think block (Qwen3.5's generation prompt
  /// with thinking on ends in "<think>\n"): the output starts as reasoning.
  /// See ChatTemplate::generationOpensReasoning().
  bool reasoningOpen = false;
  /// Split <think>...</think> into reasoning_content; off: it stays content.
  bool parseReasoning = true;
  /// Parse <tool_call> blocks (tools were offered and tool_choice is not
  /// "none"); off: they stay content.
  bool parseToolCalls = true;
  /// The request's `tools` (OpenAI shape: [{"type": "function", "function":
  /// {"name", "parameters": {JSON schema}}}]): the XML format's parameter
  /// values are typed with them. May be null or empty.
  nlohmann::ordered_json tools;
  /// Tool call ids are this prefix followed by the call's index; make it
  /// unique per request (e.g. "call_" + request id + "_").
  std::string toolCallIdPrefix = "call_";
};

/// One piece of a streamed tool call, as in OpenAI's delta.tool_calls[]: the
/// first piece of a call carries id and name (and maybe arguments), later
/// ones only argument text; concatenated, the argument pieces are the call's
/// arguments JSON.
struct ToolCallDelta {
  int index = 0;         ///< the call's position in the message's tool_calls
  std::string id, name;  ///< set in the call's first piece only
  std::string arguments; ///< a fragment of the arguments JSON text
  bool inReasoning = false;
};

/// What one feed() or finish() adds to each channel.
struct ChatDelta {
  std::string content;
  std::string reasoningContent;
  std::vector<ToolCallDelta> toolCalls;
  bool empty() const { return content.empty() && reasoningContent.empty() && toolCalls.empty(); }
};

struct ParsedToolCall {
  std::string id, name;
  std::string arguments; ///< JSON text (an object for well-formed calls)
  /// Emitted inside the <think> block. Such calls are returned as tool calls
  /// all the same: the model asked for them.
  bool inReasoning = false;
};

/// Everything said so far, the concatenation of all deltas.
struct ParsedChatOutput {
  std::string content;
  std::string reasoningContent;
  std::vector<ParsedToolCall> toolCalls;
};

class ChatOutputParser {
public:
  /// Throws Error for malformed `tools` (not an array of objects).
  explicit ChatOutputParser(ChatOutputParserOptions options);

  /// Adds generated text; returns what it settles. Text that may still be
  /// the start of a tag is held back until a later feed() or finish().
  ChatDelta feed(std::string_view text);
  /// The generation ended: settles everything held back (an unterminated
  /// tool call ends with its arguments so far; a partial tag is text).
  /// feed() after finish() is an Error.
  ChatDelta finish();

  const ParsedChatOutput &result() const { return Result; }
  bool finished() const { return Finished; }

private:
  enum class Mode { Content, Reasoning, ToolCall };
  /// Which format the tool call body is in, once its first character said.
  enum class BodyState { Undecided, Json, Xml };
  /// What the XML recognizer expects next.
  enum class XmlExpect { Function, Parameter, AfterFunction };

  void run(ChatDelta &out);
  void emitText(Mode channel, std::string_view text, ChatDelta &out);
  /// Advances the tool call body; returns false when it turned out not to be
  /// a tool call (the caller puts it back as text).
  bool advanceBody(bool closed, ChatDelta &out);
  bool advanceJsonBody(bool closed, ChatDelta &out);
  bool advanceXmlBody(bool closed, ChatDelta &out);
  void openCall(const std::string &name, ChatDelta &out);
  void addArguments(std::string_view text, ChatDelta &out);
  /// Advances a parameter value; false when it needs more text.
  bool advanceValue(bool closed, ChatDelta &out);
  /// The JSON schema of a tool's parameter in Options.tools, if given.
  const nlohmann::ordered_json *parameterSchema(const std::string &function,
                                                const std::string &parameter) const;
  /// A parameter's value is a JSON string (no schema says otherwise), sent
  /// piece by piece as it is generated.
  static bool streamsAsString(const nlohmann::ordered_json *schema);
  /// VALUE as JSON of the schema's type (the first type it fits).
  static std::string typedParameter(const nlohmann::ordered_json *schema, std::string_view value);

  ChatOutputParserOptions Options;
  ParsedChatOutput Result;
  bool Finished = false;

  Mode CurrentMode = Mode::Content;
  Mode OuterMode = Mode::Content; ///< the channel a tool call was opened in
  std::string Pending;            ///< text not yet scanned for tags
  bool StripLeadingNewlines = false;
  /// Trailing newlines of the content and of the reasoning, said only when
  /// more text follows in the same channel: the templates put them around
  /// </think> and <tool_call>.
  std::string HeldContentNewlines, HeldReasoningNewlines;
  /// The content's held newlines came before a tool call: at the end they
  /// were formatting, not text.
  bool ContentHeldBeforeToolCall = false;

  // The tool call being parsed.
  std::string Body;       ///< text after <tool_call> so far
  size_t BodyPos = 0;     ///< how far Body has been consumed
  BodyState State = BodyState::Undecided;
  XmlExpect XmlStage = XmlExpect::Function;
  bool FirstFunction = true; ///< no call started in this block yet
  bool InStray = false;      ///< inside text of the block that is no tag
  bool CallOpen = false;     ///< a call's first delta was sent
  bool InValue = false;      ///< inside <parameter=ParameterName>
  bool ValueStreams = false; ///< the value is a string, sent as it comes
  size_t ValueStart = 0;     ///< where the value starts in Body
  size_t ValueSent = 0;      ///< bytes of the (unescaped) value sent
  std::string ParameterName;
  bool FirstParameter = true;
  std::string CallName;
  size_t JsonArgsSent = 0; ///< JSON body: argument bytes sent, from BodyPos
};

/// A streamed chunk's `delta` in OpenAI's shape: only the channels that
/// changed ("content", "reasoning_content", "tool_calls" with index, and id,
/// type and function.name in a call's first piece).
nlohmann::ordered_json toOpenAIDelta(const ChatDelta &delta);
/// A response's assistant `message`: "content" (null when empty and there
/// are tool calls, as OpenAI sends it), "reasoning_content" when there was
/// reasoning, "tool_calls" when there were calls.
nlohmann::ordered_json toOpenAIMessage(const ParsedChatOutput &output);

} // namespace qwen::rt

#endif // QWEN_RT_CHAT_PARSERS_H
