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


SamplingParams withTemperature(float T, uint64_t Seed = 7) {
  SamplingParams P;
  P.temperature = T;
  P.seed = Seed;
  return P;
}

TEST(SamplingTest, ValidatesPenaltiesMinPAndLogprobs) {
  auto Make = [](auto Set) {
    SamplingParams P = withTemperature(1.f);
    Set(P);
    return Sampler(P);
  };
  EXPECT_THROW(Make([](SamplingParams &P) { P.minP = -0.1f; }), Error);
  EXPECT_THROW(Make([](SamplingParams &P) { P.minP = 1.5f; }), Error);
  EXPECT_THROW(Make([](SamplingParams &P) { P.minP = NaN; }), Error);
  EXPECT_THROW(Make([](SamplingParams &P) { P.presencePenalty = 2.5f; }), Error);
  EXPECT_THROW(Make([](SamplingParams &P) { P.frequencyPenalty = -2.5f; }), Error);
  EXPECT_THROW(Make([](SamplingParams &P) { P.frequencyPenalty = NaN; }), Error);
  EXPECT_THROW(Make([](SamplingParams &P) { P.repetitionPenalty = 0.f; }), Error);
  EXPECT_THROW(Make([](SamplingParams &P) { P.repetitionPenalty = Inf; }), Error);
  EXPECT_THROW(Make([](SamplingParams &P) { P.logprobs = 21; }), Error);
  EXPECT_THROW(Make([](SamplingParams &P) { P.logprobs = -2; }), Error);
  EXPECT_NO_THROW(Make([](SamplingParams &P) {
    P.minP = 1.f;
    P.presencePenalty = -2.f;
    P.frequencyPenalty = 2.f;
    P.repetitionPenalty = 1.3f;
    P.logprobs = 20;
  }));
  try {
    Make([](SamplingParams &P) { P.presencePenalty = 3.f; });
    FAIL() << "no error";
  } catch (const Error &E) {
    EXPECT_NE(std::string(E.what()).find("presence penalty"), std::string::npos) << E.what();
  }
}

TEST(SamplingTest, MinPRestrictsSupport) {
  // p = {0.5, 0.3, 0.15, 0.05}: min-p 0.2 keeps p >= 0.1, i.e. tokens 0..2,
  // renormalized to {0.5, 0.3, 0.15} / 0.95.
  std::vector<float> L = logitsOf({0.5, 0.3, 0.15, 0.05});
  SamplingParams P = withTemperature(1.f);
  P.minP = 0.2f;
  Sampler S(P);
  const int Draws = 20000;
  auto H = histogram(S, L, Draws);
  EXPECT_EQ(H.count(3), 0u);
  EXPECT_NEAR(H[0] / double(Draws), 0.5 / 0.95, 0.02);
  EXPECT_NEAR(H[2] / double(Draws), 0.15 / 0.95, 0.02);
  // At temperature 3 the distribution flattens: p ~ p0^(1/3), and token 3
  // (0.05^(1/3) / 0.5^(1/3) = 0.46 of the best) passes the same min-p.
  P.temperature = 3.f;
  Sampler Flat(P);
  EXPECT_GT(histogram(Flat, L, 2000).count(3), 0u);
  // min-p 1 keeps the most likely token only.
  P.minP = 1.f;
  Sampler Top(P);
  auto HT = histogram(Top, L, 500);
  EXPECT_EQ(HT.size(), 1u);
  EXPECT_EQ(HT.begin()->first, 0);
}

TEST(SamplingTest, MinPBelowTheCutoffChangesNothing) {
  // ln(1e-20) = -46 is below the e^-30 floor the sampler always applies.
  std::vector<float> L(300);
  for (size_t I = 0; I < L.size(); ++I)
    L[I] = std::cos(static_cast<float>(I) * 0.37f) * 6.f;
  SamplingParams A = withTemperature(0.8f, 5), B = A;
  A.topP = B.topP = 0.9f;
  B.minP = 1e-20f;
  Sampler SA(A), SB(B);
  for (int I = 0; I < 300; ++I)
    ASSERT_EQ(SA.sample(L.data(), 300), SB.sample(L.data(), 300));
}

TEST(SamplingTest, MinPWithTopCandidatesMatchesTheWholeRow) {
  // min-p only raises the floor both paths share, so the GPU's top
  // candidates still decide the token.
  constexpr int64_t Count = 64, Vocab = 3000;
  std::mt19937 Rng(11);
  std::vector<std::vector<float>> Rows = adversarialRows(Vocab, Rng);
  std::vector<float> TopLogits;
  std::vector<int32_t> TopIds;
  for (float MinP : {0.01f, 0.1f, 0.5f, 1.f})
    for (float TopP : {1.f, 0.9f}) {
      SamplingParams P = withTemperature(0.8f, Rng());
      P.topK = 40;
      P.topP = TopP;
      P.minP = MinP;
      Sampler Full(P), Top(P);
      ASSERT_TRUE(Top.canSampleTopCandidates(Count));
      for (const std::vector<float> &Row : Rows) {
        topCandidates(Row, Count, TopLogits, TopIds);
        for (int Draw = 0; Draw < 4; ++Draw)
          ASSERT_EQ(Top.sampleTopCandidates(TopLogits.data(), TopIds.data(), Count, Vocab),
                    Full.sample(Row.data(), Vocab))
              << "min-p " << MinP << ", top-p " << TopP << ", row " << (&Row - &Rows[0]);
      }
    }
}

TEST(SamplingTest, PenaltiesFollowOpenAIAndHFSemantics) {
  SamplingParams P = withTemperature(0.f);
  P.presencePenalty = 0.5f;
  P.frequencyPenalty = 0.25f;
  P.repetitionPenalty = 2.f;
  Sampler S(P);
  S.setPrompt({1, 1, 4});
  for (int32_t T : {2, 2, 2, 4})
    S.observe(T);
  std::vector<float> Row = {1.f, 3.f, -2.f, 0.5f, -1.f, 7.f};
  std::vector<float> Out = Row;
  S.applyPenalties(Out.data(), 6);
  // Repetition: every token of prompt or output once (1, 2, 4): positive
  // logits divided, negative multiplied. Then frequency and presence over
  // the output only (2 three times, 4 once).
  EXPECT_EQ(Out[0], Row[0]);
  EXPECT_EQ(Out[1], Row[1] / 2.f);
  EXPECT_EQ(Out[2], Row[2] * 2.f - (0.25f * 3 + 0.5f));
  EXPECT_EQ(Out[3], Row[3]);
  EXPECT_EQ(Out[4], Row[4] * 2.f - (0.25f * 1 + 0.5f));
  EXPECT_EQ(Out[5], Row[5]);
  // A history token outside the row is a caller error.
  S.observe(6);
  EXPECT_THROW(S.applyPenalties(Out.data(), 6), Error);
  EXPECT_THROW(S.observe(-1), Error);
  EXPECT_THROW(S.setPrompt({-3}), Error);
}

TEST(SamplingTest, SampleNextAppliesPenaltiesToACopy) {
  // Greedy with a repetition penalty: the best token, once seen, loses to
  // the runner-up; the caller's row is left untouched.
  SamplingParams P = withTemperature(0.f);
  P.repetitionPenalty = 1.5f;
  Sampler S(P);
  S.setPrompt({0});
  std::vector<float> Row = {4.f, 3.f, 1.f};
  EXPECT_TRUE(S.hasPenalties());
  EXPECT_TRUE(S.needsFullRow());
  EXPECT_FALSE(S.canSampleTopCandidates(3));
  EXPECT_EQ(S.sampleNext(Row.data(), 3), 1); // 4 / 1.5 < 3
  EXPECT_EQ(Row[0], 4.f);
  EXPECT_EQ(S.sampleNext(Row.data(), 3), 0); // 4/1.5 = 2.67 > 3/1.5 = 2
  // Frequency penalty counts repeats: a token generated n times loses n * f.
  SamplingParams F = withTemperature(0.f);
  F.frequencyPenalty = 1.f;
  Sampler SF(F);
  std::vector<float> Flat = {2.5f, 1.f};
  std::vector<int32_t> Got;
  for (int I = 0; I < 4; ++I)
    Got.push_back(SF.sampleNext(Flat.data(), 2));
  EXPECT_EQ(Got, (std::vector<int32_t>{0, 0, 1, 0}));
}

TEST(SamplingTest, SampleNextWithoutPenaltiesIsSample) {
  std::vector<float> L(1000);
  for (size_t I = 0; I < L.size(); ++I)
    L[I] = std::sin(static_cast<float>(I) * 1.3f) * 4.f;
  SamplingParams P = withTemperature(0.7f, 99);
  P.topK = 50;
  P.logprobs = 5;
  Sampler A(P), B(P);
  EXPECT_FALSE(A.hasPenalties());
  EXPECT_TRUE(A.needsFullRow()); // logprobs need the row
  EXPECT_TRUE(A.canSampleTopCandidates(64));
  for (int I = 0; I < 200; ++I)
    ASSERT_EQ(A.sampleNext(L.data(), 1000), B.sample(L.data(), 1000));
  // Logprobs come from the raw row, for the token drawn.
  TokenLogprobs LP;
  int32_t Token = A.sampleNext(L.data(), 1000, &LP);
  EXPECT_EQ(LP.chosen.token, Token);
  EXPECT_EQ(LP.top.size(), 5u);
  TokenLogprobs Want = computeLogprobs(L.data(), 1000, Token, 5);
  EXPECT_EQ(LP.chosen.logprob, Want.chosen.logprob);
  EXPECT_EQ(LP.top[0].token, Want.top[0].token);
}

TEST(SamplingTest, LogprobsAreLogSoftmaxOfTheRow) {
  std::vector<float> L = {0.5f, 2.f, -1.f, 2.f, NaN, 0.25f};
  double Sum = 0;
  for (float V : L)
    if (!std::isnan(V))
      Sum += std::exp(double(V));
  auto Expected = [&](int I) { return static_cast<float>(double(L[size_t(I)]) - std::log(Sum)); };
  TokenLogprobs R = computeLogprobs(L.data(), 6, 5, 4);
  EXPECT_EQ(R.chosen.token, 5);
  EXPECT_NEAR(R.chosen.logprob, Expected(5), 1e-6);
  ASSERT_EQ(R.top.size(), 4u);
  // Descending, ties by lower id, NaN never listed.
  std::vector<int32_t> Ids;
  for (const TokenLogprob &T : R.top) {
    Ids.push_back(T.token);
    EXPECT_NEAR(T.logprob, Expected(T.token), 1e-6);
  }
  EXPECT_EQ(Ids, (std::vector<int32_t>{1, 3, 0, 5}));
  EXPECT_EQ(computeLogprobs(L.data(), 6, 4, 0).chosen.logprob, -Inf);
  EXPECT_TRUE(computeLogprobs(L.data(), 6, 4, 0).top.empty());
  // More requested than there are non-NaN logits: all of them.
  EXPECT_EQ(computeLogprobs(L.data(), 6, 0, 20).top.size(), 5u);
  // +inf logits share the mass; the rest have none.
  std::vector<float> I2 = {Inf, 1.f, Inf};
  TokenLogprobs RI = computeLogprobs(I2.data(), 3, 2, 3);
  EXPECT_NEAR(RI.chosen.logprob, -std::log(2.f), 1e-6);
  EXPECT_EQ(RI.top[2].logprob, -Inf);
  EXPECT_THROW(computeLogprobs(L.data(), 6, 6, 1), Error);
  EXPECT_THROW(computeLogprobs(L.data(), 6, 0, 21), Error);
}

TEST(SamplingTest, LogprobsOnALargeRowMatchBruteForce) {
  std::mt19937 Gen(3);
  std::normal_distribution<float> Dist(0.f, 3.f);
  std::vector<float> L(50000);
  for (float &V : L)
    V = Dist(Gen);
  double Max = *std::max_element(L.begin(), L.end()), Sum = 0;
  for (float V : L)
    Sum += std::exp(double(V) - Max);
  std::vector<int32_t> Order(L.size());
  std::iota(Order.begin(), Order.end(), 0);
  std::sort(Order.begin(), Order.end(), [&](int32_t A, int32_t B) {
    return L[size_t(A)] > L[size_t(B)] || (L[size_t(A)] == L[size_t(B)] && A < B);
  });
  TokenLogprobs R = computeLogprobs(L.data(), int64_t(L.size()), 123, 20);
  ASSERT_EQ(R.top.size(), 20u);
  for (size_t I = 0; I < 20; ++I) {
    EXPECT_EQ(R.top[I].token, Order[I]);
    EXPECT_NEAR(R.top[I].logprob, double(L[size_t(Order[I])]) - Max - std::log(Sum), 1e-5);
  }
  EXPECT_NEAR(R.chosen.logprob, double(L[123]) - Max - std::log(Sum), 1e-5);
}

} // namespace
