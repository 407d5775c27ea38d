//===- server.h - The OpenAI-compatible HTTP server -------------*- C++ -*-===//
//
// `qwen-run serve`: cpp-httplib's worker threads parse, validate and
// tokenize requests and stream responses; one EngineLoop thread owns the
// Engine. Routes: GET /health, GET /v1/models, POST /v1/chat/completions,
// POST /v1/completions, POST /v1/embeddings (hidden-states artifacts, which
// serve nothing else), GET /metrics, POST /tokenize, POST /detokenize.
// SIGINT / SIGTERM stop accepting requests, let the accepted ones finish,
// and return 0.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_SERVER_SERVER_H
#define QWEN_SERVER_SERVER_H

#include "qwen_rt/engine.h"

#include <cstddef>
#include <cstdint>
#include <string>

namespace qwen::serve {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;                ///< 0: any free port (the log line says which)
  std::string apiKey;             ///< "": no authentication
  std::string servedModelName;    ///< "": the checkpoint (or artifact) folder's name
  int64_t maxQueue = 64;          ///< requests waiting beyond the running ones; more get 429
  size_t maxBodyBytes = 8u << 20; ///< larger request bodies get 413
};

/// Serves `engine` until SIGINT or SIGTERM, then drains. Returns the exit
/// status (0 after a clean drain). Throws Error when it cannot listen.
int runServer(rt::Engine &engine, const ServerOptions &options);

/// Equal strings, in time that depends only on their lengths.
bool constantTimeEquals(const std::string &a, const std::string &b);

} // namespace qwen::serve

#endif // QWEN_SERVER_SERVER_H
