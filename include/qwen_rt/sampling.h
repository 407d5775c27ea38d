//===- sampling.h - Next-token selection ------------------------*- C++ -*-===//
#ifndef QWEN_RT_SAMPLING_H
#define QWEN_RT_SAMPLING_H

#include <cstddef>
#include <cstdint>
#include <random>
#include <unordered_map>
#include <vector>

namespace qwen::rt {

/// temperature 0 (or below 1e-30) => greedy (argmax). topK 0 => no top-k limit. topP 1 => no
/// nucleus limit. The fields after `seed` default to "off"; at their defaults the sampler behaves
/// exactly as without them.
struct SamplingParams {
  float temperature = 0.f;
  int topK = 0;
  float topP = 1.f;
  uint64_t seed = 0;
  /// Drops tokens whose probability (after temperature) is below minP times the most likely
  /// one's, before top-k and top-p (vLLM's order). In [0, 1]; 0 = off.
  float minP = 0.f;
  /// OpenAI semantics, over the generated tokens only: logit -= presencePenalty if the token was
  /// generated, and -= frequencyPenalty * (times it was generated). Each in [-2, 2]; 0 = off.
  float presencePenalty = 0.f;
  float frequencyPenalty = 0.f;
  /// HF / vLLM semantics, over prompt and generated tokens: a positive logit of a token seen is
  /// divided by it, a negative one multiplied. > 0; 1 = off.
  float repetitionPenalty = 1.f;
  /// -1: no logprobs. 0..20: report the chosen token's logprob and that many most likely tokens
  /// (see computeLogprobs). Carried here so that a request's wish travels with its sampler.
  int logprobs = -1;
};

/// Largest `SamplingParams::logprobs` accepted (OpenAI's top_logprobs limit).
constexpr int MaxTopLogprobs = 20;

struct TokenLogprob {
  int32_t token = 0;
  float logprob = 0.f; ///< natural log; -inf for a token of probability 0
};

struct TokenLogprobs {
  TokenLogprob chosen;
  std::vector<TokenLogprob> top; ///< most likely first; ties: lower id first
};

/// The logprob of `chosen` and of the `topN` most likely tokens, from log_softmax of the row as
/// given. Callers pass the model's raw logits (before penalties and temperature), which is what
/// vLLM reports by default (logprobs_mode "raw_logprobs") and what OpenAI documents. NaN logits
/// have logprob -inf and are never among the top; with +inf logits those share all the mass.
/// topN in [0, MaxTopLogprobs] and chosen in [0, n) (Error otherwise).
TokenLogprobs computeLogprobs(const float *logits, int64_t n, int32_t chosen, int topN);

/// The first index of the maximum of logits[0..n). n must be > 0.
int32_t argmax(const float *logits, int64_t n);

/// Samples token ids from logits: softmax(logits / temperature) restricted to
/// the top-k logits (ties: lower id first), then to the smallest set of the
/// most likely of those whose probability (renormalized within top-k) reaches
/// top-p. NaN logits have probability 0. Tokens whose probability relative to
/// the most likely one is below e^-30 (~1e-13) are treated as impossible.
///
/// Penalties need the token history: the sampler keeps it (setPrompt, observe)
/// and sampleNext() applies them to a copy of the row before sampling.
class Sampler {
public:
  /// Validates: temperature >= 0, topK >= 0, 0 < topP <= 1, 0 <= minP <= 1,
  /// penalties as documented in SamplingParams, -1 <= logprobs <= 20 (Error
  /// otherwise, naming the parameter).
  explicit Sampler(const SamplingParams &params);
  /// Deterministic for a given seed and call sequence. Applies min-p but no
  /// penalties: the row is taken as final.
  int32_t sample(const float *logits, int64_t n);

  /// The prompt of the request, for repetition_penalty. Ids must be >= 0.
  void setPrompt(const std::vector<int32_t> &prompt);
  /// Records a generated token for the penalties (whoever sampled it).
  void observe(int32_t token);
  /// Any of presence, frequency or repetition penalty is on.
  bool hasPenalties() const;
  /// Applies the penalties to a row in place: repetition (prompt and
  /// generated tokens), then frequency and presence (generated tokens), as
  /// vLLM does. Token ids of the history must be < n (Error otherwise).
  void applyPenalties(float *logits, int64_t n) const;
  /// One host step: applies the penalties to a copy of the row, samples from
  /// it and observes the token. Equals sample() when there are no penalties.
  /// With `logprobs` and params().logprobs >= 0, also fills it from the raw
  /// row (computeLogprobs with that many top tokens).
  int32_t sampleNext(const float *logits, int64_t n, TokenLogprobs *logprobs = nullptr);
  /// Sampling needs the whole logits row on the host: penalties change the
  /// ranking (so neither a device argmax nor the top candidates decide the
  /// token) and logprobs are computed over the row.
  bool needsFullRow() const { return hasPenalties() || Params.logprobs >= 0; }

  /// sample() on a row, given only the row's `count` best candidates in
  /// canonical order (logit descending, then id ascending; NaN excluded,
  /// -0 == +0), as the GPU's qk_topk writes them: trailing entries with id
  /// -1 pad a row with fewer non-NaN logits. Returns exactly what
  /// sample(row, vocab) returns and advances the RNG the same way. Needs
  /// canSampleTopCandidates(count) (Error otherwise).
  int32_t sampleTopCandidates(const float *logits, const int32_t *ids, int64_t count,
                              int64_t vocab);
  /// The top `count` candidates of a row decide sample(): greedy, or a
  /// top-k in [1, count], and no penalties.
  bool canSampleTopCandidates(int64_t count) const;
  const SamplingParams &params() const { return Params; }
  /// sample() is argmax (temperature below 1e-30).
  bool isGreedy() const { return Params.temperature < 1e-30f; }

private:
  struct Candidate {
    float Logit;
    int32_t Id;
    float Weight; // exp((Logit - max) / temperature)
  };
  /// Logits below it have weight below e^-30 of the maximum's.
  float floorFor(float max) const;
  /// Weights, top-p and the draw over Candidates[0, num), taken in that
  /// order (which decides the token a given random number picks).
  int32_t drawFromCandidates(size_t num, float max);

  SamplingParams Params;
  std::mt19937_64 Rng;
  std::vector<Candidate> Candidates; // reused between calls
  std::vector<Candidate> Boundary;
  std::vector<double> BlockSums, BucketMass;
  /// Penalty state: sorted distinct prompt ids, generated ids with counts.
  std::vector<int32_t> PromptTokens;
  std::unordered_map<int32_t, int32_t> GeneratedCounts;
  std::vector<float> Penalized; // sampleNext's copy of the row
};

} // namespace qwen::rt

#endif // QWEN_RT_SAMPLING_H
