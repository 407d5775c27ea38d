//===- engine_loop.h - The engine thread and its request queue --*- C++ -*-===//
//
// One thread owns the Engine and the Generator: it takes submitted requests
// from a bounded inbox, runs continuous-batching steps, and hands every
// sampled token to the request's handle. For a hidden-states artifact there
// is no Generator: the thread runs embedding jobs instead, with the same
// bounded inbox. HTTP threads only submit, wait on
// their handle and cancel; they never touch engine memory. A full queue
// refuses a request at once (429) instead of accepting work it cannot start.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_SERVER_ENGINE_LOOP_H
#define QWEN_SERVER_ENGINE_LOOP_H

#include "qwen_rt/engine.h"
#include "qwen_rt/generate.h"
#include "qwen_server/metrics.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace qwen::serve {

using Clock = std::chrono::steady_clock;

/// One sampled token, stamped by the engine thread.
struct TokenMessage {
  int32_t token = 0;
  bool isStop = false; ///< a stop token (not part of the text)
  rt::FinishReason finish = rt::FinishReason::Running;
  Clock::time_point at;
  std::optional<rt::TokenLogprobs> logprobs; ///< when the request asked for them
  int64_t cachedPromptTokens = 0; ///< prompt tokens the prefix cache supplied
};

class EngineLoop;

/// The HTTP thread's end of one request.
class RequestHandle : public std::enable_shared_from_this<RequestHandle> {
public:
  /// Waits up to `timeout` for tokens and moves those that arrived into
  /// `out`. Returns true once the request has ended and `out` holds its last
  /// token (or the request failed: see error()).
  bool wait(std::vector<TokenMessage> &out, std::chrono::milliseconds timeout);
  /// Ends the request (client gone, stop string seen): the engine thread
  /// frees its sequence before its next step.
  void cancel();
  /// After the end: why the engine could not run the request ("" if it ran).
  std::string error() const;

private:
  friend class EngineLoop;
  void deliver(const TokenMessage &message);
  void end(const std::string &error = "");

  EngineLoop *Loop = nullptr;
  mutable std::mutex Mu;
  std::condition_variable Cv;
  std::vector<TokenMessage> Pending;
  bool Ended = false;
  std::string Error;
  std::atomic<bool> CancelAsked{false};
  int Id = -1; ///< the Generator's id; engine thread only
};

/// The HTTP thread's end of one embedding job.
class EmbeddingHandle {
public:
  /// Blocks until the engine thread has run the job. Returns one embedding
  /// per sequence, or throws std::runtime_error with the engine's message.
  std::vector<std::vector<float>> wait();

private:
  friend class EngineLoop;
  void end(std::vector<std::vector<float>> embeddings, const std::string &error);

  std::mutex Mu;
  std::condition_variable Cv;
  bool Ended = false;
  std::vector<std::vector<float>> Embeddings;
  std::string Error;
};

/// Token sequences to embed, and who waits for their embeddings.
using EmbeddingJob = std::pair<std::vector<std::vector<int32_t>>, std::shared_ptr<EmbeddingHandle>>;

class EngineLoop {
public:
  /// Starts the engine thread. `maxQueue`: requests that may wait for a
  /// sequence beyond the engine's maxSequences running ones.
  EngineLoop(rt::Engine &engine, int64_t maxQueue, Metrics &metrics);
  /// Drains (every accepted request completes) and joins the thread.
  ~EngineLoop();

  /// Queues a validated request. Throws ApiError 429 when the queue is full
  /// and 503 while draining.
  std::shared_ptr<RequestHandle> submit(rt::GenerationRequest request);
  /// Queues validated token sequences for embedding (rt::embedTokens on the
  /// engine thread). Counts as one request against the same bound: 429 when
  /// the queue is full, 503 while draining.
  std::shared_ptr<EmbeddingHandle> submitEmbedding(std::vector<std::vector<int32_t>> sequences);
  /// Refuses new requests from now on and returns when every accepted one
  /// has ended.
  void drain();
  /// Accepted requests that have not ended.
  int64_t inFlight() const;
  /// drain() was called: new requests are refused.
  bool draining() const;

private:
  friend class RequestHandle;
  void requestCancel(std::shared_ptr<RequestHandle> handle);
  void run();
  void finished(RequestHandle &handle, const std::string &error = "");
  void admit();   ///< counts one accepted request or throws 429 / 503; Mu held
  void release(); ///< one accepted request has ended
  void runEmbeddings(std::deque<EmbeddingJob> &jobs, const std::string &fatal);
  void publishGauges(const rt::Generator *gen);

  rt::Engine &Eng;
  const int64_t Capacity; ///< running + waiting requests accepted at most
  Metrics &Stats;

  mutable std::mutex Mu;
  std::condition_variable Wake, Idle;
  std::deque<std::pair<rt::GenerationRequest, std::shared_ptr<RequestHandle>>> Inbox;
  std::deque<EmbeddingJob> EmbedInbox;
  std::vector<std::shared_ptr<RequestHandle>> Cancels;
  int64_t Accepted = 0;
  bool Draining = false, Stopping = false;

  /// Engine thread only: the Generator's live requests.
  std::unordered_map<int, std::shared_ptr<RequestHandle>> Live;
  std::vector<int> Ended;
  std::thread Thread;
};

} // namespace qwen::serve

#endif // QWEN_SERVER_ENGINE_LOOP_H
