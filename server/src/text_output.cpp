//===- text_output.cpp - Generated tokens to the text a client sees -------===//

#include "qwen_server/text_output.h"

namespace qwen::serve {

TextOutput::TextOutput(const rt::Tokenizer &tokenizer, std::vector<std::string> stops, bool skipSpecial)
    : Decoder(tokenizer, skipSpecial), Stops(std::move(stops)) {}

std::string TextOutput::push(int32_t token) {
  if (Stops.matched())
    return "";
  return Stops.push(Decoder.push(token));
}

std::string TextOutput::finish() {
  if (Stops.matched())
    return "";
  std::string text = Stops.push(Decoder.finish());
  return Stops.matched() ? text : text + Stops.flush();
}

} // namespace qwen::serve
