//===- tokenizer_test.cpp - Tests for qwen::rt::Tokenizer -----------------===//
//
// The reference outputs in test/data/tokenizer/qwen3_expected.json come from
// the HuggingFace `tokenizers` library (scripts/gen_tokenizer_reference.py),
// those in qwen35_style_expected.json (a Qwen3.5-style tokenizer derived from
// the Qwen3 one) from scripts/gen_tokenizer_reference_qwen35.py.
//
//===----------------------------------------------------------------------===//

#include "qwen_rt/error.h"
#include "qwen_rt/tokenizer.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include <unistd.h>

using qwen::rt::Error;
using qwen::rt::StreamingDecoder;
using qwen::rt::Tokenizer;
using Json = nlohmann::json;

namespace {

const std::string kTokenizerPath =
    std::string(QWEN_SOURCE_DIR) +
    "/models/checkpoints/qwen3-demo/tokenizer.json";
const std::string kExpectedPath =
    std::string(QWEN_SOURCE_DIR) + "/test/data/tokenizer/qwen3_expected.json";

struct Case {
  std::string text;
  std::vector<int32_t> ids;
  std::vector<int32_t> idsNoSpecial;
  std::string decoded;
  std::string decodedSkipSpecial;
};

class TokenizerTest : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    tokenizer =
        std::make_unique<Tokenizer>(Tokenizer::fromFile(kTokenizerPath));
    std::ifstream in(kExpectedPath);
    ASSERT_TRUE(in) << "cannot open " << kExpectedPath;
    Json j = Json::parse(in);
    cases = new std::vector<Case>();
    for (const Json &e : j)
      cases->push_back({e.at("text").get<std::string>(),
                        e.at("ids").get<std::vector<int32_t>>(),
                        e.at("ids_no_special").get<std::vector<int32_t>>(),
                        e.at("decoded").get<std::string>(),
                        e.at("decoded_skip_special").get<std::string>()});
  }
  static void TearDownTestSuite() {
    tokenizer.reset();
    delete cases;
    cases = nullptr;
  }

  /// Id of the single-byte token for `byte`.
  static int32_t byteToken(unsigned char byte) {
    for (int32_t id = 0; id < tokenizer->vocabSize(); ++id) {
      std::string b = tokenizer->tokenBytes(id);
      if (b.size() == 1 && static_cast<unsigned char>(b[0]) == byte)
        return id;
    }
    ADD_FAILURE() << "no token for byte " << int(byte);
    return -1;
  }

  static inline std::unique_ptr<Tokenizer> tokenizer;
  static inline std::vector<Case> *cases = nullptr;
};

std::string printable(const std::string &s) {
  return s.size() > 80 ? s.substr(0, 80) + "..." : s;
}

// Reference checks shared by the Qwen3 and the Qwen3.5-style corpora.
void expectEncodesLikeReference(const Tokenizer &tok, const Case &c) {
  EXPECT_EQ(tok.encode(c.text), c.ids) << "text: " << printable(c.text);
  EXPECT_EQ(tok.encode(c.text, /*parseSpecial=*/false), c.idsNoSpecial)
      << "text (parseSpecial=false): " << printable(c.text);
}

void expectDecodesLikeReference(const Tokenizer &tok, const Case &c) {
  EXPECT_EQ(tok.decode(c.ids), c.decoded) << printable(c.text);
  EXPECT_EQ(tok.decode(c.ids, /*skipSpecial=*/true), c.decodedSkipSpecial) << printable(c.text);
}

void expectStreamsLikeReference(const Tokenizer &tok, const Case &c) {
  for (bool skip : {false, true}) {
    StreamingDecoder stream(tok, skip);
    std::string text;
    for (int32_t id : c.ids)
      text += stream.push(id);
    text += stream.finish();
    EXPECT_EQ(text, skip ? c.decodedSkipSpecial : c.decoded)
        << printable(c.text) << " (skipSpecial=" << skip << ")";
  }
}

template <typename F> std::string errorMessage(F &&f) {
  try {
    f();
  } catch (const Error &e) {
    return e.what();
  } catch (const std::exception &e) {
    return std::string("<not a qwen::rt::Error> ") + e.what();
  }
  return "<no exception>";
}

} // namespace

TEST_F(TokenizerTest, ReferenceCorpusLoaded) {
  ASSERT_GE(cases->size(), 50u);
  EXPECT_EQ(tokenizer->vocabSize(), 151669);
}

TEST_F(TokenizerTest, EncodeMatchesReference) {
  for (const Case &c : *cases)
    expectEncodesLikeReference(*tokenizer, c);
}

TEST_F(TokenizerTest, EncodeIsStableWithWarmCache) {
  for (int round = 0; round < 2; ++round)
    for (const Case &c : *cases)
      ASSERT_EQ(tokenizer->encode(c.text), c.ids) << printable(c.text);
}

TEST_F(TokenizerTest, DecodeMatchesReference) {
  for (const Case &c : *cases)
    expectDecodesLikeReference(*tokenizer, c);
}

TEST_F(TokenizerTest, StreamingDecodeMatchesReference) {
  for (const Case &c : *cases)
    expectStreamsLikeReference(*tokenizer, c);
}

TEST_F(TokenizerTest, ChatMLSpecialTokens) {
  EXPECT_EQ(tokenizer->tokenToId("<|im_start|>"), 151644);
  EXPECT_EQ(tokenizer->tokenToId("<|im_end|>"), 151645);
  EXPECT_EQ(tokenizer->tokenToId("<|endoftext|>"), 151643);
  EXPECT_TRUE(tokenizer->isSpecial(151644));
  EXPECT_TRUE(tokenizer->isSpecial(151645));
  EXPECT_FALSE(tokenizer->isSpecial(151667)); // <think> is added, not special
  EXPECT_FALSE(tokenizer->isSpecial(9707));
  EXPECT_FALSE(tokenizer->isSpecial(-1));
  EXPECT_FALSE(tokenizer->isSpecial(1 << 30));
  EXPECT_EQ(tokenizer->tokenToId("Hello"), 9707);
  EXPECT_EQ(tokenizer->tokenToId("ĠĠ"), tokenizer->encode("  ").at(0));
  EXPECT_EQ(tokenizer->tokenToId("definitely not a token"), std::nullopt);

  std::vector<int32_t> ids =
      tokenizer->encode("<|im_start|>user\nHi<|im_end|>");
  ASSERT_GE(ids.size(), 3u);
  EXPECT_EQ(ids.front(), 151644);
  EXPECT_EQ(ids.back(), 151645);
  EXPECT_EQ(tokenizer->tokenBytes(151644), "<|im_start|>");
  EXPECT_EQ(tokenizer->decode(ids), "<|im_start|>user\nHi<|im_end|>");
  EXPECT_EQ(tokenizer->decode(ids, /*skipSpecial=*/true), "user\nHi");

  // Without special-token parsing the markup is ordinary text.
  std::vector<int32_t> plain = tokenizer->encode("<|im_start|>", false);
  EXPECT_GT(plain.size(), 1u);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 151644), 0);
  EXPECT_EQ(tokenizer->decode(plain), "<|im_start|>");
}

TEST_F(TokenizerTest, StreamingPartialUtf8) {
  // U+1F600 = F0 9F 98 80, fed one byte-token at a time.
  const std::string emoji = "\xF0\x9F\x98\x80";
  StreamingDecoder stream(*tokenizer);
  EXPECT_EQ(stream.push(tokenizer->encode("A").at(0)), "A");
  for (size_t i = 0; i + 1 < emoji.size(); ++i)
    EXPECT_EQ(stream.push(byteToken(static_cast<unsigned char>(emoji[i]))), "");
  EXPECT_EQ(stream.push(byteToken(static_cast<unsigned char>(emoji.back()))),
            emoji);
  EXPECT_EQ(stream.finish(), "");

  // An emoji the tokenizer itself splits over several tokens.
  std::vector<int32_t> ids = tokenizer->encode("🦩");
  ASSERT_GT(ids.size(), 1u);
  StreamingDecoder stream2(*tokenizer);
  for (size_t i = 0; i + 1 < ids.size(); ++i)
    EXPECT_EQ(stream2.push(ids[i]), "");
  EXPECT_EQ(stream2.push(ids.back()), "🦩");
  EXPECT_EQ(stream2.finish(), "");
  EXPECT_EQ(tokenizer->decode(ids), "🦩");
  std::string bytes;
  for (int32_t id : ids)
    bytes += tokenizer->tokenBytes(id);
  EXPECT_EQ(bytes, "🦩");
}

TEST_F(TokenizerTest, StreamingInvalidUtf8BecomesReplacementChar) {
  const std::string fffd = "\xEF\xBF\xBD";
  int32_t f0 = byteToken(0xF0), nine9f = byteToken(0x9F);
  int32_t a = tokenizer->encode("a").at(0);
  {
    StreamingDecoder stream(*tokenizer);
    EXPECT_EQ(stream.push(f0), "");
    EXPECT_EQ(stream.push(nine9f), "");
    EXPECT_EQ(stream.finish(), fffd); // one U+FFFD for the truncated sequence
    EXPECT_EQ(tokenizer->decode({f0, nine9f}), fffd);
  }
  {
    StreamingDecoder stream(*tokenizer);
    EXPECT_EQ(stream.push(f0), "");
    EXPECT_EQ(stream.push(a), fffd + "a");
    EXPECT_EQ(stream.finish(), "");
    EXPECT_EQ(tokenizer->decode({f0, a}), fffd + "a");
  }
  {
    StreamingDecoder stream(*tokenizer);
    EXPECT_EQ(stream.push(nine9f), fffd); // lone continuation byte
    EXPECT_EQ(stream.finish(), "");
  }
}

TEST_F(TokenizerTest, OutOfRangeIds) {
  int32_t v = tokenizer->vocabSize();
  std::string expected = "token id " + std::to_string(v) +
                         " is out of range [0, " + std::to_string(v) + ")";
  EXPECT_EQ(errorMessage([&] { tokenizer->decode({1, v}); }), expected);
  EXPECT_EQ(errorMessage([&] { tokenizer->tokenBytes(v); }), expected);
  EXPECT_EQ(errorMessage([&] { tokenizer->tokenBytes(-1); }),
            "token id -1 is out of range [0, " + std::to_string(v) + ")");
  StreamingDecoder stream(*tokenizer);
  EXPECT_EQ(errorMessage([&] { stream.push(v); }), expected);
  EXPECT_EQ(errorMessage([&] { stream.push(151936); }),
            "token id 151936 is out of range [0, " + std::to_string(v) + ")");
}

TEST_F(TokenizerTest, InvalidUtf8InputIsRejected) {
  std::string msg = errorMessage([&] { tokenizer->encode("ok\xC3("); });
  EXPECT_NE(msg.find("not valid UTF-8"), std::string::npos) << msg;
  EXPECT_NE(msg.find("offset 2"), std::string::npos) << msg;
}

TEST_F(TokenizerTest, EncodesTenKilobytesQuickly) {
  std::string text;
  int i = 0;
  while (text.size() < 10 * 1024) {
    text += "Paragraph " + std::to_string(i++) +
            ": The tokenizer must handle English prose, 中文文本, "
            "code like `for (int k = 0; k < n; ++k) sum += a[k];` and "
            "numbers such as 3.14159 or 6.02e23 without breaking a sweat.\n";
  }
  auto start = std::chrono::steady_clock::now();
  std::vector<int32_t> ids = tokenizer->encode(text);
  auto mid = std::chrono::steady_clock::now();
  std::vector<int32_t> again = tokenizer->encode(text);
  auto end = std::chrono::steady_clock::now();
  EXPECT_EQ(ids, again);
  EXPECT_EQ(tokenizer->decode(ids), text);
  double first = std::chrono::duration<double, std::milli>(mid - start).count();
  double second = std::chrono::duration<double, std::milli>(end - mid).count();
  std::printf("[ timing ] encode %zu bytes -> %zu tokens: %.3f ms (first), "
              "%.3f ms (cached words)\n",
              text.size(), ids.size(), first, second);
  EXPECT_LT(first, 500.0); // generous: milliseconds expected, CI is noisy
}

TEST_F(TokenizerTest, ConcurrentEncodeIsConsistent) {
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (const Case &c : *cases)
        if (tokenizer->encode(c.text) != c.ids)
          ++failures[t];
    });
  for (std::thread &th : threads)
    th.join();
  for (int f : failures)
    EXPECT_EQ(f, 0);
}

TEST_F(TokenizerTest, MoveKeepsWorking) {
  Tokenizer moved = std::move(*tokenizer);
  EXPECT_EQ(moved.encode("Hello"), std::vector<int32_t>{9707});
  *tokenizer = std::move(moved);
  EXPECT_EQ(tokenizer->encode("Hello"), std::vector<int32_t>{9707});
}

//===----------------------------------------------------------------------===//
// Loading errors and small synthetic tokenizers
//===----------------------------------------------------------------------===//

namespace {

/// GPT-2 byte-level character (UTF-8) for each byte.
std::string byteChar(int b) {
  static std::vector<std::string> table = [] {
    std::vector<int> cps(256, -1);
    for (int c = '!'; c <= '~'; ++c)
      cps[c] = c;
    for (int c = 0xA1; c <= 0xAC; ++c)
      cps[c] = c;
    for (int c = 0xAE; c <= 0xFF; ++c)
      cps[c] = c;
    int n = 0;
    for (int c = 0; c < 256; ++c)
      if (cps[c] < 0)
        cps[c] = 256 + n++;
    std::vector<std::string> out;
    for (int cp : cps) {
      std::string s;
      if (cp < 0x80) {
        s += static_cast<char>(cp);
      } else {
        s += static_cast<char>(0xC0 | (cp >> 6));
        s += static_cast<char>(0x80 | (cp & 0x3F));
      }
      out.push_back(s);
    }
    return out;
  }();
  return table[b];
}

/// A tiny byte-level BPE tokenizer: ids 0..255 are the bytes, then merges.
Json tinyTokenizer() {
  Json vocab = Json::object();
  for (int b = 0; b < 256; ++b)
    vocab[byteChar(b)] = b;
  // 'h','e' -> "he" (256); "he","l" -> "hel" (257); "l","l" -> "ll" (258);
  // "hel","lo" never; "ll","o" -> "llo" (259); "Ġ","he" -> "Ġhe" (260)
  vocab["he"] = 256;
  vocab["hel"] = 257;
  vocab["ll"] = 258;
  vocab["llo"] = 259;
  vocab["Ġhe"] = 260;
  Json root;
  root["version"] = "1.0";
  root["added_tokens"] = Json::array({{{"id", 300},
                                       {"content", "<eos>"},
                                       {"special", true},
                                       {"lstrip", false},
                                       {"rstrip", false},
                                       {"normalized", false},
                                       {"single_word", false}},
                                      {{"id", 301},
                                       {"content", "[X]"},
                                       {"special", false},
                                       {"lstrip", true},
                                       {"rstrip", true},
                                       {"normalized", false},
                                       {"single_word", false}}});
  root["normalizer"] = nullptr;
  root["pre_tokenizer"] = {{"type", "ByteLevel"},
                           {"add_prefix_space", false},
                           {"trim_offsets", true},
                           {"use_regex", true}};
  root["decoder"] = {{"type", "ByteLevel"}};
  root["model"] = {{"type", "BPE"},
                   {"vocab", vocab},
                   {"merges", Json::array({"h e", Json::array({"he", "l"}),
                                           "l l", "ll o", "Ġ he"})}};
  return root;
}

std::string loadError(const Json &j) {
  return errorMessage(
      [&] { Tokenizer::fromJsonString(j.dump(), "tiny.json"); });
}

} // namespace

TEST(TokenizerLoadTest, MissingFile) {
  std::string path = "/nonexistent/dir/tokenizer.json";
  std::string msg = errorMessage([&] { Tokenizer::fromFile(path); });
  EXPECT_NE(msg.find("cannot open tokenizer file"), std::string::npos) << msg;
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("No such file"), std::string::npos) << msg;
}

TEST(TokenizerLoadTest, MalformedJson) {
  std::string path = ::testing::TempDir() + "qwen_malformed_tokenizer.json";
  {
    std::ofstream out(path);
    out << "{\"model\": {\"type\": \"BPE\", \"vocab\": {";
  }
  std::string msg = errorMessage([&] { Tokenizer::fromFile(path); });
  std::remove(path.c_str());
  EXPECT_NE(msg.find("malformed JSON"), std::string::npos) << msg;
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
}

TEST(TokenizerLoadTest, UnsupportedComponents) {
  Json j = tinyTokenizer();
  j["model"]["type"] = "WordPiece";
  EXPECT_NE(loadError(j).find("unsupported model type 'WordPiece'"),
            std::string::npos)
      << loadError(j);

  j = tinyTokenizer();
  j["normalizer"] = {{"type", "Lowercase"}};
  EXPECT_NE(loadError(j).find("unsupported normalizer type 'Lowercase'"),
            std::string::npos)
      << loadError(j);

  j = tinyTokenizer();
  j["pre_tokenizer"] = {{"type", "Metaspace"}};
  EXPECT_NE(loadError(j).find("unsupported pre_tokenizer type 'Metaspace'"),
            std::string::npos)
      << loadError(j);

  j = tinyTokenizer();
  j["decoder"] = {{"type", "WordPiece"}};
  EXPECT_NE(loadError(j).find("unsupported decoder"), std::string::npos)
      << loadError(j);

  j = tinyTokenizer();
  j["model"]["merges"].push_back("zz qq");
  EXPECT_NE(loadError(j).find("not in the vocab"), std::string::npos)
      << loadError(j);

  j = tinyTokenizer();
  j["pre_tokenizer"] = {{"type", "Split"},
                        {"pattern", {{"Regex", "(unclosed"}}},
                        {"behavior", "Isolated"}};
  EXPECT_NE(loadError(j).find("cannot compile"), std::string::npos)
      << loadError(j);

  j = tinyTokenizer();
  j.erase("model");
  EXPECT_NE(loadError(j).find("missing 'model'"), std::string::npos)
      << loadError(j);
}

// Issue 20: hostile tokenizer.json files fail cleanly, naming the file.
TEST(TokenizerLoadTest, HostileFiles) {
  // One line that used to size the id tables at 2^31 entries (finding 11).
  Json j = tinyTokenizer();
  j["model"]["vocab"]["big"] = 2147483646;
  EXPECT_NE(loadError(j).find("tokenizer 'tiny.json': vocab entry 'big' has id 2147483646 "
                              "outside [0, 2097152)"),
            std::string::npos)
      << loadError(j);
  // Within the bound, but sizing the tables by one id far beyond the others.
  j = tinyTokenizer();
  j["model"]["vocab"]["far"] = 2000000;
  EXPECT_NE(loadError(j).find("token ids are too sparse: the largest is 2000000, but only 264 "
                              "tokens are defined"),
            std::string::npos)
      << loadError(j);
  j = tinyTokenizer();
  j["added_tokens"][0]["id"] = 1 << 21;
  EXPECT_NE(loadError(j).find("added token has id 2097152 outside [0, 2097152)"),
            std::string::npos)
      << loadError(j);

  // A number beyond double's range escaped as a raw library message (finding 10).
  std::string text = tinyTokenizer().dump();
  text.replace(text.find("\"version\":\"1.0\""), 15, "\"version\":1e999");
  std::string msg = errorMessage([&] { Tokenizer::fromJsonString(text, "tiny.json"); });
  EXPECT_NE(msg.find("tokenizer 'tiny.json': malformed JSON"), std::string::npos) << msg;

  // Deep nesting is refused before the recursive parser sees it.
  std::string deep = "{\"x\": " + std::string(100000, '[') + std::string(100000, ']') + "}";
  msg = errorMessage([&] { Tokenizer::fromJsonString(deep, "deep.json"); });
  EXPECT_NE(msg.find("tokenizer 'deep.json': JSON nested deeper than 64 levels"), std::string::npos)
      << msg;

  // \C matches one byte of a multi-byte character: refused at compile time.
  j = tinyTokenizer();
  j["pre_tokenizer"] = {{"type", "Split"},
                        {"pattern", {{"Regex", "\\C"}}},
                        {"behavior", "Isolated"},
                        {"invert", false}};
  EXPECT_NE(loadError(j).find("cannot compile pre-tokenizer regex '\\C'"), std::string::npos)
      << loadError(j);
}

TEST(TokenizerLoadTest, FirstInvalidUtf8Byte) {
  EXPECT_EQ(qwen::rt::firstInvalidUtf8Byte("hello \xc3\xa9"), std::string_view::npos);
  EXPECT_EQ(qwen::rt::firstInvalidUtf8Byte("ab\xff"), 2u);
  EXPECT_EQ(qwen::rt::firstInvalidUtf8Byte("\xc3"), 0u);
}

TEST(TokenizerLoadTest, TinyTokenizerGpt2Regex) {
  Json j = tinyTokenizer();
  Tokenizer tok = Tokenizer::fromJsonString(j.dump(), "tiny.json");
  EXPECT_EQ(tok.vocabSize(), 302);
  // "hello" -> h e l l o -> he l l o -> hel l o (rank 1 beats "l l" rank 2)
  // -> hel + "lo"? no merge -> [hel, l, o].
  EXPECT_EQ(tok.encode("hello"), (std::vector<int32_t>{257, 'l', 'o'}));
  // " he" is a GPT-2 pre-token: Ġ h e -> Ġ he -> Ġhe.
  EXPECT_EQ(tok.encode(" he"), (std::vector<int32_t>{260}));
  // "llo" -> l l o -> ll o -> llo
  EXPECT_EQ(tok.encode("llo"), (std::vector<int32_t>{259}));
  // Special and lstrip/rstrip added tokens.
  EXPECT_EQ(tok.encode("he<eos>"), (std::vector<int32_t>{256, 300}));
  EXPECT_EQ(tok.encode("he  [X]  he"), (std::vector<int32_t>{256, 301, 256}));
  EXPECT_EQ(tok.decode({256, 300, 259}), "he<eos>llo");
  EXPECT_EQ(tok.decode({256, 300, 259}, true), "hello");
  EXPECT_EQ(tok.tokenToId("<eos>"), 300);
  EXPECT_TRUE(tok.isSpecial(300));
  EXPECT_FALSE(tok.isSpecial(301));
  // Ids in range with no token decode to nothing.
  EXPECT_EQ(tok.tokenBytes(280), "");
}

TEST(TokenizerLoadTest, TinyTokenizerSplitAndNormalizer) {
  Json j = tinyTokenizer();
  j["normalizer"] = {{"type", "Sequence"},
                     {"normalizers", Json::array({{{"type", "NFC"}}})}};
  j["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers", Json::array({{{"type", "Split"},
                                      {"pattern", {{"String", " "}}},
                                      {"behavior", "MergedWithNext"},
                                      {"invert", false}},
                                     {{"type", "ByteLevel"},
                                      {"add_prefix_space", false},
                                      {"use_regex", false}}})}};
  Tokenizer tok = Tokenizer::fromJsonString(j.dump(), "tiny.json");
  // "he he" -> "he", " he" -> [256], [260]
  EXPECT_EQ(tok.encode("he he"), (std::vector<int32_t>{256, 260}));
  // NFC composes e + U+0301 into U+00E9 (bytes C3 A9).
  EXPECT_EQ(tok.encode("e\xCC\x81"), (std::vector<int32_t>{0xC3, 0xA9}));
}

TEST(TokenizerLoadTest, SplitRegexUsesOnigurumaClasses) {
  // HF runs Split regexes with Oniguruma; \s is White_Space (not U+180E) and
  // \w includes combining marks.
  auto withSplit = [](const char *regex) {
    Json j = tinyTokenizer();
    j["pre_tokenizer"] = {
        {"type", "Sequence"},
        {"pretokenizers", Json::array({{{"type", "Split"},
                                        {"pattern", {{"Regex", regex}}},
                                        {"behavior", "Removed"},
                                        {"invert", false}},
                                       {{"type", "ByteLevel"},
                                        {"add_prefix_space", false},
                                        {"use_regex", false}}})}};
    return Tokenizer::fromJsonString(j.dump(), "tiny.json");
  };
  Tokenizer space = withSplit("\\s+");
  EXPECT_EQ(space.encode("a \xE1\xA0\x8E\xE3\x80\x80"
                         "b\xC2\x85"),
            (std::vector<int32_t>{'a', 0xE1, 0xA0, 0x8E, 'b'}));
  Tokenizer word = withSplit("[\\w]+");
  EXPECT_EQ(word.encode("e\xCC\x81!"), (std::vector<int32_t>{'!'}));
}

//===----------------------------------------------------------------------===//
// A Qwen3.5-style tokenizer derived from the Qwen3 one
//===----------------------------------------------------------------------===//
//
// test/data/tokenizer/qwen35_style_expected.json (from
// scripts/gen_tokenizer_reference_qwen35.py) holds a recipe and HF reference
// encodings. The recipe turns the Qwen3 tokenizer.json into a Qwen3.5-style
// one: Qwen3.5's Split regex (combining marks join letter runs), the vocab
// padded with inert entries up to 248044 and the added tokens renumbered from
// there (<|im_end|> = 248046, ...). Nothing in the runtime may assume Qwen3's
// regex or ids, so the derived file must tokenize exactly as HF does.

namespace {

const std::string kQwen35ExpectedPath =
    std::string(QWEN_SOURCE_DIR) +
    "/test/data/tokenizer/qwen35_style_expected.json";

/// Qwen3.5's pre-tokenizer Split regex: as Qwen3's, but combining marks join
/// letter runs ([\p{L}\p{M}]+) and never join punctuation runs.
const std::string kQwen35SplitRegex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}|)"
    R"( ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

/// The Qwen3 tokenizer.json the recipe starts from.
Json readBaseTokenizerJson(const Json &recipe) {
  std::string path = std::string(QWEN_SOURCE_DIR) + "/" +
                     recipe.at("base_tokenizer").get<std::string>();
  std::ifstream in(path);
  EXPECT_TRUE(in) << "cannot open " << path;
  return Json::parse(in);
}

/// `j` (the base tokenizer.json) with `regex` as its Split pattern, the
/// vocab padding and the added tokens of `recipe`.
Json deriveTokenizerJson(Json j, const Json &recipe, const std::string &regex) {
  Json &split = j.at("pre_tokenizer").at("pretokenizers").at(0);
  EXPECT_EQ(split.at("type"), "Split");
  split.at("pattern")["Regex"] = regex;
  Json &vocab = j.at("model").at("vocab");
  const Json &pad = recipe.at("vocab_padding");
  std::string format = pad.at("format").get<std::string>();
  size_t hole = format.find("{}");
  EXPECT_NE(hole, std::string::npos);
  EXPECT_EQ(vocab.size(), pad.at("begin").get<size_t>());
  for (int32_t id = pad.at("begin").get<int32_t>(),
               end = pad.at("end").get<int32_t>();
       id < end; ++id) {
    std::string token =
        format.substr(0, hole) + std::to_string(id) + format.substr(hole + 2);
    EXPECT_FALSE(vocab.contains(token)) << token;
    vocab[token] = id;
  }
  j["added_tokens"] = recipe.at("added_tokens");
  return j;
}

struct Qwen35Case : Case {
  std::vector<int32_t> idsQwen3Regex;
};

} // namespace

class Qwen35StyleTokenizerTest : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    std::ifstream in(kQwen35ExpectedPath);
    ASSERT_TRUE(in) << "cannot open " << kQwen35ExpectedPath;
    recipe = new Json(Json::parse(in));
    cases = new std::vector<Qwen35Case>();
    for (const Json &e : recipe->at("cases")) {
      Qwen35Case c;
      c.text = e.at("text").get<std::string>();
      c.ids = e.at("ids").get<std::vector<int32_t>>();
      c.idsNoSpecial = e.at("ids_no_special").get<std::vector<int32_t>>();
      c.decoded = e.at("decoded").get<std::string>();
      c.decodedSkipSpecial = e.at("decoded_skip_special").get<std::string>();
      c.idsQwen3Regex = e.at("ids_qwen3_regex").get<std::vector<int32_t>>();
      cases->push_back(std::move(c));
    }

    Json base = readBaseTokenizerJson(*recipe);
    baseRegex = new std::string(base.at("pre_tokenizer")
                                    .at("pretokenizers")
                                    .at(0)
                                    .at("pattern")
                                    .at("Regex")
                                    .get<std::string>());

    // The derived tokenizer goes through a file, as a real one would.
    std::string path = ::testing::TempDir() + "qwen35_style_tokenizer." +
                       std::to_string(::getpid()) + ".json";
    {
      std::ofstream out(path, std::ios::binary);
      out << deriveTokenizerJson(std::move(base), *recipe,
                                 recipe->at("split_regex").get<std::string>())
                 .dump();
      ASSERT_TRUE(out) << "cannot write " << path;
    }
    tokenizer = std::make_unique<Tokenizer>(Tokenizer::fromFile(path));
    std::remove(path.c_str());
  }
  static void TearDownTestSuite() {
    tokenizer.reset();
    delete cases;
    cases = nullptr;
    delete recipe;
    recipe = nullptr;
    delete baseRegex;
    baseRegex = nullptr;
  }

  static inline std::unique_ptr<Tokenizer> tokenizer;
  static inline std::vector<Qwen35Case> *cases = nullptr;
  static inline Json *recipe = nullptr;
  static inline std::string *baseRegex = nullptr;
};

TEST_F(Qwen35StyleTokenizerTest, RecipeAndCorpusLoaded) {
  ASSERT_GE(cases->size(), 100u);
  EXPECT_EQ(recipe->at("base_vocab_size"), 151643);
  EXPECT_EQ(*baseRegex, recipe->at("qwen3_split_regex").get<std::string>());
  EXPECT_EQ(recipe->at("split_regex").get<std::string>(), kQwen35SplitRegex);
  EXPECT_NE(kQwen35SplitRegex, *baseRegex);
  EXPECT_EQ(tokenizer->vocabSize(), recipe->at("vocab_size").get<int32_t>());
  EXPECT_EQ(tokenizer->vocabSize(), 248073);
}

TEST_F(Qwen35StyleTokenizerTest, SpecialTokenIds) {
  EXPECT_EQ(tokenizer->tokenToId("<|endoftext|>"), 248044);
  EXPECT_EQ(tokenizer->tokenToId("<|im_start|>"), 248045);
  EXPECT_EQ(tokenizer->tokenToId("<|im_end|>"), 248046);
  const char *vision[] = {"<|vision_start|>", "<|vision_end|>",
                          "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"};
  for (int32_t i = 0; i < 5; ++i) {
    EXPECT_EQ(tokenizer->tokenToId(vision[i]), 248053 + i) << vision[i];
    EXPECT_EQ(tokenizer->tokenBytes(248053 + i), vision[i]);
    EXPECT_TRUE(tokenizer->isSpecial(248053 + i)) << vision[i];
  }
  EXPECT_EQ(tokenizer->tokenToId("<think>"), 248068);
  EXPECT_FALSE(tokenizer->isSpecial(248068)); // added, not special
  EXPECT_EQ(tokenizer->tokenToId("<|audio_pad|>"), 248072);
  EXPECT_TRUE(tokenizer->isSpecial(248072));
  // Qwen3's special ids are ordinary (padding) vocab entries here.
  EXPECT_EQ(tokenizer->tokenToId("<|qwen35_vocab_pad_151645|>"), 151645);
  EXPECT_FALSE(tokenizer->isSpecial(151643));
  EXPECT_FALSE(tokenizer->isSpecial(151645));
  EXPECT_EQ(tokenizer->tokenBytes(151645), "<|qwen35_vocab_pad_151645|>");
  EXPECT_EQ(tokenizer->tokenToId("Hello"), 9707);

  std::vector<int32_t> ids = tokenizer->encode(
      "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Hi"
      "<|im_end|>");
  ASSERT_GE(ids.size(), 7u);
  EXPECT_EQ(ids.front(), 248045);
  EXPECT_EQ(ids.back(), 248046);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 248056), 1);
  EXPECT_EQ(tokenizer->decode(ids, /*skipSpecial=*/true), "user\nHi");
  std::vector<int32_t> plain = tokenizer->encode("<|im_end|>", false);
  EXPECT_GT(plain.size(), 1u);
  EXPECT_EQ(tokenizer->decode(plain), "<|im_end|>");
}

TEST_F(Qwen35StyleTokenizerTest, EncodeMatchesReference) {
  for (const Qwen35Case &c : *cases)
    expectEncodesLikeReference(*tokenizer, c);
}

TEST_F(Qwen35StyleTokenizerTest, DecodeMatchesReference) {
  for (const Qwen35Case &c : *cases)
    expectDecodesLikeReference(*tokenizer, c);
}

TEST_F(Qwen35StyleTokenizerTest, StreamingDecodeMatchesReference) {
  for (const Qwen35Case &c : *cases)
    expectStreamsLikeReference(*tokenizer, c);
}

TEST_F(Qwen35StyleTokenizerTest, SplitRegexIsTakenFromTheFile) {
  // The same tokenizer with Qwen3's regex reproduces HF's encodings with that
  // regex, and some corpus entries encode differently under the two.
  Tokenizer qwen3Regex = Tokenizer::fromJsonString(
      deriveTokenizerJson(readBaseTokenizerJson(*recipe), *recipe,
                          recipe->at("qwen3_split_regex").get<std::string>())
          .dump(),
      "qwen35_style_with_qwen3_regex");
  size_t differ = 0;
  for (const Qwen35Case &c : *cases) {
    EXPECT_EQ(qwen3Regex.encode(c.text), c.idsQwen3Regex)
        << "text (Qwen3 regex): " << printable(c.text);
    differ += c.ids != c.idsQwen3Regex;
  }
  std::printf("[ info ] %zu of %zu entries encode differently with the Qwen3 "
              "and Qwen3.5 regexes\n",
              differ, cases->size());
  EXPECT_GE(differ, 1u);
}

// The post-processor's single template (HF add_special_tokens=True):
// Qwen3-Embedding's TemplateProcessing appends <|endoftext|>; ByteLevel
// (Qwen3) and none add nothing; malformed templates fail at load; other types
// load but refuse postProcess().
TEST(TokenizerLoadTest, PostProcessor) {
  Json j = tinyTokenizer();
  Json bytes = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false},
                {"use_regex", false}};
  j["post_processor"] = bytes;
  EXPECT_EQ(Tokenizer::fromJsonString(j.dump(), "tiny.json").postProcess({256, 259}),
            (std::vector<int32_t>{256, 259}));

  Json piece = {{"SpecialToken", {{"id", "<eos>"}, {"type_id", 0}}}};
  Json template_ = {{"type", "TemplateProcessing"},
                    {"single", Json::array({{{"Sequence", {{"id", "A"}, {"type_id", 0}}}}, piece})},
                    {"special_tokens",
                     {{"<eos>", {{"id", "<eos>"}, {"ids", Json::array({300})},
                                 {"tokens", Json::array({"<eos>"})}}}}}};
  j["post_processor"] = {{"type", "Sequence"}, {"processors", Json::array({bytes, template_})}};
  Tokenizer tok = Tokenizer::fromJsonString(j.dump(), "tiny.json");
  EXPECT_EQ(tok.postProcess(tok.encode("hello")), (std::vector<int32_t>{257, 'l', 'o', 300}));
  EXPECT_EQ(tok.encode("hello"), (std::vector<int32_t>{257, 'l', 'o'})); // encode() adds nothing

  // A prefix token before the sequence.
  template_["single"] = Json::array({piece, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}});
  j["post_processor"] = template_;
  EXPECT_EQ(Tokenizer::fromJsonString(j.dump(), "tiny.json").postProcess({259}),
            (std::vector<int32_t>{300, 259}));

  template_["special_tokens"] = Json::object();
  j["post_processor"] = template_;
  EXPECT_NE(loadError(j).find("special token '<eos>' has no ids"), std::string::npos) << loadError(j);

  j["post_processor"] = {{"type", "RobertaProcessing"}};
  Tokenizer roberta = Tokenizer::fromJsonString(j.dump(), "tiny.json");
  EXPECT_NE(errorMessage([&] { roberta.postProcess({259}); })
                .find("post_processor 'RobertaProcessing' is not supported"),
            std::string::npos);
}
