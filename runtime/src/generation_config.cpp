//===- generation_config.cpp - Checkpoint generation defaults -------------===//

#include "qwen_rt/generation_config.h"
#include "qwen_rt/error.h"
#include "qwen_rt/json_input.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

namespace fs = std::filesystem;
using nlohmann::json;

namespace qwen::rt {

namespace {

/// Reads a JSON object file; nullopt when the file does not exist.
std::optional<json> readJsonFile(const fs::path &Path) {
  std::error_code EC;
  if (!fs::exists(Path, EC))
    return std::nullopt;
  json J = readUntrustedJsonFile(Path.string());
  if (!J.is_object())
    throw Error(Path.string() + " is not a JSON object");
  return J;
}

std::string where(const fs::path &File, const std::string &Key) {
  return File.string() + ": '" + Key + "'";
}

int32_t tokenId(const json &V, const fs::path &File, const std::string &Key) {
  if (!V.is_number_integer())
    throw Error(where(File, Key) + " must be an integer token id (or a list of them), got " +
                jsonExcerpt(V));
  int64_t Id = V.get<int64_t>();
  if (V.is_number_unsigned() &&
      V.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int32_t>::max()))
    throw Error(where(File, Key) + " is out of range: " + jsonExcerpt(V));
  if (Id < 0 || Id > std::numeric_limits<int32_t>::max())
    throw Error(where(File, Key) + " is out of range: " + jsonExcerpt(V));
  return static_cast<int32_t>(Id);
}

void addEosIds(GenerationConfig &C, const json &Obj, const fs::path &File,
               const std::string &Prefix) {
  auto It = Obj.find("eos_token_id");
  if (It == Obj.end() || It->is_null())
    return;
  auto Add = [&](int32_t Id) {
    if (std::find(C.eosTokenIds.begin(), C.eosTokenIds.end(), Id) == C.eosTokenIds.end())
      C.eosTokenIds.push_back(Id);
  };
  std::string Key = Prefix + "eos_token_id";
  if (It->is_array()) {
    for (const json &V : *It)
      Add(tokenId(V, File, Key));
  } else {
    Add(tokenId(*It, File, Key));
  }
}

/// Sets `Out` from Obj[Key] when Out is still unset and the key has a value.
void setOptionalId(std::optional<int32_t> &Out, const json &Obj, const char *Key,
                   const fs::path &File, const std::string &Prefix) {
  auto It = Obj.find(Key);
  if (Out || It == Obj.end() || It->is_null())
    return;
  // Some configs give a list here too; take the first id.
  if (It->is_array()) {
    if (It->empty())
      return;
    Out = tokenId((*It)[0], File, Prefix + Key);
    return;
  }
  Out = tokenId(*It, File, Prefix + Key);
}

template <typename T>
void setOptionalNumber(std::optional<T> &Out, const json &Obj, const char *Key,
                       const fs::path &File) {
  auto It = Obj.find(Key);
  if (Out || It == Obj.end() || It->is_null())
    return;
  if constexpr (std::is_same_v<T, bool>) {
    if (!It->is_boolean())
      throw Error(where(File, Key) + " must be true or false, got " + jsonExcerpt(*It));
    Out = It->get<bool>();
  } else if constexpr (std::is_integral_v<T>) {
    if (!It->is_number_integer())
      throw Error(where(File, Key) + " must be an integer, got " + jsonExcerpt(*It));
    int64_t V = It->get<int64_t>();
    if (V < std::numeric_limits<T>::min() || V > std::numeric_limits<T>::max())
      throw Error(where(File, Key) + " is out of range: " + jsonExcerpt(*It));
    Out = static_cast<T>(V);
  } else {
    if (!It->is_number())
      throw Error(where(File, Key) + " must be a number, got " + jsonExcerpt(*It));
    double V = It->get<double>();
    if (!std::isfinite(V) || std::fabs(V) > double(std::numeric_limits<T>::max()))
      throw Error(where(File, Key) + " is out of range: " + jsonExcerpt(*It));
    Out = static_cast<T>(V);
  }
}

/// tokenizer_config.json "eos_token": a string or {"content": string}.
void addEosString(GenerationConfig &C, const json &Obj, const fs::path &File) {
  auto It = Obj.find("eos_token");
  if (It == Obj.end() || It->is_null())
    return;
  std::string S;
  if (It->is_string()) {
    S = It->get<std::string>();
  } else if (It->is_object() && It->contains("content") && (*It)["content"].is_string()) {
    S = (*It)["content"].get<std::string>();
  } else {
    throw Error(where(File, "eos_token") +
                " must be a string or an object with a string 'content', got " + jsonExcerpt(*It));
  }
  if (!S.empty() &&
      std::find(C.eosTokenStrings.begin(), C.eosTokenStrings.end(), S) == C.eosTokenStrings.end())
    C.eosTokenStrings.push_back(S);
}

} // namespace

GenerationConfig readGenerationConfig(const std::string &CheckpointDir) {
  GenerationConfig C;
  fs::path Dir(CheckpointDir);

  fs::path GenPath = Dir / "generation_config.json";
  if (std::optional<json> Gen = readJsonFile(GenPath)) {
    addEosIds(C, *Gen, GenPath, "");
    setOptionalId(C.bosTokenId, *Gen, "bos_token_id", GenPath, "");
    setOptionalId(C.padTokenId, *Gen, "pad_token_id", GenPath, "");
    setOptionalNumber(C.temperature, *Gen, "temperature", GenPath);
    setOptionalNumber(C.topP, *Gen, "top_p", GenPath);
    setOptionalNumber(C.topK, *Gen, "top_k", GenPath);
    setOptionalNumber(C.doSample, *Gen, "do_sample", GenPath);
    setOptionalNumber(C.maxNewTokens, *Gen, "max_new_tokens", GenPath);
    // Checked here, where the file can be named, rather than when a request
    // built from these defaults is refused.
    if (C.temperature && *C.temperature < 0)
      throw Error(where(GenPath, "temperature") + " must not be negative, got " +
                  std::to_string(*C.temperature));
    if (C.topP && !(*C.topP > 0 && *C.topP <= 1))
      throw Error(where(GenPath, "top_p") + " must be in (0, 1], got " + std::to_string(*C.topP));
    if (C.topK && *C.topK < 0)
      throw Error(where(GenPath, "top_k") + " must not be negative, got " + std::to_string(*C.topK));
    if (C.maxNewTokens && *C.maxNewTokens <= 0)
      throw Error(where(GenPath, "max_new_tokens") + " must be positive, got " +
                  std::to_string(*C.maxNewTokens));
  }

  fs::path ConfigPath = Dir / "config.json";
  if (std::optional<json> Config = readJsonFile(ConfigPath)) {
    addEosIds(C, *Config, ConfigPath, "");
    setOptionalId(C.bosTokenId, *Config, "bos_token_id", ConfigPath, "");
    setOptionalId(C.padTokenId, *Config, "pad_token_id", ConfigPath, "");
    auto Text = Config->find("text_config");
    if (Text != Config->end() && Text->is_object()) {
      addEosIds(C, *Text, ConfigPath, "text_config.");
      setOptionalId(C.bosTokenId, *Text, "bos_token_id", ConfigPath, "text_config.");
      setOptionalId(C.padTokenId, *Text, "pad_token_id", ConfigPath, "text_config.");
    }
  }

  fs::path TokPath = Dir / "tokenizer_config.json";
  if (std::optional<json> Tok = readJsonFile(TokPath))
    addEosString(C, *Tok, TokPath);

  return C;
}

} // namespace qwen::rt
