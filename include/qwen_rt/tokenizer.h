//===- tokenizer.h - Byte-level BPE tokenizer -------------------*- C++ -*-===//
//
// Reads a HuggingFace tokenizer.json (byte-level BPE as used by GPT-2, Qwen2,
// Qwen3, Qwen3.5) and encodes/decodes text. Everything is data driven: the
// pre-tokenizer regex, the vocabulary, the merges and the added tokens all
// come from the file. PCRE2 runs the regex, utf8proc does NFC.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_RT_TOKENIZER_H
#define QWEN_RT_TOKENIZER_H

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace qwen::rt {

class Tokenizer {
public:
  /// Loads a HuggingFace tokenizer.json (byte-level BPE). Throws Error with a
  /// clear message (missing file, malformed JSON, unsupported
  /// model/normalizer/pre-tokenizer type).
  static Tokenizer fromFile(const std::string &path);
  /// Same, from the JSON text itself; `origin` names the source in errors.
  static Tokenizer fromJsonString(std::string_view json,
                                  const std::string &origin = "<string>");

  /// parseSpecial: added/special tokens written in the text (e.g.
  /// "<|im_start|>") become their ids. With parseSpecial = false, tokens
  /// marked special are encoded as ordinary text; non-special added tokens
  /// (e.g. Qwen3's "<think>") are still recognised, as in HF tokenizers.
  /// Throws Error if `text` is not valid UTF-8. Thread-safe.
  std::vector<int32_t> encode(std::string_view text,
                              bool parseSpecial = true) const;
  /// The tokenizer.json post-processor's single-sequence template applied to
  /// encoded `ids` (HF's add_special_tokens=True): Qwen3-Embedding's appends
  /// <|endoftext|>; ByteLevel (Qwen3) adds nothing. Throws Error for a
  /// post-processor type other than TemplateProcessing / ByteLevel / Sequence.
  std::vector<int32_t> postProcess(std::vector<int32_t> ids) const;
  /// Concatenated token bytes; invalid UTF-8 becomes U+FFFD (one per maximal
  /// invalid subpart). skipSpecial drops tokens marked special. Ids in range
  /// that name no token contribute nothing.
  std::string decode(const std::vector<int32_t> &ids,
                     bool skipSpecial = false) const;
  /// Raw bytes of one token after byte-level decoding (may be a partial UTF-8
  /// sequence). Added tokens give their content.
  std::string tokenBytes(int32_t id) const;
  /// Vocab or added token text.
  std::optional<int32_t> tokenToId(std::string_view token) const;
  bool isSpecial(int32_t id) const;
  /// Max id + 1 over the BPE vocab and added tokens.
  int32_t vocabSize() const;

  /// A moved-from Tokenizer may only be assigned to or destroyed.
  Tokenizer(Tokenizer &&) noexcept;
  Tokenizer &operator=(Tokenizer &&) noexcept;
  ~Tokenizer();

private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl;
};

/// Offset of the first byte of `text` that is not part of valid UTF-8, or
/// std::string_view::npos (so callers can point at a user's own input).
size_t firstInvalidUtf8Byte(std::string_view text);

/// Incremental detokenizer for streaming: returns only complete UTF-8 text.
/// The concatenation of all push() results and finish() equals
/// Tokenizer::decode of the same ids. The tokenizer must outlive the decoder.
class StreamingDecoder {
public:
  explicit StreamingDecoder(const Tokenizer &tokenizer,
                            bool skipSpecial = false);
  /// Text that became complete with this token ("" if none).
  std::string push(int32_t id);
  /// The rest; invalid/incomplete bytes become U+FFFD.
  std::string finish();

private:
  const Tokenizer *tokenizer;
  bool skipSpecial;
  std::string pending; // bytes not yet returned (an incomplete UTF-8 tail)
};

} // namespace qwen::rt

#endif // QWEN_RT_TOKENIZER_H
