//===- thread_pool.cpp - A small persistent thread pool -------------------===//
//
// One job at a time. The job is published by storing a new generation in
// `Work`, which also holds the next unclaimed chunk and the chunk count, so a
// worker claims a chunk with one compare-and-swap that fails once the job has
// moved on: a late worker can never touch a later job's chunks by mistake.
//
//===----------------------------------------------------------------------===//

#include "qwen_rt/thread_pool.h"

#include <algorithm>
#include <chrono>

namespace qwen::rt {

thread_local bool ThreadPool::InsideChunk = false;

static inline void cpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

static constexpr uint64_t kMaxChunks = 0xffff;

ThreadPool::ThreadPool(int numThreads, int spinMicros) : SpinMicros(spinMicros) {
  if (numThreads <= 0)
    numThreads = int(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 1; i < numThreads; ++i)
    Workers.emplace_back([this] { workerLoop(); });
}

ThreadPool::~ThreadPool() {
  Stop.store(true);
  {
    std::lock_guard<std::mutex> lock(SleepMutex);
  }
  Wake.notify_all();
  for (std::thread &t : Workers)
    t.join();
}

void ThreadPool::run(int64_t n, Task task, void *ctx) {
  std::lock_guard<std::mutex> callerLock(CallerMutex);
  uint64_t chunks = uint64_t(std::min<int64_t>(n, int64_t(numThreads()) * 4));
  chunks = std::min(chunks, kMaxChunks);
  JobTask = task;
  JobCtx = ctx;
  JobN = n;
  FirstError = nullptr;
  Done.store(0, std::memory_order_relaxed);
  uint32_t generation = uint32_t(Work.load(std::memory_order_relaxed) >> 32) + 1;
  Work.store((uint64_t(generation) << 32) | chunks); // seq_cst: pairs with Sleepers below
  if (Sleepers.load() > 0) {
    { std::lock_guard<std::mutex> lock(SleepMutex); }
    Wake.notify_all();
  }
  doChunks(generation);
  for (int spins = 0; Done.load(std::memory_order_acquire) < int64_t(chunks); ++spins) {
    if (spins < 4096)
      cpuRelax();
    else
      std::this_thread::yield();
  }
  if (FirstError) {
    std::exception_ptr e = FirstError;
    FirstError = nullptr;
    std::rethrow_exception(e);
  }
}

void ThreadPool::doChunks(uint32_t generation) {
  uint64_t v = Work.load(std::memory_order_acquire);
  while (true) {
    if (uint32_t(v >> 32) != generation)
      return;
    uint64_t index = (v >> 16) & 0xffff, count = v & 0xffff;
    if (index >= count)
      return;
    if (!Work.compare_exchange_weak(v, v + (uint64_t(1) << 16), std::memory_order_acq_rel,
                                    std::memory_order_acquire))
      continue;
    // The job cannot finish before this chunk does, so its fields are stable.
    int64_t begin = JobN * int64_t(index) / int64_t(count);
    int64_t end = JobN * int64_t(index + 1) / int64_t(count);
    InsideChunk = true;
    try {
      JobTask(JobCtx, begin, end);
    } catch (...) {
      std::lock_guard<std::mutex> lock(ErrorMutex);
      if (!FirstError)
        FirstError = std::current_exception();
    }
    InsideChunk = false;
    Done.fetch_add(1, std::memory_order_acq_rel);
    v = Work.load(std::memory_order_acquire);
  }
}

void ThreadPool::workerLoop() {
  using Clock = std::chrono::steady_clock;
  uint32_t seen = 0;
  while (true) {
    auto current = [&] { return uint32_t(Work.load() >> 32); };
    // Spin a little: the next kernel of a step usually follows within microseconds.
    Clock::time_point start = Clock::now();
    for (int spins = 1; current() == seen && !Stop.load(std::memory_order_relaxed); ++spins) {
      cpuRelax();
      if (spins % 64 == 0 && Clock::now() - start > std::chrono::microseconds(SpinMicros)) {
        std::unique_lock<std::mutex> lock(SleepMutex);
        Sleepers.fetch_add(1); // seq_cst: pairs with the caller's store of Work
        Wake.wait(lock, [&] { return Stop.load() || current() != seen; });
        Sleepers.fetch_sub(1);
        break;
      }
    }
    if (Stop.load())
      return;
    seen = current();
    doChunks(seen);
  }
}

} // namespace qwen::rt
