//===- chat_parsers.cpp - Reasoning and tool-call output parsers ----------===//
//
// One pass over the text with a small buffer of what is still undecided:
//  - outside a tool call, the text is scanned for the tags that change the
//    channel (<think>, </think>, <tool_call>); a tail that may be the start of
//    one of them waits for the next feed;
//  - inside <tool_call>, the body accumulates until </tool_call> and is
//    consumed by a recognizer of the JSON or the XML format as far as it is
//    decided. A body that cannot start a call (neither `{"name": ...,
//    "arguments": ` nor `<function=NAME>`) is put back as text; once a call
//    has started, stray text inside the block goes to the outer channel.
// Every decision depends on the text only, never on where a delta ended, so
// that feeding byte by byte gives the same result as feeding all at once.
//
// Whitespace that only formats the tags is dropped: the newlines right after
// <think>, before and after </think>, before <tool_call> and after
// </tool_call>, and between the XML tags. The channels therefore hold what
// the templates render back into the same text (see chat_parsers_test.cpp).
//
//===----------------------------------------------------------------------===//

#include "qwen_rt/chat_parsers.h"
#include "qwen_rt/chat.h"
#include "qwen_rt/error.h"

#include <algorithm>
#include <cctype>

namespace qwen::rt {

using ordered_json = nlohmann::ordered_json;

namespace {

constexpr std::string_view ThinkOpen = "<think>";
constexpr std::string_view ThinkClose = "</think>";
constexpr std::string_view ToolCallOpen = "<tool_call>";
constexpr std::string_view ToolCallClose = "</tool_call>";
constexpr std::string_view FunctionOpen = "<function=";
constexpr std::string_view FunctionClose = "</function>";
constexpr std::string_view ParameterOpen = "<parameter=";
constexpr std::string_view ParameterClose = "</parameter>";

bool isSpace(char C) { return C == ' ' || C == '\n' || C == '\t' || C == '\r'; }

/// Length of the longest proper suffix of `Text` that is a prefix of `Tag`.
size_t partialTagSuffix(std::string_view Text, std::string_view Tag) {
  for (size_t N = std::min(Text.size(), Tag.size() - 1); N > 0; --N)
    if (Text.substr(Text.size() - N) == Tag.substr(0, N))
      return N;
  return 0;
}

enum class Match { Yes, NeedMore, No };

/// Matches `Lit` at Pos (advancing past it on Yes); NeedMore when the text
/// ends within it.
Match matchLiteral(std::string_view S, size_t &Pos, std::string_view Lit) {
  size_t Avail = std::min(Lit.size(), S.size() - Pos);
  if (S.substr(Pos, Avail) != Lit.substr(0, Avail))
    return Match::No;
  if (Avail < Lit.size())
    return Match::NeedMore;
  Pos += Lit.size();
  return Match::Yes;
}

void skipSpaces(std::string_view S, size_t &Pos) {
  while (Pos < S.size() && isSpace(S[Pos]))
    ++Pos;
}

/// `Open` NAME '>' at Pos, NAME non-empty without '>', '<' or newlines.
Match matchNamedTag(std::string_view S, size_t &Pos, std::string_view Open, std::string &Name) {
  size_t P = Pos;
  Match M = matchLiteral(S, P, Open);
  if (M != Match::Yes)
    return M;
  size_t Begin = P;
  while (P < S.size() && S[P] != '>') {
    if (S[P] == '<' || S[P] == '\n')
      return Match::No;
    ++P;
  }
  if (P == S.size())
    return Match::NeedMore;
  if (P == Begin)
    return Match::No;
  Name.assign(S.substr(Begin, P - Begin));
  Pos = P + 1;
  return Match::Yes;
}

/// The Qwen3 header `{"name": "NAME", "arguments": ` (any spacing) at Pos;
/// on Yes, Pos is where the arguments start.
Match matchJsonHeader(std::string_view S, size_t &Pos, std::string &Name) {
  size_t P = Pos;
  for (std::string_view Lit : {std::string_view("{"), std::string_view("\"name\""),
                               std::string_view(":"), std::string_view("\"")}) {
    skipSpaces(S, P);
    if (P == S.size())
      return Match::NeedMore;
    if (Match M = matchLiteral(S, P, Lit); M != Match::Yes)
      return M;
  }
  size_t Begin = P;
  while (P < S.size() && S[P] != '"') {
    if (S[P] == '\\' || S[P] == '\n')
      return Match::No; // tool names are plain identifiers
    ++P;
  }
  if (P == S.size())
    return Match::NeedMore;
  if (P == Begin)
    return Match::No;
  std::string Found(S.substr(Begin, P - Begin));
  ++P;
  for (std::string_view Lit :
       {std::string_view(","), std::string_view("\"arguments\""), std::string_view(":")}) {
    skipSpaces(S, P);
    if (P == S.size())
      return Match::NeedMore;
    if (Match M = matchLiteral(S, P, Lit); M != Match::Yes)
      return M;
  }
  skipSpaces(S, P);
  if (P == S.size())
    return Match::NeedMore; // the arguments have not started
  Name = std::move(Found);
  Pos = P;
  return Match::Yes;
}

/// End of the arguments in a JSON body's tail: without trailing spaces, the
/// call object's closing brace and the spaces before it. Only ever grows as
/// text is appended, so what was sent stays a prefix of the final value.
size_t jsonArgumentsEnd(std::string_view Tail) {
  size_t End = Tail.size();
  while (End > 0 && isSpace(Tail[End - 1]))
    --End;
  if (End > 0 && Tail[End - 1] == '}')
    --End;
  while (End > 0 && isSpace(Tail[End - 1]))
    --End;
  return End;
}

bool parsesAsJson(std::string_view Text) {
  return ordered_json::accept(Text.begin(), Text.end());
}

std::string lower(std::string_view S) {
  std::string Out(S);
  for (char &C : Out)
    C = static_cast<char>(std::tolower(static_cast<unsigned char>(C)));
  return Out;
}

/// VALUE as JSON of one schema type, or "" when it does not fit it.
std::string asType(const std::string &Type, std::string_view Value) {
  const std::string Lower = lower(Value);
  if (Type == "string")
    return toPythonJson(std::string(Value));
  if (Type == "null")
    return Lower == "null" ? "null" : "";
  if (Type == "boolean")
    return Lower == "true" || Lower == "false" ? Lower : "";
  if (!parsesAsJson(Value))
    return "";
  ordered_json J = ordered_json::parse(Value.begin(), Value.end());
  bool Fits = (Type == "integer" && J.is_number_integer()) ||
              (Type == "number" && J.is_number()) || (Type == "object" && J.is_object()) ||
              (Type == "array" && J.is_array());
  return Fits ? toPythonJson(J) : "";
}

} // namespace

ChatOutputParser::ChatOutputParser(ChatOutputParserOptions O) : Options(std::move(O)) {
  const ordered_json &Tools = Options.tools;
  if (!Tools.is_null() && !Tools.is_array())
    throw Error("tools must be an array of tool definitions, got " + std::string(Tools.type_name()));
  if (Tools.is_array())
    for (const ordered_json &T : Tools)
      if (!T.is_object())
        throw Error("each tool must be an object, got " + std::string(T.type_name()));
  if (Options.reasoningOpen && Options.parseReasoning) {
    CurrentMode = Mode::Reasoning;
    StripLeadingNewlines = true;
  }
}

ChatDelta ChatOutputParser::feed(std::string_view Text) {
  if (Finished)
    throw Error("chat output parser: feed() after finish()");
  Pending.append(Text);
  ChatDelta Out;
  run(Out);
  return Out;
}

ChatDelta ChatOutputParser::finish() {
  if (Finished)
    throw Error("chat output parser: finish() called twice");
  Finished = true;
  ChatDelta Out;
  run(Out);
  // Reasoning cut short: its trailing newlines are formatting. The content's
  // are text unless a tool call came after them.
  if (!ContentHeldBeforeToolCall) {
    Result.content += HeldContentNewlines;
    Out.content += HeldContentNewlines;
  }
  HeldContentNewlines.clear();
  HeldReasoningNewlines.clear();
  return Out;
}

void ChatOutputParser::emitText(Mode Channel, std::string_view Text, ChatDelta &Out) {
  if (StripLeadingNewlines) {
    size_t Skip = 0;
    while (Skip < Text.size() && Text[Skip] == '\n')
      ++Skip;
    Text.remove_prefix(Skip);
    if (Text.empty())
      return;
    StripLeadingNewlines = false;
  }
  if (Text.empty())
    return;
  // Trailing newlines wait: they go if </think> or a tool call follows.
  const bool IsContent = Channel == Mode::Content;
  std::string &Held = IsContent ? HeldContentNewlines : HeldReasoningNewlines;
  size_t Last = Text.find_last_not_of('\n');
  if (Last == std::string_view::npos) {
    Held.append(Text);
    return;
  }
  std::string Settled = Held;
  Settled.append(Text.substr(0, Last + 1));
  Held.assign(Text.substr(Last + 1));
  if (IsContent) {
    ContentHeldBeforeToolCall = false;
    Result.content += Settled;
    Out.content += Settled;
  } else {
    Result.reasoningContent += Settled;
    Out.reasoningContent += Settled;
  }
}

void ChatOutputParser::run(ChatDelta &Out) {
  while (true) {
    if (CurrentMode == Mode::ToolCall) {
      bool Closed = Finished;
      bool ClosedByTag = false;
      size_t At = Pending.find(ToolCallClose);
      if (At != std::string::npos) {
        Body.append(Pending, 0, At);
        Pending.erase(0, At + ToolCallClose.size());
        Closed = ClosedByTag = true;
      } else {
        size_t Keep = Finished ? 0 : partialTagSuffix(Pending, ToolCallClose);
        Body.append(Pending, 0, Pending.size() - Keep);
        Pending.erase(0, Pending.size() - Keep);
      }
      if (!advanceBody(Closed, Out)) {
        // Not a tool call: "<tool_call>" and the body are text of the outer
        // channel, scanned again for tags.
        CurrentMode = OuterMode;
        emitText(OuterMode, ToolCallOpen, Out);
        std::string Back = Body.substr(BodyPos);
        if (ClosedByTag)
          Back.append(ToolCallClose);
        Pending.insert(0, Back);
        Body.clear();
        BodyPos = 0;
        State = BodyState::Undecided;
        continue;
      }
      if (!Closed)
        return;
      CallOpen = false;
      Body.clear();
      BodyPos = 0;
      State = BodyState::Undecided;
      CurrentMode = OuterMode;
      StripLeadingNewlines = true;
      continue;
    }

    // Content or reasoning: find the first tag that matters here.
    std::vector<std::string_view> Tags;
    if (CurrentMode == Mode::Content && Options.parseReasoning)
      Tags.push_back(ThinkOpen);
    if (CurrentMode == Mode::Reasoning)
      Tags.push_back(ThinkClose);
    if (Options.parseToolCalls)
      Tags.push_back(ToolCallOpen);
    size_t First = std::string::npos;
    std::string_view Found;
    for (std::string_view Tag : Tags) {
      size_t At = Pending.find(Tag);
      if (At < First) {
        First = At;
        Found = Tag;
      }
    }
    if (First == std::string::npos) {
      size_t Keep = 0;
      if (!Finished)
        for (std::string_view Tag : Tags)
          Keep = std::max(Keep, partialTagSuffix(Pending, Tag));
      emitText(CurrentMode, std::string_view(Pending).substr(0, Pending.size() - Keep), Out);
      Pending.erase(0, Pending.size() - Keep);
      return;
    }
    emitText(CurrentMode, std::string_view(Pending).substr(0, First), Out);
    Pending.erase(0, First + Found.size());
    if (Found == ThinkOpen) {
      CurrentMode = Mode::Reasoning;
      StripLeadingNewlines = true;
    } else if (Found == ThinkClose) {
      HeldReasoningNewlines.clear();
      CurrentMode = Mode::Content;
      StripLeadingNewlines = true;
    } else {
      OuterMode = CurrentMode;
      if (OuterMode == Mode::Content)
        ContentHeldBeforeToolCall = true;
      CurrentMode = Mode::ToolCall;
      StripLeadingNewlines = false;
      FirstFunction = true;
    }
  }
}

bool ChatOutputParser::advanceBody(bool Closed, ChatDelta &Out) {
  if (State == BodyState::Undecided) {
    size_t P = BodyPos;
    skipSpaces(Body, P);
    if (P == Body.size())
      return !Closed; // an empty block is text
    if (Body[P] == '{')
      State = BodyState::Json;
    else if (Body[P] == '<')
      State = BodyState::Xml;
    else
      return false;
    XmlStage = XmlExpect::Function;
    InStray = false;
  }
  return State == BodyState::Json ? advanceJsonBody(Closed, Out) : advanceXmlBody(Closed, Out);
}

bool ChatOutputParser::advanceJsonBody(bool Closed, ChatDelta &Out) {
  if (!CallOpen) {
    std::string Name;
    size_t P = BodyPos;
    Match M = matchJsonHeader(Body, P, Name);
    if (M == Match::No || (M == Match::NeedMore && Closed))
      return false;
    if (M == Match::NeedMore)
      return true;
    openCall(Name, Out);
    BodyPos = P;
    JsonArgsSent = 0;
  }
  std::string_view Tail = std::string_view(Body).substr(BodyPos);
  size_t End = jsonArgumentsEnd(Tail);
  if (Closed) {
    // Normally the last brace closes the call object; a model that forgot
    // that brace leaves the arguments' own.
    std::string_view Args = Tail.substr(0, End);
    size_t Trimmed = Tail.find_last_not_of(" \n\t\r");
    std::string_view Whole = Tail.substr(0, Trimmed == std::string_view::npos ? 0 : Trimmed + 1);
    if (!parsesAsJson(Args) && parsesAsJson(Whole))
      End = Whole.size();
  }
  if (End > JsonArgsSent) {
    addArguments(Tail.substr(JsonArgsSent, End - JsonArgsSent), Out);
    JsonArgsSent = End;
  }
  return true;
}

bool ChatOutputParser::advanceXmlBody(bool Closed, ChatDelta &Out) {
  std::string_view S = Body;
  auto Stray = [&](size_t End) {
    emitText(OuterMode, S.substr(BodyPos, End - BodyPos), Out);
    BodyPos = End;
  };
  while (true) {
    if (InStray) {
      // Stray text runs up to the next tag.
      size_t Lt = S.find('<', BodyPos);
      if (Lt == std::string_view::npos) {
        Stray(S.size());
        break;
      }
      Stray(Lt);
      InStray = false;
    }
    if (InValue) {
      if (!advanceValue(Closed, Out))
        return true;
      continue;
    }
    size_t P = BodyPos;
    skipSpaces(S, P);
    if (P == S.size()) {
      if (!Closed)
        return true;
      BodyPos = P;
      break;
    }
    std::string Name;
    Match M = Match::No;
    if (XmlStage == XmlExpect::Function || XmlStage == XmlExpect::AfterFunction) {
      M = matchNamedTag(S, P, FunctionOpen, Name);
      if (M == Match::Yes) {
        openCall(Name, Out);
        FirstParameter = true;
        FirstFunction = false;
        XmlStage = XmlExpect::Parameter;
        BodyPos = P;
        continue;
      }
      if (FirstFunction && (M == Match::No || Closed))
        return false; // nothing here was ever a call
    } else {
      M = matchNamedTag(S, P, ParameterOpen, Name);
      if (M == Match::Yes) {
        // Strings stream as they come; other types when the value is whole.
        InValue = true;
        ValueStart = P;
        ValueSent = 0;
        ParameterName = Name;
        ValueStreams = streamsAsString(parameterSchema(CallName, Name));
        addArguments((FirstParameter ? "{" : ", ") + toPythonJson(Name) + ": " +
                         (ValueStreams ? "\"" : ""),
                     Out);
        FirstParameter = false;
        BodyPos = P;
        continue;
      }
      if (M != Match::Yes) {
        size_t Q = P;
        Match C = matchLiteral(S, Q, FunctionClose);
        if (C == Match::Yes) {
          addArguments(FirstParameter ? "{}" : "}", Out);
          CallOpen = false;
          XmlStage = XmlExpect::AfterFunction;
          BodyPos = Q;
          continue;
        }
        if (M == Match::NeedMore || C == Match::NeedMore)
          M = Match::NeedMore;
      }
    }
    if (M == Match::NeedMore && !Closed)
      return true;
    // Neither a tag nor the start of one: stray text, kept in the outer channel.
    BodyPos = P;
    InStray = true;
    if (S[P] == '<') {
      // Consume the '<' so the run goes on to the next tag.
      size_t Lt = S.find('<', P + 1);
      Stray(Lt == std::string_view::npos ? S.size() : Lt);
      InStray = Lt == std::string_view::npos;
      if (Lt == std::string_view::npos && Closed)
        break;
    }
  }
  if (Closed && CallOpen) {
    // The block ended inside a function: close its arguments.
    addArguments(FirstParameter ? "{}" : "}", Out);
    CallOpen = false;
  }
  return true;
}

bool ChatOutputParser::advanceValue(bool Closed, ChatDelta &Out) {
  std::string_view S = Body;
  // The value ends at </parameter>, or where the model went on without
  // closing it (as vLLM reads it).
  size_t End = std::string_view::npos;
  for (std::string_view Stop : {ParameterClose, ParameterOpen, FunctionClose})
    End = std::min(End, S.find(Stop, ValueStart));
  const bool Complete = End != std::string_view::npos || Closed;
  if (End == std::string_view::npos)
    End = S.size();
  // One newline after the tag and one before the end are formatting.
  std::string_view Value = S.substr(ValueStart, End - ValueStart);
  if (!Complete) {
    // Hold back what may still be the start of a terminator, and a newline
    // that may turn out to be the last.
    size_t Keep = 0;
    for (std::string_view Stop : {ParameterClose, ParameterOpen, FunctionClose})
      Keep = std::max(Keep, partialTagSuffix(Value, Stop));
    Value.remove_suffix(Keep);
    if (!Value.empty() && Value.back() == '\n')
      Value.remove_suffix(1);
    if (Value.empty())
      return false; // cannot tell yet whether a first newline is formatting
  } else if (!Value.empty() && Value.back() == '\n') {
    Value.remove_suffix(1);
  }
  if (!Value.empty() && Value.front() == '\n')
    Value.remove_prefix(1);
  if (!Complete) {
    if (ValueStreams && Value.size() > ValueSent) {
      std::string Quoted = toPythonJson(std::string(Value.substr(ValueSent)));
      addArguments(std::string_view(Quoted).substr(1, Quoted.size() - 2), Out);
      ValueSent = Value.size();
    }
    return false;
  }
  if (ValueStreams) {
    std::string Quoted = toPythonJson(std::string(Value.substr(std::min(ValueSent, Value.size()))));
    addArguments(std::string_view(Quoted).substr(1), Out); // with the closing quote
  } else {
    addArguments(typedParameter(parameterSchema(CallName, ParameterName), Value), Out);
  }
  InValue = false;
  BodyPos = End;
  if (S.compare(BodyPos, ParameterClose.size(), ParameterClose) == 0)
    BodyPos += ParameterClose.size();
  return true;
}

void ChatOutputParser::openCall(const std::string &Name, ChatDelta &Out) {
  ParsedToolCall Call;
  int Index = static_cast<int>(Result.toolCalls.size());
  Call.id = Options.toolCallIdPrefix + std::to_string(Index);
  Call.name = Name;
  Call.inReasoning = OuterMode == Mode::Reasoning;
  Result.toolCalls.push_back(Call);
  ToolCallDelta D;
  D.index = Index;
  D.id = Call.id;
  D.name = Name;
  D.inReasoning = Call.inReasoning;
  Out.toolCalls.push_back(std::move(D));
  CallOpen = true;
  CallName = Name;
}

void ChatOutputParser::addArguments(std::string_view Text, ChatDelta &Out) {
  ParsedToolCall &Call = Result.toolCalls.back();
  Call.arguments.append(Text);
  int Index = static_cast<int>(Result.toolCalls.size()) - 1;
  if (Out.toolCalls.empty() || Out.toolCalls.back().index != Index) {
    ToolCallDelta D;
    D.index = Index;
    D.inReasoning = Call.inReasoning;
    Out.toolCalls.push_back(std::move(D));
  }
  Out.toolCalls.back().arguments.append(Text);
}

bool ChatOutputParser::streamsAsString(const ordered_json *Schema) {
  if (!Schema)
    return true;
  auto Type = Schema->find("type");
  if (Type == Schema->end())
    return false; // typed by its text once whole
  if (Type->is_string())
    return Type->get<std::string>() == "string";
  if (Type->is_array())
    for (const ordered_json &T : *Type)
      if (T.is_string() && T.get<std::string>() != "null")
        return T.get<std::string>() == "string"; // the first type a value is tried as
  return false;
}

const ordered_json *ChatOutputParser::parameterSchema(const std::string &Function,
                                                      const std::string &Parameter) const {
  if (!Options.tools.is_array())
    return nullptr;
  for (const ordered_json &Tool : Options.tools) {
    const ordered_json &Fn = Tool.contains("function") ? Tool["function"] : Tool;
    if (!Fn.is_object() || Fn.value("name", ordered_json()) != Function)
      continue;
    auto Params = Fn.find("parameters");
    if (Params == Fn.end() || !Params->is_object())
      return nullptr;
    auto Props = Params->find("properties");
    if (Props == Params->end() || !Props->is_object())
      return nullptr;
    auto Schema = Props->find(Parameter);
    return Schema == Props->end() || !Schema->is_object() ? nullptr : &*Schema;
  }
  return nullptr;
}

std::string ChatOutputParser::typedParameter(const ordered_json *Schema, std::string_view Value) {
  // Unknown parameter: a string, as the model wrote it (vLLM does the same).
  if (!Schema)
    return toPythonJson(std::string(Value));
  std::vector<std::string> Types;
  if (Schema->contains("type")) {
    const ordered_json &T = (*Schema)["type"];
    if (T.is_string())
      Types.push_back(T.get<std::string>());
    else if (T.is_array())
      for (const ordered_json &E : T)
        if (E.is_string())
          Types.push_back(E.get<std::string>());
  }
  if (Types.empty()) // no type (anyOf, enum, ...): JSON if it is JSON
    return parsesAsJson(Value) ? toPythonJson(ordered_json::parse(Value.begin(), Value.end()))
                               : toPythonJson(std::string(Value));
  // The first type the value fits, "null" last so that a string "null"
  // stays a string where strings are allowed.
  for (const std::string &T : Types)
    if (T != "null")
      if (std::string J = asType(T, Value); !J.empty())
        return J;
  if (std::find(Types.begin(), Types.end(), "null") != Types.end() && lower(Value) == "null")
    return "null";
  return toPythonJson(std::string(Value));
}

ordered_json toOpenAIDelta(const ChatDelta &Delta) {
  ordered_json J = ordered_json::object();
  if (!Delta.reasoningContent.empty())
    J["reasoning_content"] = Delta.reasoningContent;
  if (!Delta.content.empty())
    J["content"] = Delta.content;
  if (!Delta.toolCalls.empty()) {
    ordered_json Calls = ordered_json::array();
    for (const ToolCallDelta &T : Delta.toolCalls) {
      ordered_json C = {{"index", T.index}};
      ordered_json Fn = ordered_json::object();
      if (!T.id.empty()) {
        C["id"] = T.id;
        C["type"] = "function";
        Fn["name"] = T.name;
      }
      Fn["arguments"] = T.arguments;
      C["function"] = std::move(Fn);
      Calls.push_back(std::move(C));
    }
    J["tool_calls"] = std::move(Calls);
  }
  return J;
}

ordered_json toOpenAIMessage(const ParsedChatOutput &Output) {
  ordered_json J = {{"role", "assistant"}};
  if (Output.content.empty() && !Output.toolCalls.empty())
    J["content"] = nullptr;
  else
    J["content"] = Output.content;
  if (!Output.reasoningContent.empty())
    J["reasoning_content"] = Output.reasoningContent;
  if (!Output.toolCalls.empty()) {
    ordered_json Calls = ordered_json::array();
    for (const ParsedToolCall &T : Output.toolCalls)
      Calls.push_back({{"id", T.id},
                       {"type", "function"},
                       {"function", {{"name", T.name}, {"arguments", T.arguments}}}});
    J["tool_calls"] = std::move(Calls);
  }
  return J;
}

} // namespace qwen::rt
