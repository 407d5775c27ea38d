//===- stop_matcher.h - Stop strings across token boundaries ----*- C++ -*-===//
//
// A stop string may be split over several tokens, and the tokens before it
// must not be shown. The matcher therefore sees the detokenized text piece by
// piece and releases only text that can no longer be the start of a stop
// string; once a stop string appears, the text before it is released and the
// rest (the stop string included) is dropped.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_SERVER_STOP_MATCHER_H
#define QWEN_SERVER_STOP_MATCHER_H

#include <string>
#include <vector>

namespace qwen::serve {

class StopMatcher {
public:
  explicit StopMatcher(std::vector<std::string> stops);

  /// Appends `text`; returns the text that is now safe to release (possibly
  /// empty). After a match, returns the text up to the stop string and every
  /// later call returns "".
  std::string push(const std::string &text);
  /// The text still held back (the generation ended without a match).
  std::string flush();
  bool matched() const { return Matched; }
  /// The stop string that matched ("" before a match).
  const std::string &matchedStop() const { return MatchedStop; }

private:
  std::vector<std::string> Stops;
  std::string Held;
  bool Matched = false;
  std::string MatchedStop;
};

} // namespace qwen::serve

#endif // QWEN_SERVER_STOP_MATCHER_H
