//===- dtype.cpp - Element types and conversions --------------------------===//

#include "qwen_rt/dtype.h"
#include "qwen_rt/error.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

namespace qwen::rt {

namespace {

struct DTypeInfo {
  DType Type;
  const char *Name;
  const char *SafetensorsName;
  size_t Size;
};

constexpr DTypeInfo DTypeTable[] = {
    {DType::F32, "f32", "F32", 4},    {DType::F16, "f16", "F16", 2},
    {DType::BF16, "bf16", "BF16", 2}, {DType::F64, "f64", "F64", 8},
    {DType::I64, "i64", "I64", 8},    {DType::I32, "i32", "I32", 4},
    {DType::I16, "i16", "I16", 2},    {DType::I8, "i8", "I8", 1},
    {DType::U8, "u8", "U8", 1},       {DType::Bool, "bool", "BOOL", 1},
    {DType::F8E4M3, "f8e4m3", "F8_E4M3", 1},
};

const DTypeInfo &info(DType T) {
  auto Index = static_cast<size_t>(T);
  if (Index >= std::size(DTypeTable))
    throw Error("invalid dtype value " + std::to_string(Index));
  return DTypeTable[Index];
}

inline uint32_t floatBits(float F) {
  uint32_t U;
  std::memcpy(&U, &F, 4);
  return U;
}

inline float bitsFloat(uint32_t U) {
  float F;
  std::memcpy(&F, &U, 4);
  return F;
}

bool isFloating(DType T) {
  return T == DType::F32 || T == DType::F16 || T == DType::BF16 || T == DType::F64;
}

template <typename Load, typename Store>
void convertLoop(const void *In, void *Out, size_t N, size_t InSize, size_t OutSize, Load L,
                 Store S) {
  auto *I = static_cast<const uint8_t *>(In);
  auto *O = static_cast<uint8_t *>(Out);
  for (size_t K = 0; K < N; ++K)
    S(O + K * OutSize, L(I + K * InSize));
}

double loadAsDouble(DType T, const uint8_t *P) {
  switch (T) {
  case DType::F32: {
    float F;
    std::memcpy(&F, P, 4);
    return F;
  }
  case DType::F16: {
    uint16_t H;
    std::memcpy(&H, P, 2);
    return f16ToF32(H);
  }
  case DType::BF16: {
    uint16_t H;
    std::memcpy(&H, P, 2);
    return bf16ToF32(H);
  }
  case DType::F64: {
    double D;
    std::memcpy(&D, P, 8);
    return D;
  }
  default:
    return 0;
  }
}

/// Rounds a double to float with round-to-odd, so that a second rounding to
/// a narrower type (f16, bf16) is the same as rounding the double directly.
float roundToOddFloat(double D) {
  float F = static_cast<float>(D);
  if (std::isnan(D) || std::isinf(D) || static_cast<double>(F) == D)
    return F;
  // Truncate toward zero, then make the last bit sticky.
  if (std::fabs(static_cast<double>(F)) > std::fabs(D))
    F = std::nextafter(F, 0.0f);
  return bitsFloat(floatBits(F) | 1u);
}

} // namespace

const char *dtypeName(DType T) { return info(T).Name; }

size_t dtypeSize(DType T) { return info(T).Size; }

std::optional<DType> parseDTypeName(std::string_view Name) {
  for (const DTypeInfo &I : DTypeTable)
    if (Name == I.Name)
      return I.Type;
  return std::nullopt;
}

std::optional<DType> parseSafetensorsDType(std::string_view Name) {
  for (const DTypeInfo &I : DTypeTable)
    if (Name == I.SafetensorsName)
      return I.Type;
  return std::nullopt;
}

float bf16ToF32(uint16_t H) { return bitsFloat(static_cast<uint32_t>(H) << 16); }

uint16_t f32ToBf16(float F) {
  uint32_t U = floatBits(F);
  if ((U & 0x7fffffffu) > 0x7f800000u) // NaN: keep sign and payload top, force quiet.
    return static_cast<uint16_t>((U >> 16) | 0x0040u);
  uint32_t Lsb = (U >> 16) & 1u;
  U += 0x7fffu + Lsb; // Round to nearest even; overflow carries into inf.
  return static_cast<uint16_t>(U >> 16);
}

float f16ToF32(uint16_t H) {
  uint32_t Sign = static_cast<uint32_t>(H & 0x8000u) << 16;
  uint32_t Exp = (H >> 10) & 0x1fu;
  uint32_t Mant = H & 0x3ffu;
  if (Exp == 0x1f) // Inf or NaN.
    return bitsFloat(Sign | 0x7f800000u | (Mant << 13));
  if (Exp != 0)
    return bitsFloat(Sign | ((Exp + 127 - 15) << 23) | (Mant << 13));
  // Zero or subnormal: Mant * 2^-24 is exact in float.
  float Mag = static_cast<float>(Mant) * 0x1p-24f;
  return Sign ? -Mag : Mag;
}

uint16_t f32ToF16(float F) {
  uint32_t U = floatBits(F);
  uint16_t Sign = static_cast<uint16_t>((U >> 16) & 0x8000u);
  uint32_t X = U & 0x7fffffffu;
  if (X >= 0x7f800000u) { // Inf or NaN.
    if (X == 0x7f800000u)
      return Sign | 0x7c00u;
    return Sign | 0x7e00u | static_cast<uint16_t>((X >> 13) & 0x3ffu);
  }
  if (X >= 0x477ff000u) // >= 65520 rounds to inf.
    return Sign | 0x7c00u;
  if (X >= 0x38800000u) { // Normal half (>= 2^-14).
    uint32_t Odd = (X >> 13) & 1u;
    X += (static_cast<uint32_t>(15 - 127) << 23) + 0xfffu + Odd;
    return Sign | static_cast<uint16_t>(X >> 13);
  }
  // Subnormal half or zero: the value in units of 2^-24, rounded to nearest
  // even. Scaling by 2^24 is exact; the result is at most 1024 (= the
  // smallest normal, whose bit pattern is 0x400).
  float Scaled = bitsFloat(X) * 0x1p24f;
  float Rounded = std::nearbyint(Scaled);
  return Sign | static_cast<uint16_t>(Rounded);
}

void convertFloats(DType Src, const void *In, DType Dst, void *Out, size_t N) {
  if (!isFloating(Src) || !isFloating(Dst))
    throw Error(std::string("convertFloats: cannot convert ") + dtypeName(Src) + " to " +
                dtypeName(Dst) + " (only f32, f16, bf16 and f64 are supported)");
  if (N == 0)
    return;
  if (Src == Dst) {
    std::memmove(Out, In, N * dtypeSize(Src));
    return;
  }
  size_t InSize = dtypeSize(Src), OutSize = dtypeSize(Dst);
  // Common fast paths.
  if (Src == DType::BF16 && Dst == DType::F32)
    return convertLoop(
        In, Out, N, 2, 4,
        [](const uint8_t *P) {
          uint16_t H;
          std::memcpy(&H, P, 2);
          return bf16ToF32(H);
        },
        [](uint8_t *P, float V) { std::memcpy(P, &V, 4); });
  if (Src == DType::F16 && Dst == DType::F32)
    return convertLoop(
        In, Out, N, 2, 4,
        [](const uint8_t *P) {
          uint16_t H;
          std::memcpy(&H, P, 2);
          return f16ToF32(H);
        },
        [](uint8_t *P, float V) { std::memcpy(P, &V, 4); });
  if (Src == DType::F32 && Dst == DType::BF16)
    return convertLoop(
        In, Out, N, 4, 2,
        [](const uint8_t *P) {
          float V;
          std::memcpy(&V, P, 4);
          return V;
        },
        [](uint8_t *P, float V) {
          uint16_t H = f32ToBf16(V);
          std::memcpy(P, &H, 2);
        });
  if (Src == DType::F32 && Dst == DType::F16)
    return convertLoop(
        In, Out, N, 4, 2,
        [](const uint8_t *P) {
          float V;
          std::memcpy(&V, P, 4);
          return V;
        },
        [](uint8_t *P, float V) {
          uint16_t H = f32ToF16(V);
          std::memcpy(P, &H, 2);
        });
  // General path through double. Every f32/f16/bf16 value is exact in double;
  // f64 -> f16/bf16 goes through f32 rounded to odd (no double-rounding error).
  return convertLoop(
      In, Out, N, InSize, OutSize, [Src](const uint8_t *P) { return loadAsDouble(Src, P); },
      [Dst](uint8_t *P, double D) {
        switch (Dst) {
        case DType::F32: {
          float V = static_cast<float>(D);
          std::memcpy(P, &V, 4);
          break;
        }
        case DType::F64:
          std::memcpy(P, &D, 8);
          break;
        case DType::F16: {
          uint16_t H = f32ToF16(roundToOddFloat(D));
          std::memcpy(P, &H, 2);
          break;
        }
        case DType::BF16: {
          uint16_t H = f32ToBf16(roundToOddFloat(D));
          std::memcpy(P, &H, 2);
          break;
        }
        default:
          break;
        }
      });
}

float f8e4m3ToF32(uint8_t V) {
  const bool Negative = V & 0x80;
  const uint32_t Exponent = (V >> 3) & 0xf, Mantissa = V & 0x7;
  if (Exponent == 0xf && Mantissa == 0x7) // e4m3fn: NaN, no infinities
    return std::numeric_limits<float>::quiet_NaN();
  if (Exponent == 0) { // subnormal: mantissa * 2^-9
    float Magnitude = float(Mantissa) * 0x1p-9f;
    return Negative ? -Magnitude : Magnitude;
  }
  return bitsFloat((uint32_t(Negative) << 31) | ((Exponent + 127 - 7) << 23) | (Mantissa << 20));
}

} // namespace qwen::rt
