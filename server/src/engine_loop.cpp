//===- engine_loop.cpp - The engine thread and its request queue ----------===//

#include "qwen_server/engine_loop.h"

#include "qwen_rt/embed.h"
#include "qwen_server/protocol.h"

#include <algorithm>

namespace qwen::serve {

//===----------------------------------------------------------------------===//
// RequestHandle
//===----------------------------------------------------------------------===//

bool RequestHandle::wait(std::vector<TokenMessage> &out, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(Mu);
  Cv.wait_for(lock, timeout, [&] { return !Pending.empty() || Ended; });
  out.insert(out.end(), Pending.begin(), Pending.end());
  Pending.clear();
  return Ended;
}

void RequestHandle::cancel() {
  if (CancelAsked.exchange(true))
    return;
  {
    std::lock_guard<std::mutex> lock(Mu);
    if (Ended)
      return;
  }
  Loop->requestCancel(shared_from_this());
}

std::string RequestHandle::error() const {
  std::lock_guard<std::mutex> lock(Mu);
  return Error;
}

void RequestHandle::deliver(const TokenMessage &message) {
  {
    std::lock_guard<std::mutex> lock(Mu);
    Pending.push_back(message);
  }
  Cv.notify_all();
}

void RequestHandle::end(const std::string &error) {
  {
    std::lock_guard<std::mutex> lock(Mu);
    Ended = true;
    Error = error;
  }
  Cv.notify_all();
}

//===----------------------------------------------------------------------===//
// EmbeddingHandle
//===----------------------------------------------------------------------===//

std::vector<std::vector<float>> EmbeddingHandle::wait() {
  std::unique_lock<std::mutex> lock(Mu);
  Cv.wait(lock, [&] { return Ended; });
  if (!Error.empty())
    throw std::runtime_error(Error);
  return std::move(Embeddings);
}

void EmbeddingHandle::end(std::vector<std::vector<float>> embeddings, const std::string &error) {
  {
    std::lock_guard<std::mutex> lock(Mu);
    Ended = true;
    Embeddings = std::move(embeddings);
    Error = error;
  }
  Cv.notify_all();
}

//===----------------------------------------------------------------------===//
// EngineLoop
//===----------------------------------------------------------------------===//

EngineLoop::EngineLoop(rt::Engine &engine, int64_t maxQueue, Metrics &metrics)
    : Eng(engine), Capacity(int64_t(engine.maxSequences()) + std::max<int64_t>(maxQueue, 0)), Stats(metrics) {
  Stats.engine.pagesTotal = Eng.memoryPlan().numPages;
  // One state slot per sequence; the prefix cache's checkpoint slots in the
  // same pool are not request slots.
  Stats.engine.slotsTotal = Eng.statePool().empty() ? 0 : Eng.maxSequences();
  Thread = std::thread([this] { run(); });
}

EngineLoop::~EngineLoop() {
  drain();
  {
    std::lock_guard<std::mutex> lock(Mu);
    Stopping = true;
  }
  Wake.notify_all();
  Thread.join();
}

std::shared_ptr<RequestHandle> EngineLoop::submit(rt::GenerationRequest request) {
  auto handle = std::make_shared<RequestHandle>();
  handle->Loop = this;
  {
    std::lock_guard<std::mutex> lock(Mu);
    admit();
    Inbox.emplace_back(std::move(request), handle);
  }
  Wake.notify_all();
  return handle;
}

std::shared_ptr<EmbeddingHandle> EngineLoop::submitEmbedding(std::vector<std::vector<int32_t>> sequences) {
  auto handle = std::make_shared<EmbeddingHandle>();
  {
    std::lock_guard<std::mutex> lock(Mu);
    admit();
    EmbedInbox.emplace_back(std::move(sequences), handle);
  }
  Wake.notify_all();
  return handle;
}

void EngineLoop::admit() {
  if (Draining)
    throw ApiError(503, "the server is shutting down and takes no new requests", "server_error", "",
                   "shutting_down");
  if (Accepted >= Capacity)
    throw ApiError(429,
                   "the server is at capacity: " + std::to_string(Accepted) +
                       " requests are running or queued; retry later",
                   "rate_limit_error", "", "queue_full");
  ++Accepted;
}

void EngineLoop::release() {
  std::lock_guard<std::mutex> lock(Mu);
  if (--Accepted == 0)
    Idle.notify_all();
}

void EngineLoop::drain() {
  std::unique_lock<std::mutex> lock(Mu);
  Draining = true;
  Idle.wait(lock, [&] { return Accepted == 0; });
}

int64_t EngineLoop::inFlight() const {
  std::lock_guard<std::mutex> lock(Mu);
  return Accepted;
}

bool EngineLoop::draining() const {
  std::lock_guard<std::mutex> lock(Mu);
  return Draining;
}

void EngineLoop::requestCancel(std::shared_ptr<RequestHandle> handle) {
  {
    std::lock_guard<std::mutex> lock(Mu);
    Cancels.push_back(std::move(handle));
  }
  Wake.notify_all();
}

void EngineLoop::finished(RequestHandle &handle, const std::string &error) {
  handle.end(error);
  release();
}

void EngineLoop::runEmbeddings(std::deque<EmbeddingJob> &jobs, const std::string &fatal) {
  if (jobs.empty())
    return;
  // Every waiting job in one embedTokens call: its steps pack sequences of
  // different requests together, as continuous batching does for generation.
  std::vector<std::vector<int32_t>> all;
  for (auto &[sequences, handle] : jobs)
    for (std::vector<int32_t> &tokens : sequences)
      all.push_back(std::move(tokens));
  Stats.engine.running = int64_t(jobs.size());
  std::vector<std::vector<float>> embeddings;
  std::string error = fatal;
  if (error.empty()) {
    try {
      embeddings = rt::embedTokens(Eng, all);
    } catch (const std::exception &e) {
      error = std::string("the engine failed: ") + e.what();
    }
  }
  size_t next = 0;
  for (auto &[sequences, handle] : jobs) {
    std::vector<std::vector<float>> mine;
    if (error.empty())
      for (size_t i = 0; i < sequences.size(); ++i)
        mine.push_back(std::move(embeddings[next++]));
    else
      Stats.engineErrors++;
    handle->end(std::move(mine), error);
    release();
  }
  jobs.clear();
}

void EngineLoop::publishGauges(const rt::Generator *gen) {
  int64_t running = Eng.liveSequences();
  int64_t inbox;
  {
    std::lock_guard<std::mutex> lock(Mu);
    inbox = int64_t(Inbox.size() + EmbedInbox.size());
  }
  // Pages and slots before the request counts: whoever sees no request
  // running sees the memory of the step that ended the last one. Idle pages
  // of the prefix cache count as free (a request may have them).
  Stats.engine.pagesUsed = Eng.memoryPlan().numPages - Eng.freePages();
  Stats.engine.slotsUsed = Eng.statePool().empty() ? 0 : running;
  Stats.engine.running = running;
  Stats.engine.waiting = std::max<int64_t>((gen ? gen->active() : 0) - running, 0) + inbox;
  if (gen && Eng.prefixCacheEnabled()) {
    rt::PrefixCacheStats prefix = gen->prefixCacheStats();
    Stats.engine.prefixCacheEnabled = true;
    Stats.engine.prefixQueryTokens = prefix.lookupTokens;
    Stats.engine.prefixHitTokens = prefix.reusedTokens;
    Stats.engine.prefixHits = prefix.hits;
    Stats.engine.prefixIdlePages = prefix.idlePages;
  }
  if (Eng.acceptsImages()) {
    rt::ImageCacheStats images = Eng.imageCache().stats();
    Stats.engine.imageCacheEnabled = true;
    Stats.engine.imagePixelLookups = images.pixelLookups;
    Stats.engine.imagePixelHits = images.pixelHits;
    Stats.engine.imageRowLookups = images.rowLookups;
    Stats.engine.imageRowHits = images.rowHits;
  }
}

void EngineLoop::run() {
  // The engine was loaded on another thread; on a GPU its context must be
  // made current here. If that fails, every request ends with the reason.
  std::string fatal;
  try {
    Eng.bindToCallingThread();
  } catch (const std::exception &e) {
    fatal = std::string("the engine cannot run on the server's engine thread: ") + e.what();
  }
  // A hidden-states artifact embeds and has no Generator (it would refuse
  // the artifact); generation requests for it end with the reason.
  std::optional<rt::Generator> generator;
  const std::string noGenerator =
      "this artifact returns hidden states (qwen-compile --hidden-states): it serves /v1/embeddings, not generation";
  if (!Eng.artifact().outputsHiddenStates())
    generator.emplace(Eng, [&](const rt::TokenEvent &ev) {
      auto it = Live.find(ev.request);
      if (it == Live.end())
        return;
      it->second->deliver({ev.token, ev.isStop, ev.finish, Clock::now(), ev.logprobs,
                           generator->result(ev.request).cachedTokens});
      if (ev.finish != rt::FinishReason::Running)
        Ended.push_back(ev.request);
    });
  auto active = [&] { return generator ? generator->active() : 0; };
  auto endRequest = [&](int id, const std::string &error) {
    auto it = Live.find(id);
    std::shared_ptr<RequestHandle> handle = it->second;
    Live.erase(it);
    generator->release(id);
    finished(*handle, error);
  };

  while (true) {
    std::deque<std::pair<rt::GenerationRequest, std::shared_ptr<RequestHandle>>> inbox;
    std::deque<EmbeddingJob> embeds;
    std::vector<std::shared_ptr<RequestHandle>> cancels;
    {
      std::unique_lock<std::mutex> lock(Mu);
      Wake.wait(lock, [&] {
        return !Inbox.empty() || !EmbedInbox.empty() || !Cancels.empty() || active() > 0 || Stopping;
      });
      if (Inbox.empty() && EmbedInbox.empty() && Cancels.empty() && active() == 0 && Stopping)
        break;
      inbox.swap(Inbox);
      embeds.swap(EmbedInbox);
      cancels.swap(Cancels);
    }
    runEmbeddings(embeds, fatal);
    for (auto &[request, handle] : inbox) {
      if (!fatal.empty() || !generator) {
        Stats.engineErrors++;
        finished(*handle, fatal.empty() ? noGenerator : fatal);
        continue;
      }
      try {
        int id = generator->submit(std::move(request));
        handle->Id = id;
        Live.emplace(id, handle);
        if (generator->finished(id))
          Ended.push_back(id);
      } catch (const std::exception &e) {
        // The HTTP side validated the request; whatever the Generator still
        // refuses ends the request with its message.
        Stats.engineErrors++;
        finished(*handle, e.what());
      }
    }
    for (const std::shared_ptr<RequestHandle> &handle : cancels) {
      if (handle->Id < 0 || !Live.count(handle->Id))
        continue; // ended meanwhile, or never admitted
      generator->cancel(handle->Id);
      endRequest(handle->Id, "");
    }
    if (active() > 0) {
      try {
        generator->step();
      } catch (const std::exception &e) {
        // An engine failure ends every request in flight with its message;
        // their sequences are freed and the server keeps serving.
        std::string message = std::string("the engine failed: ") + e.what();
        std::vector<int> ids;
        for (const auto &[id, handle] : Live)
          ids.push_back(id);
        for (int id : ids) {
          Stats.engineErrors++;
          generator->cancel(id);
          endRequest(id, message);
        }
        Ended.clear();
      }
    }
    for (int id : Ended)
      if (Live.count(id))
        endRequest(id, "");
    Ended.clear();
    publishGauges(generator ? &*generator : nullptr);
  }
  publishGauges(generator ? &*generator : nullptr);
}

} // namespace qwen::serve
