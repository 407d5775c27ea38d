//===- sampling.cpp - Next-token selection --------------------------------===//
//
// Sampling over a vocabulary of ~150k logits has to be cheap next to a model
// step, so the sampler avoids sorting the vocabulary:
//  1. a vectorizable pass finds the largest logit;
//  2. one pass keeps the candidates whose weight exp((l - max) / T) is at least
//     e^-30 (everything else is negligible), and with top-k only the k best
//     (a bounded buffer cut down by nth_element, the k kept sorted);
//  3. the weights come from a vectorizable exp; top-p finds the nucleus edge
//     with a histogram of mass over log-weight buckets and sorts only the
//     candidates of the edge bucket.
// Candidates are ordered by (logit descending, id ascending), a strict total
// order, so ties at the top-k / top-p boundary always keep the lower ids.
// The draw walks the candidates in id order without top-k and in that
// canonical order with it, so that sampleTopCandidates(), given a row's best
// candidates (the GPU's qk_topk), picks the same token as sample() on the
// whole row for the same random number.
//
//===----------------------------------------------------------------------===//

#include "qwen_rt/sampling.h"
#include "qwen_rt/error.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

namespace qwen::rt {

namespace {

constexpr float NegInf = -std::numeric_limits<float>::infinity();
/// Weights below e^-Cutoff of the maximum are treated as zero.
constexpr double Cutoff = 30.0;
/// Buckets of the top-p mass histogram over log-weights [0, Cutoff].
constexpr uint32_t NumBuckets = 2048;
/// Candidates per block of partial sums.
constexpr size_t BlockSize = 256;

void checkLength(int64_t N) {
  if (N <= 0)
    throw Error("sampling needs at least one logit, got " + std::to_string(N));
  if (N > std::numeric_limits<int32_t>::max())
    throw Error("sampling over " + std::to_string(N) + " logits: too many for int32 token ids");
}

/// The largest logit, ignoring NaN; -inf when there is none.
float maxLogit(const float *L, int64_t N) {
  constexpr int Lanes = 16;
  float M[Lanes];
  for (float &V : M)
    V = NegInf;
  int64_t I = 0;
  for (; I + Lanes <= N; I += Lanes)
    for (int J = 0; J < Lanes; ++J)
      M[J] = L[I + J] > M[J] ? L[I + J] : M[J]; // NaN compares false: kept out
  float Best = NegInf;
  for (; I < N; ++I)
    Best = L[I] > Best ? L[I] : Best;
  for (float V : M)
    Best = V > Best ? V : Best;
  return Best;
}

/// e^X for X in [-87, 0], within a few float ulps; branch-free so that loops
/// over it vectorize (std::exp is a library call).
inline float expNonPositive(float X) {
  const float Log2e = 1.44269504088896341f;
  const float Round = 12582912.f; // 1.5 * 2^23: adding it rounds to an integer
  float K = (X * Log2e + Round) - Round;
  // Cody-Waite reduction: R = X - K * ln2, |R| <= ln2 / 2.
  float R = X - K * 0.693145751953125f;
  R = R - K * 1.42860682030941723212e-6f;
  // Taylor polynomial of e^R to degree 7 (error < 3e-9 relative).
  float P = 1.f / 5040.f;
  P = P * R + 1.f / 720.f;
  P = P * R + 1.f / 120.f;
  P = P * R + 1.f / 24.f;
  P = P * R + 1.f / 6.f;
  P = P * R + 0.5f;
  P = P * R + 1.f;
  P = P * R + 1.f;
  int32_t E = static_cast<int32_t>(K) + 127; // >= 1 for X >= -87
  uint32_t Bits = static_cast<uint32_t>(E) << 23;
  float Scale;
  std::memcpy(&Scale, &Bits, 4);
  return P * Scale;
}

/// Candidate order: logit descending, then id ascending (a strict total
/// order on non-NaN logits, -0 == +0).
template <typename C> bool before(const C &A, const C &B) {
  return A.Logit > B.Logit || (A.Logit == B.Logit && A.Id < B.Id);
}

} // namespace

int32_t argmax(const float *Logits, int64_t N) {
  checkLength(N);
  float Max = maxLogit(Logits, N);
  for (int64_t I = 0; I < N; ++I)
    if (Logits[I] == Max)
      return static_cast<int32_t>(I);
  return 0; // Every logit is NaN.
}

Sampler::Sampler(const SamplingParams &P) : Params(P), Rng(P.seed) {
  if (!(P.temperature >= 0.f) || std::isinf(P.temperature))
    throw Error("sampling temperature must be a finite number >= 0, got " +
                std::to_string(P.temperature));
  if (P.topK < 0)
    throw Error("sampling top-k must be >= 0 (0 = no limit), got " + std::to_string(P.topK));
  if (!(P.topP > 0.f && P.topP <= 1.f))
    throw Error("sampling top-p must be in (0, 1], got " + std::to_string(P.topP));
  if (!(P.minP >= 0.f && P.minP <= 1.f))
    throw Error("sampling min-p must be in [0, 1], got " + std::to_string(P.minP));
  if (!(P.presencePenalty >= -2.f && P.presencePenalty <= 2.f))
    throw Error("presence penalty must be in [-2, 2], got " + std::to_string(P.presencePenalty));
  if (!(P.frequencyPenalty >= -2.f && P.frequencyPenalty <= 2.f))
    throw Error("frequency penalty must be in [-2, 2], got " + std::to_string(P.frequencyPenalty));
  if (!(P.repetitionPenalty > 0.f) || std::isinf(P.repetitionPenalty))
    throw Error("repetition penalty must be a finite number > 0 (1 = off), got " +
                std::to_string(P.repetitionPenalty));
  if (P.logprobs < -1 || P.logprobs > MaxTopLogprobs)
    throw Error("logprobs must be in [0, " + std::to_string(MaxTopLogprobs) +
                "] (or -1 for none), got " + std::to_string(P.logprobs));
}

void Sampler::setPrompt(const std::vector<int32_t> &Prompt) {
  for (int32_t Id : Prompt)
    if (Id < 0)
      throw Error("sampler prompt holds a negative token id " + std::to_string(Id));
  PromptTokens.clear();
  if (Params.repetitionPenalty == 1.f)
    return; // only repetition_penalty looks at the prompt
  PromptTokens = Prompt;
  std::sort(PromptTokens.begin(), PromptTokens.end());
  PromptTokens.erase(std::unique(PromptTokens.begin(), PromptTokens.end()), PromptTokens.end());
}

void Sampler::observe(int32_t Token) {
  if (Token < 0)
    throw Error("sampler observed a negative token id " + std::to_string(Token));
  if (hasPenalties())
    ++GeneratedCounts[Token];
}

bool Sampler::hasPenalties() const {
  return Params.presencePenalty != 0.f || Params.frequencyPenalty != 0.f ||
         Params.repetitionPenalty != 1.f;
}

void Sampler::applyPenalties(float *Logits, int64_t N) const {
  checkLength(N);
  auto CheckId = [N](int32_t Id) {
    if (Id >= N)
      throw Error("token id " + std::to_string(Id) + " of the sampler's history is outside a row of " +
                  std::to_string(N) + " logits");
  };
  const float Rep = Params.repetitionPenalty;
  auto Repeat = [&](int32_t Id) {
    float &L = Logits[Id];
    L = L > 0.f ? L / Rep : L * Rep;
  };
  if (Rep != 1.f) {
    // Each token seen once, whether in the prompt, the output or both.
    for (int32_t Id : PromptTokens) {
      CheckId(Id);
      Repeat(Id);
    }
    for (const auto &[Id, Count] : GeneratedCounts) {
      CheckId(Id);
      if (!std::binary_search(PromptTokens.begin(), PromptTokens.end(), Id))
        Repeat(Id);
    }
  }
  for (const auto &[Id, Count] : GeneratedCounts) {
    CheckId(Id);
    Logits[Id] -= Params.frequencyPenalty * static_cast<float>(Count) + Params.presencePenalty;
  }
}

int32_t Sampler::sampleNext(const float *Logits, int64_t N, TokenLogprobs *Logprobs) {
  int32_t Token;
  if (hasPenalties()) {
    checkLength(N);
    Penalized.assign(Logits, Logits + N);
    applyPenalties(Penalized.data(), N);
    Token = sample(Penalized.data(), N);
  } else {
    Token = sample(Logits, N);
  }
  observe(Token);
  if (Logprobs && Params.logprobs >= 0)
    *Logprobs = computeLogprobs(Logits, N, Token, Params.logprobs);
  return Token;
}

TokenLogprobs computeLogprobs(const float *Logits, int64_t N, int32_t Chosen, int TopN) {
  checkLength(N);
  if (Chosen < 0 || Chosen >= N)
    throw Error("logprobs of token " + std::to_string(Chosen) + " outside a row of " +
                std::to_string(N) + " logits");
  if (TopN < 0 || TopN > MaxTopLogprobs)
    throw Error("top logprobs must be in [0, " + std::to_string(MaxTopLogprobs) + "], got " +
                std::to_string(TopN));
  const float Max = maxLogit(Logits, N);
  // log-sum-exp relative to the maximum, in double; with +inf logits the
  // "sum" counts them and every finite logit has logprob -inf.
  double Sum = 0;
  if (std::isinf(Max) && Max > 0) {
    for (int64_t I = 0; I < N; ++I)
      Sum += Logits[I] == Max;
  } else if (Max != NegInf) {
    for (int64_t I = 0; I < N; ++I)
      if (Logits[I] >= Max - 200.f) // e^-200 vanishes next to the maximum's 1
        Sum += std::exp(static_cast<double>(Logits[I]) - Max);
  }
  const double LogSum = std::log(Sum);
  auto LogprobOf = [&](float L) -> float {
    if (std::isnan(L) || Max == NegInf)
      return NegInf; // NaN rows or rows without mass: nothing is possible
    if (std::isinf(Max) && Max > 0)
      return L == Max ? static_cast<float>(-LogSum) : NegInf;
    return static_cast<float>(static_cast<double>(L) - Max - LogSum);
  };

  TokenLogprobs Out;
  Out.chosen = {Chosen, LogprobOf(Logits[Chosen])};
  if (TopN == 0)
    return Out;
  // The best TopN (logit descending, id ascending) by insertion into a short
  // sorted list; most logits fail the first comparison.
  struct Entry {
    float Logit;
    int32_t Id;
  };
  std::vector<Entry> Best;
  Best.reserve(static_cast<size_t>(TopN) + 1);
  for (int64_t I = 0; I < N; ++I) {
    float L = Logits[I];
    if (std::isnan(L))
      continue;
    if (Best.size() == static_cast<size_t>(TopN) && !(L > Best.back().Logit))
      continue; // a later id with an equal logit ranks after
    Entry E{L, static_cast<int32_t>(I)};
    auto At = std::upper_bound(Best.begin(), Best.end(), E,
                               [](const Entry &A, const Entry &B) { return before(A, B); });
    Best.insert(At, E);
    if (Best.size() > static_cast<size_t>(TopN))
      Best.pop_back();
  }
  for (const Entry &E : Best)
    Out.top.push_back({E.Id, LogprobOf(E.Logit)});
  return Out;
}

int32_t Sampler::sample(const float *Logits, int64_t N) {
  checkLength(N);
  // Below 1e-30, 1 / temperature would overflow float arithmetic: greedy.
  if (isGreedy())
    return argmax(Logits, N);

  const float Max = maxLogit(Logits, N);
  if (Max == NegInf)
    return argmax(Logits, N); // Nothing has probability; fall back to greedy.

  auto Before = [](const Candidate &A, const Candidate &B) { return before(A, B); };

  // Candidates: logits within Cutoff * T of the maximum (+inf logits, when
  // there are any, share all the mass).
  const float Floor = floorFor(Max);
  const size_t K = Params.topK > 0 ? static_cast<size_t>(Params.topK) : 0;
  // Candidates is a buffer that only grows; Num is how many entries are live.
  size_t Num = 0;
  if (K == 0 || K >= static_cast<size_t>(N)) {
    // Branch-free: write every logit, advance past the ones that qualify.
    if (Candidates.size() < static_cast<size_t>(N))
      Candidates.resize(static_cast<size_t>(N));
    for (int64_t I = 0; I < N; ++I) {
      float L = Logits[I];
      Candidates[Num] = {L, static_cast<int32_t>(I), 0.f};
      Num += L >= Floor; // false for NaN
    }
  } else {
    // Top-k in one pass: keep at most 2k candidates; whenever the buffer is
    // full, cut it to the best k and raise the bar to the k-th logit. Later
    // ids with that same logit come after it in candidate order, so the bar
    // is strict.
    if (Candidates.size() < 2 * K)
      Candidates.resize(2 * K);
    float Bar = Floor;
    bool Strict = false;
    for (int64_t I = 0; I < N; ++I) {
      float L = Logits[I];
      if (Strict ? L > Bar : L >= Bar) {
        Candidates[Num++] = {L, static_cast<int32_t>(I), 0.f};
        if (Num == 2 * K) {
          std::nth_element(Candidates.begin(), Candidates.begin() + (K - 1),
                           Candidates.begin() + Num, Before);
          Num = K;
          Bar = Candidates[K - 1].Logit; // the k-th has the smallest logit kept
          Strict = true;
        }
      }
    }
    // The draw walks the candidates in canonical order (nth_element leaves an
    // unspecified one), as sampleTopCandidates() does on qk_topk's output.
    std::sort(Candidates.begin(), Candidates.begin() + Num, Before);
    Num = std::min(Num, K);
  }
  return drawFromCandidates(Num, Max);
}

bool Sampler::canSampleTopCandidates(int64_t Count) const {
  if (hasPenalties())
    return false;
  return isGreedy() || (Params.topK >= 1 && Params.topK <= Count);
}

int32_t Sampler::sampleTopCandidates(const float *Logits, const int32_t *Ids, int64_t Count,
                                     int64_t Vocab) {
  checkLength(Vocab);
  if (Count <= 0)
    throw Error("sampling from top candidates needs at least one, got " + std::to_string(Count));
  if (!canSampleTopCandidates(Count))
    throw Error("sampling from " + std::to_string(Count) +
                " top candidates needs greedy sampling or a top-k in [1, " +
                std::to_string(Count) + "], got top-k " + std::to_string(Params.topK));
  // An id of -1 pads a row with fewer non-NaN logits; the first candidate is
  // the row's argmax (lowest id of the largest logit), 0 when all are NaN.
  if (isGreedy() || Logits[0] == NegInf || Ids[0] < 0)
    return Ids[0] < 0 ? 0 : Ids[0];

  const float Max = Logits[0];
  const float Floor = floorFor(Max);
  // The top-k candidates above the floor: a prefix of the canonical order.
  const size_t K = static_cast<size_t>(std::min<int64_t>(Params.topK, Count));
  if (Candidates.size() < K)
    Candidates.resize(K);
  size_t Num = 0;
  while (Num < K && Ids[Num] >= 0 && Logits[Num] >= Floor) {
    Candidates[Num] = {Logits[Num], Ids[Num], 0.f};
    ++Num;
  }
  // With top-k >= vocab, sample() takes its unlimited path, in id order.
  if (static_cast<int64_t>(Params.topK) >= Vocab)
    std::sort(Candidates.begin(), Candidates.begin() + Num,
              [](const Candidate &A, const Candidate &B) { return A.Id < B.Id; });
  return drawFromCandidates(Num, Max);
}

float Sampler::floorFor(float Max) const {
  if (std::isinf(Max))
    return Max;
  // min-p keeps weights >= minP, i.e. logits >= max + T * ln(minP); it only
  // raises the e^-Cutoff floor, so minP = 0 leaves sampling as it was.
  double LogFloor = -Cutoff;
  if (Params.minP > 0.f)
    LogFloor = std::max(LogFloor, std::log(static_cast<double>(Params.minP)));
  return static_cast<float>(static_cast<double>(Max) + LogFloor * Params.temperature);
}

int32_t Sampler::drawFromCandidates(size_t Num, float Max) {
  auto Before = [](const Candidate &A, const Candidate &B) { return before(A, B); };
  const bool MaxIsInf = std::isinf(Max);
  const double T = Params.temperature;

  // Weights relative to the maximum; the argument of exp is in [-Cutoff, 0].
  Candidate *Cands = Candidates.data();
  if (MaxIsInf) {
    for (size_t I = 0; I < Num; ++I)
      Cands[I].Weight = 1.f;
  } else {
    const float InvT = static_cast<float>(1.0 / T);
    for (size_t I = 0; I < Num; ++I)
      Cands[I].Weight = expNonPositive(std::max((Cands[I].Logit - Max) * InvT, -80.f));
  }

  // Sum of the weights of Candidates[B, E), in blocks of 8 independent float
  // partial sums (vectorizable) accumulated in double.
  auto SumWeights = [this](size_t B, size_t E) {
    double Sum = 0;
    while (B < E) {
      size_t BlockEnd = std::min(E, B + BlockSize);
      float Lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      size_t I = B;
      for (; I + 8 <= BlockEnd; I += 8)
        for (int J = 0; J < 8; ++J)
          Lanes[J] += Candidates[I + J].Weight;
      for (; I < BlockEnd; ++I)
        Lanes[0] += Candidates[I].Weight;
      float Block = 0;
      for (float V : Lanes)
        Block += V;
      Sum += Block;
      B = BlockEnd;
    }
    return Sum;
  };
  double Total = SumWeights(0, Num);

  // Top-p: the nucleus is the shortest prefix, in candidate order, holding
  // topP of the mass. Weights are monotone in the logit, so bucketing the
  // candidates by log-weight (a histogram of mass) finds the bucket where the
  // nucleus ends; only that bucket is sorted.
  size_t Count = Num;
  if (Params.topP < 1.f && Num > 1) {
    const double Need = static_cast<double>(Params.topP) * Total;
    const float BucketScale =
        static_cast<float>(NumBuckets / Cutoff / static_cast<double>(Params.temperature));
    auto BucketOf = [&](float Logit) -> uint32_t {
      if (MaxIsInf)
        return 0;
      float X = (Max - Logit) * BucketScale; // >= 0, monotone in the logit
      return X < static_cast<float>(NumBuckets - 1) ? static_cast<uint32_t>(X) : NumBuckets - 1;
    };
    BucketMass.assign(NumBuckets, 0.0);
    for (size_t I = 0; I < Num; ++I)
      BucketMass[BucketOf(Cands[I].Logit)] += Cands[I].Weight;
    uint32_t Edge = 0;
    double MassBefore = 0; // mass of the buckets before Edge
    for (;; ++Edge) {
      if (Edge == NumBuckets - 1 || MassBefore + BucketMass[Edge] >= Need)
        break;
      MassBefore += BucketMass[Edge];
    }
    // Buckets before Edge are in; Edge's candidates go to a side buffer.
    Boundary.clear();
    size_t Kept = 0;
    for (size_t I = 0; I < Num; ++I) {
      uint32_t B = BucketOf(Cands[I].Logit);
      if (B == Edge)
        Boundary.push_back(Cands[I]);
      Cands[Kept] = Cands[I];
      Kept += B < Edge;
    }
    std::sort(Boundary.begin(), Boundary.end(), Before);
    double Missing = Need - MassBefore;
    size_t Take = Boundary.size();
    for (size_t I = 0; I < Boundary.size(); ++I) {
      Missing -= Boundary[I].Weight;
      if (Missing <= 0) {
        Take = I + 1;
        break;
      }
    }
    std::copy(Boundary.begin(), Boundary.begin() + Take, Cands + Kept);
    Count = std::max<size_t>(Kept + Take, 1);
  }

  // Draw from Candidates[0, Count): find the block holding the threshold from
  // block sums, then the candidate inside it.
  BlockSums.clear();
  Total = 0;
  for (size_t B = 0; B < Count; B += BlockSize) {
    double Sum = SumWeights(B, std::min(Count, B + BlockSize));
    BlockSums.push_back(Sum);
    Total += Sum;
  }
  // A uniform double in [0, 1) from the top 53 bits: mt19937_64 is fully
  // specified, so draws are the same on every platform.
  double U = static_cast<double>(Rng() >> 11) * 0x1p-53;
  double Threshold = U * Total;
  size_t Block = 0;
  double Cum = 0;
  for (; Block + 1 < BlockSums.size(); ++Block) {
    if (Threshold < Cum + BlockSums[Block])
      break;
    Cum += BlockSums[Block];
  }
  // Blocks with zero mass cannot be chosen unless rounding ran past the end;
  // step back to the last block with mass.
  while (Block > 0 && BlockSums[Block] <= 0)
    Cum -= BlockSums[--Block];
  size_t Begin = Block * BlockSize, End = std::min(Count, Begin + BlockSize);
  size_t Last = Begin;
  for (size_t I = Begin; I < End; ++I) {
    double W = Candidates[I].Weight;
    if (W <= 0)
      continue;
    Last = I;
    Cum += W;
    if (Threshold < Cum)
      return Candidates[I].Id;
  }
  // Rounding left the threshold at the end of the block: its last candidate with mass.
  return Candidates[Last].Id;
}

} // namespace qwen::rt
