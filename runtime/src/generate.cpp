//===- generate.cpp - Continuous-batching generation driver ---------------===//

#include "qwen_rt/generate.h"

#include "qwen_rt/error.h"

#include <algorithm>

namespace qwen::rt {

using Clock = std::chrono::steady_clock;

const char *finishReasonName(FinishReason reason) {
  switch (reason) {
  case FinishReason::Running: return "running";
  case FinishReason::Stop: return "stop";
  case FinishReason::Length: return "length";
  case FinishReason::Context: return "context";
  case FinishReason::Cancelled: return "cancelled";
  }
  return "?";
}

std::vector<int32_t> defaultStopTokens(const Engine &engine) {
  std::vector<int32_t> ids;
  auto add = [&](int32_t id) {
    if (id >= 0 && id < engine.vocabSize() && std::find(ids.begin(), ids.end(), id) == ids.end())
      ids.push_back(id);
  };
  const GenerationConfig &gc = engine.generationConfig();
  for (int32_t id : gc.eosTokenIds)
    add(id);
  if (!gc.eosTokenStrings.empty())
    if (const Tokenizer *tok = engine.tokenizer())
      for (const std::string &s : gc.eosTokenStrings)
        if (std::optional<int32_t> id = tok->tokenToId(s))
          add(*id);
  const nlohmann::json &model = engine.modelInfo();
  if (auto it = model.find("eos_token_ids"); it != model.end() && it->is_array())
    for (const nlohmann::json &v : *it)
      if (v.is_number_integer())
        add(v.get<int32_t>());
  return ids;
}

struct Generator::State {
  GenerationRequest request;
  Sampler sampler;
  std::vector<int32_t> stops;
  GenerationResult result;
  int seq = -1;
  int64_t prefilled = 0; ///< prompt tokens already in the sequence
  /// Positions where a prefill step must end (ascending, beyond `prefilled`)
  /// so that the engine checkpoints the linear-attention state there.
  std::vector<int64_t> checkpointAt;
  int32_t next = 0;      ///< the sampled token to feed in the next step
  Clock::time_point submitted;

  State(GenerationRequest r, std::vector<int32_t> s)
      : request(std::move(r)), sampler(request.sampling), stops(std::move(s)), submitted(Clock::now()) {}
  bool prefillDone() const { return prefilled == int64_t(request.prompt.size()); }
  /// The next `take` prompt tokens as a chunk (with their images, if any).
  Engine::SequenceChunk promptChunk(int64_t take) const {
    if (request.images)
      return request.images->chunk(seq, prefilled, prefilled + take);
    auto begin = request.prompt.begin() + prefilled;
    return {seq, std::vector<int32_t>(begin, begin + take)};
  }
  /// The next prompt piece: at most `budget` tokens, ending at a checkpoint position.
  int64_t nextPiece(int64_t budget) const {
    int64_t take = std::min<int64_t>(int64_t(request.prompt.size()) - prefilled, budget);
    return checkpointAt.empty() ? take : std::min(take, checkpointAt.front() - prefilled);
  }
};

Generator::Generator(Engine &engine, Callback onToken) : Eng(engine), OnToken(std::move(onToken)) {
  if (engine.artifact().outputsHiddenStates())
    throw Error("this artifact returns hidden states (qwen-compile --hidden-states), not logits: "
                "it embeds (qwen-run embed) but does not generate");
}

Generator::~Generator() {
  for (int id : Running)
    if (States[size_t(id)]->seq >= 0)
      Eng.releaseSequence(States[size_t(id)]->seq);
}

int Generator::submit(GenerationRequest request) {
  if (!request.pixelImages.empty()) {
    request.images = std::make_shared<const ImagePrompt>(prepareImagePrompt(Eng, request.prompt, request.pixelImages));
    request.prompt = request.images->ids;
    request.pixelImages.clear();
  }
  const std::vector<int32_t> &prompt = request.prompt;
  if (prompt.empty())
    throw Error("the prompt is empty; generation needs at least one token");
  for (size_t i = 0; i < prompt.size(); ++i)
    if (prompt[i] < 0 || prompt[i] >= Eng.vocabSize())
      throw Error("token id " + std::to_string(prompt[i]) + " at position " + std::to_string(i) +
                  " is out of range for vocabulary of " + std::to_string(Eng.vocabSize()));
  if (request.images && request.images->ids != prompt)
    throw Error("the prompt is not the ids of its image prompt");
  if (request.images && !Eng.acceptsImages())
    throw Error("this model takes no images (its checkpoint has no vision_config)");
  if (int64_t(prompt.size()) > Eng.maxContext())
    throw Error("prompt of " + std::to_string(prompt.size()) + " tokens exceeds the context of " +
                std::to_string(Eng.maxContext()) + " tokens");
  std::vector<int32_t> stops;
  if (request.stopTokens) {
    stops = *request.stopTokens;
  } else {
    if (!DefaultStops)
      DefaultStops = defaultStopTokens(Eng);
    stops = *DefaultStops;
  }
  int id = int(States.size());
  States.push_back(std::make_unique<State>(std::move(request), std::move(stops))); // Sampler validates
  State &s = *States.back();
  s.result.promptTokens = int64_t(s.request.prompt.size());
  if (s.sampler.hasPenalties())
    s.sampler.setPrompt(s.request.prompt);
  if (s.request.maxNewTokens <= 0)
    s.result.finish = FinishReason::Length;
  else
    Waiting.push_back(id);
  return id;
}

void Generator::finish(State &s, FinishReason reason) {
  s.result.finish = reason;
  s.result.totalSeconds = std::chrono::duration<double>(Clock::now() - s.submitted).count();
  if (s.seq >= 0) {
    Eng.releaseSequence(s.seq);
    s.seq = -1;
  }
}

bool Generator::step() {
  std::vector<Engine::SequenceChunk> chunks;
  std::vector<int> owners;
  int64_t budget = Eng.maxBatchTokens();
  int64_t freePages = Eng.freePages(); // idle cached pages included
  const int64_t pageSize = Eng.memoryPlan().pageSize;
  const bool checkpoints = Eng.memoryPlan().prefixCheckpoints > 0 && Eng.prefixCacheEnabled();

  // Running requests first: one token each for those decoding, then the next
  // piece of the prompts that did not fit in earlier steps.
  for (int pass = 0; pass < 2; ++pass) {
    for (int id : Running) {
      State &s = *States[size_t(id)];
      if (pass == 0 && s.prefillDone()) {
        chunks.push_back({s.seq, {s.next}});
        budget -= 1;
      } else if (pass == 1 && !s.prefillDone() && budget > 0) {
        int64_t take = s.nextPiece(budget);
        chunks.push_back(s.promptChunk(take));
        budget -= take;
      } else {
        continue;
      }
      owners.push_back(id);
      freePages -= Eng.extraPagesFor(s.seq, Eng.sequenceLength(s.seq) + int64_t(chunks.back().tokens.size()));
    }
  }
  // Admit waiting requests while a sequence, the budget and KV pages for their
  // whole prompt are available (counted without the cache's help: a hit only
  // needs fewer).
  while (!Waiting.empty() && budget > 0 && Eng.liveSequences() < Eng.maxSequences()) {
    State &s = *States[size_t(Waiting.front())];
    int64_t promptPages = (int64_t(s.request.prompt.size()) + pageSize - 1) / pageSize;
    if (promptPages > freePages)
      break;
    freePages -= promptPages;
    s.seq = Eng.createSequence();
    Running.push_back(Waiting.front());
    owners.push_back(Waiting.front());
    Waiting.pop_front();
    const std::vector<int32_t> &prompt = s.request.prompt;
    // With images the cached pages must hold the same image rows too.
    Engine::PrefixHit hit = s.request.images
                                ? Eng.reusePrefix(s.request.images->chunk(s.seq, 0, int64_t(prompt.size())))
                                : Eng.reusePrefix(s.seq, prompt);
    s.prefilled = s.result.cachedTokens = hit.reused;
    if (checkpoints) {
      const int64_t lastBoundary = (int64_t(prompt.size()) - 1) / pageSize * pageSize;
      for (int64_t at : {hit.matched, lastBoundary})
        if (at > s.prefilled && (s.checkpointAt.empty() || at > s.checkpointAt.back()))
          s.checkpointAt.push_back(at);
    }
    int64_t take = s.nextPiece(budget);
    chunks.push_back(s.promptChunk(take));
    budget -= take;
  }
  if (chunks.empty()) {
    if (!Waiting.empty() && Running.empty()) {
      const State &s = *States[size_t(Waiting.front())];
      if (Eng.liveSequences() >= Eng.maxSequences())
        throw Error("request " + std::to_string(Waiting.front()) + " cannot start: all " +
                    std::to_string(Eng.maxSequences()) + " sequences of the engine are used by others");
      throw Error("request " + std::to_string(Waiting.front()) + " cannot start: its prompt of " +
                  std::to_string(s.request.prompt.size()) + " tokens needs more KV cache pages than the " +
                  std::to_string(Eng.freePages()) + " free ones");
    }
    return false;
  }

  // Greedy requests only: the engine picks the tokens (on a GPU, on the
  // device) and no logits are copied back. On a GPU, requests whose top-k
  // fits the device's candidate selection draw from the candidates alone
  // (the same tokens as from the whole row); others need the logits rows.
  bool allGreedy = true, allTopK = Eng.topKCandidates() > 0;
  for (int owner : owners) {
    const Sampler &sampler = States[size_t(owner)]->sampler;
    // Penalties and logprobs need every row on the host.
    allGreedy = allGreedy && sampler.isGreedy() && !sampler.needsFullRow();
    allTopK = allTopK && sampler.canSampleTopCandidates(Eng.topKCandidates()) && !sampler.needsFullRow();
  }
  std::vector<float> logits;
  std::vector<int32_t> greedy;
  Engine::TopCandidates top;
  if (allGreedy)
    greedy = Eng.forwardGreedy(chunks);
  else if (allTopK)
    top = Eng.forwardTopCandidates(chunks);
  else
    logits = Eng.forward(chunks);
  const int64_t vocab = Eng.vocabSize();
  for (size_t i = 0; i < chunks.size(); ++i) {
    State &s = *States[size_t(owners[i])];
    if (!s.prefillDone()) {
      s.prefilled += int64_t(chunks[i].tokens.size());
      while (!s.checkpointAt.empty() && s.checkpointAt.front() <= s.prefilled)
        s.checkpointAt.erase(s.checkpointAt.begin());
      if (!s.prefillDone())
        continue;
    }
    TokenEvent ev;
    ev.request = owners[i];
    if (allGreedy)
      ev.token = greedy[i];
    else if (allTopK)
      ev.token = s.sampler.sampleTopCandidates(&top.logits[i * size_t(top.count)], &top.ids[i * size_t(top.count)],
                                               top.count, vocab);
    else
      ev.token = s.sampler.sampleNext(&logits[i * size_t(vocab)], vocab,
                                      s.sampler.params().logprobs >= 0 ? &ev.logprobs.emplace() : nullptr);
    if (s.result.tokens.empty() && !s.result.stopToken)
      s.result.firstTokenSeconds = std::chrono::duration<double>(Clock::now() - s.submitted).count();
    if (std::find(s.stops.begin(), s.stops.end(), ev.token) != s.stops.end()) {
      ev.isStop = true;
      ev.finish = FinishReason::Stop;
      s.result.stopToken = ev.token;
    } else {
      s.result.tokens.push_back(ev.token);
      if (int64_t(s.result.tokens.size()) >= s.request.maxNewTokens)
        ev.finish = FinishReason::Length;
      else if (Eng.sequenceLength(s.seq) >= Eng.maxContext())
        ev.finish = FinishReason::Context; // no room to feed the token back
    }
    s.next = ev.token;
    if (ev.finish != FinishReason::Running) {
      finish(s, ev.finish);
      Running.erase(std::find(Running.begin(), Running.end(), owners[i]));
    }
    if (OnToken)
      OnToken(ev);
  }
  return true;
}

void Generator::runToCompletion() {
  while (step()) {
  }
}

void Generator::cancel(int id) {
  State &s = *States.at(size_t(id));
  if (s.result.finish != FinishReason::Running)
    return;
  finish(s, FinishReason::Cancelled);
  Running.erase(std::remove(Running.begin(), Running.end(), id), Running.end());
  Waiting.erase(std::remove(Waiting.begin(), Waiting.end(), id), Waiting.end());
}

bool Generator::finished(int id) const { return States.at(size_t(id))->result.finish != FinishReason::Running; }

const GenerationResult &Generator::result(int id) const { return States.at(size_t(id))->result; }

void Generator::release(int id) {
  std::unique_ptr<State> &s = States.at(size_t(id));
  if (s && s->result.finish == FinishReason::Running)
    throw Error("request " + std::to_string(id) + " cannot be released: it has not finished");
  s.reset();
}

int64_t Generator::active() const { return int64_t(Waiting.size() + Running.size()); }

} // namespace qwen::rt
