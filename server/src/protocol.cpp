//===- protocol.cpp - OpenAI request parsing and error bodies -------------===//

#include "qwen_server/protocol.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace qwen::serve {

using json = nlohmann::ordered_json;

json ApiError::body() const {
  json error = {{"message", what()}, {"type", Type}, {"param", nullptr}, {"code", nullptr}};
  if (!Param.empty())
    error["param"] = Param;
  if (!Code.empty())
    error["code"] = Code;
  return {{"error", error}};
}

ApiError ApiError::badRequest(const std::string &message, const std::string &param, const std::string &code) {
  return ApiError(400, message, "invalid_request_error", param, code);
}

bool isValidUtf8(const std::string &text) {
  const auto *s = reinterpret_cast<const unsigned char *>(text.data());
  size_t n = text.size(), i = 0;
  while (i < n) {
    unsigned char c = s[i];
    size_t len;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n)
      return false;
    for (size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80)
        return false;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    static const uint32_t kMinForLength[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMinForLength[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += len;
  }
  return true;
}

json parseJsonBody(const std::string &body) {
  if (!isValidUtf8(body))
    throw ApiError::badRequest("the request body is not valid UTF-8", "", "invalid_utf8");
  json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded())
    throw ApiError::badRequest("the request body is not valid JSON", "", "invalid_json");
  if (!parsed.is_object())
    throw ApiError::badRequest("the request body must be a JSON object, got " + std::string(parsed.type_name()));
  return parsed;
}

namespace {

/// Typed access to the optional fields of one request object. A field that
/// is absent or null counts as unset (OpenAI clients send nulls).
class Fields {
public:
  explicit Fields(const json &object, std::string prefix = "") : Obj(object), Prefix(std::move(prefix)) {}

  const json *get(const char *name) const {
    auto it = Obj.find(name);
    return it == Obj.end() || it->is_null() ? nullptr : &*it;
  }
  std::string path(const char *name) const { return Prefix + name; }
  [[noreturn]] void fail(const char *name, const std::string &what) const {
    throw ApiError::badRequest("'" + path(name) + "' " + what, path(name));
  }

  std::optional<double> number(const char *name, double lo, double hi, bool loOpen = false) const {
    const json *v = get(name);
    if (!v)
      return std::nullopt;
    if (!v->is_number())
      fail(name, "must be a number, got " + std::string(v->type_name()));
    double x = v->get<double>();
    if (!std::isfinite(x) || x > hi || x < lo || (loOpen && x == lo))
      fail(name, "must be in " + std::string(loOpen ? "(" : "[") + fmt(lo) + ", " + fmt(hi) + "], got " + v->dump());
    return x;
  }
  std::optional<int64_t> integer(const char *name, int64_t lo, int64_t hi) const {
    const json *v = get(name);
    if (!v)
      return std::nullopt;
    // 3.0 is accepted as 3, as Python clients may send it.
    if (v->is_number_float() && std::trunc(v->get<double>()) == v->get<double>() &&
        std::fabs(v->get<double>()) < 9e15)
      return checkRange(name, int64_t(v->get<double>()), lo, hi, *v);
    if (!v->is_number_integer())
      fail(name, "must be an integer, got " + std::string(v->type_name()));
    if (v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()))
      fail(name, "must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + v->dump());
    return checkRange(name, v->get<int64_t>(), lo, hi, *v);
  }
  std::optional<bool> boolean(const char *name) const {
    const json *v = get(name);
    if (!v)
      return std::nullopt;
    if (!v->is_boolean())
      fail(name, "must be a boolean, got " + std::string(v->type_name()));
    return v->get<bool>();
  }
  std::optional<std::string> string(const char *name) const {
    const json *v = get(name);
    if (!v)
      return std::nullopt;
    if (!v->is_string())
      fail(name, "must be a string, got " + std::string(v->type_name()));
    return v->get<std::string>();
  }

private:
  static std::string fmt(double x) {
    std::string s = std::to_string(x);
    s.erase(s.find_last_not_of('0') + 1);
    if (!s.empty() && s.back() == '.')
      s.pop_back();
    return s;
  }
  int64_t checkRange(const char *name, int64_t x, int64_t lo, int64_t hi, const json &v) const {
    if (x < lo || x > hi)
      fail(name, "must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + v.dump());
    return x;
  }

  const json &Obj;
  std::string Prefix;
};

std::string checkModel(const Fields &f, const ParseLimits &limits) {
  std::optional<std::string> model = f.string("model");
  if (!model)
    throw ApiError::badRequest("'model' is required", "model");
  if (!limits.modelNames.empty() &&
      std::find(limits.modelNames.begin(), limits.modelNames.end(), *model) == limits.modelNames.end())
    throw ApiError(404, "the model '" + *model + "' does not exist; this server serves '" + limits.modelNames.front() +
                           "'",
                   "invalid_request_error", "model", "model_not_found");
  return *model;
}

int32_t tokenId(const json &v, const std::string &param, const ParseLimits &limits) {
  if (!v.is_number_integer())
    throw ApiError::badRequest("'" + param + "' must hold integer token ids, got " + std::string(v.type_name()), param);
  int64_t id = v.get<int64_t>();
  if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()))
    id = std::numeric_limits<int64_t>::max();
  if (id < 0 || id >= limits.vocabSize)
    throw ApiError::badRequest("'" + param + "' holds token id " + v.dump() + ", outside the vocabulary of " +
                                   std::to_string(limits.vocabSize),
                               param);
  return int32_t(id);
}

/// The sampling, stopping and streaming fields both endpoints share.
SamplingOptions parseSampling(const json &body, const ParseLimits &limits, bool chat) {
  Fields f(body);
  SamplingOptions s;
  if (std::optional<int64_t> n = f.integer("n", 1, std::numeric_limits<int32_t>::max()); n && *n != 1)
    f.fail("n", "must be 1: this server returns one choice per request (send several requests instead)");
  if (auto v = f.number("temperature", 0, 2))
    s.temperature = float(*v);
  if (auto v = f.number("top_p", 0, 1, /*loOpen=*/true))
    s.topP = float(*v);
  // -1 (vLLM) and 0 both mean no top-k limit.
  if (auto v = f.integer("top_k", -1, std::numeric_limits<int32_t>::max()))
    s.topK = int(std::max<int64_t>(*v, 0));
  if (auto v = f.number("min_p", 0, 1))
    s.minP = float(*v);
  if (auto v = f.integer("seed", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()))
    s.seed = uint64_t(*v);
  if (auto v = f.number("presence_penalty", -2, 2))
    s.presencePenalty = float(*v);
  if (auto v = f.number("frequency_penalty", -2, 2))
    s.frequencyPenalty = float(*v);
  if (auto v = f.number("repetition_penalty", 0, 2, /*loOpen=*/true))
    s.repetitionPenalty = float(*v);
  const int64_t maxLen = std::max<int64_t>(limits.maxModelLen, 1);
  if (auto v = f.integer("max_tokens", 1, maxLen))
    s.maxTokens = *v;
  if (chat)
    if (auto v = f.integer("max_completion_tokens", 1, maxLen))
      s.maxTokens = *v;
  if (const json *stop = f.get("stop")) {
    if (stop->is_string()) {
      s.stop.push_back(stop->get<std::string>());
    } else if (stop->is_array()) {
      for (const json &item : *stop) {
        if (!item.is_string())
          f.fail("stop", "must be a string or an array of strings, got an array holding " +
                             std::string(item.type_name()));
        s.stop.push_back(item.get<std::string>());
      }
    } else {
      f.fail("stop", "must be a string or an array of strings, got " + std::string(stop->type_name()));
    }
    if (s.stop.size() > 16)
      f.fail("stop", "holds " + std::to_string(s.stop.size()) + " strings; at most 16 are supported");
    for (const std::string &str : s.stop)
      if (str.empty())
        f.fail("stop", "must not hold an empty string");
  }
  if (const json *ids = f.get("stop_token_ids")) {
    if (!ids->is_array())
      f.fail("stop_token_ids", "must be an array of token ids, got " + std::string(ids->type_name()));
    for (const json &id : *ids)
      s.stopTokenIds.push_back(tokenId(id, "stop_token_ids", limits));
  }
  s.ignoreEos = f.boolean("ignore_eos").value_or(false);
  if (chat) {
    s.logprobs = f.boolean("logprobs").value_or(false);
    if (auto v = f.integer("top_logprobs", 0, 20)) {
      s.topLogprobs = int(*v);
      if (*v > 0 && !s.logprobs)
        f.fail("top_logprobs", "needs 'logprobs': true");
    }
  } else if (auto v = f.integer("logprobs", 0, 20)) {
    // Completions: "logprobs": N asks for the N most likely tokens at each position.
    s.logprobs = true;
    s.topLogprobs = int(*v);
  }
  s.stream = f.boolean("stream").value_or(false);
  if (const json *opts = f.get("stream_options")) {
    if (!opts->is_object())
      f.fail("stream_options", "must be an object, got " + std::string(opts->type_name()));
    if (!s.stream)
      f.fail("stream_options", "is only allowed with 'stream': true");
    s.includeUsage = Fields(*opts, "stream_options.").boolean("include_usage").value_or(false);
  }
  if (const json *bias = f.get("logit_bias"); bias && !(bias->is_object() && bias->empty()))
    f.fail("logit_bias", "is not supported by this server");
  if (const json *format = f.get("response_format")) {
    std::optional<std::string> type =
        format->is_object() ? Fields(*format, "response_format.").string("type") : std::nullopt;
    if (!type || *type != "text")
      f.fail("response_format", "supports only {\"type\": \"text\"} (no JSON mode or schemas)");
  }
  return s;
}

void validateTools(ChatRequest &r, const Fields &f) {
  const json *tools = f.get("tools");
  if (tools) {
    if (!tools->is_array())
      f.fail("tools", "must be an array, got " + std::string(tools->type_name()));
    for (size_t i = 0; i < tools->size(); ++i) {
      const json &tool = (*tools)[i];
      std::string param = "tools[" + std::to_string(i) + "]";
      if (!tool.is_object())
        throw ApiError::badRequest("'" + param + "' must be an object", param);
      Fields tf(tool, param + ".");
      if (tf.string("type").value_or("function") != "function")
        tf.fail("type", "must be \"function\"");
      const json *fn = tf.get("function");
      if (!fn || !fn->is_object())
        tf.fail("function", "must be an object with a 'name'");
      Fields ff(*fn, param + ".function.");
      if (!ff.string("name") || ff.string("name")->empty())
        ff.fail("name", "is required");
      if (const json *params = ff.get("parameters"); params && !params->is_object())
        ff.fail("parameters", "must be a JSON Schema object");
    }
    r.tools = *tools;
  }
  if (const json *choice = f.get("tool_choice")) {
    // Forcing a call ("required", a named function) is done by prefilling
    // the answer with the call's opening (see forcedToolCallPrefix), which
    // needs tools to call.
    if (choice->is_string()) {
      r.toolChoice = choice->get<std::string>();
      if (r.toolChoice != "none" && r.toolChoice != "auto" && r.toolChoice != "required")
        f.fail("tool_choice", "must be \"none\", \"auto\", \"required\" or {\"type\": \"function\", "
                              "\"function\": {\"name\": ...}}, got " + choice->dump());
    } else if (choice->is_object()) {
      Fields cf(*choice, "tool_choice.");
      if (cf.string("type").value_or("") != "function")
        cf.fail("type", "must be \"function\"");
      const json *fn = cf.get("function");
      if (!fn || !fn->is_object())
        cf.fail("function", "must be an object with a 'name'");
      std::optional<std::string> name = Fields(*fn, "tool_choice.function.").string("name");
      if (!name || name->empty())
        Fields(*fn, "tool_choice.function.").fail("name", "is required");
      r.toolChoice = "function";
      r.forcedFunction = *name;
    } else {
      f.fail("tool_choice", "must be a string or an object, got " + std::string(choice->type_name()));
    }
    if (r.forcesToolCall() && r.tools.empty())
      f.fail("tool_choice", "is " + choice->dump() + " but the request has no 'tools'");
    if (r.toolChoice == "function") {
      bool known = std::any_of(r.tools.begin(), r.tools.end(), [&](const json &tool) {
        return tool.at("function").at("name") == r.forcedFunction;
      });
      if (!known)
        f.fail("tool_choice", "names the function '" + r.forcedFunction + "', which is not one of 'tools'");
    }
  }
}

} // namespace

ChatRequest parseChatRequest(const json &body, const ParseLimits &limits) {
  Fields f(body);
  ChatRequest r;
  r.model = checkModel(f, limits);
  const json *messages = f.get("messages");
  if (!messages)
    throw ApiError::badRequest("'messages' is required", "messages");
  if (!messages->is_array() || messages->empty())
    f.fail("messages", "must be a non-empty array of messages");
  try {
    r.messages = rt::parseChatMessages(*messages);
  } catch (const std::exception &e) {
    throw ApiError::badRequest(e.what(), "messages");
  }
  r.sampling = parseSampling(body, limits, /*chat=*/true);
  if (const json *kwargs = f.get("chat_template_kwargs")) {
    if (!kwargs->is_object())
      f.fail("chat_template_kwargs", "must be an object, got " + std::string(kwargs->type_name()));
    r.enableThinking = Fields(*kwargs, "chat_template_kwargs.").boolean("enable_thinking");
  }
  validateTools(r, f);
  return r;
}

std::string forcedToolCallPrefix(const ChatRequest &request, rt::ChatTemplateStyle style) {
  if (!request.forcesToolCall())
    return "";
  std::string prefix = "<tool_call>\n";
  if (request.toolChoice == "function") {
    // The name as the templates render it in the history (not JSON-escaped).
    if (style == rt::ChatTemplateStyle::Qwen3)
      prefix += "{\"name\": \"" + request.forcedFunction + "\", \"arguments\": ";
    else
      prefix += "<function=" + request.forcedFunction + ">\n";
  }
  return prefix;
}

CompletionRequest parseCompletionRequest(const json &body, const ParseLimits &limits) {
  Fields f(body);
  CompletionRequest r;
  r.model = checkModel(f, limits);
  const json *prompt = f.get("prompt");
  if (!prompt)
    throw ApiError::badRequest("'prompt' is required", "prompt");
  // One prompt: a string, token ids, or a one-element array of either.
  const json *one = prompt;
  if (prompt->is_array() && !prompt->empty() && ((*prompt)[0].is_string() || (*prompt)[0].is_array())) {
    if (prompt->size() != 1)
      f.fail("prompt", "holds " + std::to_string(prompt->size()) +
                           " prompts; this server takes one prompt per request (send several requests instead)");
    one = &(*prompt)[0];
  }
  if (one->is_string()) {
    r.promptText = one->get<std::string>();
    if (r.promptText->empty())
      f.fail("prompt", "must not be empty");
  } else if (one->is_array()) {
    if (one->empty())
      f.fail("prompt", "must not be empty");
    for (const json &id : *one)
      r.promptIds.push_back(tokenId(id, "prompt", limits));
  } else {
    f.fail("prompt", "must be a string or an array of token ids, got " + std::string(one->type_name()));
  }
  if (f.boolean("echo").value_or(false))
    f.fail("echo", "is not supported by this server");
  if (f.string("suffix"))
    f.fail("suffix", "is not supported by this server");
  if (auto bestOf = f.integer("best_of", 1, 1 << 20); bestOf && *bestOf != 1)
    f.fail("best_of", "must be 1");
  r.sampling = parseSampling(body, limits, /*chat=*/false);
  return r;
}

EmbeddingRequest parseEmbeddingRequest(const json &body, const ParseLimits &limits) {
  Fields f(body);
  EmbeddingRequest r;
  r.model = checkModel(f, limits);
  const json *input = f.get("input");
  if (!input)
    throw ApiError::badRequest("'input' is required", "input");
  const char *shape = "must be a string, an array of strings, an array of token ids or an array of arrays of token ids";
  if (input->is_string()) {
    r.texts.push_back(input->get<std::string>());
  } else if (input->is_array()) {
    if (input->empty())
      f.fail("input", "must not be empty");
    if (input->size() > kMaxEmbeddingInputs)
      f.fail("input", "holds " + std::to_string(input->size()) + " inputs; at most " +
                          std::to_string(kMaxEmbeddingInputs) + " are allowed per request");
    const json &first = (*input)[0];
    for (size_t i = 0; i < input->size(); ++i) {
      const json &item = (*input)[i];
      // One kind throughout: the first element decides which.
      if (first.is_string() && item.is_string()) {
        r.texts.push_back(item.get<std::string>());
      } else if (first.is_number() && item.is_number()) {
        if (i == 0)
          r.tokenIds.emplace_back();
        r.tokenIds[0].push_back(tokenId(item, "input", limits));
      } else if (first.is_array() && item.is_array()) {
        if (item.empty())
          f.fail("input", "holds an empty array of token ids at index " + std::to_string(i));
        std::vector<int32_t> ids;
        for (const json &id : item)
          ids.push_back(tokenId(id, "input", limits));
        r.tokenIds.push_back(std::move(ids));
      } else {
        f.fail("input", std::string(shape) + "; got an array holding " + item.type_name() + " at index " +
                            std::to_string(i) + (i > 0 ? " after " + std::string(first.type_name()) : ""));
      }
    }
  } else {
    f.fail("input", std::string(shape) + ", got " + input->type_name());
  }
  for (size_t i = 0; i < r.texts.size(); ++i)
    if (r.texts[i].empty())
      f.fail("input", "must not hold an empty string (index " + std::to_string(i) + ")");
  std::string format = f.string("encoding_format").value_or("float");
  if (format != "float" && format != "base64")
    f.fail("encoding_format", "must be \"float\" or \"base64\", got \"" + format + "\"");
  r.base64 = format == "base64";
  // The embeddings are the model's hidden states: no Matryoshka truncation.
  if (auto dims = f.integer("dimensions", 1, std::numeric_limits<int32_t>::max()); dims && *dims != limits.hiddenSize)
    f.fail("dimensions", "must be " + std::to_string(limits.hiddenSize) +
                             ", this model's hidden size (the server does not truncate embeddings), got " +
                             std::to_string(*dims));
  f.string("user"); // accepted and ignored, as a string
  return r;
}

std::string base64Floats(const std::vector<float> &values) {
  static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string bytes;
  bytes.reserve(values.size() * 4);
  for (float v : values) {
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    for (int k = 0; k < 4; ++k) // little-endian whatever the host
      bytes.push_back(char((bits >> (8 * k)) & 0xFF));
  }
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t chunk = uint32_t(uint8_t(bytes[i])) << 16;
    if (i + 1 < bytes.size())
      chunk |= uint32_t(uint8_t(bytes[i + 1])) << 8;
    if (i + 2 < bytes.size())
      chunk |= uint32_t(uint8_t(bytes[i + 2]));
    out.push_back(kAlphabet[(chunk >> 18) & 63]);
    out.push_back(kAlphabet[(chunk >> 12) & 63]);
    out.push_back(i + 1 < bytes.size() ? kAlphabet[(chunk >> 6) & 63] : '=');
    out.push_back(i + 2 < bytes.size() ? kAlphabet[chunk & 63] : '=');
  }
  return out;
}

} // namespace qwen::serve
