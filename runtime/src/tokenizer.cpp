//===- tokenizer.cpp - Byte-level BPE tokenizer ---------------------------===//
//
// A reader for HuggingFace tokenizer.json files describing a byte-level BPE
// tokenizer, following the semantics of the `tokenizers` library:
//
//   1. added tokens with normalized=false are split out of the raw text
//      (leftmost-longest match; lstrip/rstrip/single_word honoured),
//   2. the remaining pieces are normalized (NFC & co. through utf8proc),
//   3. added tokens with normalized=true are split out of those,
//   4. the pre-tokenizer steps (Split regexes through PCRE2, ByteLevel) cut
//      the rest into words,
//   5. each word's bytes go through BPE by merge rank (results cached).
//
// Decoding maps every token's byte-level characters back to bytes and turns
// invalid UTF-8 into U+FFFD the way Rust's String::from_utf8_lossy does.
//
//===----------------------------------------------------------------------===//

#include "qwen_rt/tokenizer.h"
#include "qwen_rt/error.h"
#include "qwen_rt/json_input.h"
#include "qwen_rt/limits.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <utf8proc.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <mutex>
#include <queue>
#include <sstream>
#include <unordered_map>

namespace qwen::rt {

namespace {

using Json = nlohmann::json;

//===----------------------------------------------------------------------===//
// UTF-8 helpers
//===----------------------------------------------------------------------===//

constexpr const char *kReplacementChar = "\xEF\xBF\xBD"; // U+FFFD

struct Utf8Step {
  size_t len;     // bytes consumed (a maximal subpart when invalid)
  bool valid;     // a complete, well-formed sequence
  bool truncated; // a well-formed prefix cut short by the end of the input
};

/// Classifies the UTF-8 sequence starting at s[0] (n >= 1 bytes available)
/// following the Unicode "maximal subpart" practice (as Rust's
/// from_utf8_lossy and Python's errors='replace' do).
Utf8Step utf8Step(const unsigned char *s, size_t n) {
  unsigned char c = s[0];
  if (c < 0x80)
    return {1, true, false};
  size_t need;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    need = 1;
  } else if (c == 0xE0) {
    need = 2;
    lo = 0xA0;
  } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
    need = 2;
  } else if (c == 0xED) {
    need = 2;
    hi = 0x9F;
  } else if (c == 0xF0) {
    need = 3;
    lo = 0x90;
  } else if (c >= 0xF1 && c <= 0xF3) {
    need = 3;
  } else if (c == 0xF4) {
    need = 3;
    hi = 0x8F;
  } else {
    return {1, false, false};
  }
  for (size_t i = 1; i <= need; ++i) {
    if (i >= n)
      return {i, false, true};
    unsigned char b = s[i];
    unsigned char l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xBF;
    if (b < l || b > h)
      return {i, false, false};
  }
  return {need + 1, true, false};
}

/// Appends `in` to `out`, replacing each maximal invalid subpart by U+FFFD.
/// When `final` is false, a well-formed but incomplete sequence at the very
/// end is left unconsumed. Returns the number of bytes consumed.
size_t appendLossyUtf8(std::string_view in, std::string &out, bool final) {
  const auto *p = reinterpret_cast<const unsigned char *>(in.data());
  size_t n = in.size(), i = 0, runStart = 0;
  while (i < n) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    Utf8Step st = utf8Step(p + i, n - i);
    if (st.valid) {
      i += st.len;
      continue;
    }
    out.append(in.data() + runStart, i - runStart);
    if (st.truncated && !final)
      return i;
    out += kReplacementChar;
    i += st.len;
    runStart = i;
  }
  out.append(in.data() + runStart, n - runStart);
  return n;
}

/// Offset of the first invalid UTF-8 byte, or npos.
size_t findInvalidUtf8(std::string_view in) {
  const auto *p = reinterpret_cast<const unsigned char *>(in.data());
  size_t n = in.size(), i = 0;
  while (i < n) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    Utf8Step st = utf8Step(p + i, n - i);
    if (!st.valid)
      return i;
    i += st.len;
  }
  return std::string_view::npos;
}

void appendUtf8(std::string &out, int32_t cp) {
  unsigned char buf[4];
  utf8proc_ssize_t len = utf8proc_encode_char(cp, buf);
  out.append(reinterpret_cast<const char *>(buf), static_cast<size_t>(len));
}

/// Rust's char::is_whitespace / regex \s: the White_Space property.
bool isWhiteSpace(int32_t cp) {
  if ((cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85)
    return true;
  if (cp < 0x80)
    return false;
  utf8proc_category_t cat = utf8proc_category(cp);
  return cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL ||
         cat == UTF8PROC_CATEGORY_ZP;
}

/// Rust regex's Unicode \w (Alphabetic, marks, decimal digits, connector
/// punctuation, join controls), approximated by general categories.
bool isWordChar(int32_t cp) {
  if (cp < 0x80)
    return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') ||
           (cp >= 'A' && cp <= 'Z') || cp == '_';
  if (cp == 0x200C || cp == 0x200D)
    return true;
  switch (utf8proc_category(cp)) {
  case UTF8PROC_CATEGORY_LU:
  case UTF8PROC_CATEGORY_LL:
  case UTF8PROC_CATEGORY_LT:
  case UTF8PROC_CATEGORY_LM:
  case UTF8PROC_CATEGORY_LO:
  case UTF8PROC_CATEGORY_MN:
  case UTF8PROC_CATEGORY_MC:
  case UTF8PROC_CATEGORY_ME:
  case UTF8PROC_CATEGORY_ND:
  case UTF8PROC_CATEGORY_NL:
  case UTF8PROC_CATEGORY_PC:
    return true;
  default:
    return false;
  }
}

/// First code point of a valid UTF-8 string (non-empty).
int32_t firstCodePoint(std::string_view s) {
  utf8proc_int32_t cp = -1;
  utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t *>(s.data()),
                   static_cast<utf8proc_ssize_t>(s.size()), &cp);
  return cp;
}

/// Start offset of the last code point of a valid UTF-8 string (non-empty).
size_t lastCodePointStart(std::string_view s) {
  size_t i = s.size() - 1;
  while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80)
    --i;
  return i;
}

//===----------------------------------------------------------------------===//
// GPT-2 byte-level alphabet
//===----------------------------------------------------------------------===//

struct ByteAlphabet {
  std::array<int32_t, 256> byteToChar{};
  std::array<std::string, 256> byteToUtf8;
  std::array<int16_t, 324> charToByte{}; // code points used are < 0x144

  ByteAlphabet() {
    charToByte.fill(-1);
    std::array<bool, 256> direct{};
    for (int b = '!'; b <= '~'; ++b)
      direct[b] = true;
    for (int b = 0xA1; b <= 0xAC; ++b)
      direct[b] = true;
    for (int b = 0xAE; b <= 0xFF; ++b)
      direct[b] = true;
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      int32_t cp = direct[b] ? b : 256 + n++;
      byteToChar[b] = cp;
      charToByte[cp] = static_cast<int16_t>(b);
      appendUtf8(byteToUtf8[b], cp);
    }
  }

  /// Byte-level encoding of raw bytes.
  std::string encode(std::string_view bytes) const {
    std::string out;
    out.reserve(bytes.size() * 2);
    for (unsigned char b : bytes)
      out += byteToUtf8[b];
    return out;
  }

  /// HF ByteLevel decoder for one token: every character maps back to its
  /// byte, or if any does not, the token's own UTF-8 bytes are used.
  std::string decodeToken(std::string_view text) const {
    std::string out;
    out.reserve(text.size());
    const auto *p = reinterpret_cast<const utf8proc_uint8_t *>(text.data());
    utf8proc_ssize_t n = static_cast<utf8proc_ssize_t>(text.size()), i = 0;
    while (i < n) {
      utf8proc_int32_t cp;
      utf8proc_ssize_t len = utf8proc_iterate(p + i, n - i, &cp);
      if (len <= 0 || cp < 0 || cp >= static_cast<int32_t>(charToByte.size()) ||
          charToByte[cp] < 0)
        return std::string(text);
      out += static_cast<char>(charToByte[cp]);
      i += len;
    }
    return out;
  }
};

const ByteAlphabet &byteAlphabet() {
  static const ByteAlphabet alphabet;
  return alphabet;
}

//===----------------------------------------------------------------------===//
// PCRE2 regex
//===----------------------------------------------------------------------===//

/// HF tokenizers run Split regexes with Oniguruma (Ruby syntax). PCRE2
/// agrees on almost everything; the shorthand classes that differ under UCP
/// are rewritten to the Oniguruma meaning with Unicode properties:
///   \s  White_Space (PCRE2 also counts U+180E, which is Cf since Unicode 6.3)
///   \w  letters, marks, numbers, connector punctuation (PCRE2: L, N, '_')
///   \h  a hexadecimal digit (PCRE2: horizontal white space)
std::string onigurumaToPcre2(const std::string &pattern) {
  static constexpr const char *kSpace = "\\t\\n\\x0B\\f\\r\\x{85}\\p{Z}";
  static constexpr const char *kWord = "\\p{L}\\p{M}\\p{N}\\p{Pc}";
  static constexpr const char *kHex = "0-9A-Fa-f";
  std::string out;
  out.reserve(pattern.size() * 2);
  bool inClass = false;
  size_t i = 0, n = pattern.size();
  while (i < n) {
    char c = pattern[i];
    if (c == '\\' && i + 1 < n) {
      char d = pattern[i + 1];
      if (d == 'Q') { // quoted literal text up to \E
        size_t end = pattern.find("\\E", i + 2);
        end = end == std::string::npos ? n : end + 2;
        out.append(pattern, i, end - i);
        i = end;
        continue;
      }
      const char *set = d == 's' || d == 'S'   ? kSpace
                        : d == 'w' || d == 'W' ? kWord
                        : d == 'h' || d == 'H' ? kHex
                                               : nullptr;
      bool negated = d == 'S' || d == 'W' || d == 'H';
      if (set && !(inClass && negated)) {
        if (inClass) {
          out += set;
        } else {
          out += negated ? "[^" : "[";
          out += set;
          out += ']';
        }
      } else {
        out += c;
        out += d;
      }
      i += 2;
      continue;
    }
    if (!inClass && c == '[') {
      inClass = true;
      out += c;
      ++i;
      if (i < n && pattern[i] == '^')
        out += pattern[i++];
      if (i < n && pattern[i] == ']') // a leading ']' is literal
        out += pattern[i++];
      continue;
    }
    if (inClass && c == '[' && i + 1 < n && pattern[i + 1] == ':') {
      size_t end = pattern.find(":]", i + 2);
      if (end != std::string::npos) {
        out.append(pattern, i, end + 2 - i);
        i = end + 2;
        continue;
      }
    }
    if (inClass && c == ']')
      inClass = false;
    out += c;
    ++i;
  }
  return out;
}

/// A compiled PCRE2 pattern (UTF + UCP, JIT when available). Immutable after
/// construction and safe to use from several threads.
class Regex {
public:
  Regex(const std::string &pattern, bool literal, const std::string &origin) {
    int errorCode = 0;
    PCRE2_SIZE errorOffset = 0;
    // PCRE2_LITERAL admits no pattern options such as UCP. \C would match
    // one byte of a multi-byte character and cut UTF-8 apart.
    uint32_t options =
        PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP | PCRE2_NEVER_BACKSLASH_C);
    std::string source = literal ? pattern : onigurumaToPcre2(pattern);
    code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(source.data()),
                         source.size(), options, &errorCode, &errorOffset,
                         nullptr);
    if (!code) {
      PCRE2_UCHAR buffer[256];
      pcre2_get_error_message(errorCode, buffer, sizeof(buffer));
      throw Error("tokenizer '" + origin +
                  "': cannot compile pre-tokenizer regex '" + pattern +
                  "' (as PCRE2: '" + source + "') at offset " +
                  std::to_string(errorOffset) + ": " +
                  reinterpret_cast<const char *>(buffer));
    }
    // JIT is an optimisation only: fall back to the interpreter silently.
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  }
  Regex(const Regex &) = delete;
  Regex &operator=(const Regex &) = delete;
  ~Regex() { pcre2_code_free(code); }

  /// Appends the [start, end) byte ranges of all non-empty, non-overlapping
  /// matches in `subject` (valid UTF-8) to `out`.
  void findAll(std::string_view subject,
               std::vector<std::pair<size_t, size_t>> &out) const {
    MatchState state(code);
    auto *sub = reinterpret_cast<PCRE2_SPTR>(subject.data());
    size_t offset = 0, n = subject.size();
    while (offset <= n) {
      int rc = state.match(sub, n, offset);
      if (rc == PCRE2_ERROR_NOMATCH)
        break;
      if (rc < 0) {
        PCRE2_UCHAR buffer[256];
        pcre2_get_error_message(rc, buffer, sizeof(buffer));
        throw Error(std::string("tokenizer: pre-tokenizer regex failed: ") +
                    reinterpret_cast<const char *>(buffer));
      }
      PCRE2_SIZE *ov = pcre2_get_ovector_pointer(state.matchData);
      size_t start = ov[0], end = ov[1];
      if (end > start) {
        out.emplace_back(start, end);
        offset = end;
      } else {
        // Empty match: produce nothing and step over one character.
        if (start >= n)
          break;
        offset = start + 1;
        while (offset < n &&
               (static_cast<unsigned char>(subject[offset]) & 0xC0) == 0x80)
          ++offset;
      }
    }
  }

private:
  /// Per-call match data; a larger JIT stack is set up only if needed.
  struct MatchState {
    explicit MatchState(const pcre2_code *code)
        : matchData(pcre2_match_data_create_from_pattern(code, nullptr)),
          code(code) {
      if (!matchData)
        throw Error("tokenizer: out of memory creating PCRE2 match data");
    }
    ~MatchState() {
      pcre2_match_data_free(matchData);
      if (context)
        pcre2_match_context_free(context);
      if (jitStack)
        pcre2_jit_stack_free(jitStack);
    }
    int match(PCRE2_SPTR subject, size_t n, size_t offset) {
      int rc = pcre2_match(code, subject, n, offset, PCRE2_NO_UTF_CHECK,
                           matchData, context);
      if (rc == PCRE2_ERROR_JIT_STACKLIMIT && !jitStack) {
        context = pcre2_match_context_create(nullptr);
        jitStack = pcre2_jit_stack_create(64 * 1024, 64 * 1024 * 1024, nullptr);
        if (!context || !jitStack)
          throw Error("tokenizer: out of memory creating a PCRE2 JIT stack");
        pcre2_jit_stack_assign(context, nullptr, jitStack);
        rc = pcre2_match(code, subject, n, offset, PCRE2_NO_UTF_CHECK,
                         matchData, context);
      }
      return rc;
    }
    pcre2_match_data *matchData;
    const pcre2_code *code;
    pcre2_match_context *context = nullptr;
    pcre2_jit_stack *jitStack = nullptr;
  };

  pcre2_code *code = nullptr;
};

//===----------------------------------------------------------------------===//
// Configuration pieces
//===----------------------------------------------------------------------===//

struct AddedToken {
  int32_t id = -1;
  std::string content;
  std::string pattern; // what is matched: content, normalized if `normalized`
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
  bool singleWord = false;
};

/// Leftmost-longest matcher over a set of added tokens.
struct AddedTokenMatcher {
  // Token indices by first byte, longest content first.
  std::array<std::vector<uint32_t>, 256> byFirstByte;
  bool empty = true;
};

enum class NormalForm { NFC, NFD, NFKC, NFKD };

enum class SplitBehavior {
  Removed,
  Isolated,
  MergedWithPrevious,
  MergedWithNext,
  Contiguous
};

struct PreTokenizerStep {
  bool isByteLevel = false;
  bool addPrefixSpace = false;        // ByteLevel only
  std::shared_ptr<const Regex> regex; // null: no splitting
  SplitBehavior behavior = SplitBehavior::Isolated;
  bool invert = false;
};

constexpr const char *kGpt2Pattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|"
    "\\s+(?!\\S)|\\s+";

/// Words longer than this (in bytes) are not cached.
/// Ids may leave gaps (reserved ids no token uses) of this many beyond twice
/// the number of tokens a tokenizer.json defines.
constexpr int64_t kSparseIdAllowance = 1 << 16;
constexpr size_t kMaxCachedWordBytes = 256;
/// The cache is cleared when it grows beyond this many words.
constexpr size_t kMaxCacheEntries = 1 << 18;

struct MergeInfo {
  int32_t rank;
  int32_t newId;
};

uint64_t pairKey(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) |
         static_cast<uint32_t>(b);
}

std::string typeOf(const Json &j) {
  if (j.is_object()) {
    auto it = j.find("type");
    if (it != j.end() && it->is_string())
      return it->get<std::string>();
  }
  return "";
}

bool boolField(const Json &j, const char *name, bool dflt) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null())
    return dflt;
  if (!it->is_boolean())
    throw std::invalid_argument(std::string("field '") + name +
                                "' is not a boolean");
  return it->get<bool>();
}

} // namespace

//===----------------------------------------------------------------------===//
// Tokenizer::Impl
//===----------------------------------------------------------------------===//

struct Tokenizer::Impl {
  std::string origin;

  // Model.
  std::unordered_map<std::string, int32_t> vocab; // byte-level text -> id
  std::unordered_map<uint64_t, MergeInfo> merges;
  std::array<int32_t, 256> byteIds{}; // id of each single byte, -1 if none
  bool ignoreMerges = false;
  bool byteFallback = false;
  int32_t unkId = -1;
  bool fuseUnk = false;

  // Added tokens.
  std::vector<AddedToken> added;
  std::unordered_map<std::string, int32_t> addedByContent;
  AddedTokenMatcher rawMatcher;        // normalized == false
  AddedTokenMatcher normalizedMatcher; // normalized == true

  std::vector<NormalForm> normalizers;
  std::vector<PreTokenizerStep> preTokenizer;

  // Post-processor, single-sequence template (HF add_special_tokens=True):
  // ids added before and after the text's ids. ByteLevel adds none.
  std::vector<int32_t> prefixIds, suffixIds;
  std::string unsupportedPostProcessor; // non-empty: its type, refused when used

  // Id tables, size = vocabSize.
  std::vector<std::string> idText;  // vocab or added token text
  std::vector<std::string> idBytes; // decoded bytes
  std::vector<uint8_t> idFlags;     // bit 0: has a token, bit 1: special

  // Word cache: raw word bytes -> ids.
  mutable std::mutex cacheMutex;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache;

  [[noreturn]] void fail(const std::string &what) const {
    throw Error("tokenizer '" + origin + "': " + what);
  }

  void load(const Json &root);
  void loadModel(const Json &model);
  void loadAddedTokens(const Json &list);
  void loadNormalizer(const Json &normalizer);
  void loadPreTokenizer(const Json &preTokenizer);
  void addPreTokenizerStep(const Json &step);
  void loadDecoder(const Json &decoder);
  void loadPostProcessor(const Json &processor);
  void buildMatcher(AddedTokenMatcher &matcher, bool normalized);

  int32_t vocabSize() const { return static_cast<int32_t>(idText.size()); }
  void checkId(int32_t id) const {
    if (id < 0 || id >= vocabSize())
      throw Error("token id " + std::to_string(id) + " is out of range [0, " +
                  std::to_string(vocabSize()) + ")");
  }

  // Encoding.
  struct Segment {
    std::string_view text;
    int32_t addedId; // -1: ordinary text
  };
  void splitAdded(std::string_view s, const AddedTokenMatcher &matcher,
                  bool parseSpecial, std::vector<Segment> &out) const;
  std::string normalize(std::string_view s) const;
  void preTokenize(std::string_view s, std::deque<std::string> &arena,
                   std::vector<std::string_view> &words) const;
  void encodeWord(std::string_view word, std::vector<int32_t> &ids) const;
  void bpe(std::string_view word, std::vector<int32_t> &ids) const;
  std::vector<int32_t> encode(std::string_view text, bool parseSpecial) const;
};

void Tokenizer::Impl::load(const Json &root) {
  if (!root.is_object())
    fail("the top-level JSON value is not an object");
  auto modelIt = root.find("model");
  if (modelIt == root.end() || !modelIt->is_object())
    fail("missing 'model' object");
  loadModel(*modelIt);

  auto addedIt = root.find("added_tokens");
  if (addedIt != root.end() && !addedIt->is_null())
    loadAddedTokens(*addedIt);

  loadNormalizer(root.contains("normalizer") ? root["normalizer"] : Json());
  loadPreTokenizer(root.contains("pre_tokenizer") ? root["pre_tokenizer"]
                                                  : Json());
  loadDecoder(root.contains("decoder") ? root["decoder"] : Json());
  loadPostProcessor(root.contains("post_processor") ? root["post_processor"] : Json());
  buildMatcher(rawMatcher, /*normalized=*/false);
  buildMatcher(normalizedMatcher, /*normalized=*/true);

  // Id tables.
  int32_t maxId = -1;
  for (const auto &[text, id] : vocab)
    maxId = std::max(maxId, id);
  for (const AddedToken &tok : added)
    maxId = std::max(maxId, tok.id);
  if (maxId < 0)
    fail("the vocabulary is empty");
  // The tables below are sized by the largest id; ids that sparse would let
  // a small file claim a large allocation. Real vocabularies are dense.
  const int64_t defined = static_cast<int64_t>(vocab.size() + added.size());
  if (maxId >= 2 * defined + kSparseIdAllowance)
    fail("token ids are too sparse: the largest is " + std::to_string(maxId) + ", but only " +
         std::to_string(defined) + " tokens are defined");
  size_t size = static_cast<size_t>(maxId) + 1;
  idText.assign(size, std::string());
  idBytes.assign(size, std::string());
  idFlags.assign(size, 0);
  for (const auto &[text, id] : vocab) {
    idText[id] = text;
    idFlags[id] |= 1;
  }
  for (const AddedToken &tok : added) {
    // Decoding uses the normalized form of normalized tokens (as HF does).
    idText[tok.id] =
        tok.normalized && !tok.pattern.empty() ? tok.pattern : tok.content;
    idFlags[tok.id] = 1 | (tok.special ? 2 : 0);
  }
  const ByteAlphabet &alphabet = byteAlphabet();
  for (size_t id = 0; id < size; ++id)
    if (idFlags[id] & 1)
      idBytes[id] = alphabet.decodeToken(idText[id]);
}

void Tokenizer::Impl::loadModel(const Json &model) {
  std::string type = typeOf(model);
  if (type.empty() && !model.contains("merges"))
    fail("model has no 'type' (expected \"BPE\")");
  if (!type.empty() && type != "BPE")
    fail("unsupported model type '" + type +
         "' (only byte-level \"BPE\" is supported)");

  auto dropout = model.find("dropout");
  if (dropout != model.end() && dropout->is_number() &&
      dropout->get<double>() > 0.0)
    fail("BPE dropout is not supported");
  for (const char *field :
       {"continuing_subword_prefix", "end_of_word_suffix"}) {
    auto it = model.find(field);
    if (it != model.end() && it->is_string() && !it->get<std::string>().empty())
      fail(std::string("BPE '") + field + "' is not supported");
  }
  try {
    ignoreMerges = boolField(model, "ignore_merges", false);
    byteFallback = boolField(model, "byte_fallback", false);
    fuseUnk = boolField(model, "fuse_unk", false);
  } catch (const std::invalid_argument &e) {
    fail(std::string("model: ") + e.what());
  }

  auto vocabIt = model.find("vocab");
  if (vocabIt == model.end() || !vocabIt->is_object())
    fail("model has no 'vocab' object");
  vocab.reserve(vocabIt->size());
  for (auto it = vocabIt->begin(); it != vocabIt->end(); ++it) {
    if (!it.value().is_number_integer())
      fail("vocab entry '" + it.key() + "' does not have an integer id");
    int64_t id = it.value().get<int64_t>();
    // The id tables are sized by the largest id.
    if (id < 0 || id >= limits::kMaxVocabSize)
      fail("vocab entry '" + it.key() + "' has id " + std::to_string(id) +
           " outside [0, " + std::to_string(limits::kMaxVocabSize) + ")");
    vocab.emplace(it.key(), static_cast<int32_t>(id));
  }

  const ByteAlphabet &alphabet = byteAlphabet();
  for (int b = 0; b < 256; ++b) {
    auto it = vocab.find(alphabet.byteToUtf8[b]);
    byteIds[b] = it == vocab.end() ? -1 : it->second;
  }

  auto unk = model.find("unk_token");
  if (unk != model.end() && unk->is_string()) {
    auto it = vocab.find(unk->get<std::string>());
    if (it == vocab.end())
      fail("unk_token '" + unk->get<std::string>() + "' is not in the vocab");
    unkId = it->second;
  }

  auto mergesIt = model.find("merges");
  if (mergesIt == model.end() || !mergesIt->is_array())
    fail("model has no 'merges' array");
  merges.reserve(mergesIt->size());
  int32_t rank = 0;
  for (const Json &m : *mergesIt) {
    std::string a, b;
    if (m.is_string()) {
      const std::string &s = m.get_ref<const std::string &>();
      size_t space = s.find(' ', 1);
      if (space == std::string::npos)
        fail("merge #" + std::to_string(rank) + " '" + s +
             "' is not of the form \"a b\"");
      a = s.substr(0, space);
      b = s.substr(space + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() &&
               m[1].is_string()) {
      a = m[0].get<std::string>();
      b = m[1].get<std::string>();
    } else {
      fail("merge #" + std::to_string(rank) +
           " is neither \"a b\" nor [\"a\", \"b\"]");
    }
    auto ia = vocab.find(a), ib = vocab.find(b), iab = vocab.find(a + b);
    if (ia == vocab.end() || ib == vocab.end() || iab == vocab.end())
      fail("merge #" + std::to_string(rank) + " ('" + a + "', '" + b +
           "') uses a token that is not in the vocab");
    // The first (lowest-rank) occurrence of a pair wins.
    merges.emplace(pairKey(ia->second, ib->second),
                   MergeInfo{rank, iab->second});
    ++rank;
  }
}

void Tokenizer::Impl::loadAddedTokens(const Json &list) {
  if (!list.is_array())
    fail("'added_tokens' is not an array");
  for (const Json &entry : list) {
    if (!entry.is_object() || !entry.contains("id") ||
        !entry["id"].is_number_integer() || !entry.contains("content") ||
        !entry["content"].is_string())
      fail("an added_tokens entry lacks an integer 'id' or string 'content'");
    AddedToken tok;
    int64_t id = entry["id"].get<int64_t>();
    if (id < 0 || id >= limits::kMaxVocabSize)
      fail("added token has id " + std::to_string(id) + " outside [0, " +
           std::to_string(limits::kMaxVocabSize) + ")");
    tok.id = static_cast<int32_t>(id);
    tok.content = entry["content"].get<std::string>();
    try {
      tok.special = boolField(entry, "special", false);
      tok.lstrip = boolField(entry, "lstrip", false);
      tok.rstrip = boolField(entry, "rstrip", false);
      tok.normalized = boolField(entry, "normalized", !tok.special);
      tok.singleWord = boolField(entry, "single_word", false);
    } catch (const std::invalid_argument &e) {
      fail("added token '" + tok.content + "': " + e.what());
    }
    if (findInvalidUtf8(tok.content) != std::string::npos)
      fail("added token id " + std::to_string(tok.id) + " is not valid UTF-8");
    // As in HF tokenizers, a token whose content is already known (added
    // earlier or in the BPE vocab) keeps that id.
    if (auto it = addedByContent.find(tok.content); it != addedByContent.end())
      tok.id = it->second;
    else if (auto v = vocab.find(tok.content); v != vocab.end())
      tok.id = v->second;
    addedByContent[tok.content] = tok.id;
    auto same =
        std::find_if(added.begin(), added.end(),
                     [&](const AddedToken &t) { return t.id == tok.id; });
    if (same != added.end())
      *same = std::move(tok);
    else
      added.push_back(std::move(tok));
  }
}

void Tokenizer::Impl::buildMatcher(AddedTokenMatcher &matcher,
                                   bool normalized) {
  std::vector<uint32_t> order;
  for (uint32_t i = 0; i < added.size(); ++i) {
    if (added[i].normalized != normalized || added[i].content.empty())
      continue;
    added[i].pattern =
        normalized ? normalize(added[i].content) : added[i].content;
    if (!added[i].pattern.empty())
      order.push_back(i);
  }
  std::sort(order.begin(), order.end(), [&](uint32_t x, uint32_t y) {
    size_t lx = added[x].pattern.size(), ly = added[y].pattern.size();
    return lx != ly ? lx > ly : x < y;
  });
  for (uint32_t i : order)
    matcher.byFirstByte[static_cast<unsigned char>(added[i].pattern[0])]
        .push_back(i);
  matcher.empty = order.empty();
}

void Tokenizer::Impl::loadNormalizer(const Json &normalizer) {
  if (normalizer.is_null())
    return;
  std::string type = typeOf(normalizer);
  auto addForm = [&](const std::string &t) {
    if (t == "NFC")
      normalizers.push_back(NormalForm::NFC);
    else if (t == "NFD")
      normalizers.push_back(NormalForm::NFD);
    else if (t == "NFKC")
      normalizers.push_back(NormalForm::NFKC);
    else if (t == "NFKD")
      normalizers.push_back(NormalForm::NFKD);
    else
      fail("unsupported normalizer type '" + t +
           "' (supported: NFC, NFD, NFKC, NFKD, Sequence of those)");
  };
  if (type == "Sequence") {
    auto it = normalizer.find("normalizers");
    if (it == normalizer.end() || !it->is_array())
      fail("normalizer Sequence has no 'normalizers' array");
    for (const Json &n : *it) {
      std::string t = typeOf(n);
      if (t == "Sequence")
        fail("nested normalizer Sequence is not supported");
      addForm(t);
    }
    return;
  }
  addForm(type);
}

void Tokenizer::Impl::loadPreTokenizer(const Json &preTokenizer) {
  if (preTokenizer.is_null())
    fail("pre_tokenizer is null; a byte-level BPE tokenizer needs a "
         "ByteLevel pre-tokenizer");
  if (typeOf(preTokenizer) == "Sequence") {
    auto it = preTokenizer.find("pretokenizers");
    if (it == preTokenizer.end() || !it->is_array())
      fail("pre_tokenizer Sequence has no 'pretokenizers' array");
    for (const Json &step : *it)
      addPreTokenizerStep(step);
  } else {
    addPreTokenizerStep(preTokenizer);
  }
  if (this->preTokenizer.empty() || !this->preTokenizer.back().isByteLevel)
    fail("pre_tokenizer must end with a ByteLevel step (only byte-level BPE "
         "is supported)");
}

void Tokenizer::Impl::addPreTokenizerStep(const Json &step) {
  std::string type = typeOf(step);
  if (!preTokenizer.empty() && preTokenizer.back().isByteLevel)
    fail("pre_tokenizer step '" + type +
         "' after ByteLevel is not supported (ByteLevel must be last)");
  PreTokenizerStep out;
  try {
    if (type == "ByteLevel") {
      out.isByteLevel = true;
      out.addPrefixSpace = boolField(step, "add_prefix_space", true);
      if (boolField(step, "use_regex", true))
        out.regex = std::make_shared<Regex>(kGpt2Pattern, false, origin);
    } else if (type == "Split") {
      auto pattern = step.find("pattern");
      if (pattern == step.end() || !pattern->is_object())
        fail("Split pre-tokenizer has no 'pattern' object");
      if (pattern->contains("Regex") && (*pattern)["Regex"].is_string())
        out.regex = std::make_shared<Regex>(
            (*pattern)["Regex"].get<std::string>(), false, origin);
      else if (pattern->contains("String") && (*pattern)["String"].is_string())
        out.regex = std::make_shared<Regex>(
            (*pattern)["String"].get<std::string>(), true, origin);
      else
        fail("Split pattern must be {\"Regex\": ...} or {\"String\": ...}");
      std::string behavior = step.value("behavior", std::string("Isolated"));
      if (behavior == "Removed")
        out.behavior = SplitBehavior::Removed;
      else if (behavior == "Isolated")
        out.behavior = SplitBehavior::Isolated;
      else if (behavior == "MergedWithPrevious")
        out.behavior = SplitBehavior::MergedWithPrevious;
      else if (behavior == "MergedWithNext")
        out.behavior = SplitBehavior::MergedWithNext;
      else if (behavior == "Contiguous")
        out.behavior = SplitBehavior::Contiguous;
      else
        fail("unsupported Split behavior '" + behavior + "'");
      out.invert = boolField(step, "invert", false);
    } else if (type == "Digits") {
      bool individual = boolField(step, "individual_digits", false);
      out.regex = std::make_shared<Regex>(individual ? "\\p{N}" : "\\p{N}+",
                                          false, origin);
    } else {
      fail("unsupported pre_tokenizer type '" +
           (type.empty() ? std::string("<none>") : type) +
           "' (supported: Sequence, Split, ByteLevel, Digits)");
    }
  } catch (const std::invalid_argument &e) {
    fail("pre_tokenizer " + type + ": " + e.what());
  } catch (const Json::exception &e) {
    fail("pre_tokenizer " + type + ": " + e.what());
  }
  preTokenizer.push_back(std::move(out));
}

void Tokenizer::Impl::loadDecoder(const Json &decoder) {
  std::string type = typeOf(decoder);
  if (type == "ByteLevel")
    return;
  if (type == "Sequence") {
    auto it = decoder.find("decoders");
    if (it != decoder.end() && it->is_array() && it->size() == 1 &&
        typeOf((*it)[0]) == "ByteLevel")
      return;
  }
  fail("unsupported decoder '" +
       (decoder.is_null() ? std::string("null") : type) +
       "' (only ByteLevel is supported)");
}

/// TemplateProcessing's "single" template ($A plus special tokens, e.g.
/// Qwen3-Embedding's [$A, <|endoftext|>]), inside a Sequence or alone.
/// ByteLevel changes offsets only. Other types load (encode() never applies
/// a post-processor) and are refused by postProcess().
void Tokenizer::Impl::loadPostProcessor(const Json &processor) {
  std::string type = processor.is_null() ? "" : typeOf(processor);
  if (type.empty() || type == "ByteLevel")
    return;
  if (type == "Sequence") {
    auto it = processor.find("processors");
    if (it == processor.end() || !it->is_array())
      fail("post_processor 'Sequence' lacks a 'processors' array");
    for (const Json &step : *it)
      loadPostProcessor(step);
    return;
  }
  if (type != "TemplateProcessing") {
    unsupportedPostProcessor = type;
    return;
  }
  auto single = processor.find("single");
  auto specials = processor.find("special_tokens");
  if (single == processor.end() || !single->is_array())
    fail("post_processor 'TemplateProcessing' lacks a 'single' template");
  bool seenSequence = false;
  for (const Json &piece : *single) {
    if (piece.contains("Sequence")) {
      if (seenSequence)
        fail("post_processor template names the sequence twice");
      seenSequence = true;
      continue;
    }
    auto special = piece.find("SpecialToken");
    if (special == piece.end() || !special->is_object() || !special->contains("id") ||
        !(*special)["id"].is_string())
      fail("post_processor template piece is neither a Sequence nor a SpecialToken");
    std::string name = (*special)["id"].get<std::string>();
    if (specials == processor.end() || !specials->contains(name) ||
        !(*specials)[name].contains("ids") || !(*specials)[name]["ids"].is_array())
      fail("post_processor special token '" + name + "' has no ids in 'special_tokens'");
    for (const Json &id : (*specials)[name]["ids"]) {
      if (!id.is_number_integer())
        fail("post_processor special token '" + name + "' has a non-integer id");
      (seenSequence ? suffixIds : prefixIds).push_back(id.get<int32_t>());
    }
  }
  if (!seenSequence)
    fail("post_processor 'TemplateProcessing' single template has no Sequence");
}

//===----------------------------------------------------------------------===//
// Encoding
//===----------------------------------------------------------------------===//

void Tokenizer::Impl::splitAdded(std::string_view s,
                                 const AddedTokenMatcher &matcher,
                                 bool parseSpecial,
                                 std::vector<Segment> &out) const {
  if (s.empty())
    return;
  if (matcher.empty) {
    out.push_back({s, -1});
    return;
  }
  size_t startOffset = 0, pos = 0, n = s.size();
  while (pos < n) {
    // Leftmost-longest match at or after `pos`.
    const AddedToken *match = nullptr;
    size_t matchStart = 0;
    for (size_t i = pos; i < n && !match; ++i) {
      for (uint32_t idx :
           matcher.byFirstByte[static_cast<unsigned char>(s[i])]) {
        const std::string &c = added[idx].pattern;
        if (c.size() <= n - i &&
            std::memcmp(s.data() + i, c.data(), c.size()) == 0) {
          match = &added[idx];
          matchStart = i;
          break;
        }
      }
    }
    if (!match)
      break;
    size_t start = matchStart, stop = matchStart + match->pattern.size();
    pos = stop;
    if (!parseSpecial && match->special)
      continue;
    if (match->singleWord) {
      bool startOk =
          start == 0 || !isWordChar(firstCodePoint(
                            s.substr(lastCodePointStart(s.substr(0, start)))));
      bool stopOk = stop == n || !isWordChar(firstCodePoint(s.substr(stop)));
      if (!startOk || !stopOk)
        continue;
    }
    if (match->lstrip) {
      size_t newStart = start;
      while (newStart > 0) {
        size_t prev = lastCodePointStart(s.substr(0, newStart));
        if (!isWhiteSpace(firstCodePoint(s.substr(prev))))
          break;
        newStart = prev;
      }
      start = std::max(newStart, startOffset);
    }
    if (match->rstrip) {
      while (stop < n) {
        int32_t cp = firstCodePoint(s.substr(stop));
        if (!isWhiteSpace(cp))
          break;
        unsigned char buf[4];
        stop += static_cast<size_t>(utf8proc_encode_char(cp, buf));
      }
      pos = stop;
    }
    if (startOffset < start)
      out.push_back({s.substr(startOffset, start - startOffset), -1});
    out.push_back({s.substr(start, stop - start), match->id});
    startOffset = stop;
  }
  if (startOffset < n)
    out.push_back({s.substr(startOffset), -1});
}

std::string Tokenizer::Impl::normalize(std::string_view s) const {
  std::string current(s);
  if (normalizers.empty())
    return current;
  // ASCII is invariant under every normal form.
  if (std::all_of(current.begin(), current.end(),
                  [](char c) { return static_cast<unsigned char>(c) < 0x80; }))
    return current;
  for (NormalForm form : normalizers) {
    int options = UTF8PROC_STABLE;
    switch (form) {
    case NormalForm::NFC:
      options |= UTF8PROC_COMPOSE;
      break;
    case NormalForm::NFD:
      options |= UTF8PROC_DECOMPOSE;
      break;
    case NormalForm::NFKC:
      options |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT;
      break;
    case NormalForm::NFKD:
      options |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT;
      break;
    }
    utf8proc_uint8_t *result = nullptr;
    utf8proc_ssize_t len =
        utf8proc_map(reinterpret_cast<const utf8proc_uint8_t *>(current.data()),
                     static_cast<utf8proc_ssize_t>(current.size()), &result,
                     static_cast<utf8proc_option_t>(options));
    if (len < 0) {
      std::free(result);
      throw Error(std::string("tokenizer: Unicode normalization failed: ") +
                  utf8proc_errmsg(len));
    }
    current.assign(reinterpret_cast<const char *>(result),
                   static_cast<size_t>(len));
    std::free(result);
  }
  return current;
}

void Tokenizer::Impl::preTokenize(std::string_view s,
                                  std::deque<std::string> &arena,
                                  std::vector<std::string_view> &words) const {
  std::vector<std::string_view> pieces{s}, next;
  std::vector<std::pair<size_t, size_t>> matches;
  struct Part {
    size_t start, end;
    bool isMatch;
  };
  std::vector<Part> parts, merged;
  for (const PreTokenizerStep &step : preTokenizer) {
    next.clear();
    for (std::string_view piece : pieces) {
      if (step.isByteLevel && step.addPrefixSpace && piece.front() != ' ') {
        arena.push_back(" " + std::string(piece));
        piece = arena.back();
      }
      if (!step.regex) {
        next.push_back(piece);
        continue;
      }
      matches.clear();
      step.regex->findAll(piece, matches);
      // All parts covering the piece, flagged as match / non-match.
      parts.clear();
      size_t prev = 0;
      for (auto [start, end] : matches) {
        if (prev != start)
          parts.push_back({prev, start, step.invert});
        parts.push_back({start, end, !step.invert});
        prev = end;
      }
      if (prev != piece.size())
        parts.push_back({prev, piece.size(), step.invert});

      merged.clear();
      bool previousMatch = false;
      switch (step.behavior) {
      case SplitBehavior::Isolated:
        for (const Part &p : parts)
          merged.push_back({p.start, p.end, false});
        break;
      case SplitBehavior::Removed:
        merged = parts; // isMatch now means "remove"
        break;
      case SplitBehavior::Contiguous:
        for (const Part &p : parts) {
          if (p.isMatch == previousMatch && !merged.empty())
            merged.back().end = p.end;
          else
            merged.push_back({p.start, p.end, false});
          previousMatch = p.isMatch;
        }
        break;
      case SplitBehavior::MergedWithPrevious:
        for (const Part &p : parts) {
          if (p.isMatch && !previousMatch && !merged.empty())
            merged.back().end = p.end;
          else
            merged.push_back({p.start, p.end, false});
          previousMatch = p.isMatch;
        }
        break;
      case SplitBehavior::MergedWithNext:
        for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
          if (it->isMatch && !previousMatch && !merged.empty())
            merged.back().start = it->start;
          else
            merged.push_back({it->start, it->end, false});
          previousMatch = it->isMatch;
        }
        std::reverse(merged.begin(), merged.end());
        break;
      }
      for (const Part &p : merged)
        if (!p.isMatch && p.end > p.start)
          next.push_back(piece.substr(p.start, p.end - p.start));
    }
    pieces.swap(next);
  }
  words.insert(words.end(), pieces.begin(), pieces.end());
}

void Tokenizer::Impl::bpe(std::string_view word,
                          std::vector<int32_t> &ids) const {
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
    bool alive;
  };
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  bool pendingUnk = false;
  auto pushSymbol = [&](int32_t id) {
    int32_t index = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, index - 1, -1, true});
    if (index > 0)
      symbols[index - 1].next = index;
  };
  for (unsigned char b : word) {
    int32_t id = byteIds[b];
    if (id < 0 && byteFallback) {
      char name[8];
      std::snprintf(name, sizeof(name), "<0x%02X>", b);
      auto it = vocab.find(name);
      if (it != vocab.end())
        id = it->second;
    }
    if (id >= 0) {
      pendingUnk = false;
      pushSymbol(id);
    } else if (unkId >= 0) {
      if (!(fuseUnk && pendingUnk))
        pushSymbol(unkId);
      pendingUnk = true;
    }
    // Without an unk token, an unknown byte is dropped (as HF does).
  }
  if (symbols.empty())
    return;

  struct Candidate {
    int32_t rank;
    int32_t pos;
    bool operator>(const Candidate &o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::vector<Candidate> storage;
  storage.reserve(symbols.size());
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue(
      std::greater<>(), std::move(storage));
  auto lookup = [&](int32_t left) -> const MergeInfo * {
    int32_t right = symbols[left].next;
    if (right < 0)
      return nullptr;
    auto it = merges.find(pairKey(symbols[left].id, symbols[right].id));
    return it == merges.end() ? nullptr : &it->second;
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i)
    if (const MergeInfo *m = lookup(i))
      queue.push({m->rank, i});

  while (!queue.empty()) {
    Candidate c = queue.top();
    queue.pop();
    Symbol &left = symbols[c.pos];
    if (!left.alive)
      continue;
    const MergeInfo *m = lookup(c.pos);
    if (!m || m->rank != c.rank)
      continue; // stale
    int32_t right = left.next;
    left.id = m->newId;
    left.next = symbols[right].next;
    symbols[right].alive = false;
    if (left.next >= 0)
      symbols[left.next].prev = c.pos;
    if (left.prev >= 0)
      if (const MergeInfo *pm = lookup(left.prev))
        queue.push({pm->rank, left.prev});
    if (const MergeInfo *nm = lookup(c.pos))
      queue.push({nm->rank, c.pos});
  }
  for (int32_t i = 0; i >= 0; i = symbols[i].next)
    ids.push_back(symbols[i].id);
}

void Tokenizer::Impl::encodeWord(std::string_view word,
                                 std::vector<int32_t> &ids) const {
  if (ignoreMerges) {
    auto it = vocab.find(byteAlphabet().encode(word));
    if (it != vocab.end()) {
      ids.push_back(it->second);
      return;
    }
  }
  if (word.size() == 1 && byteIds[static_cast<unsigned char>(word[0])] >= 0) {
    ids.push_back(byteIds[static_cast<unsigned char>(word[0])]);
    return;
  }
  bool cacheable = word.size() <= kMaxCachedWordBytes;
  std::string key;
  if (cacheable) {
    key.assign(word);
    std::lock_guard<std::mutex> lock(cacheMutex);
    auto it = cache.find(key);
    if (it != cache.end()) {
      ids.insert(ids.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  size_t before = ids.size();
  bpe(word, ids);
  if (cacheable) {
    std::vector<int32_t> result(ids.begin() + static_cast<ptrdiff_t>(before),
                                ids.end());
    std::lock_guard<std::mutex> lock(cacheMutex);
    if (cache.size() >= kMaxCacheEntries)
      cache.clear();
    cache.emplace(std::move(key), std::move(result));
  }
}

std::vector<int32_t> Tokenizer::Impl::encode(std::string_view text,
                                             bool parseSpecial) const {
  size_t bad = findInvalidUtf8(text);
  if (bad != std::string_view::npos)
    throw Error("tokenizer: input text is not valid UTF-8 (byte offset " +
                std::to_string(bad) + ")");

  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  std::vector<Segment> rawSegments, segments;
  std::deque<std::string> arena;
  std::vector<std::string_view> words;

  splitAdded(text, rawMatcher, parseSpecial, rawSegments);
  for (const Segment &raw : rawSegments) {
    if (raw.addedId >= 0) {
      ids.push_back(raw.addedId);
      continue;
    }
    arena.push_back(normalize(raw.text));
    std::string_view normalized = arena.back();
    segments.clear();
    splitAdded(normalized, normalizedMatcher, parseSpecial, segments);
    for (const Segment &seg : segments) {
      if (seg.addedId >= 0) {
        ids.push_back(seg.addedId);
        continue;
      }
      words.clear();
      preTokenize(seg.text, arena, words);
      for (std::string_view word : words)
        encodeWord(word, ids);
    }
  }
  return ids;
}

//===----------------------------------------------------------------------===//
// Tokenizer
//===----------------------------------------------------------------------===//

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer &&) noexcept = default;
Tokenizer &Tokenizer::operator=(Tokenizer &&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::fromFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int err = errno;
    throw Error("cannot open tokenizer file '" + path +
                "': " + (err ? std::strerror(err) : "unknown error"));
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad())
    throw Error("cannot read tokenizer file '" + path + "'");
  return fromJsonString(buffer.str(), path);
}

Tokenizer Tokenizer::fromJsonString(std::string_view jsonText,
                                    const std::string &origin) {
  auto impl = std::make_unique<Impl>();
  impl->origin = origin;
  Json root = parseUntrustedJson(jsonText, "tokenizer '" + origin + "'");
  try {
    impl->load(root);
  } catch (const Json::exception &e) {
    impl->fail(std::string("unexpected JSON structure: ") + e.what());
  }
  return Tokenizer(std::move(impl));
}

size_t firstInvalidUtf8Byte(std::string_view text) {
  return findInvalidUtf8(text);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text,
                                       bool parseSpecial) const {
  return impl->encode(text, parseSpecial);
}

std::vector<int32_t> Tokenizer::postProcess(std::vector<int32_t> ids) const {
  if (!impl->unsupportedPostProcessor.empty())
    throw Error(impl->origin + ": post_processor '" + impl->unsupportedPostProcessor +
                "' is not supported (TemplateProcessing, ByteLevel or Sequence of them)");
  for (int32_t id : impl->prefixIds)
    impl->checkId(id);
  for (int32_t id : impl->suffixIds)
    impl->checkId(id);
  ids.insert(ids.begin(), impl->prefixIds.begin(), impl->prefixIds.end());
  ids.insert(ids.end(), impl->suffixIds.begin(), impl->suffixIds.end());
  return ids;
}

std::string Tokenizer::decode(const std::vector<int32_t> &ids,
                              bool skipSpecial) const {
  std::string bytes;
  for (int32_t id : ids) {
    impl->checkId(id);
    if (skipSpecial && (impl->idFlags[id] & 2))
      continue;
    bytes += impl->idBytes[id];
  }
  std::string out;
  out.reserve(bytes.size());
  appendLossyUtf8(bytes, out, /*final=*/true);
  return out;
}

std::string Tokenizer::tokenBytes(int32_t id) const {
  impl->checkId(id);
  return impl->idBytes[id];
}

std::optional<int32_t> Tokenizer::tokenToId(std::string_view token) const {
  std::string key(token);
  auto a = impl->addedByContent.find(key);
  if (a != impl->addedByContent.end())
    return a->second;
  auto v = impl->vocab.find(key);
  if (v != impl->vocab.end())
    return v->second;
  return std::nullopt;
}

bool Tokenizer::isSpecial(int32_t id) const {
  return id >= 0 && id < impl->vocabSize() && (impl->idFlags[id] & 2);
}

int32_t Tokenizer::vocabSize() const { return impl->vocabSize(); }

//===----------------------------------------------------------------------===//
// StreamingDecoder
//===----------------------------------------------------------------------===//

StreamingDecoder::StreamingDecoder(const Tokenizer &tokenizer, bool skipSpecial)
    : tokenizer(&tokenizer), skipSpecial(skipSpecial) {}

std::string StreamingDecoder::push(int32_t id) {
  std::string bytes = tokenizer->tokenBytes(id); // validates the id
  if (skipSpecial && tokenizer->isSpecial(id))
    return "";
  pending += bytes;
  std::string out;
  size_t consumed = appendLossyUtf8(pending, out, /*final=*/false);
  pending.erase(0, consumed);
  return out;
}

std::string StreamingDecoder::finish() {
  std::string out;
  appendLossyUtf8(pending, out, /*final=*/true);
  pending.clear();
  return out;
}

} // namespace qwen::rt
