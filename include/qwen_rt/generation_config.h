//===- generation_config.h - Checkpoint generation defaults -----*- C++ -*-===//
#ifndef QWEN_RT_GENERATION_CONFIG_H
#define QWEN_RT_GENERATION_CONFIG_H

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace qwen::rt {

struct GenerationConfig {
  std::vector<int32_t> eosTokenIds; // union, in order of discovery, no duplicates
  std::vector<std::string>
      eosTokenStrings; // e.g. tokenizer_config.json "eos_token" (string or {content})
  std::optional<int32_t> bosTokenId, padTokenId;
  std::optional<float> temperature, topP;
  std::optional<int> topK;
  std::optional<bool> doSample;
  std::optional<int> maxNewTokens;
};

/// Merges generation_config.json, config.json (eos_token_id int or list; also inside text_config)
/// and tokenizer_config.json of a checkpoint folder. Missing files are fine; malformed JSON throws
/// Error naming the file.
GenerationConfig readGenerationConfig(const std::string &checkpointDir);

} // namespace qwen::rt

#endif // QWEN_RT_GENERATION_CONFIG_H
