//===- embed.cpp - Sentence embeddings from hidden-state artifacts --------===//

#include "qwen_rt/embed.h"

#include "qwen_rt/error.h"
#include "qwen_rt/tokenizer.h"

#include <algorithm>
#include <cmath>

namespace qwen::rt {

namespace {
/// A sequence being prefilled: which input, its engine sequence, tokens done.
struct Pending {
  size_t index;
  int seq;
  size_t done = 0;
};

std::vector<float> normalized(const float *row, int64_t width) {
  double squares = 0;
  for (int64_t i = 0; i < width; ++i)
    squares += double(row[i]) * double(row[i]);
  const float norm = std::max(float(std::sqrt(squares)), 1e-12f);
  std::vector<float> out(static_cast<size_t>(width));
  for (int64_t i = 0; i < width; ++i)
    out[size_t(i)] = row[i] / norm;
  return out;
}

void requireHiddenStates(const Engine &engine) {
  if (!engine.artifact().outputsHiddenStates())
    throw Error("embeddings need an artifact that returns hidden states; this one returns logits "
                "(compile it with qwen-compile --hidden-states)");
}
} // namespace

std::vector<std::vector<float>> embedTokens(Engine &engine,
                                            const std::vector<std::vector<int32_t>> &sequences) {
  requireHiddenStates(engine);
  for (size_t i = 0; i < sequences.size(); ++i) {
    if (sequences[i].empty())
      throw Error("embedding input " + std::to_string(i) + " has no tokens");
    if (int64_t(sequences[i].size()) > engine.maxContext())
      throw Error("embedding input " + std::to_string(i) + " has " + std::to_string(sequences[i].size()) +
                  " tokens, more than the context of " + std::to_string(engine.maxContext()));
  }
  const int64_t width = engine.artifact().outputWidth();
  std::vector<std::vector<float>> result(sequences.size());
  std::vector<Pending> active;
  size_t next = 0;
  try {
    while (next < sequences.size() || !active.empty()) {
      // Claim free sequences for waiting inputs, then one step over all of
      // them within the step's token budget.
      while (next < sequences.size() && engine.liveSequences() < engine.maxSequences())
        active.push_back({next++, engine.createSequence()});
      if (active.empty())
        throw Error("embeddings need a free sequence, but all " + std::to_string(engine.maxSequences()) +
                    " are in use");
      std::vector<Engine::SequenceChunk> chunks;
      int64_t budget = engine.maxBatchTokens();
      for (const Pending &p : active) {
        const std::vector<int32_t> &tokens = sequences[p.index];
        int64_t take = std::min<int64_t>(budget, int64_t(tokens.size() - p.done));
        if (take <= 0)
          break;
        chunks.push_back({p.seq, std::vector<int32_t>(tokens.begin() + long(p.done),
                                                      tokens.begin() + long(p.done) + take)});
        budget -= take;
      }
      std::vector<float> rows = engine.forward(chunks);
      for (size_t c = 0; c < chunks.size(); ++c) {
        Pending &p = active[c];
        p.done += chunks[c].tokens.size();
        if (p.done == sequences[p.index].size())
          result[p.index] = normalized(rows.data() + c * size_t(width), width);
      }
      for (auto it = active.begin(); it != active.end();) {
        if (it->done == sequences[it->index].size()) {
          engine.releaseSequence(it->seq);
          it = active.erase(it);
        } else {
          ++it;
        }
      }
    }
  } catch (...) {
    for (const Pending &p : active)
      engine.releaseSequence(p.seq);
    throw;
  }
  return result;
}

std::vector<std::vector<float>> embed(Engine &engine, const std::vector<std::string> &texts) {
  requireHiddenStates(engine);
  const Tokenizer *tokenizer = engine.tokenizer();
  if (!tokenizer)
    throw Error("embeddings of text need the checkpoint's tokenizer.json");
  std::vector<std::vector<int32_t>> sequences;
  for (const std::string &text : texts)
    sequences.push_back(tokenizer->postProcess(tokenizer->encode(text)));
  return embedTokens(engine, sequences);
}

} // namespace qwen::rt
