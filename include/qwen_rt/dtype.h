//===- dtype.h - Element types and conversions ------------------*- C++ -*-===//
//
// The element types the runtime handles, their names in manifests and in
// safetensors headers, and conversions between the floating types.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_RT_DTYPE_H
#define QWEN_RT_DTYPE_H

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace qwen::rt {

enum class DType : uint8_t { F32, F16, BF16, F64, I64, I32, I16, I8, U8, Bool, F8E4M3 };

/// Manifest name: "f32","f16","bf16","f64","i64","i32","i16","i8","u8","bool","f8e4m3".
const char *dtypeName(DType);
/// Size of one element in bytes.
size_t dtypeSize(DType);
/// Parses a manifest name (see dtypeName).
std::optional<DType> parseDTypeName(std::string_view name);
/// Parses a safetensors dtype: "F32","F16","BF16","F64","I64","I32","I16","I8","U8","BOOL",
/// "F8_E4M3" (float8_e4m3fn: FP8 checkpoints, bound through their block scales).
std::optional<DType> parseSafetensorsDType(std::string_view name);

/// float8_e4m3fn (1 sign, 4 exponent bits with bias 7, 3 mantissa bits, no
/// infinities, 0x7f / 0xff NaN) to float, exactly.
float f8e4m3ToF32(uint8_t);

/// bfloat16 <-> float. Rounds to nearest even; NaN stays NaN.
float bf16ToF32(uint16_t);
uint16_t f32ToBf16(float);
/// IEEE half <-> float. Rounds to nearest even; handles subnormals, inf, NaN.
float f16ToF32(uint16_t);
uint16_t f32ToF16(float);

/// Converts n elements between floating dtypes (F32/F16/BF16/F64). Throws Error for other dtypes.
void convertFloats(DType src, const void *in, DType dst, void *out, size_t n);

} // namespace qwen::rt

#endif // QWEN_RT_DTYPE_H
