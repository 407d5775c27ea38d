//===- generation_config_test.cpp - Tests of readGenerationConfig ---------===//

#include "qwen_rt/error.h"
#include "qwen_rt/generation_config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

namespace fs = std::filesystem;
using namespace qwen::rt;

namespace {

class TempDir {
public:
  TempDir() {
    static int Counter = 0;
    Path = fs::temp_directory_path() /
           ("qwen_gc_test_" + std::to_string(::getpid()) + "_" + std::to_string(Counter++));
    fs::remove_all(Path);
    fs::create_directories(Path);
  }
  ~TempDir() {
    std::error_code EC;
    fs::remove_all(Path, EC);
  }
  void write(const std::string &Name, const std::string &Text) const {
    std::ofstream(Path / Name) << Text;
  }
  std::string file(const std::string &Name) const { return (Path / Name).string(); }
  std::string str() const { return Path.string(); }

private:
  fs::path Path;
};

TEST(GenerationConfigTest, DemoCheckpoint) {
  std::string Dir = std::string(QWEN_SOURCE_DIR) + "/models/checkpoints/qwen3-demo";
  if (!fs::exists(Dir + "/config.json"))
    GTEST_SKIP() << Dir << " is not present";
  GenerationConfig C = readGenerationConfig(Dir);
  EXPECT_EQ(C.eosTokenIds, (std::vector<int32_t>{151645, 151643}));
  EXPECT_EQ(C.eosTokenStrings, std::vector<std::string>{"<|im_end|>"});
  EXPECT_EQ(C.bosTokenId, 151643);
  EXPECT_EQ(C.padTokenId, 151643);
  EXPECT_EQ(C.doSample, false);
  EXPECT_EQ(C.maxNewTokens, 128);
  EXPECT_FALSE(C.temperature);
  EXPECT_FALSE(C.topP);
  EXPECT_FALSE(C.topK);
}

TEST(GenerationConfigTest, EmptyFolder) {
  TempDir Dir;
  GenerationConfig C = readGenerationConfig(Dir.str());
  EXPECT_TRUE(C.eosTokenIds.empty());
  EXPECT_TRUE(C.eosTokenStrings.empty());
  EXPECT_FALSE(C.bosTokenId);
  EXPECT_FALSE(C.padTokenId);
  EXPECT_FALSE(C.temperature);
  EXPECT_FALSE(C.maxNewTokens);
  // A folder that does not exist has no files either.
  EXPECT_TRUE(readGenerationConfig(Dir.file("missing")).eosTokenIds.empty());
}

TEST(GenerationConfigTest, IntVersusListAndMergeOrder) {
  TempDir Dir;
  Dir.write("generation_config.json",
            R"({"eos_token_id": 7, "temperature": 0.6, "top_p": 0.95, "top_k": 20,
                "do_sample": true, "max_new_tokens": 64, "bos_token_id": null})");
  Dir.write("config.json", R"({"eos_token_id": [8, 7, 9], "bos_token_id": 1, "pad_token_id": 2})");
  GenerationConfig C = readGenerationConfig(Dir.str());
  EXPECT_EQ(C.eosTokenIds, (std::vector<int32_t>{7, 8, 9}));
  EXPECT_EQ(C.bosTokenId, 1);
  EXPECT_EQ(C.padTokenId, 2);
  ASSERT_TRUE(C.temperature);
  EXPECT_FLOAT_EQ(*C.temperature, 0.6f);
  EXPECT_FLOAT_EQ(*C.topP, 0.95f);
  EXPECT_EQ(C.topK, 20);
  EXPECT_EQ(C.doSample, true);
  EXPECT_EQ(C.maxNewTokens, 64);
}

TEST(GenerationConfigTest, GenerationConfigWinsForSingleValues) {
  TempDir Dir;
  Dir.write("generation_config.json", R"({"bos_token_id": 5, "pad_token_id": 6})");
  Dir.write("config.json", R"({"bos_token_id": 1, "pad_token_id": 2, "eos_token_id": 3})");
  GenerationConfig C = readGenerationConfig(Dir.str());
  EXPECT_EQ(C.bosTokenId, 5);
  EXPECT_EQ(C.padTokenId, 6);
  EXPECT_EQ(C.eosTokenIds, std::vector<int32_t>{3});
}

TEST(GenerationConfigTest, TextConfigAndTokenizerConfig) {
  TempDir Dir;
  Dir.write(
      "config.json",
      R"({"text_config": {"eos_token_id": [11, 12], "bos_token_id": 10}, "vision_config": {}})");
  Dir.write("tokenizer_config.json", R"({"eos_token": {"content": "<|im_end|>", "lstrip": false},
                                         "pad_token": "<|endoftext|>"})");
  GenerationConfig C = readGenerationConfig(Dir.str());
  EXPECT_EQ(C.eosTokenIds, (std::vector<int32_t>{11, 12}));
  EXPECT_EQ(C.bosTokenId, 10);
  EXPECT_EQ(C.eosTokenStrings, std::vector<std::string>{"<|im_end|>"});

  Dir.write("tokenizer_config.json", R"({"eos_token": "</s>"})");
  EXPECT_EQ(readGenerationConfig(Dir.str()).eosTokenStrings, std::vector<std::string>{"</s>"});
  Dir.write("tokenizer_config.json", R"({"eos_token": null})");
  EXPECT_TRUE(readGenerationConfig(Dir.str()).eosTokenStrings.empty());
}

TEST(GenerationConfigTest, MalformedJsonNamesTheFile) {
  for (const char *Name : {"generation_config.json", "config.json", "tokenizer_config.json"}) {
    TempDir Dir;
    Dir.write(Name, R"({"eos_token_id": [1, 2,)");
    try {
      readGenerationConfig(Dir.str());
      FAIL() << "no error for malformed " << Name;
    } catch (const Error &E) {
      std::string Msg = E.what();
      EXPECT_NE(Msg.find(Dir.file(Name)), std::string::npos) << Msg;
      EXPECT_NE(Msg.find("malformed JSON"), std::string::npos) << Msg;
    }
  }
}

TEST(GenerationConfigTest, WrongTypesNameFileAndKey) {
  TempDir Dir;
  Dir.write("config.json", R"({"eos_token_id": "two"})");
  try {
    readGenerationConfig(Dir.str());
    FAIL();
  } catch (const Error &E) {
    std::string Msg = E.what();
    EXPECT_NE(Msg.find(Dir.file("config.json")), std::string::npos) << Msg;
    EXPECT_NE(Msg.find("eos_token_id"), std::string::npos) << Msg;
  }
  Dir.write("config.json", R"({"eos_token_id": -3})");
  EXPECT_THROW(readGenerationConfig(Dir.str()), Error);
  Dir.write("config.json", R"([1, 2])");
  EXPECT_THROW(readGenerationConfig(Dir.str()), Error);
  Dir.write("config.json", "{}");
  Dir.write("generation_config.json", R"({"do_sample": "yes"})");
  EXPECT_THROW(readGenerationConfig(Dir.str()), Error);
  Dir.write("generation_config.json", R"({"max_new_tokens": 1.5})");
  EXPECT_THROW(readGenerationConfig(Dir.str()), Error);
  Dir.write("generation_config.json", R"({"temperature": "hot"})");
  EXPECT_THROW(readGenerationConfig(Dir.str()), Error);
}

/// The message of the Error readGenerationConfig throws for `Text` as
/// generation_config.json.
std::string errorFor(const TempDir &Dir, const std::string &Text) {
  Dir.write("generation_config.json", Text);
  try {
    readGenerationConfig(Dir.str());
  } catch (const Error &E) {
    return E.what();
  }
  return "<no error>";
}

// Issue 20: values that a request would refuse later, without naming the
// file, are refused here; hostile JSON fails cleanly.
TEST(GenerationConfigTest, BadValuesNameTheFile) {
  TempDir Dir;
  const std::string File = Dir.file("generation_config.json");
  EXPECT_EQ(errorFor(Dir, R"({"temperature": -1})"),
            File + ": 'temperature' must not be negative, got -1.000000");
  EXPECT_EQ(errorFor(Dir, R"({"top_p": 7})"), File + ": 'top_p' must be in (0, 1], got 7.000000");
  EXPECT_EQ(errorFor(Dir, R"({"top_p": 0})"), File + ": 'top_p' must be in (0, 1], got 0.000000");
  EXPECT_EQ(errorFor(Dir, R"({"top_k": -2})"), File + ": 'top_k' must not be negative, got -2");
  EXPECT_EQ(errorFor(Dir, R"({"max_new_tokens": 0})"), File + ": 'max_new_tokens' must be positive, got 0");
  EXPECT_EQ(errorFor(Dir, R"({"temperature": 1e300})"), File + ": 'temperature' is out of range: 1e+300");
  EXPECT_NE(errorFor(Dir, R"({"temperature": 1e999})").find(File + ": malformed JSON"), std::string::npos);
  std::string Deep = "{\"eos_token_id\": " + std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_EQ(errorFor(Dir, Deep).find(File + ": JSON nested deeper than 64 levels"), 0u);
  std::string Nested = errorFor(Dir, "{\"eos_token_id\": [" + std::string(20, '[') + "1, 2, 3, 4, 5, 6, 7, 8, 9" +
                                         std::string(21, ']') + "}");
  EXPECT_NE(Nested.find("must be an integer token id (or a list of them), got [[[["), std::string::npos) << Nested;
  EXPECT_LT(Nested.size(), 300u) << Nested;
}

} // namespace
