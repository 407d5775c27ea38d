//===- tokenizer_test.cpp - Tests for qwen::rt::Tokenizer -----------------===//
//
// The reference outputs in test/data/tokenizer/qwen3_expected.json come from
// the HuggingFace `tokenizers` library (scripts/gen_tokenizer_reference.py).
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
  for (const Case &c : *cases) {
    EXPECT_EQ(tokenizer->encode(c.text), c.ids)
        << "text: " << printable(c.text);
    EXPECT_EQ(tokenizer->encode(c.text, /*parseSpecial=*/false), c.idsNoSpecial)
        << "text (parseSpecial=false): " << printable(c.text);
  }
}

TEST_F(TokenizerTest, EncodeIsStableWithWarmCache) {
  for (int round = 0; round < 2; ++round)
    for (const Case &c : *cases)
      ASSERT_EQ(tokenizer->encode(c.text), c.ids) << printable(c.text);
}

TEST_F(TokenizerTest, DecodeMatchesReference) {
  for (const Case &c : *cases) {
    EXPECT_EQ(tokenizer->decode(c.ids), c.decoded) << printable(c.text);
    EXPECT_EQ(tokenizer->decode(c.ids, /*skipSpecial=*/true),
              c.decodedSkipSpecial)
        << printable(c.text);
  }
}

TEST_F(TokenizerTest, StreamingDecodeMatchesReference) {
  for (const Case &c : *cases) {
    for (bool skip : {false, true}) {
      StreamingDecoder stream(*tokenizer, skip);
      std::string text;
      for (int32_t id : c.ids)
        text += stream.push(id);
      text += stream.finish();
      EXPECT_EQ(text, skip ? c.decodedSkipSpecial : c.decoded)
          << printable(c.text) << " (skipSpecial=" << skip << ")";
    }
  }
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
