//===- json_input.cpp - Parsing untrusted JSON ----------------------------===//

#include "qwen_rt/json_input.h"

#include "qwen_rt/error.h"
#include "qwen_rt/limits.h"

#include <fstream>
#include <sstream>

namespace qwen::rt {

nlohmann::json parseUntrustedJson(std::string_view text, const std::string &origin) {
  // nlohmann's parser recurses once per nesting level; refuse deep input first.
  if (size_t at = limits::findJsonNestingBeyond(text); at != std::string_view::npos)
    throw Error(origin + ": JSON nested deeper than " + std::to_string(limits::kMaxJsonDepth) +
                " levels (at byte " + std::to_string(at) + ")");
  try {
    return nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception &e) {
    throw Error(origin + ": malformed JSON: " + e.what());
  }
}

nlohmann::json readUntrustedJsonFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw Error("cannot read " + path);
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad())
    throw Error("cannot read " + path);
  return parseUntrustedJson(text.str(), path);
}

std::string jsonExcerpt(const nlohmann::json &value) {
  constexpr size_t kMaxChars = 64;
  constexpr size_t kMaxEntries = 8;
  std::string text;
  if (value.is_array() && value.size() > kMaxEntries)
    return "a list of " + std::to_string(value.size()) + " entries";
  if (value.is_object() && value.size() > kMaxEntries)
    return "an object of " + std::to_string(value.size()) + " keys";
  // Small containers: their dump is bounded by the parse-time depth limit,
  // and cut like a long string below.
  text = value.dump(-1, ' ', /*ensure_ascii=*/true, nlohmann::json::error_handler_t::replace);
  if (text.size() > kMaxChars)
    text = text.substr(0, kMaxChars) + "...";
  return text;
}

} // namespace qwen::rt
