//===- JsonInteger.h - Integers from config JSON without overflow --------===//
//
// llvm::json::Value::getAsInteger accepts a double up to
// double(INT64_MAX), which rounds up to 2^63, and then converts it to
// int64_t: undefined behaviour for exactly 2^63 (UBSan's float-cast-overflow,
// found by fuzz/config_json). Every config reader asks this instead.
//
//===----------------------------------------------------------------------===//

#ifndef QWEN_MODELS_QWEN3_JSONINTEGER_H
#define QWEN_MODELS_QWEN3_JSONINTEGER_H

#include "llvm/Support/JSON.h"

#include <cstdint>
#include <optional>

namespace qwen::models {

/// The value as an int64_t when it is a whole number that fits one.
inline std::optional<int64_t> getJsonInteger(const llvm::json::Value &value) {
  std::optional<double> number = value.getAsNumber();
  if (!number)
    return std::nullopt;
  // At 2^63 and above only integer literals are asked (an int64 near its
  // maximum reads as 2^63 in a double); doubles there are never integers
  // that fit.
  if (*number >= 0x1p63) {
    std::optional<uint64_t> whole = value.getAsUINT64();
    if (!whole || *whole > uint64_t(INT64_MAX))
      return std::nullopt;
    return int64_t(*whole);
  }
  return value.getAsInteger();
}

} // namespace qwen::models

#endif // QWEN_MODELS_QWEN3_JSONINTEGER_H
