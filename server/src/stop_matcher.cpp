//===- stop_matcher.cpp - Stop strings across token boundaries ------------===//

#include "qwen_server/stop_matcher.h"

#include <algorithm>

namespace qwen::serve {

StopMatcher::StopMatcher(std::vector<std::string> stops) : Stops(std::move(stops)) {
  Stops.erase(std::remove(Stops.begin(), Stops.end(), std::string()), Stops.end());
}

std::string StopMatcher::push(const std::string &text) {
  if (Matched)
    return "";
  Held += text;
  // The earliest stop string wins (ties: the one listed first).
  size_t first = std::string::npos;
  for (const std::string &stop : Stops) {
    size_t at = Held.find(stop);
    if (at < first) {
      first = at;
      MatchedStop = stop;
    }
  }
  if (first != std::string::npos) {
    Matched = true;
    std::string out = Held.substr(0, first);
    Held.clear();
    return out;
  }
  // Hold back the longest tail of the text that begins some stop string.
  size_t keep = 0;
  for (const std::string &stop : Stops)
    for (size_t len = std::min(stop.size() - 1, Held.size()); len > keep; --len)
      if (Held.compare(Held.size() - len, len, stop, 0, len) == 0) {
        keep = len;
        break;
      }
  std::string out = Held.substr(0, Held.size() - keep);
  Held.erase(0, Held.size() - keep);
  return out;
}

std::string StopMatcher::flush() {
  std::string out;
  out.swap(Held);
  return out;
}

} // namespace qwen::serve
