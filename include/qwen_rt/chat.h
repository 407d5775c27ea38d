//===- chat.h - Chat templates of Qwen3 and Qwen3.5 -------------*- C++ -*-===//
//
// The chat templates of Qwen3 and Qwen3.5 checkpoints, rendered natively (no
// Jinja engine): the same bytes as HF's apply_chat_template(..., tokenize=
// False) with the checkpoint's own "chat_template", which the tests check on
// a corpus of conversations (test/data/chat/, scripts/gen_chat_reference.py).
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_RT_CHAT_H
#define QWEN_RT_CHAT_H

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace qwen::rt {

/// A tool call of an assistant message in the history.
struct ChatToolCall {
  std::string id; ///< not rendered by the Qwen templates
  std::string name;
  /// A JSON object, or a string holding JSON text (as OpenAI clients send it).
  nlohmann::ordered_json arguments = nlohmann::ordered_json::object();
};

/// An image part of a message's content: OpenAI's `image_url` (or HF's
/// `image`) with a `data:` URL, its bytes decoded from base64 (a PNG, JPEG
/// or WebP for qwen_rt/image.h's decodeImage). Remote URLs are refused: the
/// runtime reaches no network.
struct ChatImage {
  std::string mediaType; ///< from the data: URL ("image/png"), may be empty
  std::vector<uint8_t> bytes;
};

/// What an image part renders as in the Qwen3.5 (Qwen3-VL) templates; the
/// `<|image_pad|>` is expanded to the image's merged-patch count later.
inline constexpr const char *kChatImagePlaceholder = "<|vision_start|><|image_pad|><|vision_end|>";

/// The bytes of a `data:[<media type>];base64,<data>` URL. Throws Error
/// (naming `where`) for a remote or malformed URL.
ChatImage parseImageDataUrl(const std::string &url, const std::string &where);

struct ChatMessage {
  ChatMessage() = default;
  ChatMessage(std::string role, std::string content)
      : role(std::move(role)), content(std::move(content)) {}

  std::string role; ///< "system", "user", "assistant" or "tool"
  /// The text; empty for a null content (an assistant turn with only tool
  /// calls). Ignored when contentParts is set.
  std::string content;
  /// OpenAI's list of text parts ([{"type": "text", "text": ...}]), kept
  /// apart because the templates join them differently.
  std::optional<std::vector<std::string>> contentParts;
  /// The message's image parts, in order; each is also a part of
  /// contentParts holding kChatImagePlaceholder (what the template renders).
  std::vector<ChatImage> images;
  /// The reasoning of an assistant turn, when sent apart from the content
  /// (otherwise a "<think>...</think>" prefix of the content is one).
  std::optional<std::string> reasoningContent;
  std::vector<ChatToolCall> toolCalls;
  std::string toolCallId, name; ///< role tool: not rendered by the Qwen templates
};

/// Messages in OpenAI's chat format (what a request's "messages" holds).
/// Throws Error naming the offending message and field for anything else:
/// unknown types, a missing role, audio or video parts, image parts whose
/// URL is not an inline `data:` URL.
std::vector<ChatMessage> parseChatMessages(const nlohmann::ordered_json &messages);

enum class ChatTemplateStyle {
  Qwen3,  ///< Qwen3 hybrid thinking: JSON tool calls, thinking unless disabled
  Qwen35, ///< Qwen3.5: XML tool calls, the generation prompt opens <think>
};
/// "qwen3" or "qwen3.5".
const char *chatTemplateStyleName(ChatTemplateStyle style);

struct ChatTemplateOptions {
  bool addGenerationPrompt = true;
  /// chat_template_kwargs.enable_thinking; false asks for an empty think block.
  bool enableThinking = true;
};

class ChatTemplate {
public:
  explicit ChatTemplate(ChatTemplateStyle style, bool verified = true)
      : Style(style), Verified(verified) {}

  /// The template of a checkpoint folder: chat_template.jinja if present,
  /// else tokenizer_config.json's "chat_template" (a string, or a list of
  /// {name, template} of which "default"). Throws Error when there is none
  /// or it is not one this renderer reproduces.
  static ChatTemplate fromCheckpoint(const std::string &checkpointDir);
  /// Recognizes a template's Jinja text. Known texts (byte-identical to the
  /// ones the reference corpus was generated with) are verified; other texts
  /// with the distinctive parts of one style are accepted unverified (a
  /// server should warn); anything else is an Error.
  static ChatTemplate fromTemplateText(const std::string &text);

  /// FNV-1a (64 bits) of a template text: how verified templates are known.
  static uint64_t fingerprint(std::string_view text);
  /// The style of the template with this fingerprint if the reference corpus
  /// was generated with it (test/data/chat/*_reference.json record theirs).
  static std::optional<ChatTemplateStyle> verifiedStyle(uint64_t fingerprint);

  ChatTemplateStyle style() const { return Style; }
  bool verified() const { return Verified; }

  /// The prompt text. `tools`: null or an array of OpenAI tool definitions,
  /// rendered with Python's json.dumps as the templates' `tojson` does (keep
  /// the client's key order: parse requests into ordered_json). Throws Error
  /// for what the template would reject (no messages; Qwen3.5: no user
  /// query, a system message after the first, tool call arguments that are
  /// not a JSON object) and for roles it would silently drop.
  std::string render(const std::vector<ChatMessage> &messages,
                     const nlohmann::ordered_json &tools = nullptr,
                     const ChatTemplateOptions &options = {}) const;

  /// The generation prompt leaves a think block open, so the output starts
  /// as reasoning: ChatOutputParserOptions::reasoningOpen.
  bool generationOpensReasoning(const ChatTemplateOptions &options) const {
    return Style == ChatTemplateStyle::Qwen35 && options.addGenerationPrompt &&
           options.enableThinking;
  }

private:
  ChatTemplateStyle Style;
  bool Verified;
};

/// The Qwen3 template (as qwen-run's chat has always used): messages of plain
/// content, no tools.
std::string formatChatPrompt(const std::vector<ChatMessage> &messages,
                             bool addGenerationPrompt = true, bool enableThinking = false);

/// Python's json.dumps(value, ensure_ascii=False) with the default
/// separators (", " and ": "): the `tojson` of HF chat templates, and the
/// arguments text of parsed XML tool calls (as vLLM writes them).
std::string toPythonJson(const nlohmann::ordered_json &value);

} // namespace qwen::rt

#endif // QWEN_RT_CHAT_H
