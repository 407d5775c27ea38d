//===- server.cpp - The OpenAI-compatible HTTP server ---------------------===//

#include "qwen_server/server.h"

#include "qwen_rt/chat.h"
#include "qwen_rt/error.h"
#include "qwen_rt/generate.h"
#include "qwen_rt/image.h"
#include "qwen_rt/image_prompt.h"
#include "qwen_server/engine_loop.h"
#include "qwen_server/metrics.h"
#include "qwen_server/protocol.h"
#include "qwen_server/sse.h"
#include "qwen_server/response.h"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <random>

namespace qwen::serve {

using json = nlohmann::ordered_json;
using std::chrono::duration;

bool constantTimeEquals(const std::string &a, const std::string &b) {
  // Every byte of the longer string is compared, so the time says nothing
  // about where the strings first differ.
  size_t n = std::max(a.size(), b.size());
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

namespace {

double secondsBetween(Clock::time_point a, Clock::time_point b) { return duration<double>(b - a).count(); }

/// What every handler shares; read-only after start but for the metrics and
/// the engine loop, which are thread-safe.
struct ServerState {
  rt::Engine &engine;
  const rt::Tokenizer &tokenizer;
  ServerOptions options;
  std::string modelName;
  ParseLimits limits;
  std::vector<int32_t> defaultStops;
  rt::ChatTemplate chatTemplate{rt::ChatTemplateStyle::Qwen3};
  Metrics metrics;
  std::unique_ptr<EngineLoop> loop;
  std::time_t started = std::time(nullptr);
  std::mutex logMu;

  ServerState(rt::Engine &e, const rt::Tokenizer &t) : engine(e), tokenizer(t) {}

  void log(const std::string &line) {
    std::lock_guard<std::mutex> lock(logMu);
    std::fprintf(stderr, "qwen-run serve: %s\n", line.c_str());
    std::fflush(stderr);
  }
};

template <typename Json = nlohmann::ordered_json> void sendJson(httplib::Response &res, int status, const Json &body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

void sendError(ServerState &state, httplib::Response &res, const ApiError &error) {
  if (error.status() == 429 || error.status() == 503)
    state.metrics.rejectedOverload++;
  else
    state.metrics.rejectedInvalid++;
  sendJson(res, error.status(), error.body());
}

std::string randomId(const char *prefix) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(rng()));
  return std::string(prefix) + buf;
}

/// The engine request for a validated prompt: sampling from the request,
/// else generation_config.json, else OpenAI's defaults; the length checked
/// against the context.
rt::GenerationRequest makeGenerationRequest(const ServerState &state, const SamplingOptions &s,
                                            std::vector<int32_t> prompt, const char *promptParam) {
  const int64_t maxLen = state.engine.maxContext();
  const int64_t promptLen = int64_t(prompt.size());
  if (promptLen >= maxLen)
    throw ApiError::badRequest("the prompt has " + std::to_string(promptLen) +
                                   " tokens, but this model's context is " + std::to_string(maxLen) +
                                   " tokens and at least one must be left to generate",
                               promptParam, "context_length_exceeded");
  if (s.maxTokens && promptLen + *s.maxTokens > maxLen)
    throw ApiError::badRequest("the prompt (" + std::to_string(promptLen) + " tokens) plus max_tokens (" +
                                   std::to_string(*s.maxTokens) + ") exceeds this model's context of " +
                                   std::to_string(maxLen) + " tokens",
                               "max_tokens", "context_length_exceeded");
  const rt::GenerationConfig &gc = state.engine.generationConfig();
  bool checkpointSamples = gc.doSample.value_or(gc.temperature.has_value());
  rt::GenerationRequest r;
  r.prompt = std::move(prompt);
  r.sampling.temperature = s.temperature.value_or(checkpointSamples ? gc.temperature.value_or(1.0f) : 1.0f);
  if (!s.temperature && gc.doSample && !*gc.doSample)
    r.sampling.temperature = 0; // the checkpoint asks for greedy decoding
  r.sampling.topK = s.topK.value_or(checkpointSamples ? gc.topK.value_or(0) : 0);
  r.sampling.topP = s.topP.value_or(checkpointSamples ? gc.topP.value_or(1.0f) : 1.0f);
  r.sampling.minP = s.minP.value_or(0);
  r.sampling.presencePenalty = s.presencePenalty;
  r.sampling.frequencyPenalty = s.frequencyPenalty;
  r.sampling.repetitionPenalty = s.repetitionPenalty;
  r.sampling.logprobs = s.logprobs ? s.topLogprobs : -1;
  r.sampling.seed = s.seed ? *s.seed : std::random_device{}() * 0x9E3779B97F4A7C15ull + std::random_device{}();
  r.maxNewTokens = int(s.maxTokens.value_or(maxLen - promptLen));
  std::vector<int32_t> stops = s.stopTokenIds;
  if (!s.ignoreEos)
    stops.insert(stops.end(), state.defaultStops.begin(), state.defaultStops.end());
  r.stopTokens = std::move(stops);
  return r;
}

/// How one generation ended.
struct Outcome {
  std::string error; ///< the engine could not run the request
  bool clientGone = false;
  double ttft = 0, total = 0;
};

/// Drives an accepted request to its end on the HTTP thread: feeds its
/// tokens to the assembler, hands every chunk to `emit` (false: the client is
/// gone), cancels the request at a stop string or a disconnect, and records
/// the latencies. `alive` is asked while no token arrives.
Outcome drive(ServerState &state, RequestHandle &handle, ResponseAssembler &response, Clock::time_point arrival,
              const std::function<bool(const ResponseAssembler::json &)> &emit, const std::function<bool()> &alive) {
  Outcome o;
  std::vector<TokenMessage> messages;
  Clock::time_point last = arrival;
  int64_t seen = 0;
  bool ended = false;
  while (!ended && !o.clientGone && !response.stopped()) {
    messages.clear();
    ended = handle.wait(messages, std::chrono::milliseconds(100));
    for (const TokenMessage &m : messages) {
      if (++seen == 1) {
        o.ttft = secondsBetween(arrival, m.at);
        state.metrics.timeToFirstToken.observe(o.ttft);
      } else {
        state.metrics.timePerOutputToken.observe(secondsBetween(last, m.at));
      }
      last = m.at;
      response.setCachedPromptTokens(m.cachedPromptTokens);
      for (const ResponseAssembler::json &chunk :
           response.push(m.token, m.isStop, m.finish, m.logprobs ? &*m.logprobs : nullptr))
        if (!emit(chunk)) {
          o.clientGone = true;
          break;
        }
      if (o.clientGone || response.stopped())
        break;
    }
    if (messages.empty() && !ended && !alive())
      o.clientGone = true;
  }
  if (o.clientGone || response.stopped())
    handle.cancel(); // frees its sequence before the next step
  if (!o.clientGone) {
    o.error = response.stopped() ? "" : handle.error();
    if (o.error.empty())
      for (const ResponseAssembler::json &chunk : response.finish())
        if (!emit(chunk)) {
          o.clientGone = true;
          break;
        }
  }
  o.total = secondsBetween(arrival, Clock::now());
  state.metrics.generationTokens += uint64_t(response.completionTokens());
  if (o.clientGone) {
    state.metrics.finishedAborted++;
  } else if (o.error.empty()) {
    state.metrics.requestLatency.observe(o.total);
    const std::string &reason = response.finishReason();
    (reason == "stop" ? state.metrics.finishedStop
                      : reason == "tool_calls" ? state.metrics.finishedToolCalls : state.metrics.finishedLength)++;
  }
  return o;
}

/// One generation request between parsing and the response.
struct Job {
  ResponseSpec spec;
  bool stream = false;
  rt::GenerationRequest request;
  Clock::time_point arrival;
};

void logFinished(ServerState &state, const Job &job, int status, const ResponseAssembler &response,
                 const Outcome &o) {
  char line[640];
  std::snprintf(line, sizeof line,
                "%s %s %d %s prompt=%lld completion=%lld finish=%s ttft=%.3fs total=%.3fs%s%s",
                job.spec.chat ? "/v1/chat/completions" : "/v1/completions", job.spec.id.c_str(), status,
                job.stream ? "stream" : "json", static_cast<long long>(job.spec.promptTokens),
                static_cast<long long>(response.completionTokens()),
                o.clientGone ? "aborted" : !o.error.empty() ? "error" : response.finishReason().c_str(), o.ttft,
                o.total, o.error.empty() ? "" : " error=", o.error.c_str());
  state.log(line);
}

/// Submits the job and answers: one JSON body, or an SSE stream.
void respond(ServerState &state, Job job, httplib::Response &res) {
  std::shared_ptr<RequestHandle> handle = state.loop->submit(std::move(job.request));
  state.metrics.promptTokens += uint64_t(job.spec.promptTokens);
  auto response = std::make_shared<ResponseAssembler>(state.tokenizer, job.spec);

  if (!job.stream) {
    Outcome o = drive(
        state, *handle, *response, job.arrival, [](const ResponseAssembler::json &) { return true; },
        [] { return true; });
    if (!o.error.empty()) {
      logFinished(state, job, 500, *response, o);
      sendJson(res, 500, ApiError(500, o.error, "server_error").body());
      return;
    }
    logFinished(state, job, 200, *response, o);
    sendJson(res, 200, response->body());
    return;
  }

  res.status = 200;
  res.set_header("Cache-Control", "no-cache");
  auto shared = std::make_shared<Job>(std::move(job));
  res.set_chunked_content_provider(
      "text/event-stream",
      [&state, handle, response, shared](size_t, httplib::DataSink &sink) {
        const Job &job = *shared;
        auto write = [&](const std::string &event) { return sink.write(event.data(), event.size()); };
        Outcome o;
        if (!job.spec.chat || write(sseEvent(response->roleChunk()))) {
          o = drive(
              state, *handle, *response, job.arrival,
              [&](const ResponseAssembler::json &chunk) { return write(sseEvent(chunk)); },
              [&] { return sink.is_writable(); });
        } else {
          handle->cancel();
          o.clientGone = true;
        }
        // The status line is gone; an engine error travels as an event, as OpenAI does.
        if (!o.clientGone && !o.error.empty())
          o.clientGone = !write(sseEvent(ApiError(500, o.error, "server_error").body()));
        if (!o.clientGone)
          o.clientGone = !write(sseDone());
        logFinished(state, job, 200, *response, o);
        if (!o.clientGone)
          sink.done();
        return !o.clientGone;
      },
      [handle](bool success) {
        if (!success)
          handle->cancel();
      });
}

/// The fields of a response every generation shares.
Job startJob(const ServerState &state, bool chat) {
  Job job;
  job.arrival = Clock::now();
  job.spec.chat = chat;
  job.spec.id = randomId(chat ? "chatcmpl-" : "cmpl-");
  job.spec.model = state.modelName;
  job.spec.created = int64_t(std::time(nullptr));
  return job;
}

void takeSampling(Job &job, const SamplingOptions &sampling) {
  job.stream = sampling.stream;
  job.spec.includeUsage = sampling.includeUsage;
  job.spec.logprobs = sampling.logprobs;
  job.spec.stops = sampling.stop;
}

/// The prompt text of a chat request, through the checkpoint's template.
/// Forcing a tool call renders with thinking off: the answer starts with the
/// call, not with reasoning.
std::string chatPromptText(const ServerState &state, const ChatRequest &chat) {
  rt::ChatTemplateOptions options;
  options.enableThinking = chat.enableThinking.value_or(true) && !chat.forcesToolCall();
  try {
    return state.chatTemplate.render(chat.messages, chat.tools.empty() ? nullptr : chat.tools, options) +
           forcedToolCallPrefix(chat, state.chatTemplate.style());
  } catch (const rt::Error &e) {
    throw ApiError::badRequest(e.what(), "messages");
  }
}

/// Generation needs logits: a hidden-states artifact is an embedding model.
void requireGenerator(const ServerState &state) {
  if (state.engine.artifact().outputsHiddenStates())
    throw ApiError::badRequest("'" + state.modelName +
                                   "' is an embedding model (its artifact returns hidden states, qwen-compile "
                                   "--hidden-states): it serves POST /v1/embeddings, not completions",
                               "model", "embedding_model");
}

/// The image parts of a chat, decoded and preprocessed for the model. A
/// text-only model, a corrupt, truncated or unsupported image: 400.
std::vector<rt::PixelValues> chatImages(const ServerState &state, const ChatRequest &chat) {
  std::vector<std::vector<uint8_t>> encoded;
  std::vector<std::string> origins;
  for (size_t i = 0; i < chat.messages.size(); ++i)
    for (size_t k = 0; k < chat.messages[i].images.size(); ++k) {
      encoded.push_back(chat.messages[i].images[k].bytes);
      origins.push_back("messages[" + std::to_string(i) + "]: image " + std::to_string(k + 1));
    }
  if (encoded.empty())
    return {};
  if (!state.engine.acceptsImages())
    throw ApiError::badRequest("'" + state.modelName +
                                   "' takes no images (a text-only model: its checkpoint has no vision_config); "
                                   "send text content parts only",
                               "messages", "images_not_supported");
  if (!state.engine.hasVision())
    throw ApiError::badRequest("'" + state.modelName +
                                   "' has no vision program (its artifact was compiled with --no-vision); "
                                   "send text content parts only, or serve an artifact compiled without --no-vision",
                               "messages", "images_not_supported");
  try {
    return rt::preprocessImages(state.engine, encoded, origins);
  } catch (const rt::Error &e) {
    throw ApiError::badRequest(e.what(), "messages", "invalid_image");
  }
}

/// The tokenized prompt with each image's <|image_pad|> expanded to its
/// merged-patch count: what the context must hold.
std::vector<int32_t> expandedImagePrompt(const ServerState &state, const std::vector<int32_t> &prompt,
                                         const std::vector<rt::PixelValues> &images) {
  std::vector<rt::ImageGrid> grids;
  for (const rt::PixelValues &image : images)
    grids.push_back(image.gridThw);
  try {
    return rt::expandImagePads(prompt, state.engine.imageTokenId(), grids, state.engine.spatialMergeSize());
  } catch (const rt::Error &e) {
    throw ApiError::badRequest(e.what(), "messages");
  }
}

void handleChat(ServerState &state, const httplib::Request &req, httplib::Response &res) {
  Job job = startJob(state, /*chat=*/true);
  try {
    requireGenerator(state);
    ChatRequest chat = parseChatRequest(parseJsonBody(req.body), state.limits);
    takeSampling(job, chat.sampling);
    // Images: decoded and preprocessed here (errors are the client's: 400),
    // encoded by the vision program on the engine's thread (Generator::submit).
    std::vector<rt::PixelValues> images = chatImages(state, chat);
    std::vector<int32_t> prompt = state.tokenizer.encode(chatPromptText(state, chat));
    if (!images.empty())
      prompt = expandedImagePrompt(state, prompt, images);
    job.spec.promptTokens = int64_t(prompt.size());
    rt::ChatOutputParserOptions parser;
    rt::ChatTemplateOptions templateOptions;
    templateOptions.enableThinking = chat.enableThinking.value_or(true) && !chat.forcesToolCall();
    parser.reasoningOpen = state.chatTemplate.generationOpensReasoning(templateOptions);
    parser.parseToolCalls = !chat.tools.empty() && chat.toolChoice != "none";
    parser.tools = chat.tools;
    parser.toolCallIdPrefix = "call_" + job.spec.id.substr(job.spec.id.find('-') + 1, 12) + "_";
    job.spec.parser = std::move(parser);
    // The prompt ends with it: the parser reads it as the answer's start.
    job.spec.forcedPrefix = forcedToolCallPrefix(chat, state.chatTemplate.style());
    job.request = makeGenerationRequest(state, chat.sampling, std::move(prompt), "messages");
    job.request.pixelImages = std::move(images);
    respond(state, std::move(job), res);
  } catch (const ApiError &e) {
    sendError(state, res, e);
  } catch (const rt::Error &e) {
    sendError(state, res, ApiError::badRequest(e.what()));
  }
}

void handleCompletion(ServerState &state, const httplib::Request &req, httplib::Response &res) {
  Job job = startJob(state, /*chat=*/false);
  try {
    requireGenerator(state);
    CompletionRequest completion = parseCompletionRequest(parseJsonBody(req.body), state.limits);
    takeSampling(job, completion.sampling);
    std::vector<int32_t> prompt =
        completion.promptText ? state.tokenizer.encode(*completion.promptText) : completion.promptIds;
    if (prompt.empty())
      throw ApiError::badRequest("the prompt encodes to no tokens", "prompt");
    job.spec.promptTokens = int64_t(prompt.size());
    job.request = makeGenerationRequest(state, completion.sampling, std::move(prompt), "prompt");
    respond(state, std::move(job), res);
  } catch (const ApiError &e) {
    sendError(state, res, e);
  } catch (const rt::Error &e) {
    sendError(state, res, ApiError::badRequest(e.what()));
  }
}

void handleEmbeddings(ServerState &state, const httplib::Request &req, httplib::Response &res) {
  try {
    json body = parseJsonBody(req.body);
    if (!state.engine.artifact().outputsHiddenStates())
      throw ApiError::badRequest("'" + state.modelName +
                                     "' generates: its artifact returns logits; embeddings need an artifact "
                                     "compiled with qwen-compile --hidden-states",
                                 "model", "not_an_embedding_model");
    EmbeddingRequest request = parseEmbeddingRequest(body, state.limits);
    // Texts are encoded as rt::embed() encodes them: with the tokenizer's
    // post-processor, whose appended <|endoftext|> is the pooled token.
    std::vector<std::vector<int32_t>> sequences = std::move(request.tokenIds);
    for (const std::string &text : request.texts)
      sequences.push_back(state.tokenizer.postProcess(state.tokenizer.encode(text)));
    int64_t promptTokens = 0;
    for (size_t i = 0; i < sequences.size(); ++i) {
      if (sequences[i].empty())
        throw ApiError::badRequest("input " + std::to_string(i) + " encodes to no tokens", "input");
      if (int64_t(sequences[i].size()) > state.engine.maxContext())
        throw ApiError::badRequest("input " + std::to_string(i) + " has " + std::to_string(sequences[i].size()) +
                                       " tokens, but this model's context is " +
                                       std::to_string(state.engine.maxContext()) + " tokens",
                                   "input", "context_length_exceeded");
      promptTokens += int64_t(sequences[i].size());
    }
    std::shared_ptr<EmbeddingHandle> handle = state.loop->submitEmbedding(std::move(sequences));
    state.metrics.promptTokens += uint64_t(promptTokens);
    std::vector<std::vector<float>> embeddings;
    try {
      embeddings = handle->wait();
    } catch (const std::exception &e) {
      sendJson(res, 500, ApiError(500, e.what(), "server_error").body());
      return;
    }
    json data = json::array();
    for (size_t i = 0; i < embeddings.size(); ++i) {
      json item = {{"object", "embedding"}, {"index", i}};
      if (request.base64)
        item["embedding"] = base64Floats(embeddings[i]);
      else
        item["embedding"] = embeddings[i];
      data.push_back(std::move(item));
    }
    sendJson(res, 200,
             json{{"object", "list"},
                  {"data", std::move(data)},
                  {"model", state.modelName},
                  {"usage", {{"prompt_tokens", promptTokens}, {"total_tokens", promptTokens}}}});
  } catch (const ApiError &e) {
    sendError(state, res, e);
  } catch (const rt::Error &e) {
    sendError(state, res, ApiError::badRequest(e.what()));
  }
}

void handleTokenize(ServerState &state, const httplib::Request &req, httplib::Response &res) {
  try {
    ResponseAssembler::json body = parseJsonBody(req.body);
    std::vector<int32_t> ids;
    if (body.contains("messages")) {
      ResponseAssembler::json chatBody = body;
      chatBody["model"] = state.modelName;
      ChatRequest chat = parseChatRequest(chatBody, state.limits);
      ids = state.tokenizer.encode(chatPromptText(state, chat));
    } else {
      auto it = body.find("prompt");
      if (it == body.end() || !it->is_string())
        throw ApiError::badRequest("'prompt' (a string) or 'messages' is required", "prompt");
      ids = state.tokenizer.encode(it->get<std::string>());
    }
    sendJson(res, 200, {{"tokens", ids}, {"count", ids.size()}, {"max_model_len", state.engine.maxContext()}});
  } catch (const ApiError &e) {
    sendError(state, res, e);
  } catch (const rt::Error &e) {
    sendError(state, res, ApiError::badRequest(e.what()));
  }
}

void handleDetokenize(ServerState &state, const httplib::Request &req, httplib::Response &res) {
  try {
    ResponseAssembler::json body = parseJsonBody(req.body);
    auto it = body.find("tokens");
    if (it == body.end() || !it->is_array())
      throw ApiError::badRequest("'tokens' (an array of token ids) is required", "tokens");
    std::vector<int32_t> ids;
    for (const ResponseAssembler::json &id : *it) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= state.limits.vocabSize)
        throw ApiError::badRequest("'tokens' holds " + id.dump() + ", which is not a token id of this model", "tokens");
      ids.push_back(id.get<int32_t>());
    }
    sendJson(res, 200, {{"prompt", state.tokenizer.decode(ids)}});
  } catch (const ApiError &e) {
    sendError(state, res, e);
  }
}

/// The bodies of the statuses httplib itself sets (unknown route, body too large).
void describeStatus(ServerState &state, const httplib::Request &req, httplib::Response &res) {
  if (!res.body.empty() || res.status < 400)
    return;
  if (res.status == 404)
    sendError(state, res, ApiError(404, "no route " + req.method + " " + req.path, "invalid_request_error", "",
                                   "unknown_route"));
  else if (res.status == 413)
    sendError(state, res, ApiError(413, "the request body is larger than " +
                                            std::to_string(state.options.maxBodyBytes) + " bytes",
                                   "invalid_request_error", "", "body_too_large"));
  else
    sendError(state, res, ApiError(res.status, "the request could not be served (HTTP " +
                                                   std::to_string(res.status) + ")",
                                   res.status < 500 ? "invalid_request_error" : "server_error"));
}

int SignalPipe[2] = {-1, -1};
volatile sig_atomic_t Stopping = 0;

void onSignal(int sig) {
  if (Stopping)
    _exit(128 + sig); // a second Ctrl-C does not wait for the drain
  Stopping = 1;
  unsigned char byte = static_cast<unsigned char>(sig);
  (void)!write(SignalPipe[1], &byte, 1);
}

bool isGenerationRoute(const std::string &path) {
  return path == "/v1/chat/completions" || path == "/v1/completions";
}

} // namespace

int runServer(rt::Engine &engine, const ServerOptions &options) {
  // An artifact compiled from config.json alone records no tokenizer; with
  // --checkpoint DIR (e.g. for --random-weights) the folder's tokenizer.json
  // serves.
  const rt::Tokenizer *tokenizer = engine.tokenizer();
  std::optional<rt::Tokenizer> folderTokenizer;
  std::filesystem::path folderTokenizerPath = std::filesystem::path(engine.checkpointDir()) / "tokenizer.json";
  if (!tokenizer && !engine.checkpointDir().empty() && std::filesystem::exists(folderTokenizerPath))
    tokenizer = &folderTokenizer.emplace(rt::Tokenizer::fromFile(folderTokenizerPath.string()));
  if (!tokenizer)
    throw rt::Error("the artifact's checkpoint has no tokenizer.json; serving needs one (pass --checkpoint DIR)");
  ServerState state(engine, *tokenizer);
  state.options = options;
  state.modelName = options.servedModelName;
  if (state.modelName.empty()) {
    std::filesystem::path dir(engine.checkpointDir().empty() ? engine.artifact().dir() : engine.checkpointDir());
    state.modelName = (dir.has_filename() ? dir : dir.parent_path()).filename().string();
  }
  state.limits.modelNames = {state.modelName};
  state.limits.vocabSize = engine.vocabSize();
  state.limits.maxModelLen = engine.maxContext();
  if (engine.artifact().outputsHiddenStates())
    state.limits.hiddenSize = engine.artifact().outputWidth();
  state.defaultStops = rt::defaultStopTokens(engine);
  try {
    state.chatTemplate = rt::ChatTemplate::fromCheckpoint(engine.checkpointDir());
    if (!state.chatTemplate.verified())
      state.log(std::string("warning: the checkpoint's chat template is a variant of the ") +
                rt::chatTemplateStyleName(state.chatTemplate.style()) +
                " template; chats are rendered as that template renders them");
  } catch (const rt::Error &e) {
    state.chatTemplate = rt::ChatTemplate(rt::ChatTemplateStyle::Qwen3, /*verified=*/false);
    state.log(std::string("warning: ") + e.what() + "; chats use the Qwen3 template");
  }

  // The engine admits a request only with a sequence; every sequence must be
  // able to reach the full context, so admission can never run out of pages.
  const rt::MemoryPlan plan = engine.memoryPlan();
  int64_t pagesPerSequence = (plan.maxContext + plan.pageSize - 1) / plan.pageSize;
  if (plan.numPages < pagesPerSequence * plan.maxSequences)
    throw rt::Error("the KV cache has " + std::to_string(plan.numPages) + " pages, but " +
                    std::to_string(plan.maxSequences) + " sequences of " + std::to_string(plan.maxContext) +
                    " tokens need " + std::to_string(pagesPerSequence * plan.maxSequences) +
                    "; lower --max-num-seqs or --max-model-len, or leave --kv-pages out");

  // SIGINT / SIGTERM may land on any thread (the engine's pool predates this
  // function), so the handler only writes the signal to a pipe; a watcher
  // thread reads it and drains.
  if (pipe(SignalPipe) != 0)
    throw rt::Error("cannot create the signal pipe: " + std::string(std::strerror(errno)));
  struct sigaction action = {};
  action.sa_handler = onSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  state.loop = std::make_unique<EngineLoop>(engine, options.maxQueue, state.metrics);

  httplib::Server server;
  size_t workers = size_t(plan.maxSequences) + size_t(std::max<int64_t>(options.maxQueue, 0)) + 8;
  server.new_task_queue = [workers] { return new httplib::ThreadPool(workers); };
  server.set_payload_max_length(options.maxBodyBytes);
  server.set_keep_alive_timeout(5);
  server.set_pre_routing_handler([&](const httplib::Request &req, httplib::Response &res) {
    bool open = req.path == "/health" || req.path == "/metrics";
    if (options.apiKey.empty() || open)
      return httplib::Server::HandlerResponse::Unhandled;
    std::string auth = req.get_header_value("Authorization");
    const std::string bearer = "Bearer ";
    if (auth.compare(0, bearer.size(), bearer) == 0 && constantTimeEquals(auth.substr(bearer.size()), options.apiKey))
      return httplib::Server::HandlerResponse::Unhandled;
    sendError(state, res,
              ApiError(401, auth.empty() ? "missing API key: send the header 'Authorization: Bearer KEY'"
                                         : "invalid API key",
                       "invalid_request_error", "", "invalid_api_key"));
    return httplib::Server::HandlerResponse::Handled;
  });
  server.set_error_handler(httplib::Server::HandlerWithResponse(
      [&](const httplib::Request &req, httplib::Response &res) {
        describeStatus(state, req, res);
        return httplib::Server::HandlerResponse::Handled;
      }));
  server.set_exception_handler([&](const httplib::Request &, httplib::Response &res, std::exception_ptr ep) {
    std::string what = "unknown error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception &e) {
      what = e.what();
    } catch (...) {
    }
    sendJson(res, 500, ApiError(500, "internal error: " + what, "server_error").body());
    state.log("internal error: " + what);
  });
  server.set_logger([&](const httplib::Request &req, const httplib::Response &res) {
    // Generations that ran log themselves, with their token counts.
    if (isGenerationRoute(req.path) && (res.status == 200 || res.status == 500))
      return;
    state.log(req.method + " " + req.path + " " + std::to_string(res.status));
  });

  // A draining server says so, for load balancers to send new work elsewhere.
  server.Get("/health", [&](const httplib::Request &, httplib::Response &res) {
    if (state.loop->draining())
      sendJson(res, 503, ApiError(503, "the server is shutting down", "server_error", "", "shutting_down").body());
    else
      sendJson(res, 200, json::object());
  });
  server.Get("/v1/models", [&](const httplib::Request &, httplib::Response &res) {
    json model = {{"id", state.modelName},
                  {"object", "model"},
                  {"created", state.started},
                  {"owned_by", "qwen-compiler"},
                  {"max_model_len", engine.maxContext()}};
    sendJson(res, 200, {{"object", "list"}, {"data", json::array({model})}});
  });
  server.Post("/v1/chat/completions",
              [&](const httplib::Request &req, httplib::Response &res) { handleChat(state, req, res); });
  server.Post("/v1/completions",
              [&](const httplib::Request &req, httplib::Response &res) { handleCompletion(state, req, res); });
  server.Post("/v1/embeddings",
              [&](const httplib::Request &req, httplib::Response &res) { handleEmbeddings(state, req, res); });
  server.Post("/tokenize", [&](const httplib::Request &req, httplib::Response &res) { handleTokenize(state, req, res); });
  server.Post("/detokenize",
              [&](const httplib::Request &req, httplib::Response &res) { handleDetokenize(state, req, res); });
  server.Get("/metrics", [&](const httplib::Request &, httplib::Response &res) {
    res.set_content(state.metrics.render(), "text/plain; version=0.0.4");
  });

  // cpp-httplib 0.11 listens with a backlog of 5: a burst of clients would
  // see connection resets before the pool accepts them. The listening socket
  // is remembered here and its backlog raised once bound.
  int listenFd = -1;
  server.set_socket_options([&listenFd](socket_t sock) {
    httplib::default_socket_options(sock);
    listenFd = sock;
  });

  int port = options.port;
  if (port == 0)
    port = server.bind_to_any_port(options.host);
  else if (!server.bind_to_port(options.host, port))
    port = -1;
  if (port <= 0)
    throw rt::Error("cannot listen on " + options.host + ":" + std::to_string(options.port) +
                    " (in use, or not an address of this machine)");
  if (listenFd >= 0)
    ::listen(listenFd, SOMAXCONN);

  std::thread signalThread([&] {
    unsigned char sig = 0;
    while (read(SignalPipe[0], &sig, 1) < 0 && errno == EINTR) {
    }
    if (sig != 0)
      state.log(std::string(sig == SIGINT ? "SIGINT" : "SIGTERM") + ": draining " +
                std::to_string(state.loop->inFlight()) + " requests, then exiting");
    state.loop->drain();
    server.stop();
  });
  state.log("serving '" + state.modelName + "' on http://" + options.host + ":" + std::to_string(port) + " (" +
            std::to_string(plan.maxSequences) + " sequences of up to " + std::to_string(plan.maxContext) +
            " tokens, queue " + std::to_string(options.maxQueue) + (plan.device.empty() ? ", CPU" : ", " + plan.device) +
            ")");
  bool listened = server.listen_after_bind();
  if (!Stopping) {
    // The listener failed on its own: wake the watcher so that it drains.
    unsigned char none = 0;
    (void)!write(SignalPipe[1], &none, 1);
  }
  signalThread.join();
  state.loop.reset();
  state.log(listened ? "stopped" : "the listener failed; stopped");
  return listened ? 0 : 1;
}

} // namespace qwen::serve
