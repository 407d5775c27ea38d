//===- sampling.h - Next-token selection ------------------------*- C++ -*-===//
#ifndef QWEN_RT_SAMPLING_H
#define QWEN_RT_SAMPLING_H

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace qwen::rt {

/// temperature 0 (or below 1e-30) => greedy (argmax). topK 0 => no top-k limit. topP 1 => no
/// nucleus limit.
struct SamplingParams {
  float temperature = 0.f;
  int topK = 0;
  float topP = 1.f;
  uint64_t seed = 0;
};

/// The first index of the maximum of logits[0..n). n must be > 0.
int32_t argmax(const float *logits, int64_t n);

/// Samples token ids from logits: softmax(logits / temperature) restricted to
/// the top-k logits (ties: lower id first), then to the smallest set of the
/// most likely of those whose probability (renormalized within top-k) reaches
/// top-p. NaN logits have probability 0. Tokens whose probability relative to
/// the most likely one is below e^-30 (~1e-13) are treated as impossible.
class Sampler {
public:
  /// Validates: temperature >= 0, topK >= 0, 0 < topP <= 1 (Error otherwise).
  explicit Sampler(const SamplingParams &params);
  /// Deterministic for a given seed and call sequence.
  int32_t sample(const float *logits, int64_t n);
  /// sample() on a row, given only the row's `count` best candidates in
  /// canonical order (logit descending, then id ascending; NaN excluded,
  /// -0 == +0), as the GPU's qk_topk writes them: trailing entries with id
  /// -1 pad a row with fewer non-NaN logits. Returns exactly what
  /// sample(row, vocab) returns and advances the RNG the same way. Needs
  /// canSampleTopCandidates(count) (Error otherwise).
  int32_t sampleTopCandidates(const float *logits, const int32_t *ids, int64_t count,
                              int64_t vocab);
  /// The top `count` candidates of a row decide sample(): greedy, or a
  /// top-k in [1, count].
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
};

} // namespace qwen::rt

#endif // QWEN_RT_SAMPLING_H
