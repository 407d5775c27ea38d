//===- text_output.h - Generated tokens to the text a client sees -*- C++ -*-===//
//
// Turns a request's sampled tokens into the text of its response, piece by
// piece for streaming: complete UTF-8 only (a character may span tokens),
// stop strings cut off and never returned (a stop string may span tokens, so
// text that could begin one is held back until it cannot).
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_SERVER_TEXT_OUTPUT_H
#define QWEN_SERVER_TEXT_OUTPUT_H

#include "qwen_rt/tokenizer.h"
#include "qwen_server/stop_matcher.h"

#include <string>
#include <vector>

namespace qwen::serve {

class TextOutput {
public:
  /// skipSpecial: special tokens (e.g. <|im_end|>) contribute no text.
  TextOutput(const rt::Tokenizer &tokenizer, std::vector<std::string> stops, bool skipSpecial);
  /// A generated token that is not a stop token; returns the text that became
  /// safe to send. After stopped(), tokens are ignored.
  std::string push(int32_t token);
  /// The generation ended without a stop string: the rest of the text.
  std::string finish();
  /// A stop string matched; the request should end.
  bool stopped() const { return Stops.matched(); }

private:
  rt::StreamingDecoder Decoder;
  StopMatcher Stops;
};

} // namespace qwen::serve

#endif // QWEN_SERVER_TEXT_OUTPUT_H
