//===- stop_matcher_test.cpp - Tests of stop strings and SSE framing ------===//

#include "qwen_server/server.h"
#include "qwen_server/sse.h"
#include "qwen_server/stop_matcher.h"

#include <gtest/gtest.h>

using namespace qwen::serve;

namespace {

/// Feeds pieces; returns everything released and whether a stop matched.
std::pair<std::string, bool> run(std::vector<std::string> stops, const std::vector<std::string> &pieces) {
  StopMatcher m(std::move(stops));
  std::string out;
  for (const std::string &p : pieces)
    out += m.push(p);
  if (!m.matched())
    out += m.flush();
  return {out, m.matched()};
}

TEST(StopMatcherTest, MatchAcrossPieces) {
  EXPECT_EQ(run({"END"}, {"hello E", "N", "D and more"}), std::make_pair(std::string("hello "), true));
  EXPECT_EQ(run({"\n\n"}, {"a\n", "\nb"}), std::make_pair(std::string("a"), true));
}

TEST(StopMatcherTest, HoldsBackOnlyPossiblePrefixes) {
  StopMatcher m({"END"});
  EXPECT_EQ(m.push("abc"), "abc");
  EXPECT_EQ(m.push("xE"), "x"); // "E" may begin END
  EXPECT_EQ(m.push("N"), "");   // "EN" may too
  EXPECT_EQ(m.push("Q"), "ENQ");
  EXPECT_FALSE(m.matched());
  EXPECT_EQ(m.push("EN"), "");
  EXPECT_EQ(m.flush(), "EN"); // the generation ended without a match
}

TEST(StopMatcherTest, EarliestStopWins) {
  StopMatcher m({"world", "lo w"});
  EXPECT_EQ(m.push("hello world"), "hel");
  EXPECT_EQ(m.matchedStop(), "lo w");
  EXPECT_EQ(m.push("more"), ""); // nothing after a match
}

TEST(StopMatcherTest, NoStops) {
  EXPECT_EQ(run({}, {"a", "b"}), std::make_pair(std::string("ab"), false));
}

TEST(StopMatcherTest, StopAtTheVeryStart) {
  EXPECT_EQ(run({"Th"}, {"T", "hou"}), std::make_pair(std::string(""), true));
}

TEST(StopMatcherTest, MultiByteStop) {
  // A stop string of several UTF-8 bytes, arriving split.
  EXPECT_EQ(run({"\xc3\xa9t\xc3\xa9"}, {"un \xc3\xa9", "t\xc3\xa9 chaud"}), std::make_pair(std::string("un "), true));
}

TEST(SseTest, Framing) {
  nlohmann::json payload = {{"text", "two\nlines"}};
  std::string event = sseEvent(payload);
  EXPECT_EQ(event, "data: {\"text\":\"two\\nlines\"}\n\n"); // one data line, newlines escaped
  EXPECT_EQ(sseDone(), "data: [DONE]\n\n");
  // Invalid UTF-8 in a payload is replaced, never thrown.
  nlohmann::json bad = {{"text", std::string("a\xff")}};
  EXPECT_EQ(sseEvent(bad), "data: {\"text\":\"a\xef\xbf\xbd\"}\n\n");
}

TEST(ServerTest, ConstantTimeEquals) {
  EXPECT_TRUE(constantTimeEquals("sesame", "sesame"));
  EXPECT_FALSE(constantTimeEquals("sesame", "sesamf"));
  EXPECT_FALSE(constantTimeEquals("sesame", "sesam"));
  EXPECT_FALSE(constantTimeEquals("", "x"));
  EXPECT_TRUE(constantTimeEquals("", ""));
}

} // namespace
