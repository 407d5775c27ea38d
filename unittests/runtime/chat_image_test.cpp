//===- chat_image_test.cpp - Image parts of chats and image prompts -------===//
//
// Image content parts (OpenAI image_url with data: URLs, HF image parts)
// rendered by the Qwen3.5 template as HF renders them
// (test/data/chat/qwen35_image_reference.json, made by
// scripts/gen_chat_image_reference.py), their bytes and errors, and the
// prompt side of images: expansion, positions and chunks (image_prompt.h).
//
//===----------------------------------------------------------------------===//

#include "qwen_rt/chat.h"
#include "qwen_rt/error.h"
#include "qwen_rt/image.h"
#include "qwen_rt/image_prompt.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

using namespace qwen::rt;
using ordered_json = nlohmann::ordered_json;

namespace {

std::string readFile(const std::string &Path) {
  std::ifstream In(Path, std::ios::binary);
  EXPECT_TRUE(In.good()) << "cannot read " << Path;
  std::ostringstream S;
  S << In.rdbuf();
  return S.str();
}

std::string visionFile(const std::string &Name) {
  return readFile(std::string(QWEN_SOURCE_DIR) + "/test/data/vision/" + Name);
}

std::string base64(const std::string &Bytes) {
  static const char *Digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string Out;
  size_t I = 0;
  for (; I + 2 < Bytes.size(); I += 3) {
    uint32_t V = uint32_t(uint8_t(Bytes[I])) << 16 | uint32_t(uint8_t(Bytes[I + 1])) << 8 | uint8_t(Bytes[I + 2]);
    for (int S = 18; S >= 0; S -= 6)
      Out += Digits[(V >> S) & 63];
  }
  if (I + 1 == Bytes.size()) {
    uint32_t V = uint32_t(uint8_t(Bytes[I])) << 16;
    Out += std::string{Digits[V >> 18], Digits[(V >> 12) & 63], '=', '='};
  } else if (I + 2 == Bytes.size()) {
    uint32_t V = uint32_t(uint8_t(Bytes[I])) << 16 | uint32_t(uint8_t(Bytes[I + 1])) << 8;
    Out += std::string{Digits[V >> 18], Digits[(V >> 12) & 63], Digits[(V >> 6) & 63], '='};
  }
  return Out;
}

std::string errorOf(const std::function<void()> &F) {
  try {
    F();
  } catch (const Error &E) {
    return E.what();
  }
  return "";
}

} // namespace

TEST(ChatImageTest, Qwen35RendersImagePartsAsHF) {
  ordered_json Ref =
      ordered_json::parse(readFile(std::string(QWEN_SOURCE_DIR) + "/test/data/chat/qwen35_image_reference.json"));
  ChatTemplate Template(ChatTemplateStyle::Qwen35);
  size_t Rendered = 0, Refused = 0, Images = 0;
  for (const ordered_json &Case : Ref["cases"]) {
    ChatTemplateOptions Options;
    Options.addGenerationPrompt = Case["add_generation_prompt"].get<bool>();
    Options.enableThinking = Case["enable_thinking"] != false;
    std::string Name = Case["name"].get<std::string>();
    std::vector<ChatMessage> Messages = parseChatMessages(Case["messages"]);
    for (const ChatMessage &M : Messages)
      for (const ChatImage &Image : M.images) {
        // Every image is one of test/data/vision's, decoded as is.
        RgbImage Decoded = decodeImage(Image.bytes.data(), Image.bytes.size(), Name);
        EXPECT_GT(Decoded.width, 0) << Name;
        ++Images;
      }
    if (Case["expected"].is_null()) {
      EXPECT_THROW(Template.render(Messages, Case["tools"], Options), Error) << Name;
      ++Refused;
      continue;
    }
    EXPECT_EQ(Template.render(Messages, Case["tools"], Options), Case["expected"].get<std::string>()) << Name;
    ++Rendered;
  }
  EXPECT_GE(Rendered, 28u);
  EXPECT_EQ(Refused, 4u);
  EXPECT_GE(Images, 40u);
}

TEST(ChatImageTest, DataUrls) {
  const std::string Png = visionFile("gray.png");
  for (const std::string &Prefix : {"data:image/png;base64,", "DATA:image/PNG;BASE64,"}) {
    ChatImage Image = parseImageDataUrl(Prefix + base64(Png), "part");
    EXPECT_EQ(std::string(Image.bytes.begin(), Image.bytes.end()), Png);
    EXPECT_EQ(Image.mediaType, "image/png");
  }
  // Every padding length, and whitespace between groups.
  for (const std::string &Bytes : {std::string("a"), std::string("ab"), std::string("abc"), std::string("abcd")}) {
    ChatImage Image = parseImageDataUrl("data:;base64," + base64(Bytes), "part");
    EXPECT_EQ(std::string(Image.bytes.begin(), Image.bytes.end()), Bytes);
  }
  ChatImage Spaced = parseImageDataUrl("data:image/png;base64,YWJj\nZGVm", "part");
  EXPECT_EQ(std::string(Spaced.bytes.begin(), Spaced.bytes.end()), "abcdef");

  EXPECT_NE(errorOf([] { parseImageDataUrl("https://example.com/cat.png", "messages[0].content[0].image_url.url"); })
                .find("reaches no network"),
            std::string::npos);
  EXPECT_NE(errorOf([] { parseImageDataUrl("https://example.com/cat.png", "messages[0].content[0].image_url.url"); })
                .find("messages[0].content[0].image_url.url"),
            std::string::npos);
  for (const char *Bad : {"file:///etc/passwd", "data:image/png,rawbytes", "data:image/png;base64", "data:;base64,",
                          "data:;base64,YW*j", "data:;base64,Y", "data:;base64,YQ=x", "data:;base64,YQ==="})
    EXPECT_THROW(parseImageDataUrl(Bad, "part"), Error) << Bad;
}

TEST(ChatImageTest, ParsedPartsAndErrors) {
  auto Parse = [](const std::string &Text) { return parseChatMessages(ordered_json::parse(Text)); };
  const std::string Url = "data:image/png;base64," + base64(visionFile("gray.png"));
  std::vector<ChatMessage> M = Parse(R"([{"role": "user", "content": [{"type": "text", "text": "a"},
    {"type": "image_url", "image_url": {"url": ")" + Url + R"("}}, {"type": "image_url", "image_url": ")" + Url +
                                     R"("}, {"type": "image", "url": ")" + Url + R"("}]}])");
  ASSERT_EQ(M.size(), 1u);
  EXPECT_EQ(M[0].images.size(), 3u);
  EXPECT_EQ(*M[0].contentParts, (std::vector<std::string>{"a", kChatImagePlaceholder, kChatImagePlaceholder,
                                                          kChatImagePlaceholder}));
  for (const std::string &Bad : {
           R"([{"role": "user", "content": [{"type": "image_url"}]}])",
           R"([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": 3}}]}])",
           R"([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}])",
           R"([{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}])",
           R"([{"role": "user", "content": [{"type": "video", "video": "x"}]}])"})
    EXPECT_THROW(Parse(Bad), Error) << Bad;
  // The Qwen3 template (text-only models) refuses images.
  EXPECT_NE(errorOf([&] { ChatTemplate(ChatTemplateStyle::Qwen3).render(M); }).find("takes no images"),
            std::string::npos);
  // Corrupt, truncated and unsupported images fail in the decoder.
  for (const char *Name : {"bad_truncated.png", "bad_truncated.jpg", "bad_truncated.webp", "unsupported.gif"}) {
    ChatImage Image = parseImageDataUrl("data:;base64," + base64(visionFile(Name)), Name);
    EXPECT_THROW(decodeImage(Image.bytes.data(), Image.bytes.size(), Name), Error) << Name;
  }
}

TEST(ImagePromptTest, BuildAndChunks) {
  const int32_t Pad = 9;
  const int64_t Hidden = 2;
  // Grids (1, 4, 6) -> 2 x 3 = 6 rows; (1, 2, 4) -> 1 x 2 = 2 rows.
  std::vector<ImageEmbedding> Images(2);
  Images[0].grid = {1, 4, 6};
  Images[1].grid = {1, 2, 4};
  for (int I = 0; I < 6 * Hidden; ++I)
    Images[0].rows.push_back(float(I));
  for (int I = 0; I < 2 * Hidden; ++I)
    Images[1].rows.push_back(float(100 + I));
  std::vector<int32_t> Ids = {1, 2, 7, Pad, 8, 3, 7, Pad, 8};
  ImagePrompt P = buildImagePrompt(Ids, Images, Pad, 2, Hidden);
  ASSERT_EQ(P.ids.size(), 15u);
  EXPECT_EQ(P.rowCount(), 8);
  EXPECT_EQ(P.imageTokens, (std::vector<int32_t>{3, 4, 5, 6, 7, 8, 12, 13}));
  // Text at 0..2, the image at 3 + (row, col), text resumes at 3 + 3 = 6.
  EXPECT_EQ(P.positions.at(1, 3), 3);
  EXPECT_EQ(P.positions.at(2, 8), 5);
  EXPECT_EQ(P.positions.at(0, 9), 6);
  EXPECT_EQ(P.positions.ropeDelta, P.positions.nextPosition() - 15);

  // Chunks [0, 5), [5, 13), [13, 15): the first image's run is split.
  std::vector<float> Rows;
  std::vector<int32_t> Positions[3];
  for (auto [Begin, End] : {std::pair<int64_t, int64_t>{0, 5}, {5, 13}, {13, 15}}) {
    Engine::SequenceChunk C = P.chunk(4, Begin, End);
    EXPECT_EQ(C.seq, 4);
    ASSERT_EQ(C.tokens.size(), size_t(End - Begin));
    ASSERT_EQ(C.mropePositions.size(), size_t(3 * (End - Begin)));
    ASSERT_EQ(C.imageEmbeds.size(), C.imageRows.size() * Hidden);
    for (int32_t Row : C.imageRows)
      EXPECT_EQ(C.tokens[size_t(Row)], Pad);
    Rows.insert(Rows.end(), C.imageEmbeds.begin(), C.imageEmbeds.end());
    for (int Axis = 0; Axis < 3; ++Axis)
      Positions[Axis].insert(Positions[Axis].end(), C.mropePositions.begin() + Axis * (End - Begin),
                             C.mropePositions.begin() + (Axis + 1) * (End - Begin));
  }
  EXPECT_EQ(Rows, P.embeds);
  for (int Axis = 0; Axis < 3; ++Axis)
    for (int64_t K = 0; K < 15; ++K)
      EXPECT_EQ(Positions[Axis][size_t(K)], P.positions.at(Axis, K));
  EXPECT_THROW(P.chunk(0, 3, 3), Error);
  EXPECT_THROW(P.chunk(0, 0, 16), Error);

  // Mismatches: rows not matching a grid, placeholders not matching images.
  std::vector<ImageEmbedding> Short = Images;
  Short[1].rows.pop_back();
  EXPECT_THROW(buildImagePrompt(Ids, Short, Pad, 2, Hidden), Error);
  EXPECT_THROW(buildImagePrompt({1, Pad, 2}, Images, Pad, 2, Hidden), Error);
}
