//===- chat.cpp - Chat templates of Qwen3 and Qwen3.5 ---------------------===//
//
// Each template's Jinja logic written out by hand, with the Python behaviour
// it relies on reproduced where it shows in the output:
//  - `tojson` is HF's json.dumps(x, ensure_ascii=False): ", " and ": "
//    separators, the given key order, floats as Python's repr;
//  - Jinja's `trim` is Python's str.strip(): Unicode whitespace too;
//  - `value | string` of a tool argument is Python's str(): True / False /
//    None for JSON's true / false / null.
//
// Content given as text parts is joined as each template (or its serving
// stack) does: Qwen3.5's render_content concatenates the parts; the Qwen3
// template only takes strings, and vLLM joins the parts with "\n" for it.
//
//===----------------------------------------------------------------------===//

#include "qwen_rt/chat.h"
#include "qwen_rt/error.h"

#include <cctype>
#include <charconv>
#include <limits>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string_view>

namespace qwen::rt {

using ordered_json = nlohmann::ordered_json;

namespace {

//===----------------------------------------------------------------------===//
// Python string and JSON behaviour
//===----------------------------------------------------------------------===//

bool startsWith(std::string_view S, std::string_view P) { return S.substr(0, P.size()) == P; }
bool endsWith(std::string_view S, std::string_view P) {
  return S.size() >= P.size() && S.substr(S.size() - P.size()) == P;
}

std::string_view lstripNewlines(std::string_view S) {
  size_t I = 0;
  while (I < S.size() && S[I] == '\n')
    ++I;
  return S.substr(I);
}

std::string_view rstripNewlines(std::string_view S) {
  size_t N = S.size();
  while (N > 0 && S[N - 1] == '\n')
    --N;
  return S.substr(0, N);
}

/// Byte length of a whitespace character (str.isspace()) starting at S[I]
/// going forward, 0 if there is none.
size_t spaceAt(std::string_view S, size_t I) {
  unsigned char C = static_cast<unsigned char>(S[I]);
  if (C == ' ' || (C >= 0x09 && C <= 0x0d) || (C >= 0x1c && C <= 0x1f))
    return 1;
  auto Is = [&](std::string_view Seq) { return S.substr(I, Seq.size()) == Seq; };
  if (Is("\xc2\x85") || Is("\xc2\xa0"))
    return 2;
  if (Is("\xe1\x9a\x80") || Is("\xe2\x80\xa8") || Is("\xe2\x80\xa9") || Is("\xe2\x80\xaf") ||
      Is("\xe2\x81\x9f") || Is("\xe3\x80\x80"))
    return 3;
  if (I + 2 < S.size() && Is("\xe2\x80") && static_cast<unsigned char>(S[I + 2]) >= 0x80 &&
      static_cast<unsigned char>(S[I + 2]) <= 0x8a)
    return 3; // U+2000..U+200A
  return 0;
}

/// Python's str.strip() (Jinja's `trim`) on UTF-8 text.
std::string_view pyStrip(std::string_view S) {
  size_t B = 0;
  while (B < S.size()) {
    size_t N = spaceAt(S, B);
    if (N == 0)
      break;
    B += N;
  }
  S.remove_prefix(B);
  // From the back: try the one- to three-byte whitespace ending at the end.
  while (!S.empty()) {
    size_t Cut = 0;
    for (size_t N = 1; N <= 3 && N <= S.size(); ++N)
      if (spaceAt(S, S.size() - N) == N) {
        Cut = N;
        break;
      }
    if (Cut == 0)
      break;
    S.remove_suffix(Cut);
  }
  return S;
}

/// Python's repr of a float (the shortest digits that round-trip; fixed
/// notation for exponents in [-4, 16), else d.ddde+XX).
std::string pyFloat(double V) {
  if (V != V)
    return "NaN";
  if (V == std::numeric_limits<double>::infinity())
    return "Infinity";
  if (V == -std::numeric_limits<double>::infinity())
    return "-Infinity";
  char Buf[64];
  auto [End, Ec] = std::to_chars(Buf, Buf + sizeof(Buf), V, std::chars_format::scientific);
  (void)Ec;
  std::string Sci(Buf, End); // [-]d[.ddd]e[+-]XX
  bool Negative = Sci[0] == '-';
  if (Negative)
    Sci.erase(0, 1);
  size_t E = Sci.find('e');
  std::string Digits = Sci.substr(0, 1) + (E > 1 ? Sci.substr(2, E - 2) : "");
  int Exp = std::stoi(Sci.substr(E + 1));
  std::string Out = Negative ? "-" : "";
  if (Exp >= -4 && Exp < 16) {
    if (Exp < 0) {
      Out += "0." + std::string(static_cast<size_t>(-Exp - 1), '0') + Digits;
    } else if (static_cast<size_t>(Exp) + 1 >= Digits.size()) {
      Out += Digits + std::string(static_cast<size_t>(Exp) + 1 - Digits.size(), '0') + ".0";
    } else {
      Out += Digits.substr(0, static_cast<size_t>(Exp) + 1) + "." +
             Digits.substr(static_cast<size_t>(Exp) + 1);
    }
    return Out;
  }
  Out += Digits.substr(0, 1);
  if (Digits.size() > 1)
    Out += "." + Digits.substr(1);
  char ExpBuf[16];
  std::snprintf(ExpBuf, sizeof(ExpBuf), "e%c%02d", Exp < 0 ? '-' : '+', Exp < 0 ? -Exp : Exp);
  return Out + ExpBuf;
}

void appendPyJsonString(std::string &Out, std::string_view S) {
  Out += '"';
  for (char C : S) {
    switch (C) {
    case '"': Out += "\\\""; break;
    case '\\': Out += "\\\\"; break;
    case '\n': Out += "\\n"; break;
    case '\r': Out += "\\r"; break;
    case '\t': Out += "\\t"; break;
    case '\b': Out += "\\b"; break;
    case '\f': Out += "\\f"; break;
    default:
      if (static_cast<unsigned char>(C) < 0x20) {
        char Buf[8];
        std::snprintf(Buf, sizeof(Buf), "\\u%04x", static_cast<unsigned>(C));
        Out += Buf;
      } else {
        Out += C;
      }
    }
  }
  Out += '"';
}

void appendPyJson(std::string &Out, const ordered_json &V) {
  switch (V.type()) {
  case ordered_json::value_t::null: Out += "null"; return;
  case ordered_json::value_t::boolean: Out += V.get<bool>() ? "true" : "false"; return;
  case ordered_json::value_t::number_integer: Out += std::to_string(V.get<int64_t>()); return;
  case ordered_json::value_t::number_unsigned: Out += std::to_string(V.get<uint64_t>()); return;
  case ordered_json::value_t::number_float: Out += pyFloat(V.get<double>()); return;
  case ordered_json::value_t::string: appendPyJsonString(Out, V.get_ref<const std::string &>()); return;
  case ordered_json::value_t::array: {
    Out += '[';
    bool First = true;
    for (const ordered_json &E : V) {
      if (!First)
        Out += ", ";
      First = false;
      appendPyJson(Out, E);
    }
    Out += ']';
    return;
  }
  case ordered_json::value_t::object: {
    Out += '{';
    bool First = true;
    for (const auto &[K, E] : V.items()) {
      if (!First)
        Out += ", ";
      First = false;
      appendPyJsonString(Out, K);
      Out += ": ";
      appendPyJson(Out, E);
    }
    Out += '}';
    return;
  }
  default: throw Error("cannot write JSON of type " + std::string(V.type_name()));
  }
}

/// Python's str() of a JSON scalar as Jinja's `| string` writes it.
std::string pyStr(const ordered_json &V) {
  switch (V.type()) {
  case ordered_json::value_t::null: return "None";
  case ordered_json::value_t::boolean: return V.get<bool>() ? "True" : "False";
  case ordered_json::value_t::string: return V.get<std::string>();
  default: return toPythonJson(V);
  }
}

//===----------------------------------------------------------------------===//
// The templates
//===----------------------------------------------------------------------===//

/// The parts of a message's content joined with `Separator`.
std::string contentText(const ChatMessage &M, std::string_view Separator) {
  if (!M.contentParts)
    return M.content;
  std::string Out;
  for (size_t I = 0; I < M.contentParts->size(); ++I) {
    if (I)
      Out += Separator;
    Out += (*M.contentParts)[I];
  }
  return Out;
}

bool isToolResponse(std::string_view Content) {
  return startsWith(Content, "<tool_response>") && endsWith(Content, "</tool_response>");
}

/// Python's s.split(Sep)[0] and s.split(Sep)[-1].
std::string_view beforeFirst(std::string_view S, std::string_view Sep) {
  return S.substr(0, S.find(Sep));
}
std::string_view afterLast(std::string_view S, std::string_view Sep) {
  size_t At = S.rfind(Sep);
  return At == std::string_view::npos ? S : S.substr(At + Sep.size());
}

/// An assistant message's reasoning, as both templates take it: its
/// reasoning_content, else the text before "</think>" in its content (which
/// then keeps only what follows).
std::string_view splitReasoning(const ChatMessage &M, std::string_view &Content) {
  if (M.reasoningContent)
    return *M.reasoningContent;
  if (Content.find("</think>") == std::string_view::npos)
    return {};
  std::string_view Reasoning =
      lstripNewlines(afterLast(rstripNewlines(beforeFirst(Content, "</think>")), "<think>"));
  Content = lstripNewlines(afterLast(Content, "</think>"));
  return Reasoning;
}

bool hasTools(const ordered_json &Tools) {
  if (Tools.is_null())
    return false;
  if (!Tools.is_array())
    throw Error("chat template: tools must be an array, got " + std::string(Tools.type_name()));
  return !Tools.empty();
}

[[noreturn]] void unknownRole(size_t I, const std::string &Role) {
  throw Error("chat template: message " + std::to_string(I) + " has role \"" + Role +
              "\"; the Qwen templates render system, user, assistant and tool");
}

std::string renderQwen3(const std::vector<ChatMessage> &Ms, const ordered_json &Tools,
                        const ChatTemplateOptions &Options) {
  if (Ms.empty())
    throw Error("chat template: no messages");
  const size_t N = Ms.size();
  std::vector<std::string> Texts;
  for (const ChatMessage &M : Ms) {
    if (!M.images.empty())
      throw Error("chat template: the Qwen3 template takes no images (a text-only model)");
    Texts.push_back(contentText(M, "\n"));
  }

  std::string Out;
  if (hasTools(Tools)) {
    Out += "<|im_start|>system\n";
    if (Ms[0].role == "system")
      Out += Texts[0] + "\n\n";
    Out += "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
           "You are provided with function signatures within <tools></tools> XML tags:\n<tools>";
    for (const ordered_json &Tool : Tools)
      Out += "\n" + toPythonJson(Tool);
    Out += "\n</tools>\n\nFor each function call, return a json object with function name and "
           "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": "
           "<function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n";
  } else if (Ms[0].role == "system") {
    Out += "<|im_start|>system\n" + Texts[0] + "<|im_end|>\n";
  }

  // The last user query; tool responses passed as user messages don't count.
  size_t LastQuery = N - 1;
  for (size_t I = N; I-- > 0;)
    if (Ms[I].role == "user" && !isToolResponse(Texts[I])) {
      LastQuery = I;
      break;
    }

  for (size_t I = 0; I < N; ++I) {
    const ChatMessage &M = Ms[I];
    if (M.role == "user" || (M.role == "system" && I > 0)) {
      Out += "<|im_start|>" + M.role + "\n" + Texts[I] + "<|im_end|>\n";
    } else if (M.role == "system") {
      // The first system message went above.
    } else if (M.role == "assistant") {
      std::string_view Content = Texts[I];
      std::string_view Reasoning = splitReasoning(M, Content);
      if (I > LastQuery && (I == N - 1 || !Reasoning.empty())) {
        Out += "<|im_start|>assistant\n<think>\n";
        Out += rstripNewlines(lstripNewlines(Reasoning));
        Out += "\n</think>\n\n";
        Out += lstripNewlines(Content);
      } else {
        Out += "<|im_start|>assistant\n";
        Out += Content;
      }
      for (size_t J = 0; J < M.toolCalls.size(); ++J) {
        const ChatToolCall &Call = M.toolCalls[J];
        if (J > 0 || !Content.empty())
          Out += "\n";
        Out += "<tool_call>\n{\"name\": \"" + Call.name + "\", \"arguments\": ";
        Out += Call.arguments.is_string() ? Call.arguments.get<std::string>()
                                          : toPythonJson(Call.arguments);
        Out += "}\n</tool_call>";
      }
      Out += "<|im_end|>\n";
    } else if (M.role == "tool") {
      if (I == 0 || Ms[I - 1].role != "tool")
        Out += "<|im_start|>user";
      Out += "\n<tool_response>\n" + Texts[I] + "\n</tool_response>";
      if (I == N - 1 || Ms[I + 1].role != "tool")
        Out += "<|im_end|>\n";
    } else {
      unknownRole(I, M.role);
    }
  }
  if (Options.addGenerationPrompt) {
    Out += "<|im_start|>assistant\n";
    if (!Options.enableThinking)
      Out += "<think>\n\n</think>\n\n";
  }
  return Out;
}

/// The arguments of a history tool call as a JSON object (Qwen3.5 renders
/// them key by key; a JSON string is parsed first, as vLLM does).
ordered_json argumentsObject(const ChatToolCall &Call, size_t Message) {
  ordered_json Args = Call.arguments;
  if (Args.is_string()) {
    const std::string &Text = Args.get_ref<const std::string &>();
    if (!ordered_json::accept(Text))
      throw Error("chat template: message " + std::to_string(Message) + ": the arguments of tool call \"" +
                  Call.name + "\" are not valid JSON");
    Args = ordered_json::parse(Text);
  }
  if (!Args.is_object())
    throw Error("chat template: message " + std::to_string(Message) + ": the arguments of tool call \"" +
                Call.name + "\" must be a JSON object, got " + std::string(Args.type_name()));
  return Args;
}

std::string renderQwen35(const std::vector<ChatMessage> &Ms, const ordered_json &Tools,
                         const ChatTemplateOptions &Options) {
  if (Ms.empty())
    throw Error("chat template: no messages");
  const size_t N = Ms.size();
  std::vector<std::string> Texts; // render_content(...) | trim
  for (const ChatMessage &M : Ms) {
    if (M.role == "system" && !M.images.empty())
      throw Error("chat template: System message cannot contain images.");
    Texts.emplace_back(pyStrip(contentText(M, "")));
  }

  std::string Out;
  if (hasTools(Tools)) {
    Out += "<|im_start|>system\n# Tools\n\nYou have access to the following functions:\n\n<tools>";
    for (const ordered_json &Tool : Tools)
      Out += "\n" + toPythonJson(Tool);
    Out += "\n</tools>";
    Out += "\n\nIf you choose to call a function ONLY reply in the following format with NO "
           "suffix:\n\n<tool_call>\n<function=example_function_name>\n"
           "<parameter=example_parameter_1>\nvalue_1\n</parameter>\n"
           "<parameter=example_parameter_2>\nThis is the value for the second parameter\n"
           "that can span\nmultiple lines\n</parameter>\n</function>\n</tool_call>\n\n"
           "<IMPORTANT>\nReminder:\n- Function calls MUST follow the specified format: an "
           "inner <function=...></function> block must be nested within "
           "<tool_call></tool_call> XML tags\n- Required parameters MUST be specified\n- You "
           "may provide optional reasoning for your function call in natural language BEFORE "
           "the function call, but NOT after\n- If there is no function call available, "
           "answer the question like normal with your current knowledge and do not tell the "
           "user about function calls\n</IMPORTANT>";
    if (Ms[0].role == "system" && !Texts[0].empty())
      Out += "\n\n" + Texts[0];
    Out += "<|im_end|>\n";
  } else if (Ms[0].role == "system") {
    Out += "<|im_start|>system\n" + Texts[0] + "<|im_end|>\n";
  }

  size_t LastQuery = N;
  for (size_t I = N; I-- > 0;)
    if (Ms[I].role == "user" && !isToolResponse(Texts[I])) {
      LastQuery = I;
      break;
    }
  if (LastQuery == N)
    throw Error("chat template: no user query found in the messages (the Qwen3.5 template "
                "needs one)");

  for (size_t I = 0; I < N; ++I) {
    const ChatMessage &M = Ms[I];
    std::string_view Content = Texts[I];
    if (M.role == "system") {
      if (I != 0)
        throw Error("chat template: message " + std::to_string(I) +
                    ": a system message must come first (Qwen3.5 template)");
    } else if (M.role == "user") {
      Out += "<|im_start|>user\n";
      Out += Content;
      Out += "<|im_end|>\n";
    } else if (M.role == "assistant") {
      std::string_view Reasoning = splitReasoning(M, Content);
      Reasoning = pyStrip(Reasoning);
      Out += "<|im_start|>assistant\n";
      if (I > LastQuery) {
        Out += "<think>\n";
        Out += Reasoning;
        Out += "\n</think>\n\n";
      }
      Out += Content;
      for (size_t J = 0; J < M.toolCalls.size(); ++J) {
        const ChatToolCall &Call = M.toolCalls[J];
        if (J > 0)
          Out += "\n";
        else if (!pyStrip(Content).empty())
          Out += "\n\n";
        Out += "<tool_call>\n<function=" + Call.name + ">\n";
        const ordered_json Args = argumentsObject(Call, I);
        for (const auto &[Key, Value] : Args.items()) {
          Out += "<parameter=" + Key + ">\n";
          Out += Value.is_object() || Value.is_array() ? toPythonJson(Value) : pyStr(Value);
          Out += "\n</parameter>\n";
        }
        Out += "</function>\n</tool_call>";
      }
      Out += "<|im_end|>\n";
    } else if (M.role == "tool") {
      // loop.previtem is undefined for the first message: no turn opened.
      if (I > 0 && Ms[I - 1].role != "tool")
        Out += "<|im_start|>user";
      Out += "\n<tool_response>\n";
      Out += Content;
      Out += "\n</tool_response>";
      if (I == N - 1 || Ms[I + 1].role != "tool")
        Out += "<|im_end|>\n";
    } else {
      unknownRole(I, M.role);
    }
  }
  if (Options.addGenerationPrompt)
    Out += Options.enableThinking ? "<|im_start|>assistant\n<think>\n"
                                  : "<|im_start|>assistant\n<think>\n\n</think>\n\n";
  return Out;
}

//===----------------------------------------------------------------------===//
// Parsing OpenAI messages
//===----------------------------------------------------------------------===//

std::string where(size_t I, const char *Field) {
  return "messages[" + std::to_string(I) + "]." + Field;
}

std::string stringField(const ordered_json &M, size_t I, const char *Field) {
  auto It = M.find(Field);
  if (It == M.end() || It->is_null())
    return "";
  if (!It->is_string())
    throw Error(where(I, Field) + " must be a string, got " + std::string(It->type_name()));
  return It->get<std::string>();
}

ChatToolCall parseToolCall(const ordered_json &T, size_t I, size_t J) {
  std::string Where = where(I, "tool_calls") + "[" + std::to_string(J) + "]";
  if (!T.is_object())
    throw Error(Where + " must be an object, got " + std::string(T.type_name()));
  ChatToolCall Call;
  if (auto Id = T.find("id"); Id != T.end() && Id->is_string())
    Call.id = Id->get<std::string>();
  const ordered_json *Fn = &T;
  if (auto F = T.find("function"); F != T.end()) {
    if (!F->is_object())
      throw Error(Where + ".function must be an object, got " + std::string(F->type_name()));
    Fn = &*F;
  }
  auto Name = Fn->find("name");
  if (Name == Fn->end() || !Name->is_string() || Name->get<std::string>().empty())
    throw Error(Where + " needs a function name (a non-empty string)");
  Call.name = Name->get<std::string>();
  if (auto Args = Fn->find("arguments"); Args != Fn->end()) {
    if (!Args->is_string() && !Args->is_object())
      throw Error(Where + ".arguments must be a JSON string or an object, got " +
                  std::string(Args->type_name()));
    Call.arguments = *Args;
  }
  return Call;
}

std::string readFile(const std::filesystem::path &P) {
  std::ifstream In(P, std::ios::binary);
  if (!In)
    throw Error("cannot read " + P.string());
  std::ostringstream S;
  S << In.rdbuf();
  return S.str();
}

bool contains(std::string_view S, std::string_view Part) {
  return S.find(Part) != std::string_view::npos;
}

} // namespace

std::string toPythonJson(const ordered_json &Value) {
  std::string Out;
  appendPyJson(Out, Value);
  return Out;
}

ChatImage parseImageDataUrl(const std::string &Url, const std::string &Where) {
  auto lower = [](std::string S) {
    for (char &C : S)
      C = char(std::tolower(static_cast<unsigned char>(C)));
    return S;
  };
  if (lower(Url.substr(0, 5)) != "data:") {
    std::string Shown = Url.size() > 64 ? Url.substr(0, 64) + "..." : Url;
    throw Error(Where + ": the image URL \"" + Shown +
                "\" is not fetched (this server reaches no network); send the image inline as a "
                "data:image/...;base64 URL");
  }
  const size_t Comma = Url.find(',');
  if (Comma == std::string::npos)
    throw Error(Where + ": a data: URL needs a ',' before its data");
  std::string Header = Url.substr(5, Comma - 5);
  if (Header.size() < 7 || lower(Header.substr(Header.size() - 7)) != ";base64")
    throw Error(Where + ": the image's data: URL must be base64 (data:image/png;base64,...)");
  ChatImage Image;
  Image.mediaType = lower(Header.substr(0, Header.find(';')));
  // Standard base64 (RFC 4648); whitespace between groups is skipped, '='
  // only as trailing padding.
  uint32_t Bits = 0;
  int Count = 0;
  size_t Padding = 0;
  for (size_t I = Comma + 1; I < Url.size(); ++I) {
    const char C = Url[I];
    int V = -1;
    if (C >= 'A' && C <= 'Z')
      V = C - 'A';
    else if (C >= 'a' && C <= 'z')
      V = C - 'a' + 26;
    else if (C >= '0' && C <= '9')
      V = C - '0' + 52;
    else if (C == '+')
      V = 62;
    else if (C == '/')
      V = 63;
    else if (C == '=') {
      ++Padding;
      continue;
    } else if (C == ' ' || C == '\n' || C == '\r' || C == '\t')
      continue;
    if (V < 0 || Padding)
      throw Error(Where + ": the image's base64 data has an invalid character at offset " +
                  std::to_string(I - Comma - 1));
    Bits = (Bits << 6) | uint32_t(V);
    if (++Count == 4) {
      Image.bytes.push_back(uint8_t(Bits >> 16));
      Image.bytes.push_back(uint8_t(Bits >> 8));
      Image.bytes.push_back(uint8_t(Bits));
      Bits = 0;
      Count = 0;
    }
  }
  if (Count == 1 || Padding > 2 || (Padding && Count + Padding != 4))
    throw Error(Where + ": the image's base64 data is truncated");
  if (Count == 2)
    Image.bytes.push_back(uint8_t(Bits >> 4));
  else if (Count == 3) {
    Image.bytes.push_back(uint8_t(Bits >> 10));
    Image.bytes.push_back(uint8_t(Bits >> 2));
  }
  if (Image.bytes.empty())
    throw Error(Where + ": the image's data: URL is empty");
  return Image;
}

std::vector<ChatMessage> parseChatMessages(const ordered_json &Messages) {
  if (!Messages.is_array())
    throw Error("messages must be an array, got " + std::string(Messages.type_name()));
  std::vector<ChatMessage> Out;
  for (size_t I = 0; I < Messages.size(); ++I) {
    const ordered_json &J = Messages[I];
    if (!J.is_object())
      throw Error("messages[" + std::to_string(I) + "] must be an object, got " +
                  std::string(J.type_name()));
    ChatMessage M;
    auto Role = J.find("role");
    if (Role == J.end() || !Role->is_string())
      throw Error(where(I, "role") + " is required (a string)");
    M.role = Role->get<std::string>();
    if (M.role == "developer")
      M.role = "system"; // OpenAI's newer name for the system role
    if (M.role != "system" && M.role != "user" && M.role != "assistant" && M.role != "tool")
      throw Error(where(I, "role") + " \"" + M.role +
                  "\" is not one of system, user, assistant, tool");
    if (auto C = J.find("content"); C != J.end() && !C->is_null()) {
      if (C->is_string()) {
        M.content = C->get<std::string>();
      } else if (C->is_array()) {
        M.contentParts.emplace();
        for (size_t K = 0; K < C->size(); ++K) {
          const ordered_json &Part = (*C)[K];
          std::string PartWhere = where(I, "content") + "[" + std::to_string(K) + "]";
          if (!Part.is_object())
            throw Error(PartWhere + " must be an object, got " + std::string(Part.type_name()));
          std::string Type = Part.value("type", std::string("text"));
          if (Type == "image_url" || Type == "image") {
            // OpenAI: {"type": "image_url", "image_url": {"url": ...}} (or the
            // URL as a string); HF: {"type": "image", "image" | "url": ...}.
            const ordered_json *Url = nullptr;
            std::string UrlWhere = PartWhere + "." + Type;
            if (auto U = Part.find(Type); U != Part.end()) {
              Url = U->is_object() && U->contains("url") ? &(*U)["url"] : &*U;
              if (U->is_object())
                UrlWhere += ".url";
            } else if (auto V = Part.find("url"); V != Part.end()) {
              Url = &*V;
              UrlWhere = PartWhere + ".url";
            }
            if (!Url || !Url->is_string())
              throw Error(UrlWhere + " must be a string (a data: URL)");
            M.images.push_back(parseImageDataUrl(Url->get<std::string>(), UrlWhere));
            M.contentParts->push_back(kChatImagePlaceholder);
            continue;
          }
          if (Type != "text")
            throw Error(PartWhere + " has type \"" + Type +
                        "\"; only text and image parts are supported");
          auto Text = Part.find("text");
          if (Text == Part.end() || !Text->is_string())
            throw Error(PartWhere + ".text must be a string");
          M.contentParts->push_back(Text->get<std::string>());
        }
      } else {
        throw Error(where(I, "content") + " must be a string, an array of parts or null, got " +
                    std::string(C->type_name()));
      }
    }
    if (auto R = J.find("reasoning_content"); R != J.end() && !R->is_null()) {
      if (!R->is_string())
        throw Error(where(I, "reasoning_content") + " must be a string, got " +
                    std::string(R->type_name()));
      M.reasoningContent = R->get<std::string>();
    }
    if (auto T = J.find("tool_calls"); T != J.end() && !T->is_null()) {
      if (!T->is_array())
        throw Error(where(I, "tool_calls") + " must be an array, got " + std::string(T->type_name()));
      if (M.role != "assistant")
        throw Error(where(I, "tool_calls") + " is only allowed in assistant messages");
      for (size_t K = 0; K < T->size(); ++K)
        M.toolCalls.push_back(parseToolCall((*T)[K], I, K));
    }
    M.toolCallId = stringField(J, I, "tool_call_id");
    M.name = stringField(J, I, "name");
    Out.push_back(std::move(M));
  }
  return Out;
}

const char *chatTemplateStyleName(ChatTemplateStyle Style) {
  return Style == ChatTemplateStyle::Qwen3 ? "qwen3" : "qwen3.5";
}

uint64_t ChatTemplate::fingerprint(std::string_view Text) {
  uint64_t H = 0xcbf29ce484222325ull;
  for (char C : Text) {
    H ^= static_cast<unsigned char>(C);
    H *= 0x100000001b3ull;
  }
  return H;
}

std::optional<ChatTemplateStyle> ChatTemplate::verifiedStyle(uint64_t Fingerprint) {
  // The templates scripts/gen_chat_reference.py rendered the corpus with:
  // Qwen3's (Qwen3-0.6B .. 32B) and Qwen3.5's.
  if (Fingerprint == 0x2bfdb7aa9754484eull)
    return ChatTemplateStyle::Qwen3;
  if (Fingerprint == 0xf07c510f47fbaca0ull)
    return ChatTemplateStyle::Qwen35;
  return std::nullopt;
}

ChatTemplate ChatTemplate::fromTemplateText(const std::string &Text) {
  const uint64_t Hash = fingerprint(Text);
  if (std::optional<ChatTemplateStyle> Known = verifiedStyle(Hash))
    return ChatTemplate(*Known, true);
  // Variants (whitespace, a fine-tune's edits) with the same distinctive parts.
  if (contains(Text, "<function=example_function_name>") && contains(Text, "render_content") &&
      contains(Text, "enable_thinking"))
    return ChatTemplate(ChatTemplateStyle::Qwen35, false);
  if (contains(Text, "<function-name>") && contains(Text, "<args-json-object>") &&
      contains(Text, "enable_thinking") && contains(Text, "reasoning_content"))
    return ChatTemplate(ChatTemplateStyle::Qwen3, false);
  char HashText[20];
  std::snprintf(HashText, sizeof(HashText), "%016llx", static_cast<unsigned long long>(Hash));
  throw Error(std::string("unsupported chat template (fnv1a ") + HashText +
              "): only the Qwen3 (hybrid thinking) and Qwen3.5 templates are rendered natively");
}

ChatTemplate ChatTemplate::fromCheckpoint(const std::string &Dir) {
  namespace fs = std::filesystem;
  fs::path Jinja = fs::path(Dir) / "chat_template.jinja";
  if (fs::exists(Jinja))
    return fromTemplateText(readFile(Jinja));
  fs::path Config = fs::path(Dir) / "tokenizer_config.json";
  if (!fs::exists(Config))
    throw Error("no chat template in " + Dir + " (neither chat_template.jinja nor tokenizer_config.json)");
  std::string Text = readFile(Config);
  if (!ordered_json::accept(Text))
    throw Error(Config.string() + " is not valid JSON");
  ordered_json J = ordered_json::parse(Text);
  auto T = J.find("chat_template");
  if (T == J.end() || T->is_null())
    throw Error("no chat template in " + Dir + ": " + Config.string() + " has no \"chat_template\"");
  if (T->is_string())
    return fromTemplateText(T->get<std::string>());
  if (T->is_array())
    for (const ordered_json &Named : *T)
      if (Named.is_object() && Named.value("name", std::string()) == "default" &&
          Named.contains("template") && Named["template"].is_string())
        return fromTemplateText(Named["template"].get<std::string>());
  throw Error(Config.string() + ": \"chat_template\" must be a string or a list with a \"default\" entry");
}

std::string ChatTemplate::render(const std::vector<ChatMessage> &Messages, const ordered_json &Tools,
                                 const ChatTemplateOptions &Options) const {
  return Style == ChatTemplateStyle::Qwen3 ? renderQwen3(Messages, Tools, Options)
                                           : renderQwen35(Messages, Tools, Options);
}

std::string formatChatPrompt(const std::vector<ChatMessage> &Messages, bool AddGenerationPrompt,
                             bool EnableThinking) {
  ChatTemplateOptions Options;
  Options.addGenerationPrompt = AddGenerationPrompt;
  Options.enableThinking = EnableThinking;
  return ChatTemplate(ChatTemplateStyle::Qwen3).render(Messages, nullptr, Options);
}

} // namespace qwen::rt
