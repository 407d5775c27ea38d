//===- qwen-check-state.cpp - Engine state checks for hybrid models -------===//
//
// Runs an artifact through the Engine API and checks what the logits tools
// cannot see from outside:
//   continuation  a prompt fed as prefill chunk, decode steps, a multi-token
//                 chunk after decode and the rest gives the logits of one
//                 forward over all tokens (the conv window and recurrent state
//                 carry over between steps);
//   isolation     a ragged step over some sequences leaves every other
//                 sequence's state slot byte-identical, and a released slot is
//                 zeroed when a new request claims it.
// Prints PASS/FAIL lines and "N passed, M failed"; exits 1 on a failure.
//
//===----------------------------------------------------------------------===//
#include "qwen_rt/engine.h"
#include "qwen_rt/error.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

using namespace qwen::rt;

namespace {
int passed = 0, failed = 0;

void report(bool ok, const std::string &what) {
  std::printf("%s: %s\n", ok ? "PASS" : "FAIL", what.c_str());
  (ok ? passed : failed)++;
}

/// A deterministic prompt of `n` token ids below `vocab`.
std::vector<int32_t> prompt(int64_t n, int64_t vocab, uint32_t seed) {
  std::vector<int32_t> ids;
  uint32_t x = seed * 2654435761u + 12345u;
  for (int64_t i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;
    ids.push_back(int32_t((x >> 8) % uint32_t(vocab)));
  }
  return ids;
}

double maxAbsDiff(const std::vector<float> &a, const std::vector<float> &b) {
  double worst = a.size() == b.size() ? 0.0 : INFINITY;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i)
    worst = std::max(worst, double(std::fabs(a[i] - b[i])));
  return worst;
}

void checkContinuation(Engine &engine, double tolerance) {
  const int64_t vocab = engine.vocabSize();
  std::vector<int32_t> ids = prompt(40, vocab, 7);
  // One forward over everything.
  int whole = engine.createSequence();
  std::vector<float> reference = engine.forward({{whole, ids}}, /*allLogits=*/true);
  engine.releaseSequence(whole);

  // The same tokens as: prefill 11, decode 1, decode 1, chunk 7, decode 1, rest.
  const size_t cuts[] = {0, 11, 12, 13, 20, 21, ids.size()};
  int seq = engine.createSequence();
  std::vector<float> pieces;
  for (size_t i = 0; i + 1 < sizeof(cuts) / sizeof(cuts[0]); ++i) {
    std::vector<int32_t> chunk(ids.begin() + long(cuts[i]), ids.begin() + long(cuts[i + 1]));
    std::vector<float> logits = engine.forward({{seq, chunk}}, /*allLogits=*/true);
    pieces.insert(pieces.end(), logits.begin(), logits.end());
  }
  engine.releaseSequence(seq);
  double diff = maxAbsDiff(pieces, reference);
  char line[200];
  std::snprintf(line, sizeof(line),
                "prefill 11 + decode 2 + chunk of 7 + decode 1 + chunk of 19 vs one forward over 40 tokens: "
                "max |diff| %.3g <= %.3g",
                diff, tolerance);
  report(diff <= tolerance, line);
}

void checkIsolation(Engine &engine) {
  const int64_t vocab = engine.vocabSize();
  std::vector<int> seqs;
  for (int i = 0; i < 4; ++i) {
    seqs.push_back(engine.createSequence());
    engine.forward({{seqs.back(), prompt(5 + 3 * i, vocab, 100 + uint32_t(i))}});
  }
  std::vector<std::vector<uint8_t>> before;
  for (int seq : seqs)
    before.push_back(engine.stateSlotBytes(seq));
  // A ragged step over sequences 0 (decode) and 2 (a chunk of 6).
  engine.forward({{seqs[0], {1}}, {seqs[2], prompt(6, vocab, 200)}});
  for (size_t i = 0; i < seqs.size(); ++i) {
    bool touched = i == 0 || i == 2;
    bool same = engine.stateSlotBytes(seqs[i]) == before[i];
    report(touched ? !same : same, "sequence " + std::to_string(i) + "'s state slot is " +
                                       (touched ? "updated by its step" : "byte-identical after the step of others"));
  }
  // A released slot starts from zeros for the next request.
  engine.releaseSequence(seqs[1]);
  int fresh = engine.createSequence();
  std::vector<uint8_t> state = engine.stateSlotBytes(fresh);
  report(std::all_of(state.begin(), state.end(), [](uint8_t b) { return b == 0; }),
         "a slot claimed by a new request starts zeroed (" + std::to_string(state.size()) + " bytes)");
  for (int seq : {seqs[0], seqs[2], seqs[3], fresh})
    engine.releaseSequence(seq);
}
} // namespace

int main(int argc, char **argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: qwen-check-state ARTIFACT [--max-abs X] [--checkpoint DIR]\n");
    return 2;
  }
  double tolerance = 1e-4;
  EngineOptions options;
  for (int i = 2; i + 1 < argc; i += 2) {
    if (std::string(argv[i]) == "--max-abs")
      tolerance = std::atof(argv[i + 1]);
    else if (std::string(argv[i]) == "--checkpoint")
      options.checkpointDir = argv[i + 1];
  }
  try {
    options.maxSequences = 6;
    options.maxContext = 128;
    std::unique_ptr<Engine> engine = Engine::load(argv[1], options);
    if (engine->statePool().empty())
      std::printf("note: the model has no linear-attention layers\n");
    checkContinuation(*engine, tolerance);
    if (!engine->statePool().empty())
      checkIsolation(*engine);
  } catch (const Error &error) {
    std::fprintf(stderr, "qwen-check-state: error: %s\n", error.what());
    return 1;
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
