//===- json_input.h - Parsing untrusted JSON ---------------------*- C++ -*-===//
//
// Every JSON file the runtime reads (manifest.json, safetensors headers and
// index, tokenizer.json, generation_config.json) is parsed here: nesting is
// bounded before nlohmann's parser sees the text, every parser exception
// (including numbers out of range, such as 1e999) becomes an Error naming the
// file, and error messages quote values through jsonExcerpt, never through a
// whole recursive dump().
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_RT_JSON_INPUT_H
#define QWEN_RT_JSON_INPUT_H

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace qwen::rt {

/// Parses `text`, read from `origin` (a path, or a description such as
/// "the JSON header of safetensors file X"). Throws Error "<origin>: ..." for
/// malformed JSON, nesting deeper than limits::kMaxJsonDepth, or a number the
/// parser cannot represent.
nlohmann::json parseUntrustedJson(std::string_view text, const std::string &origin);

/// Reads and parses the file `path`; Error when it cannot be read or parsed.
nlohmann::json readUntrustedJsonFile(const std::string &path);

/// A short rendering of `value` for an error message: scalars as JSON
/// (strings cut after a few dozen characters), small containers in full,
/// larger ones as "a list of N entries" / "an object of N keys".
std::string jsonExcerpt(const nlohmann::json &value);

} // namespace qwen::rt

#endif // QWEN_RT_JSON_INPUT_H
