//===- generate.h - Continuous-batching generation driver -------*- C++ -*-===//
//
// A Generator serves many generation requests over one Engine. Every step is
// one Engine::forward: running requests decode one token each, and waiting
// requests are admitted with (a chunk of) their prompt in the same step, as
// long as sequences, KV pages and the step's token budget allow. Each new
// token is reported through a callback (for streaming); a request's sequence
// is released as soon as it stops (stop token, max tokens, or context end).
//
// A new request first takes what the engine's prefix cache holds of its
// prompt (Engine::reusePrefix) and prefills only the rest. For hybrid models
// its prefill steps end at the page boundaries where a state checkpoint is
// worth taking: where its prompt leaves the cached pages (a branch point
// later prompts share) and at the last page boundary before its last token.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_RT_GENERATE_H
#define QWEN_RT_GENERATE_H

#include "qwen_rt/engine.h"
#include "qwen_rt/image_prompt.h"
#include "qwen_rt/sampling.h"

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

namespace qwen::rt {

enum class FinishReason { Running, Stop, Length, Context, Cancelled };
/// "running", "stop", "length", "context", "cancelled".
const char *finishReasonName(FinishReason reason);

struct GenerationRequest {
  std::vector<int32_t> prompt;
  /// A prompt with images (prepareImagePrompt): `prompt` is its ids; its
  /// prompt chunks carry the image rows and 3-D positions that fall in them.
  std::shared_ptr<const ImagePrompt> images;
  /// Or the images still to encode: submit() runs prepareImagePrompt (the
  /// vision program, on the thread that drives the engine) and replaces
  /// `prompt` (one `<|image_pad|>` per image, or expanded) and `images`.
  std::vector<PixelValues> pixelImages;
  SamplingParams sampling;
  int maxNewTokens = 128;
  /// nullopt: defaultStopTokens(engine).
  std::optional<std::vector<int32_t>> stopTokens;
};

/// One sampled token of one request.
struct TokenEvent {
  int request = 0;
  int32_t token = 0;
  bool isStop = false;                         ///< a stop token: ends the request, not part of the text
  FinishReason finish = FinishReason::Running; ///< why the request ended with this token, if it did
  /// With SamplingParams::logprobs >= 0: the token's logprob and the most
  /// likely alternatives, from the raw logits row.
  std::optional<TokenLogprobs> logprobs;
};

struct GenerationResult {
  std::vector<int32_t> tokens; ///< generated tokens, without the stop token
  std::optional<int32_t> stopToken;
  FinishReason finish = FinishReason::Running;
  int64_t promptTokens = 0;
  int64_t cachedTokens = 0;     ///< prompt tokens reused from the prefix cache
  double firstTokenSeconds = 0; ///< from submit to the first sampled token
  double totalSeconds = 0;      ///< from submit to the end
};

/// The checkpoint's eos ids (generation_config.json, config.json), its eos
/// token strings resolved with the tokenizer, and the manifest's
/// model.eos_token_ids; without duplicates.
std::vector<int32_t> defaultStopTokens(const Engine &engine);

class Generator {
public:
  using Callback = std::function<void(const TokenEvent &)>;
  explicit Generator(Engine &engine, Callback onToken = {});
  ~Generator();

  /// Queues a request; returns its id. Validates the prompt (non-empty, ids in
  /// the vocabulary, no longer than the context) and the sampling parameters.
  int submit(GenerationRequest request);
  /// Runs one step. Returns false when there was nothing to do.
  bool step();
  /// Steps until every request has finished.
  void runToCompletion();
  /// Ends a request now and frees its sequence.
  void cancel(int id);

  bool finished(int id) const;
  const GenerationResult &result(int id) const;
  /// Frees what a finished request still holds (its prompt, tokens and
  /// sampler), for drivers that serve requests indefinitely. Its id is not
  /// reused; finished() and result() must not be asked about it again.
  void release(int id);
  /// Requests waiting or running.
  int64_t active() const;
  /// The engine's prefix-cache counters (hits, reused tokens, cached pages).
  PrefixCacheStats prefixCacheStats() const { return Eng.prefixCacheStats(); }

private:
  struct State;
  void finish(State &s, FinishReason reason);

  Engine &Eng;
  Callback OnToken;
  std::vector<std::unique_ptr<State>> States;
  std::deque<int> Waiting;
  std::vector<int> Running;
  std::optional<std::vector<int32_t>> DefaultStops;
};

} // namespace qwen::rt

#endif // QWEN_RT_GENERATE_H
