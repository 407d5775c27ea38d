//===- metrics.h - Prometheus metrics of the server -------------*- C++ -*-===//
//
// Counters and histograms written by the HTTP threads as responses finish,
// gauges published by the engine thread after every step, and render() to
// the Prometheus text exposition format for GET /metrics. Everything is
// atomic or locked per histogram, so /metrics never waits for the engine.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_SERVER_METRICS_H
#define QWEN_SERVER_METRICS_H

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace qwen::serve {

/// A Prometheus histogram with fixed bucket upper bounds (seconds).
class Histogram {
public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double value);
  /// The _bucket, _sum and _count lines, preceded by HELP and TYPE.
  void render(std::string &out, const std::string &name, const std::string &help) const;
  uint64_t count() const;

private:
  mutable std::mutex Mu;
  std::vector<double> Bounds;
  std::vector<uint64_t> Counts; ///< per bucket, not cumulative
  double Sum = 0;
  uint64_t Total = 0;
};

/// What the engine thread publishes after each step.
struct EngineGauges {
  std::atomic<int64_t> running{0}, waiting{0};
  std::atomic<int64_t> pagesUsed{0}, pagesTotal{0};
  std::atomic<int64_t> slotsUsed{0}, slotsTotal{0};
  /// The engine's prefix cache (left out of /metrics when it is off):
  /// prompt tokens looked up and reused, prompts with a hit, idle cached pages
  /// (counted as free: evicted when a request needs them).
  std::atomic<bool> prefixCacheEnabled{false};
  std::atomic<int64_t> prefixQueryTokens{0}, prefixHitTokens{0}, prefixHits{0}, prefixIdlePages{0};
  /// The image cache of a vision model (left out for other models): images
  /// looked up and found, for their pixels and for their vision rows.
  std::atomic<bool> imageCacheEnabled{false};
  std::atomic<int64_t> imagePixelLookups{0}, imagePixelHits{0}, imageRowLookups{0}, imageRowHits{0};
};

class Metrics {
public:
  Metrics();

  EngineGauges engine;
  std::atomic<uint64_t> promptTokens{0}, generationTokens{0};
  std::atomic<uint64_t> finishedStop{0}, finishedLength{0}, finishedToolCalls{0}, finishedAborted{0};
  std::atomic<uint64_t> rejectedOverload{0}, rejectedInvalid{0}, engineErrors{0};
  Histogram timeToFirstToken, timePerOutputToken, requestLatency;

  /// The Prometheus text format (version 0.0.4).
  std::string render() const;
};

} // namespace qwen::serve

#endif // QWEN_SERVER_METRICS_H
