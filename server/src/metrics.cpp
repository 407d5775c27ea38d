//===- metrics.cpp - Prometheus metrics of the server ---------------------===//

#include "qwen_server/metrics.h"

#include <algorithm>
#include <cstdio>

namespace qwen::serve {

namespace {

std::string number(double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", x);
  return buf;
}

void scalar(std::string &out, const char *type, const std::string &name, const std::string &help, double value) {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " + number(value) + "\n";
}

std::vector<double> latencyBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80};
}

} // namespace

Histogram::Histogram(std::vector<double> bounds) : Bounds(std::move(bounds)), Counts(Bounds.size() + 1, 0) {}

void Histogram::observe(double value) {
  std::lock_guard<std::mutex> lock(Mu);
  size_t bucket = size_t(std::lower_bound(Bounds.begin(), Bounds.end(), value) - Bounds.begin());
  ++Counts[bucket];
  Sum += value;
  ++Total;
}

uint64_t Histogram::count() const {
  std::lock_guard<std::mutex> lock(Mu);
  return Total;
}

void Histogram::render(std::string &out, const std::string &name, const std::string &help) const {
  std::lock_guard<std::mutex> lock(Mu);
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " histogram\n";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < Bounds.size(); ++i) {
    cumulative += Counts[i];
    out += name + "_bucket{le=\"" + number(Bounds[i]) + "\"} " + std::to_string(cumulative) + "\n";
  }
  out += name + "_bucket{le=\"+Inf\"} " + std::to_string(Total) + "\n";
  out += name + "_sum " + number(Sum) + "\n" + name + "_count " + std::to_string(Total) + "\n";
}

Metrics::Metrics()
    : timeToFirstToken(latencyBuckets()), timePerOutputToken(latencyBuckets()), requestLatency(latencyBuckets()) {}

std::string Metrics::render() const {
  std::string out;
  scalar(out, "gauge", "qwen_num_requests_running", "Requests whose sequence is in the engine.",
         double(engine.running.load()));
  scalar(out, "gauge", "qwen_num_requests_waiting", "Accepted requests waiting for a sequence.",
         double(engine.waiting.load()));
  scalar(out, "gauge", "qwen_kv_pages_used", "KV cache pages in use.", double(engine.pagesUsed.load()));
  scalar(out, "gauge", "qwen_kv_pages_total", "KV cache pages of the engine.", double(engine.pagesTotal.load()));
  scalar(out, "gauge", "qwen_state_slots_used", "Linear-attention state slots in use (hybrid models).",
         double(engine.slotsUsed.load()));
  scalar(out, "gauge", "qwen_state_slots_total", "Linear-attention state slots of the engine (0: none).",
         double(engine.slotsTotal.load()));
  scalar(out, "counter", "qwen_prompt_tokens_total", "Prompt tokens of finished requests.", double(promptTokens.load()));
  scalar(out, "counter", "qwen_generation_tokens_total", "Tokens generated.", double(generationTokens.load()));
  if (engine.prefixCacheEnabled) {
    scalar(out, "counter", "qwen_prefix_cache_queries_total", "Prompt tokens looked up in the prefix cache.",
           double(engine.prefixQueryTokens.load()));
    scalar(out, "counter", "qwen_prefix_cache_hits_total", "Prompt tokens reused from the prefix cache.",
           double(engine.prefixHitTokens.load()));
    scalar(out, "counter", "qwen_prefix_cache_hit_requests_total", "Prompts that reused at least one cached page.",
           double(engine.prefixHits.load()));
    scalar(out, "gauge", "qwen_prefix_cache_idle_pages", "Cached KV pages no request holds (free on demand).",
           double(engine.prefixIdlePages.load()));
  }
  if (engine.imageCacheEnabled) {
    scalar(out, "counter", "qwen_image_cache_pixel_queries_total", "Images looked up before decoding.",
           double(engine.imagePixelLookups.load()));
    scalar(out, "counter", "qwen_image_cache_pixel_hits_total", "Images not decoded again (their pixels cached).",
           double(engine.imagePixelHits.load()));
    scalar(out, "counter", "qwen_image_cache_encoder_queries_total", "Images looked up before the vision encoder.",
           double(engine.imageRowLookups.load()));
    scalar(out, "counter", "qwen_image_cache_encoder_hits_total",
           "Images not encoded again (their vision rows cached).", double(engine.imageRowHits.load()));
  }
  out += "# HELP qwen_request_success_total Finished requests by finish reason.\n"
         "# TYPE qwen_request_success_total counter\n";
  out += "qwen_request_success_total{finish_reason=\"stop\"} " + std::to_string(finishedStop.load()) + "\n";
  out += "qwen_request_success_total{finish_reason=\"length\"} " + std::to_string(finishedLength.load()) + "\n";
  out += "qwen_request_success_total{finish_reason=\"tool_calls\"} " + std::to_string(finishedToolCalls.load()) + "\n";
  scalar(out, "counter", "qwen_request_aborted_total", "Requests ended because their client disconnected.",
         double(finishedAborted.load()));
  scalar(out, "counter", "qwen_request_rejected_overload_total", "Requests refused with 429 (queue full) or 503.",
         double(rejectedOverload.load()));
  scalar(out, "counter", "qwen_request_rejected_invalid_total", "Requests refused as invalid (4xx).",
         double(rejectedInvalid.load()));
  scalar(out, "counter", "qwen_engine_errors_total", "Requests ended by an engine error.", double(engineErrors.load()));
  timeToFirstToken.render(out, "qwen_time_to_first_token_seconds", "From request arrival to the first token.");
  timePerOutputToken.render(out, "qwen_time_per_output_token_seconds", "Between consecutive tokens of a request.");
  requestLatency.render(out, "qwen_e2e_request_latency_seconds", "From request arrival to its last token.");
  return out;
}

} // namespace qwen::serve
