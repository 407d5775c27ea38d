//===- chat.h - Chat prompt formatting --------------------------*- C++ -*-===//
#ifndef QWEN_RT_CHAT_H
#define QWEN_RT_CHAT_H

#include <string>
#include <vector>

namespace qwen::rt {

struct ChatMessage {
  std::string role;
  std::string content;
};

/// Qwen ChatML: "<|im_start|>{role}\n{content}<|im_end|>\n" per message, then
/// "<|im_start|>assistant\n" when addGenerationPrompt; with enableThinking == false append
/// "<think>\n\n</think>\n\n" after it (Qwen3 template). Like the Qwen3 template, assistant messages
/// before the last user query lose their
/// "<think>...</think>" part, and "tool" messages become <tool_response> blocks in a user turn.
std::string formatChatPrompt(const std::vector<ChatMessage> &messages,
                             bool addGenerationPrompt = true, bool enableThinking = false);

} // namespace qwen::rt

#endif // QWEN_RT_CHAT_H
