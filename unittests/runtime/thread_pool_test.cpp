//===- thread_pool_test.cpp - Persistent thread pool ----------------------===//

#include "qwen_rt/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <vector>

using namespace qwen::rt;

namespace {

TEST(ThreadPoolTest, CoversEveryItemOnceInContiguousChunks) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.numThreads(), threads);
    for (int64_t n : {0, 1, 2, 5, 7, 31, 32, 33, 1000, 100003}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      std::atomic<int> calls{0};
      pool.parallelFor(n, [&](int64_t begin, int64_t end) {
        EXPECT_LT(begin, end);
        EXPECT_GE(begin, 0);
        EXPECT_LE(end, n);
        for (int64_t i = begin; i < end; ++i)
          hits[size_t(i)].fetch_add(1);
        calls.fetch_add(1);
      });
      for (int64_t i = 0; i < n; ++i)
        ASSERT_EQ(hits[size_t(i)].load(), 1) << "item " << i << " of " << n << " with " << threads << " threads";
      // About four chunks per thread, each at least one item.
      EXPECT_LE(calls.load(), std::max<int64_t>(1, std::min<int64_t>(n, 4 * threads)));
    }
  }
}

TEST(ThreadPoolTest, ManyBackToBackCalls) {
  ThreadPool pool(4);
  std::atomic<int64_t> total{0};
  for (int i = 0; i < 20000; ++i)
    pool.parallelFor(16 + i % 7, [&](int64_t b, int64_t e) { total.fetch_add(e - b); });
  int64_t want = 0;
  for (int i = 0; i < 20000; ++i)
    want += 16 + i % 7;
  EXPECT_EQ(total.load(), want);
}

TEST(ThreadPoolTest, WakesSleepingWorkers) {
  ThreadPool pool(3, /*spinMicros=*/0);
  for (int i = 0; i < 50; ++i) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    std::atomic<int64_t> total{0};
    pool.parallelFor(100, [&](int64_t b, int64_t e) { total.fetch_add(e - b); });
    ASSERT_EQ(total.load(), 100);
  }
}

TEST(ThreadPoolTest, RethrowsAndStaysUsable) {
  ThreadPool pool(4);
  EXPECT_THROW(pool.parallelFor(64,
                                [&](int64_t b, int64_t) {
                                  if (b == 0)
                                    throw std::runtime_error("chunk failed");
                                }),
               std::runtime_error);
  std::atomic<int64_t> total{0};
  pool.parallelFor(64, [&](int64_t b, int64_t e) { total.fetch_add(e - b); });
  EXPECT_EQ(total.load(), 64);
}

TEST(ThreadPoolTest, NestedCallsRunInline) {
  ThreadPool pool(4);
  std::atomic<int64_t> total{0};
  pool.parallelFor(8, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      pool.parallelFor(10, [&](int64_t b2, int64_t e2) { total.fetch_add(e2 - b2); });
  });
  EXPECT_EQ(total.load(), 80);
}

// Not a pass/fail timing test: prints the cost of one parallelFor with empty
// chunks, the floor under every kernel launch.
TEST(ThreadPoolTest, ReportsPerCallOverhead) {
  for (int threads : {1, 2, int(std::max(1u, std::thread::hardware_concurrency()))}) {
    ThreadPool pool(threads);
    std::atomic<int64_t> sink{0};
    auto body = [&](int64_t b, int64_t e) { sink.fetch_add(e - b, std::memory_order_relaxed); };
    for (int i = 0; i < 1000; ++i)
      pool.parallelFor(64, body);
    const int iters = 20000;
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < iters; ++i)
      pool.parallelFor(64, body);
    double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / iters;
    std::printf("[ overhead ] parallelFor(64) with %d thread%s: %.2f us per call\n", threads, threads == 1 ? "" : "s",
                us);
    EXPECT_EQ(sink.load(), int64_t(iters + 1000) * 64);
  }
  // Workers asleep (no spinning): each call pays for waking them.
  ThreadPool pool(0, /*spinMicros=*/0);
  std::atomic<int64_t> sink{0};
  const int iters = 2000;
  double total = 0;
  for (int i = 0; i < iters; ++i) {
    std::this_thread::sleep_for(std::chrono::microseconds(50));
    auto t0 = std::chrono::steady_clock::now();
    pool.parallelFor(64, [&](int64_t b, int64_t e) { sink.fetch_add(e - b, std::memory_order_relaxed); });
    total += std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
  }
  std::printf("[ overhead ] parallelFor(64) with %d threads, workers asleep: %.2f us per call\n", pool.numThreads(),
              total / iters);
}

} // namespace
