//===- embed.h - Sentence embeddings from hidden-state artifacts ----------===//
//
// Qwen3-Embedding's pooling (its sentence-transformers config): the final
// hidden state of each text's last token, L2-normalised. The text is used as
// given; queries carry their instruction in the text itself
// ("Instruct: TASK\nQuery:QUERY", documents none), and the tokenizer's
// post-processor appends <|endoftext|>, whose hidden state is the embedding.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_RT_EMBED_H
#define QWEN_RT_EMBED_H

#include "qwen_rt/engine.h"

#include <string>
#include <vector>

namespace qwen::rt {

/// One unit-length embedding of hidden_size floats per token sequence:
/// each sequence is prefilled (in chunks of the engine's step size, several
/// sequences per step), its last row's final hidden state taken and
/// L2-normalised as torch.nn.functional.normalize does (norm clamped at
/// 1e-12). The engine's artifact must return hidden states (qwen-compile
/// --hidden-states); sequences must be non-empty. Throws Error; a failed call
/// releases the sequences it created.
std::vector<std::vector<float>> embedTokens(Engine &engine,
                                            const std::vector<std::vector<int32_t>> &sequences);

/// embedTokens() of each text encoded by the artifact's tokenizer with its
/// post-processor (HF add_special_tokens=True).
std::vector<std::vector<float>> embed(Engine &engine, const std::vector<std::string> &texts);

} // namespace qwen::rt

#endif // QWEN_RT_EMBED_H
