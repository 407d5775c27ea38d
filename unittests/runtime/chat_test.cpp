//===- chat_test.cpp - Tests of the chat prompt formatter -----------------===//

#include "qwen_rt/chat.h"
#include "qwen_rt/error.h"

#include <gtest/gtest.h>

using namespace qwen::rt;

namespace {

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

} // namespace
