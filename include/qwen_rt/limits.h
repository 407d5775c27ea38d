//===- limits.h - Bounds on every size read from untrusted files -*- C++ -*-===//
//
// Checkpoints (config.json, safetensors headers, tokenizer.json,
// generation_config.json) and requests are untrusted; a manifest is checked as
// if it were (docs/DESIGN.md, "Trust boundary"). Every size read from them is
// checked against one of these bounds before it is used, and sizes derived
// from them are computed with the overflow-checked helpers below, so no
// product wraps and no allocation is sized by a number an attacker chose.
//
// Header only and free of MLIR, LLVM and JSON libraries: the runtime and the
// compiler's config reader both include it.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_RT_LIMITS_H
#define QWEN_RT_LIMITS_H

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace qwen::limits {

// The bounds are far above every released Qwen model (Qwen3-235B: 94 layers,
// hidden 4096, 128 experts; vocabularies of ~152k-250k tokens) and far below
// the sizes whose products could overflow 64 bits.

/// Decoder layers (config.json num_hidden_layers, manifest layer counts).
constexpr int64_t kMaxLayers = 1024;
/// Vocabulary size, so also one more than the largest token id.
constexpr int64_t kMaxVocabSize = int64_t(1) << 21;
/// Hidden, intermediate and projection widths.
constexpr int64_t kMaxModelDim = int64_t(1) << 18;
/// Attention, key/value and linear-attention heads.
constexpr int64_t kMaxHeads = int64_t(1) << 12;
/// Per-head dimensions (head_dim, linear key/value head dims).
constexpr int64_t kMaxHeadDim = int64_t(1) << 12;
/// Routed experts.
constexpr int64_t kMaxExperts = int64_t(1) << 14;
/// Context length (max_position_embeddings).
constexpr int64_t kMaxPositions = int64_t(1) << 26;
/// Tokens per KV page.
constexpr int64_t kMaxPageSize = int64_t(1) << 16;
/// Causal-conv window of the linear-attention layers.
constexpr int64_t kMaxConvKernel = 1024;
/// Dimensions of one tensor.
constexpr size_t kMaxTensorRank = 8;
/// Elements of one tensor (weight, buffer or checkpoint tensor): 2^40.
constexpr int64_t kMaxTensorElements = int64_t(1) << 40;
/// Nesting of JSON arrays and objects; our files nest fewer than 10 levels.
constexpr int kMaxJsonDepth = 64;
/// A prompt read from a file or stdin: 256 MiB, far more than any context.
constexpr size_t kMaxPromptBytes = size_t(1) << 28;

/// a * b, or nullopt when it overflows.
template <typename T> std::optional<T> checkedMul(T a, T b) {
  T out;
  if (__builtin_mul_overflow(a, b, &out))
    return std::nullopt;
  return out;
}

/// a + b, or nullopt when it overflows.
template <typename T> std::optional<T> checkedAdd(T a, T b) {
  T out;
  if (__builtin_add_overflow(a, b, &out))
    return std::nullopt;
  return out;
}

/// The product of `dims` (each >= 0), or nullopt when it exceeds `limit`.
template <typename Range>
std::optional<int64_t> checkedProduct(const Range &dims, int64_t limit = kMaxTensorElements) {
  int64_t product = 1;
  for (int64_t d : dims) {
    if (d < 0)
      return std::nullopt;
    std::optional<int64_t> next = checkedMul<int64_t>(product, d);
    if (!next || *next > limit)
      return std::nullopt;
    product = *next;
  }
  return product;
}

/// Byte offset of the first bracket that opens a JSON array or object nested
/// deeper than `maxDepth`, or npos. A cheap pre-scan run before a recursive
/// JSON parser sees the text; it skips strings, so it never misreads a
/// bracket inside one, and it does not validate anything else.
inline size_t findJsonNestingBeyond(std::string_view text, int maxDepth = kMaxJsonDepth) {
  int depth = 0;
  bool inString = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (inString) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        inString = false;
    } else if (c == '"') {
      inString = true;
    } else if (c == '[' || c == '{') {
      if (++depth > maxDepth)
        return i;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return std::string_view::npos;
}

} // namespace qwen::limits

#endif // QWEN_RT_LIMITS_H
