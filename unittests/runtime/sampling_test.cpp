//===- sampling_test.cpp - Tests of argmax and the sampler ----------------===//

#include "qwen_rt/error.h"
#include "qwen_rt/sampling.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <vector>

using namespace qwen::rt;

namespace {

const float Inf = std::numeric_limits<float>::infinity();
const float NaN = std::numeric_limits<float>::quiet_NaN();

/// Logits whose softmax (at temperature 1) is exactly `Probs`.
std::vector<float> logitsOf(const std::vector<double> &Probs) {
  std::vector<float> L;
  for (double P : Probs)
    L.push_back(P > 0 ? static_cast<float>(std::log(P)) : -Inf);
  return L;
}

std::map<int32_t, int> histogram(Sampler &S, const std::vector<float> &L, int Draws) {
  std::map<int32_t, int> H;
  for (int I = 0; I < Draws; ++I)
    ++H[S.sample(L.data(), static_cast<int64_t>(L.size()))];
  return H;
}

TEST(SamplingTest, Argmax) {
  std::vector<float> L = {1.f, 3.f, 2.f, 3.f};
  EXPECT_EQ(argmax(L.data(), 4), 1); // first of the ties
  L = {-5.f};
  EXPECT_EQ(argmax(L.data(), 1), 0);
  L = {NaN, -1.f, NaN, 0.5f};
  EXPECT_EQ(argmax(L.data(), 4), 3); // NaN never wins
  L = {-Inf, -Inf};
  EXPECT_EQ(argmax(L.data(), 2), 0);
  L = {1.f, Inf, Inf};
  EXPECT_EQ(argmax(L.data(), 3), 1);
  EXPECT_THROW(argmax(L.data(), 0), Error);
}

TEST(SamplingTest, ValidatesParams) {
  EXPECT_THROW(Sampler({-0.1f, 0, 1.f, 0}), Error);
  EXPECT_THROW(Sampler({NaN, 0, 1.f, 0}), Error);
  EXPECT_THROW(Sampler({1.f, -1, 1.f, 0}), Error);
  EXPECT_THROW(Sampler({1.f, 0, 0.f, 0}), Error);
  EXPECT_THROW(Sampler({1.f, 0, 1.5f, 0}), Error);
  EXPECT_THROW(Sampler({1.f, 0, NaN, 0}), Error);
  EXPECT_NO_THROW(Sampler({0.f, 0, 1.f, 0}));
  EXPECT_NO_THROW(Sampler({0.7f, 20, 0.8f, 42}));
  Sampler S({1.f, 0, 1.f, 0});
  float L = 0;
  EXPECT_THROW(S.sample(&L, 0), Error);
}

TEST(SamplingTest, GreedyIsArgmax) {
  std::mt19937 Gen(7);
  std::normal_distribution<float> Dist;
  Sampler S(SamplingParams{}); // temperature 0
  for (int Trial = 0; Trial < 50; ++Trial) {
    std::vector<float> L(1000);
    for (float &V : L)
      V = Dist(Gen);
    EXPECT_EQ(S.sample(L.data(), 1000), argmax(L.data(), 1000));
  }
  // Greedy ignores top-k/top-p and the seed.
  Sampler S2({0.f, 5, 0.5f, 99});
  std::vector<float> L = {0.f, 2.f, 2.f, 1.f};
  EXPECT_EQ(S2.sample(L.data(), 4), 1);
}

TEST(SamplingTest, FrequenciesMatchSoftmax) {
  std::vector<double> P = {0.5, 0.25, 0.15, 0.1};
  std::vector<float> L = logitsOf(P);
  for (float &V : L)
    V += 1000.f; // large offsets must not overflow (max subtraction)
  Sampler S({1.f, 0, 1.f, 123});
  const int Draws = 40000;
  auto H = histogram(S, L, Draws);
  for (size_t I = 0; I < P.size(); ++I) {
    double Freq = H[static_cast<int32_t>(I)] / double(Draws);
    double Sigma = std::sqrt(P[I] * (1 - P[I]) / Draws);
    EXPECT_NEAR(Freq, P[I], 5 * Sigma) << "token " << I;
  }
}

TEST(SamplingTest, TemperatureScales) {
  // At temperature 2 the probabilities are proportional to sqrt(P).
  std::vector<double> P = {0.64, 0.36};
  std::vector<float> L = logitsOf(P);
  Sampler S({2.f, 0, 1.f, 5});
  const int Draws = 40000;
  auto H = histogram(S, L, Draws);
  double Expected = 0.8 / (0.8 + 0.6);
  EXPECT_NEAR(H[0] / double(Draws), Expected, 0.015);
  // A tiny temperature is (almost) greedy.
  Sampler Cold({1e-4f, 0, 1.f, 5});
  auto HC = histogram(Cold, L, 2000);
  EXPECT_EQ(HC[0], 2000);
}

TEST(SamplingTest, TopKRestrictsSupport) {
  std::vector<float> L = {0.1f, 3.f, 2.5f, -1.f, 2.9f, 0.f, 2.f, 2.5f};
  Sampler S({1.5f, 3, 1.f, 11});
  auto H = histogram(S, L, 5000);
  // The three largest: index 1 (3.0), 4 (2.9), then 2 (2.5, ties with 7 but lower index).
  EXPECT_EQ((std::set<int32_t>{1, 2, 4}), [&] {
    std::set<int32_t> Keys;
    for (auto &KV : H)
      Keys.insert(KV.first);
    return Keys;
  }());
  // top-k 1 is greedy.
  Sampler One({1.f, 1, 1.f, 3});
  auto H1 = histogram(One, L, 500);
  EXPECT_EQ(H1.size(), 1u);
  EXPECT_EQ(H1[1], 500);
  // k larger than the vocabulary is no limit.
  Sampler Big({1.f, 100, 1.f, 3});
  auto HB = histogram(Big, L, 20000);
  EXPECT_EQ(HB.size(), L.size());
}

TEST(SamplingTest, TopKFrequenciesAreRenormalized) {
  std::vector<double> P = {0.4, 0.3, 0.2, 0.1};
  std::vector<float> L = logitsOf(P);
  Sampler S({1.f, 2, 1.f, 77});
  const int Draws = 40000;
  auto H = histogram(S, L, Draws);
  EXPECT_EQ(H.size(), 2u);
  EXPECT_NEAR(H[0] / double(Draws), 0.4 / 0.7, 0.015);
}

TEST(SamplingTest, TopPRestrictsSupport) {
  std::vector<double> P = {0.05, 0.5, 0.15, 0.3};
  std::vector<float> L = logitsOf(P);
  auto Support = [&](float TopP, int TopK = 0) {
    Sampler S({1.f, TopK, TopP, 1234});
    auto H = histogram(S, L, 5000);
    std::set<int32_t> Keys;
    for (auto &KV : H)
      Keys.insert(KV.first);
    return Keys;
  };
  EXPECT_EQ(Support(0.3f), (std::set<int32_t>{1}));       // 0.5 >= 0.3
  EXPECT_EQ(Support(0.75f), (std::set<int32_t>{1, 3}));   // 0.8 >= 0.75
  EXPECT_EQ(Support(0.9f), (std::set<int32_t>{1, 3, 2})); // 0.95 >= 0.9
  EXPECT_EQ(Support(0.99f), (std::set<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(Support(1.0f), (std::set<int32_t>{0, 1, 2, 3}));
  // Top-p applies to the top-k set renormalized: top-2 = {0.5, 0.3} -> {0.625, 0.375}.
  EXPECT_EQ(Support(0.6f, 2), (std::set<int32_t>{1}));
  EXPECT_EQ(Support(0.7f, 2), (std::set<int32_t>{1, 3}));

  // Frequencies inside the nucleus are renormalized.
  Sampler S({1.f, 0, 0.75f, 9});
  const int Draws = 40000;
  auto H = histogram(S, L, Draws);
  EXPECT_NEAR(H[1] / double(Draws), 0.5 / 0.8, 0.015);
}

TEST(SamplingTest, TopPOnLargeVocabulary) {
  // A vocabulary the size of Qwen3's, checked against a brute-force nucleus.
  const int64_t N = 151936;
  std::mt19937 Gen(3);
  std::normal_distribution<float> Dist(0.f, 3.f);
  std::vector<float> L(N);
  for (float &V : L)
    V = Dist(Gen);
  const float Temp = 0.8f, TopP = 0.9f;
  std::vector<int32_t> Order(N);
  std::iota(Order.begin(), Order.end(), 0);
  std::sort(Order.begin(), Order.end(),
            [&](int32_t A, int32_t B) { return L[A] > L[B] || (L[A] == L[B] && A < B); });
  double Max = L[Order[0]], Total = 0;
  for (float V : L)
    Total += std::exp((V - Max) / Temp);
  std::set<int32_t> Nucleus;
  double Cum = 0;
  for (int32_t I : Order) {
    Nucleus.insert(I);
    Cum += std::exp((L[I] - Max) / Temp);
    if (Cum >= TopP * Total)
      break;
  }
  ASSERT_GT(Nucleus.size(), 64u); // exercises the growing sorted prefix
  Sampler S({Temp, 0, TopP, 2024});
  std::set<int32_t> Seen;
  for (int I = 0; I < 800; ++I) {
    int32_t T = S.sample(L.data(), N);
    ASSERT_TRUE(Nucleus.count(T)) << "token " << T << " is outside the nucleus";
    Seen.insert(T);
  }
  EXPECT_GT(Seen.size(), 10u);

  // With top-k too, the support is within the top k.
  Sampler SK({Temp, 40, TopP, 2024});
  std::set<int32_t> TopK(Order.begin(), Order.begin() + 40);
  for (int I = 0; I < 300; ++I)
    ASSERT_TRUE(TopK.count(SK.sample(L.data(), N)));
}

TEST(SamplingTest, TopPWithinOneLogWeightBucket) {
  // Nearly equal but distinct logits: the nucleus edge falls among them.
  std::vector<float> L(10);
  for (size_t I = 0; I < L.size(); ++I)
    L[I] = 1.f + 1e-4f * static_cast<float>(I);
  Sampler S({1.f, 0, 0.25f, 17});
  auto H = histogram(S, L, 3000);
  std::set<int32_t> Keys;
  for (auto &KV : H)
    Keys.insert(KV.first);
  EXPECT_EQ(Keys, (std::set<int32_t>{7, 8, 9}));
}

TEST(SamplingTest, SupportMatchesBruteForce) {
  // Few distinct logit values (many ties), random top-k / top-p, checked
  // against a sorted reference.
  std::mt19937 Gen(99);
  for (int Trial = 0; Trial < 40; ++Trial) {
    const int N = 300;
    std::vector<float> L(N);
    for (float &V : L)
      V = static_cast<float>(Gen() % 10) * 0.5f;
    int TopK = Trial % 3 == 0 ? 0 : static_cast<int>(1 + Gen() % 60);
    float TopP = Trial % 2 == 0 ? 1.f : 0.05f + 0.9f * static_cast<float>(Gen() % 100) / 100.f;
    float Temp = 0.5f + static_cast<float>(Gen() % 4);
    std::vector<int32_t> Order(N);
    std::iota(Order.begin(), Order.end(), 0);
    std::sort(Order.begin(), Order.end(),
              [&](int32_t A, int32_t B) { return L[A] > L[B] || (L[A] == L[B] && A < B); });
    size_t K = TopK ? std::min<size_t>(TopK, N) : N;
    double Max = L[Order[0]], Total = 0;
    for (size_t I = 0; I < K; ++I)
      Total += std::exp((L[Order[I]] - Max) / Temp);
    std::set<int32_t> Support;
    double Cum = 0;
    for (size_t I = 0; I < K; ++I) {
      Support.insert(Order[I]);
      Cum += std::exp((L[Order[I]] - Max) / Temp);
      if (TopP < 1.f && Cum >= TopP * Total * (1 + 1e-9))
        break;
    }
    Sampler S({Temp, TopK, TopP, static_cast<uint64_t>(Trial)});
    for (int I = 0; I < 300; ++I) {
      int32_t T = S.sample(L.data(), N);
      ASSERT_TRUE(Support.count(T))
          << "trial " << Trial << ": token " << T << " (logit " << L[T]
          << ") outside the support; top-k " << TopK << ", top-p " << TopP;
    }
  }
}

TEST(SamplingTest, TiesAreBrokenByIndex) {
  // 1000 equal logits, top-p 0.5: exactly the first 500 (ties go by index).
  std::vector<float> L(1000, 0.25f);
  Sampler S({1.f, 0, 0.5f, 8});
  auto H = histogram(S, L, 5000);
  EXPECT_LT(H.rbegin()->first, 500);
  EXPECT_GT(H.size(), 400u);
  // top-k 10 of equal logits: the first 10.
  Sampler K({1.f, 10, 1.f, 8});
  auto HK = histogram(K, L, 2000);
  EXPECT_EQ(HK.size(), 10u);
  EXPECT_EQ(HK.rbegin()->first, 9);
}

TEST(SamplingTest, SameSeedSameSequence) {
  std::vector<float> L(50);
  for (size_t I = 0; I < L.size(); ++I)
    L[I] = std::sin(static_cast<float>(I)) * 2.f;
  auto Run = [&](uint64_t Seed, float TopP, int TopK) {
    Sampler S({0.9f, TopK, TopP, Seed});
    std::vector<int32_t> Out;
    for (int I = 0; I < 200; ++I)
      Out.push_back(S.sample(L.data(), static_cast<int64_t>(L.size())));
    return Out;
  };
  EXPECT_EQ(Run(42, 1.f, 0), Run(42, 1.f, 0));
  EXPECT_EQ(Run(42, 0.9f, 20), Run(42, 0.9f, 20));
  EXPECT_NE(Run(42, 1.f, 0), Run(43, 1.f, 0));
}

TEST(SamplingTest, SpecialLogits) {
  // +inf logits share all the mass.
  std::vector<float> L = {0.f, Inf, 5.f, Inf};
  Sampler S({1.f, 0, 1.f, 1});
  auto H = histogram(S, L, 2000);
  EXPECT_EQ(H.size(), 2u);
  EXPECT_GT(H[1], 0);
  EXPECT_GT(H[3], 0);
  // With top-p 0.5 only the first of the two +inf logits is left.
  Sampler SP({1.f, 0, 0.5f, 1});
  auto HP = histogram(SP, L, 200);
  EXPECT_EQ(HP.size(), 1u);
  EXPECT_EQ(HP[1], 200);
  // NaN and -inf logits get nothing.
  L = {NaN, 0.f, -Inf, 0.f};
  auto H2 = histogram(S, L, 2000);
  EXPECT_EQ(H2.count(0), 0u);
  EXPECT_EQ(H2.count(2), 0u);
  // All -inf: falls back to the first index.
  L = {-Inf, -Inf};
  EXPECT_EQ(S.sample(L.data(), 2), 0);
  // A denormal temperature is greedy.
  Sampler Tiny({1e-40f, 0, 0.5f, 1});
  L = {0.f, 2.f, 2.f};
  EXPECT_EQ(Tiny.sample(L.data(), 3), 1);
  Sampler Small({1e-20f, 0, 0.5f, 1});
  EXPECT_EQ(Small.sample(L.data(), 3), 1);
  // Huge logits don't overflow.
  L = {1e30f, 1e30f - 1e24f, -1e30f};
  EXPECT_EQ(S.sample(L.data(), 3), 0);
}

/// A row's best `Count` candidates as the GPU's qk_topk writes them: logit
/// descending then id ascending, NaN left out, -0 == +0, padded with
/// (-inf, -1).
void topCandidates(const std::vector<float> &Row, int64_t Count, std::vector<float> &Logits,
                   std::vector<int32_t> &Ids) {
  std::vector<int32_t> Order;
  for (size_t I = 0; I < Row.size(); ++I)
    if (!std::isnan(Row[I]))
      Order.push_back(static_cast<int32_t>(I));
  std::sort(Order.begin(), Order.end(), [&](int32_t A, int32_t B) {
    return Row[A] > Row[B] || (Row[A] == Row[B] && A < B);
  });
  Logits.assign(Count, -Inf);
  Ids.assign(Count, -1);
  for (int64_t I = 0; I < Count && I < static_cast<int64_t>(Order.size()); ++I) {
    Logits[I] = Row[Order[I]];
    Ids[I] = Order[I];
  }
}

/// Rows with ties, NaN, infinities and signed zeros.
std::vector<std::vector<float>> adversarialRows(int64_t Vocab, std::mt19937 &Rng) {
  std::normal_distribution<float> Gauss(0.f, 2.f);
  std::uniform_int_distribution<int64_t> Pick(0, Vocab - 1);
  std::vector<std::vector<float>> Rows;
  auto gauss = [&] {
    std::vector<float> R(Vocab);
    for (float &X : R)
      X = Gauss(Rng);
    return R;
  };
  Rows.push_back(gauss());
  std::vector<float> R(Vocab);
  for (float &X : R) // many ties
    X = static_cast<float>(Rng() % 4);
  Rows.push_back(R);
  R = gauss(); // a repeated maximum
  for (int I = 0; I < 4; ++I)
    R[Pick(Rng)] = 9.f;
  Rows.push_back(R);
  R = gauss(); // NaN and -inf
  for (int64_t I = 0; I < Vocab; I += 3)
    R[I] = (I / 3) % 2 ? NaN : -Inf;
  Rows.push_back(R);
  R = gauss(); // -0 and +0 at the top
  for (float &X : R)
    X = -std::fabs(X) - 1.f;
  R[Pick(Rng)] = 0.f;
  R[Pick(Rng)] = -0.f;
  R[Pick(Rng)] = -0.f;
  Rows.push_back(R);
  R = gauss(); // +inf twice
  R[Pick(Rng)] = Inf;
  R[Pick(Rng)] = Inf;
  Rows.push_back(R);
  R.assign(Vocab, NaN); // fewer non-NaN logits than candidates
  for (int I = 0; I < 7; ++I)
    R[Pick(Rng)] = Gauss(Rng);
  Rows.push_back(R);
  Rows.push_back(std::vector<float>(Vocab, NaN));
  R.assign(Vocab, -Inf);
  R[Pick(Rng)] = NaN;
  Rows.push_back(R);
  R.assign(Vocab, 0.25f); // all equal
  Rows.push_back(R);
  return Rows;
}

TEST(SamplingTest, TopCandidatesMatchTheWholeRow) {
  constexpr int64_t Count = 256;
  std::mt19937 Rng(3);
  std::vector<float> TopLogits;
  std::vector<int32_t> TopIds;
  int Compared = 0;
  for (int64_t Vocab : {1, 3, 50, 255, 256, 257, 1001, 5000}) {
    std::vector<std::vector<float>> Rows = adversarialRows(Vocab, Rng);
    for (float Temperature : {0.f, 0.3f, 1.f, 2.5f})
      for (int TopK : {1, 2, 20, 50, 256})
        for (float TopP : {1.f, 0.95f, 0.5f}) {
          SamplingParams Params{Temperature, TopK, TopP, static_cast<uint64_t>(Rng())};
          Sampler Full(Params), Top(Params);
          ASSERT_TRUE(Top.canSampleTopCandidates(Count));
          for (const std::vector<float> &Row : Rows) {
            topCandidates(Row, Count, TopLogits, TopIds);
            for (int Draw = 0; Draw < 6; ++Draw) {
              int32_t Want = Full.sample(Row.data(), Vocab);
              int32_t Got = Top.sampleTopCandidates(TopLogits.data(), TopIds.data(), Count, Vocab);
              ASSERT_EQ(Got, Want) << "vocab " << Vocab << ", T " << Temperature << ", top-k "
                                   << TopK << ", top-p " << TopP << ", row " << (&Row - &Rows[0])
                                   << ", draw " << Draw;
              ++Compared;
            }
          }
        }
  }
  EXPECT_GT(Compared, 10000);
}

TEST(SamplingTest, TopCandidatesPreconditions) {
  std::vector<float> Logits = {2.f, 1.f, -Inf};
  std::vector<int32_t> Ids = {4, 0, -1};
  // Greedy needs no top-k; the first candidate is the argmax.
  Sampler Greedy({0.f, 0, 1.f, 1});
  EXPECT_TRUE(Greedy.canSampleTopCandidates(3));
  EXPECT_EQ(Greedy.sampleTopCandidates(Logits.data(), Ids.data(), 3, 5), 4);
  // Without top-k (or a larger one) the candidates do not decide the draw.
  Sampler NoTopK({1.f, 0, 1.f, 1});
  EXPECT_FALSE(NoTopK.canSampleTopCandidates(3));
  EXPECT_THROW(NoTopK.sampleTopCandidates(Logits.data(), Ids.data(), 3, 5), Error);
  Sampler Large({1.f, 4, 1.f, 1});
  EXPECT_FALSE(Large.canSampleTopCandidates(3));
  EXPECT_THROW(Large.sampleTopCandidates(Logits.data(), Ids.data(), 3, 5), Error);
  Sampler Fits({1.f, 3, 1.f, 1});
  EXPECT_TRUE(Fits.canSampleTopCandidates(3));
  EXPECT_THROW(Fits.sampleTopCandidates(Logits.data(), Ids.data(), 0, 5), Error);
  EXPECT_THROW(Fits.sampleTopCandidates(Logits.data(), Ids.data(), 3, 0), Error);
  int32_t Token = Fits.sampleTopCandidates(Logits.data(), Ids.data(), 3, 5);
  EXPECT_TRUE(Token == 4 || Token == 0);
  // An all-NaN row (only padding) gives token 0, as argmax.
  std::vector<float> None = {-Inf, -Inf, -Inf};
  std::vector<int32_t> Pads = {-1, -1, -1};
  EXPECT_EQ(Fits.sampleTopCandidates(None.data(), Pads.data(), 3, 5), 0);
}

} // namespace
