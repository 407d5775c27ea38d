//===- qwen-check-prefix-cache.cpp - Prefix-cache checks on a real engine -===//
//
// Runs an artifact twice, with the prefix cache (warm) and without it (cold),
// and checks:
//   exact       a prompt sharing a prefix with an earlier one reuses its pages
//               (and state checkpoint) and the logits of every later position
//               and of greedy decode steps are bit-identical to a cold run;
//               shared prefixes one token below, at and above page boundaries;
//   multi-turn  turn 2 (turn 1's prompt + its generated tokens + new ones)
//               reuses turn 1 up to the last page boundary its decode crossed;
//   generator   greedy continuations of requests sharing prefixes, run
//               concurrently, equal the cold ones; one cancelled while it
//               holds shared pages frees them and changes no other answer;
//   eviction    under a tiny page budget pages are evicted and reused, and
//               every answer still equals the cold one;
//   accounting  after the load no page is held, and clearing the cache frees
//               every page and checkpoint.
// Prints PASS/FAIL lines and "N passed, M failed"; exits 1 on a failure.
// --max-abs X compares logits within X instead of bitwise (the GPU, where
// prefill and decode kernels round differently); --quick checks one shared
// prefix, the multi-turn chat and the accounting (for the emulated GPU).
//
//===----------------------------------------------------------------------===//
#include "qwen_rt/engine.h"
#include "qwen_rt/error.h"
#include "qwen_rt/generate.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

using namespace qwen::rt;

namespace {
int passed = 0, failed = 0;
double tolerance = 0; ///< 0: bitwise

void report(bool ok, const std::string &what) {
  std::printf("%s: %s\n", ok ? "PASS" : "FAIL", what.c_str());
  std::fflush(stdout);
  (ok ? passed : failed)++;
}

/// A deterministic sequence of `n` token ids below `vocab`.
std::vector<int32_t> tokens(int64_t n, int64_t vocab, uint32_t seed) {
  std::vector<int32_t> ids;
  uint32_t x = seed * 2654435761u + 12345u;
  for (int64_t i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;
    ids.push_back(int32_t((x >> 8) % uint32_t(vocab)));
  }
  return ids;
}

std::vector<int32_t> concat(std::vector<int32_t> a, const std::vector<int32_t> &b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

/// Bitwise equal, or within `tolerance` when one is set.
bool sameLogits(const std::vector<float> &a, const std::vector<float> &b) {
  if (a.size() != b.size())
    return false;
  if (tolerance == 0)
    return std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
  for (size_t i = 0; i < a.size(); ++i)
    if (!(std::fabs(a[i] - b[i]) <= tolerance))
      return false;
  return true;
}

std::string sameText() {
  return tolerance == 0 ? "bit-identical to" : "within " + std::to_string(tolerance) + " of";
}

/// Greedy decode of `steps` tokens after logits row `last`; returns every
/// step's logits (the fed tokens are appended to `fed`).
std::vector<float> decode(Engine &engine, int seq, std::vector<float> last, int steps, std::vector<int32_t> *fed) {
  const int64_t vocab = engine.vocabSize();
  std::vector<float> all;
  for (int i = 0; i < steps; ++i) {
    int32_t next = int32_t(std::max_element(last.end() - vocab, last.end()) - (last.end() - vocab));
    fed->push_back(next);
    last = engine.forward({{seq, {next}}});
    all.insert(all.end(), last.begin(), last.end());
  }
  return all;
}

/// Prefills tokens[from, end) of `seq` as the Generator does: the steps end
/// at `stops` (page boundaries where the state is checkpointed). Returns the
/// logits of every position fed.
std::vector<float> prefill(Engine &engine, int seq, const std::vector<int32_t> &ids, int64_t from,
                           std::vector<int64_t> stops) {
  stops.push_back(int64_t(ids.size()));
  std::vector<float> logits;
  for (int64_t stop : stops) {
    if (stop <= from)
      continue;
    std::vector<int32_t> piece(ids.begin() + from, ids.begin() + stop);
    std::vector<float> rows = engine.forward({{seq, piece}}, /*allLogits=*/true);
    logits.insert(logits.end(), rows.begin(), rows.end());
    from = stop;
  }
  return logits;
}

/// The logits of every position of `ids` and of `steps` greedy decode steps
/// after it, computed cold in one prefill step.
struct Run {
  std::vector<float> prompt, decoded;
  std::vector<int32_t> fed;
};
Run coldRun(Engine &cold, const std::vector<int32_t> &ids, int steps) {
  Run r;
  int seq = cold.createSequence();
  r.prompt = cold.forward({{seq, ids}}, /*allLogits=*/true);
  r.decoded = decode(cold, seq, r.prompt, steps, &r.fed);
  cold.releaseSequence(seq);
  return r;
}

/// Checks one prompt on the warm engine against the cold run: reuse, then
/// prefill the rest (and decode). Returns the tokens reused.
int64_t checkExact(Engine &warm, Engine &cold, const std::vector<int32_t> &ids, int steps, const std::string &what,
                   int64_t expectReused) {
  const int64_t vocab = warm.vocabSize(), page = warm.memoryPlan().pageSize;
  Run ref = coldRun(cold, ids, steps);
  int seq = warm.createSequence();
  Engine::PrefixHit hit = warm.reusePrefix(seq, ids);
  std::vector<int64_t> stops;
  if (warm.hasLinearState())
    stops = {hit.matched, (int64_t(ids.size()) - 1) / page * page};
  std::vector<float> logits = prefill(warm, seq, ids, hit.reused, stops);
  std::vector<int32_t> fed;
  std::vector<float> decoded = decode(warm, seq, logits, steps, &fed);
  warm.releaseSequence(seq);
  std::vector<float> later(ref.prompt.begin() + hit.reused * vocab, ref.prompt.end());
  bool ok = hit.reused == expectReused && sameLogits(logits, later) && sameLogits(decoded, ref.decoded) &&
            fed == ref.fed;
  report(ok, what + ": reused " + std::to_string(hit.reused) + " of " + std::to_string(ids.size()) +
                 " tokens (expected " + std::to_string(expectReused) + "); logits of the " +
                 std::to_string(int64_t(ids.size()) - hit.reused) + " later positions and " + std::to_string(steps) +
                 " greedy decode steps " + sameText() + " the run without the cache");
  return hit.reused;
}

void checkSharedPrefixes(Engine &warm, Engine &cold, bool quick) {
  const int64_t vocab = warm.vocabSize(), page = warm.memoryPlan().pageSize;
  uint32_t seed = 10;
  std::vector<int64_t> sharedLengths = {page - 1, page, page + 1, 3 * page - 1, 3 * page, 3 * page + 1};
  if (quick)
    sharedLengths = {page + 1};
  for (int64_t shared : sharedLengths) {
    std::vector<int32_t> common = tokens(shared, vocab, seed++);
    std::vector<int32_t> first = concat(common, tokens(7, vocab, seed++));
    std::vector<int32_t> second = concat(common, tokens(9, vocab, seed++));
    // The first prompt fills the cache (and reuses nothing of the others:
    // every common prefix starts with different tokens).
    checkExact(warm, cold, first, 0, "first prompt of a " + std::to_string(shared) + "-token prefix", 0);
    // The second reuses the common full pages. A hybrid model also needs
    // the state there: the first prompt's only checkpoint is at the last page
    // boundary before its last token; when that lies past the common part,
    // the second matches the pages but starts from scratch, and its own
    // prefill checkpoints the branch point.
    const int64_t full = shared / page * page;
    const int64_t firstCheckpoint = (int64_t(first.size()) - 1) / page * page;
    checkExact(warm, cold, second, 3, "second prompt sharing " + std::to_string(shared) + " tokens",
               !warm.hasLinearState() || firstCheckpoint == full ? full : 0);
    // A third one now finds the checkpoint of the branch point.
    std::vector<int32_t> third = concat(common, tokens(5, vocab, seed++));
    checkExact(warm, cold, third, 3, "third prompt sharing " + std::to_string(shared) + " tokens", full);
  }
  if (quick)
    return;
  // The same prompt again reuses everything up to the last page boundary
  // before its last token, at and off a page boundary.
  for (int64_t length : {4 * page, 4 * page + 3}) {
    std::vector<int32_t> ids = tokens(length, vocab, seed++);
    checkExact(warm, cold, ids, 0, "a " + std::to_string(length) + "-token prompt", 0);
    checkExact(warm, cold, ids, 2, "the same " + std::to_string(length) + "-token prompt again",
               (length - 1) / page * page);
  }
}

void checkMultiTurn(Engine &warm, Engine &cold) {
  const int64_t vocab = warm.vocabSize(), page = warm.memoryPlan().pageSize;
  std::vector<int32_t> turn1 = tokens(2 * page + 5, vocab, 77);
  const int generated = int(page) + 4; // crosses a page boundary while decoding
  int seq = warm.createSequence();
  Engine::PrefixHit hit = warm.reusePrefix(seq, turn1);
  std::vector<int64_t> stops;
  if (warm.hasLinearState())
    stops = {(int64_t(turn1.size()) - 1) / page * page};
  std::vector<float> logits = prefill(warm, seq, turn1, hit.reused, stops);
  std::vector<int32_t> fed;
  decode(warm, seq, logits, generated, &fed);
  warm.releaseSequence(seq);
  // Turn 2: turn 1, the generated tokens and a new message.
  std::vector<int32_t> turn2 = concat(concat(turn1, fed), tokens(9, vocab, 78));
  const int64_t decodedUpTo = int64_t(turn1.size()) + generated;
  checkExact(warm, cold, turn2, 3, "turn 2 of a chat (turn 1 prompt " + std::to_string(turn1.size()) + " + " +
                                        std::to_string(generated) + " generated + 9 new tokens)",
             decodedUpTo / page * page);
}

/// Runs `prompts` through a Generator, all submitted at once (greedy,
/// `maxNew` tokens each); cancels request `cancelAt.first` after
/// `cancelAt.second` steps when given.
std::vector<std::vector<int32_t>> generateAll(Engine &engine, const std::vector<std::vector<int32_t>> &prompts,
                                              int maxNew, std::pair<int, int> cancelAt = {-1, 0},
                                              std::vector<GenerationResult> *results = nullptr) {
  Generator gen(engine);
  std::vector<int> ids;
  for (const std::vector<int32_t> &p : prompts) {
    GenerationRequest r;
    r.prompt = p;
    r.maxNewTokens = maxNew;
    r.stopTokens = std::vector<int32_t>{};
    ids.push_back(gen.submit(std::move(r)));
  }
  for (int steps = 0; gen.step(); ++steps)
    if (steps + 1 == cancelAt.second && cancelAt.first >= 0)
      gen.cancel(ids[size_t(cancelAt.first)]);
  std::vector<std::vector<int32_t>> out;
  for (int id : ids) {
    out.push_back(gen.result(id).tokens);
    if (results)
      results->push_back(gen.result(id));
  }
  return out;
}

void checkGenerator(Engine &warm, Engine &cold) {
  const int64_t vocab = warm.vocabSize(), page = warm.memoryPlan().pageSize;
  std::vector<int32_t> system = tokens(2 * page + 3, vocab, 300);
  std::vector<std::vector<int32_t>> prompts;
  for (uint32_t i = 0; i < 4; ++i)
    prompts.push_back(concat(system, tokens(3 + 4 * i, vocab, 310 + i)));
  std::vector<std::vector<int32_t>> expected;
  for (const std::vector<int32_t> &p : prompts)
    expected.push_back(generateAll(cold, {p}, 12)[0]);
  // Concurrently: the four share the system prompt while they run.
  std::vector<GenerationResult> results;
  std::vector<std::vector<int32_t>> got = generateAll(warm, prompts, 12, {-1, 0}, &results);
  report(got == expected, "4 concurrent requests sharing a " + std::to_string(system.size()) +
                              "-token prefix: greedy continuations equal those without the cache");
  // Again, one after the other: now each reuses the shared pages (and its own
  // prompt up to its last page boundary).
  int64_t reused = 0;
  bool same = true;
  for (size_t i = 0; i < prompts.size(); ++i) {
    std::vector<GenerationResult> one;
    same = same && generateAll(warm, {prompts[i]}, 12, {-1, 0}, &one)[0] == expected[i];
    reused += one[0].cachedTokens;
  }
  report(same && reused > 0, "the same requests again, one by one: equal continuations, " + std::to_string(reused) +
                                 " prompt tokens reused");
  // A request cancelled after 2 steps, while it holds shared pages: the
  // others' answers do not change, and its pages are released.
  std::vector<std::vector<int32_t>> more;
  for (uint32_t i = 0; i < 3; ++i)
    more.push_back(concat(system, tokens(6 + i, vocab, 400 + i)));
  std::vector<std::vector<int32_t>> moreExpected;
  for (const std::vector<int32_t> &p : more)
    moreExpected.push_back(generateAll(cold, {p}, 10)[0]);
  std::vector<std::vector<int32_t>> moreGot = generateAll(warm, more, 10, {1, 2});
  report(moreGot[0] == moreExpected[0] && moreGot[2] == moreExpected[2] && moreGot[1].size() < 10 &&
             warm.liveSequences() == 0,
         "a request cancelled while holding shared pages: the other two answer as without the cache, nothing "
         "stays held");
}

void checkEviction(const std::string &artifact, EngineOptions options, Engine &cold) {
  // Room for two sequences of 3 pages at once: every new prompt evicts.
  options.numPages = 6;
  options.maxSequences = 2;
  std::unique_ptr<Engine> warm = Engine::load(artifact, options);
  const int64_t vocab = warm->vocabSize(), page = warm->memoryPlan().pageSize;
  std::vector<int32_t> a = tokens(page + 2, vocab, 500), b = tokens(page + 5, vocab, 501);
  std::vector<std::vector<int32_t>> prompts;
  for (int round = 0; round < 3; ++round)
    for (const std::vector<int32_t> &prefix : {a, b, a})
      prompts.push_back(concat(prefix, tokens(3 + round, vocab, 510 + uint32_t(prompts.size()))));
  bool same = true;
  for (const std::vector<int32_t> &p : prompts)
    same = same && generateAll(*warm, {p}, 2 * int(page) - 6)[0] == generateAll(cold, {p}, 2 * int(page) - 6)[0];
  // Two at once: admission counts idle cached pages as free.
  std::vector<std::vector<int32_t>> pair = {concat(a, tokens(4, vocab, 600)), concat(b, tokens(4, vocab, 601))};
  std::vector<std::vector<int32_t>> pairCold = {generateAll(cold, {pair[0]}, 8)[0], generateAll(cold, {pair[1]}, 8)[0]};
  same = same && generateAll(*warm, pair, 8) == pairCold;
  PrefixCacheStats st = warm->prefixCacheStats();
  report(same && st.evictedPages > 0 && st.hits > 0,
         "6 pages for 11 requests: " + std::to_string(st.evictedPages) + " pages evicted, " +
             std::to_string(st.hits) + " hits, every greedy answer equal to the one without the cache");
  report(warm->liveSequences() == 0 && warm->freePages() == warm->numPages(),
         "tiny budget: after the load every page is free or idle in the cache");
}

void checkAccounting(Engine &warm) {
  PrefixCacheStats before = warm.prefixCacheStats();
  bool nothingHeld = warm.liveSequences() == 0 && warm.freePages() == warm.numPages();
  warm.clearPrefixCache();
  PrefixCacheStats after = warm.prefixCacheStats();
  report(nothingHeld && after.cachedPages == 0 && after.idlePages == 0 && after.checkpoints == 0,
         "after the load: no page held; clearing the cache frees its " + std::to_string(before.cachedPages) +
             " pages and " + std::to_string(before.checkpoints) + " checkpoints (" + std::to_string(before.hits) +
             " hits of " + std::to_string(before.lookups) + " lookups, " + std::to_string(before.reusedTokens) +
             " tokens reused)");
}
} // namespace

int main(int argc, char **argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: qwen-check-prefix-cache ARTIFACT [--checkpoint DIR] [--max-abs X] [--quick]\n");
    return 2;
  }
  EngineOptions options;
  bool quick = false;
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--quick")
      quick = true;
    else if (arg == "--checkpoint" && i + 1 < argc)
      options.checkpointDir = argv[++i];
    else if (arg == "--max-abs" && i + 1 < argc)
      tolerance = std::atof(argv[++i]);
    else {
      std::fprintf(stderr, "qwen-check-prefix-cache: unknown argument %s\n", arg.c_str());
      return 2;
    }
  }
  try {
    options.maxSequences = 4;
    options.maxContext = 128;
    EngineOptions coldOptions = options;
    coldOptions.prefixCache = false;
    std::unique_ptr<Engine> warm = Engine::load(argv[1], options);
    std::unique_ptr<Engine> cold = Engine::load(argv[1], coldOptions);
    std::printf("note: pages of %lld tokens, %s, %d checkpoint slots\n",
                static_cast<long long>(warm->memoryPlan().pageSize),
                warm->hasLinearState() ? "hybrid model" : "attention only", warm->memoryPlan().prefixCheckpoints);
    checkSharedPrefixes(*warm, *cold, quick);
    checkMultiTurn(*warm, *cold);
    if (!quick)
      checkGenerator(*warm, *cold);
    checkAccounting(*warm);
    if (!quick)
      checkEviction(argv[1], options, *cold);
  } catch (const Error &error) {
    std::fprintf(stderr, "qwen-check-prefix-cache: error: %s\n", error.what());
    return 1;
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
