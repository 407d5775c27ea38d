//===- engine_loop.cpp - The engine thread and its request queue ----------===//

#include "qwen_server/engine_loop.h"

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
    if (Draining)
      throw ApiError(503, "the server is shutting down and takes no new requests", "server_error", "",
                     "shutting_down");
    if (Accepted >= Capacity)
      throw ApiError(429,
                     "the server is at capacity: " + std::to_string(Accepted) +
                         " requests are running or queued; retry later",
                     "rate_limit_error", "", "queue_full");
    ++Accepted;
    Inbox.emplace_back(std::move(request), handle);
  }
  Wake.notify_all();
  return handle;
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
  std::lock_guard<std::mutex> lock(Mu);
  if (--Accepted == 0)
    Idle.notify_all();
}

void EngineLoop::publishGauges(const rt::Generator &gen) {
  int64_t running = Eng.liveSequences();
  int64_t inbox;
  {
    std::lock_guard<std::mutex> lock(Mu);
    inbox = int64_t(Inbox.size());
  }
  // Pages and slots before the request counts: whoever sees no request
  // running sees the memory of the step that ended the last one. Idle pages
  // of the prefix cache count as free (a request may have them).
  Stats.engine.pagesUsed = Eng.memoryPlan().numPages - Eng.freePages();
  Stats.engine.slotsUsed = Eng.statePool().empty() ? 0 : running;
  Stats.engine.running = running;
  Stats.engine.waiting = std::max<int64_t>(gen.active() - running, 0) + inbox;
  if (Eng.prefixCacheEnabled()) {
    rt::PrefixCacheStats prefix = gen.prefixCacheStats();
    Stats.engine.prefixCacheEnabled = true;
    Stats.engine.prefixQueryTokens = prefix.lookupTokens;
    Stats.engine.prefixHitTokens = prefix.reusedTokens;
    Stats.engine.prefixHits = prefix.hits;
    Stats.engine.prefixIdlePages = prefix.idlePages;
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
  rt::Generator gen(Eng, [&](const rt::TokenEvent &ev) {
    auto it = Live.find(ev.request);
    if (it == Live.end())
      return;
    it->second->deliver(
        {ev.token, ev.isStop, ev.finish, Clock::now(), ev.logprobs, gen.result(ev.request).cachedTokens});
    if (ev.finish != rt::FinishReason::Running)
      Ended.push_back(ev.request);
  });
  auto endRequest = [&](int id, const std::string &error) {
    auto it = Live.find(id);
    std::shared_ptr<RequestHandle> handle = it->second;
    Live.erase(it);
    gen.release(id);
    finished(*handle, error);
  };

  while (true) {
    std::deque<std::pair<rt::GenerationRequest, std::shared_ptr<RequestHandle>>> inbox;
    std::vector<std::shared_ptr<RequestHandle>> cancels;
    {
      std::unique_lock<std::mutex> lock(Mu);
      Wake.wait(lock, [&] { return !Inbox.empty() || !Cancels.empty() || gen.active() > 0 || Stopping; });
      if (Inbox.empty() && Cancels.empty() && gen.active() == 0 && Stopping)
        break;
      inbox.swap(Inbox);
      cancels.swap(Cancels);
    }
    for (auto &[request, handle] : inbox) {
      if (!fatal.empty()) {
        Stats.engineErrors++;
        finished(*handle, fatal);
        continue;
      }
      try {
        int id = gen.submit(std::move(request));
        handle->Id = id;
        Live.emplace(id, handle);
        if (gen.finished(id))
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
      gen.cancel(handle->Id);
      endRequest(handle->Id, "");
    }
    if (gen.active() > 0) {
      try {
        gen.step();
      } catch (const std::exception &e) {
        // An engine failure ends every request in flight with its message;
        // their sequences are freed and the server keeps serving.
        std::string message = std::string("the engine failed: ") + e.what();
        std::vector<int> ids;
        for (const auto &[id, handle] : Live)
          ids.push_back(id);
        for (int id : ids) {
          Stats.engineErrors++;
          gen.cancel(id);
          endRequest(id, message);
        }
        Ended.clear();
      }
    }
    for (int id : Ended)
      if (Live.count(id))
        endRequest(id, "");
    Ended.clear();
    publishGauges(gen);
  }
  publishGauges(gen);
}

} // namespace qwen::serve
