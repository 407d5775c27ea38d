//===- embedding_request_test.cpp - Tests of /v1/embeddings parsing -------===//

#include "qwen_server/protocol.h"

#include <gtest/gtest.h>

#include <cstring>

using namespace qwen::serve;
using json = nlohmann::ordered_json;

namespace {

ParseLimits limits() {
  ParseLimits l;
  l.modelNames = {"embed"};
  l.vocabSize = 1000;
  l.maxModelLen = 512;
  l.hiddenSize = 64;
  return l;
}

json request(json extra) {
  json body = {{"model", "embed"}, {"input", "hello"}};
  for (auto &[key, value] : extra.items())
    body[key] = value;
  return body;
}

/// The ApiError a body raises (status 0: none).
ApiError embeddingError(const json &body) {
  try {
    parseEmbeddingRequest(body, limits());
  } catch (const ApiError &e) {
    return e;
  }
  return ApiError(0, "no error", "");
}

std::string errorParam(const ApiError &e) {
  json param = e.body()["error"]["param"];
  return param.is_null() ? "" : param.get<std::string>();
}

TEST(EmbeddingRequestTest, InputShapes) {
  EmbeddingRequest one = parseEmbeddingRequest(request({}), limits());
  EXPECT_EQ(one.model, "embed");
  EXPECT_EQ(one.texts, std::vector<std::string>({"hello"}));
  EXPECT_TRUE(one.tokenIds.empty());
  EXPECT_FALSE(one.base64);

  EmbeddingRequest texts = parseEmbeddingRequest(request({{"input", json::parse(R"(["a", "b c"])")}}), limits());
  EXPECT_EQ(texts.texts, std::vector<std::string>({"a", "b c"}));

  EmbeddingRequest ids = parseEmbeddingRequest(request({{"input", json::parse("[1, 2, 999]")}}), limits());
  EXPECT_TRUE(ids.texts.empty());
  EXPECT_EQ(ids.tokenIds, std::vector<std::vector<int32_t>>({{1, 2, 999}}));

  EmbeddingRequest nested = parseEmbeddingRequest(request({{"input", json::parse("[[1, 2], [3]]")}}), limits());
  EXPECT_EQ(nested.tokenIds, std::vector<std::vector<int32_t>>({{1, 2}, {3}}));

  EmbeddingRequest options = parseEmbeddingRequest(
      request({{"encoding_format", "base64"}, {"dimensions", 64}, {"user", "someone"}}), limits());
  EXPECT_TRUE(options.base64);
  EXPECT_FALSE(parseEmbeddingRequest(request({{"encoding_format", "float"}}), limits()).base64);
  EXPECT_FALSE(parseEmbeddingRequest(request({{"encoding_format", nullptr}}), limits()).base64);
}

TEST(EmbeddingRequestTest, BadInputsNameTheParameter) {
  struct Case {
    json body;
    std::string param, says;
  };
  std::vector<Case> cases = {
      {json{{"model", "embed"}}, "input", "'input' is required"},
      {request({{"input", json::parse("[]")}}), "input", "must not be empty"},
      {request({{"input", ""}}), "input", "must not hold an empty string"},
      {request({{"input", json::parse(R"(["a", ""])")}}), "input", "(index 1)"},
      {request({{"input", 5}}), "input", "got number"},
      {request({{"input", json::parse(R"({"a": 1})")}}), "input", "got object"},
      {request({{"input", json::parse(R"(["a", 1])")}}), "input", "holding number at index 1 after string"},
      {request({{"input", json::parse(R"([1, "a"])")}}), "input", "holding string at index 1"},
      {request({{"input", json::parse("[[1], 2]")}}), "input", "holding number at index 1"},
      {request({{"input", json::parse("[[1], []]")}}), "input", "empty array of token ids at index 1"},
      {request({{"input", json::parse("[1, 1000]")}}), "input", "outside the vocabulary of 1000"},
      {request({{"input", json::parse("[[-1]]")}}), "input", "outside the vocabulary"},
      {request({{"input", json::parse("[1.5]")}}), "input", "integer token ids"},
      {request({{"encoding_format", "int8"}}), "encoding_format", "\"float\" or \"base64\""},
      {request({{"encoding_format", 1}}), "encoding_format", "must be a string"},
      {request({{"dimensions", 32}}), "dimensions", "must be 64, this model's hidden size"},
      {request({{"dimensions", "64"}}), "dimensions", "must be an integer"},
      {request({{"user", 3}}), "user", "must be a string"},
  };
  for (const Case &c : cases) {
    ApiError e = embeddingError(c.body);
    EXPECT_EQ(e.status(), 400) << c.body.dump();
    EXPECT_EQ(errorParam(e), c.param) << c.body.dump();
    EXPECT_NE(std::string(e.what()).find(c.says), std::string::npos) << c.body.dump() << ": " << e.what();
  }
}

TEST(EmbeddingRequestTest, TooManyInputs) {
  json many = json::array();
  for (size_t i = 0; i < kMaxEmbeddingInputs; ++i)
    many.push_back("x");
  EXPECT_EQ(parseEmbeddingRequest(request({{"input", many}}), limits()).texts.size(), kMaxEmbeddingInputs);
  many.push_back("x");
  ApiError e = embeddingError(request({{"input", many}}));
  EXPECT_EQ(e.status(), 400);
  EXPECT_NE(std::string(e.what()).find("at most 2048"), std::string::npos) << e.what();
}

TEST(EmbeddingRequestTest, ModelIsRequiredAndKnown) {
  EXPECT_EQ(embeddingError(json{{"input", "x"}}).status(), 400);
  ApiError unknown = embeddingError(request({{"model", "other"}}));
  EXPECT_EQ(unknown.status(), 404);
  EXPECT_EQ(unknown.body()["error"]["code"], "model_not_found");
}

TEST(EmbeddingRequestTest, Base64IsLittleEndianFloat32) {
  // 1.0f is 00 00 80 3f; -2.0f is 00 00 00 c0.
  EXPECT_EQ(base64Floats({1.0f}), "AACAPw==");
  EXPECT_EQ(base64Floats({1.0f, -2.0f}), "AACAPwAAAMA=");
  EXPECT_EQ(base64Floats({}), "");
  // Three floats: 12 bytes, no padding.
  EXPECT_EQ(base64Floats({0.0f, 0.0f, 0.0f}), "AAAAAAAAAAAAAAAA");
}

} // namespace
