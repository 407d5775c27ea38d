//===- chat.cpp - Chat prompt formatting ----------------------------------===//
//
// The Qwen3 chat template (tokenizer_config.json "chat_template") without
// tools, written out by hand:
//  - system, user and other roles: <|im_start|>{role}\n{content}<|im_end|>\n
//  - assistant: the reasoning part (up to </think>) of messages before the last
//    user query is dropped; the final assistant message after the last query
//    keeps it as <think>\n{reasoning}\n</think>\n\n{content}.
//  - tool: wrapped in <tool_response> inside a user turn, consecutive tool
//    messages sharing one turn.
//  - generation prompt: <|im_start|>assistant\n, plus an empty think block when
//    thinking is disabled.
//
//===----------------------------------------------------------------------===//

#include "qwen_rt/chat.h"

#include <string_view>

namespace qwen::rt {

namespace {

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

std::string_view stripNewlines(std::string_view S) { return rstripNewlines(lstripNewlines(S)); }

bool isToolResponse(const std::string &Content) {
  return startsWith(Content, "<tool_response>") && endsWith(Content, "</tool_response>");
}

} // namespace

std::string formatChatPrompt(const std::vector<ChatMessage> &Messages, bool AddGenerationPrompt,
                             bool EnableThinking) {
  const int64_t N = static_cast<int64_t>(Messages.size());
  // Index of the last real user query (tool responses sent as user don't count).
  int64_t LastQuery = N - 1;
  for (int64_t I = N - 1; I >= 0; --I) {
    const ChatMessage &M = Messages[static_cast<size_t>(I)];
    if (M.role == "user" && !isToolResponse(M.content)) {
      LastQuery = I;
      break;
    }
  }

  std::string Out;
  for (int64_t I = 0; I < N; ++I) {
    const ChatMessage &M = Messages[static_cast<size_t>(I)];
    if (M.role == "assistant") {
      std::string_view Content = M.content;
      std::string_view Reasoning;
      size_t Close = Content.rfind("</think>");
      if (Close != std::string_view::npos) {
        std::string_view Before = Content.substr(0, Content.find("</think>"));
        Content = lstripNewlines(Content.substr(Close + 8));
        size_t Open = Before.rfind("<think>");
        if (Open != std::string_view::npos)
          Before = Before.substr(Open + 7);
        Reasoning = lstripNewlines(rstripNewlines(Before));
      }
      Out += "<|im_start|>assistant\n";
      if (I > LastQuery && (I == N - 1 || !Reasoning.empty())) {
        Out += "<think>\n";
        Out += stripNewlines(Reasoning);
        Out += "\n</think>\n\n";
        Out += lstripNewlines(Content);
      } else {
        Out += Content;
      }
      Out += "<|im_end|>\n";
    } else if (M.role == "tool") {
      if (I == 0 || Messages[static_cast<size_t>(I - 1)].role != "tool")
        Out += "<|im_start|>user";
      Out += "\n<tool_response>\n";
      Out += M.content;
      Out += "\n</tool_response>";
      if (I == N - 1 || Messages[static_cast<size_t>(I + 1)].role != "tool")
        Out += "<|im_end|>\n";
    } else {
      Out += "<|im_start|>";
      Out += M.role;
      Out += "\n";
      Out += M.content;
      Out += "<|im_end|>\n";
    }
  }
  if (AddGenerationPrompt) {
    Out += "<|im_start|>assistant\n";
    if (!EnableThinking)
      Out += "<think>\n\n</think>\n\n";
  }
  return Out;
}

} // namespace qwen::rt
