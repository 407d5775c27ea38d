//===- dtype_test.cpp - Tests of dtype names and conversions --------------===//

#include "qwen_rt/dtype.h"
#include "qwen_rt/error.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

using namespace qwen::rt;

namespace {

uint32_t bitsOf(float F) {
  uint32_t U;
  std::memcpy(&U, &F, 4);
  return U;
}

float fromBits(uint32_t U) {
  float F;
  std::memcpy(&F, &U, 4);
  return F;
}

const DType AllTypes[] = {DType::F32, DType::F16, DType::BF16, DType::F64, DType::I64,
                          DType::I32, DType::I16, DType::I8,   DType::U8,  DType::Bool};

TEST(DTypeTest, NamesAndSizes) {
  const char *Names[] = {"f32", "f16", "bf16", "f64", "i64", "i32", "i16", "i8", "u8", "bool"};
  const char *StNames[] = {"F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL"};
  const size_t Sizes[] = {4, 2, 2, 8, 8, 4, 2, 1, 1, 1};
  for (size_t I = 0; I < std::size(AllTypes); ++I) {
    EXPECT_STREQ(dtypeName(AllTypes[I]), Names[I]);
    EXPECT_EQ(dtypeSize(AllTypes[I]), Sizes[I]);
    EXPECT_EQ(parseDTypeName(Names[I]), AllTypes[I]);
    EXPECT_EQ(parseSafetensorsDType(StNames[I]), AllTypes[I]);
  }
  EXPECT_FALSE(parseDTypeName("F32"));
  EXPECT_FALSE(parseDTypeName("float32"));
  EXPECT_FALSE(parseDTypeName(""));
  EXPECT_FALSE(parseSafetensorsDType("f32"));
  EXPECT_FALSE(parseSafetensorsDType("F8_E5M2"));
  EXPECT_FALSE(parseSafetensorsDType("U16"));
}

TEST(DTypeTest, Bf16RoundTripIsExhaustivelyExact) {
  for (uint32_t H = 0; H <= 0xffff; ++H) {
    float F = bf16ToF32(static_cast<uint16_t>(H));
    EXPECT_EQ(bitsOf(F), H << 16);
    uint16_t Back = f32ToBf16(F);
    if (std::isnan(F)) {
      EXPECT_TRUE(std::isnan(bf16ToF32(Back))) << H;
      EXPECT_EQ(Back & 0x8000, H & 0x8000) << H;
    } else {
      ASSERT_EQ(Back, H) << "bf16 bits " << H;
    }
  }
}

TEST(DTypeTest, Bf16RoundsToNearestEven) {
  // 1.0 = 0x3f800000. Halfway to the next bf16 (0x3f81) is 0x3f808000.
  EXPECT_EQ(f32ToBf16(fromBits(0x3f808000)), 0x3f80); // tie, even stays
  EXPECT_EQ(f32ToBf16(fromBits(0x3f818000)), 0x3f82); // tie, odd rounds up
  EXPECT_EQ(f32ToBf16(fromBits(0x3f808001)), 0x3f81); // above half
  EXPECT_EQ(f32ToBf16(fromBits(0x3f807fff)), 0x3f80); // below half
  EXPECT_EQ(f32ToBf16(fromBits(0xbf818000)), 0xbf82); // negative tie
  // The largest finite float rounds to inf; inf stays inf.
  EXPECT_EQ(f32ToBf16(std::numeric_limits<float>::max()), 0x7f80);
  EXPECT_EQ(f32ToBf16(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_EQ(f32ToBf16(-std::numeric_limits<float>::infinity()), 0xff80);
  // NaN with a payload only in the low bits must stay NaN.
  uint16_t N = f32ToBf16(fromBits(0x7f800001));
  EXPECT_TRUE(std::isnan(bf16ToF32(N)));
  EXPECT_TRUE(std::isnan(bf16ToF32(f32ToBf16(std::nanf("")))));
  // Float subnormals round like everything else.
  EXPECT_EQ(f32ToBf16(fromBits(0x00008000)), 0x0000);
  EXPECT_EQ(f32ToBf16(fromBits(0x00018000)), 0x0002);
  EXPECT_EQ(f32ToBf16(-0.0f), 0x8000);
}

TEST(DTypeTest, F16RoundTripIsExhaustivelyExact) {
  for (uint32_t H = 0; H <= 0xffff; ++H) {
    float F = f16ToF32(static_cast<uint16_t>(H));
    uint16_t Back = f32ToF16(F);
    bool IsNan = (H & 0x7c00) == 0x7c00 && (H & 0x3ff) != 0;
    if (IsNan) {
      EXPECT_TRUE(std::isnan(F)) << H;
      EXPECT_TRUE(std::isnan(f16ToF32(Back))) << H;
    } else {
      ASSERT_EQ(Back, H) << "f16 bits " << H;
    }
  }
}

TEST(DTypeTest, F16SpecialValues) {
  EXPECT_EQ(f16ToF32(0x3c00), 1.0f);
  EXPECT_EQ(f16ToF32(0xc000), -2.0f);
  EXPECT_EQ(f16ToF32(0x7bff), 65504.0f);
  EXPECT_EQ(f16ToF32(0x0001), std::ldexp(1.0f, -24));    // smallest subnormal
  EXPECT_EQ(f16ToF32(0x03ff), std::ldexp(1023.0f, -24)); // largest subnormal
  EXPECT_EQ(f16ToF32(0x0400), std::ldexp(1.0f, -14));    // smallest normal
  EXPECT_EQ(f16ToF32(0x8001), -std::ldexp(1.0f, -24));
  EXPECT_TRUE(std::isinf(f16ToF32(0x7c00)) && f16ToF32(0x7c00) > 0);
  EXPECT_TRUE(std::isinf(f16ToF32(0xfc00)) && f16ToF32(0xfc00) < 0);
  EXPECT_TRUE(std::isnan(f16ToF32(0x7e00)));
  EXPECT_TRUE(std::isnan(f16ToF32(0x7c01)));
  EXPECT_EQ(bitsOf(f16ToF32(0x8000)), 0x80000000u);

  EXPECT_EQ(f32ToF16(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_EQ(f32ToF16(-std::numeric_limits<float>::infinity()), 0xfc00);
  EXPECT_EQ(f32ToF16(1e10f), 0x7c00); // overflow
  EXPECT_EQ(f32ToF16(-1e10f), 0xfc00);
  EXPECT_EQ(f32ToF16(65504.0f), 0x7bff);
  EXPECT_EQ(f32ToF16(65519.0f), 0x7bff);       // below the midpoint to 65536
  EXPECT_EQ(f32ToF16(65520.0f), 0x7c00);       // midpoint, ties to even (= inf)
  uint16_t N = f32ToF16(fromBits(0x7f800001)); // NaN payload only in low bits
  EXPECT_EQ(N & 0x7c00, 0x7c00);
  EXPECT_NE(N & 0x3ff, 0);
  EXPECT_EQ(f32ToF16(-0.0f), 0x8000);
  EXPECT_EQ(f32ToF16(1e-10f), 0x0000); // underflow to zero
  EXPECT_EQ(f32ToF16(-1e-10f), 0x8000);
}

TEST(DTypeTest, F16RoundingTies) {
  const float Ulp24 = std::ldexp(1.0f, -24); // f16 subnormal step
  // Subnormal ties: 0.5, 1.5, 2.5 units of 2^-24.
  EXPECT_EQ(f32ToF16(0.5f * Ulp24), 0x0000);
  EXPECT_EQ(f32ToF16(1.5f * Ulp24), 0x0002);
  EXPECT_EQ(f32ToF16(2.5f * Ulp24), 0x0002);
  EXPECT_EQ(f32ToF16(0.50001f * Ulp24), 0x0001);
  EXPECT_EQ(f32ToF16(-1.5f * Ulp24), 0x8002);
  // Largest subnormal + half a step rounds (to even) into the smallest normal.
  EXPECT_EQ(f32ToF16(1023.5f * Ulp24), 0x0400);
  EXPECT_EQ(f32ToF16(1022.5f * Ulp24), 0x03fe);
  // Normal ties around 1.0 (step 2^-10).
  const float Step = std::ldexp(1.0f, -10);
  EXPECT_EQ(f32ToF16(1.0f + 0.5f * Step), 0x3c00);
  EXPECT_EQ(f32ToF16(1.0f + 1.5f * Step), 0x3c02);
  EXPECT_EQ(f32ToF16(1.0f + 0.5f * Step + std::ldexp(1.0f, -20)), 0x3c01);
  // The mantissa carry into the exponent: 2 - half step rounds to 2.0.
  EXPECT_EQ(f32ToF16(2.0f - 0.25f * Step), 0x4000);
  // Every f32 between consecutive f16 values goes to the nearer one.
  for (uint32_t H = 0x0000; H < 0x7bff; H += 97) {
    float Lo = f16ToF32(static_cast<uint16_t>(H)), Hi = f16ToF32(static_cast<uint16_t>(H + 1));
    float Mid = Lo + (Hi - Lo) / 2;
    EXPECT_EQ(f32ToF16(std::nextafter(Mid, Lo)), H);
    EXPECT_EQ(f32ToF16(std::nextafter(Mid, Hi)), H + 1);
    EXPECT_EQ(f32ToF16(Mid), (H & 1) ? H + 1 : H);
  }
}

TEST(DTypeTest, ConvertFloats) {
  std::vector<float> Src = {
      0.f, -1.5f, 3.140625f, 65504.f, 1e-7f, -0.0f, std::numeric_limits<float>::infinity()};
  size_t N = Src.size();
  std::vector<uint16_t> Bf(N), Hf(N);
  convertFloats(DType::F32, Src.data(), DType::BF16, Bf.data(), N);
  convertFloats(DType::F32, Src.data(), DType::F16, Hf.data(), N);
  for (size_t I = 0; I < N; ++I) {
    EXPECT_EQ(Bf[I], f32ToBf16(Src[I]));
    EXPECT_EQ(Hf[I], f32ToF16(Src[I]));
  }
  std::vector<float> Back(N);
  convertFloats(DType::BF16, Bf.data(), DType::F32, Back.data(), N);
  for (size_t I = 0; I < N; ++I)
    EXPECT_EQ(Back[I], bf16ToF32(Bf[I]));
  convertFloats(DType::F16, Hf.data(), DType::F32, Back.data(), N);
  for (size_t I = 0; I < N; ++I)
    EXPECT_EQ(Back[I], f16ToF32(Hf[I]));

  // bf16 -> f16 and back through the general path.
  std::vector<uint16_t> Hf2(N);
  convertFloats(DType::BF16, Bf.data(), DType::F16, Hf2.data(), N);
  for (size_t I = 0; I < N; ++I)
    EXPECT_EQ(Hf2[I], f32ToF16(bf16ToF32(Bf[I])));

  // f64 in and out.
  std::vector<double> D(N);
  convertFloats(DType::F32, Src.data(), DType::F64, D.data(), N);
  for (size_t I = 0; I < N; ++I)
    EXPECT_EQ(D[I], static_cast<double>(Src[I]));
  std::vector<float> F(N);
  convertFloats(DType::F64, D.data(), DType::F32, F.data(), N);
  EXPECT_EQ(F, Src);
  // Same dtype: a copy.
  std::vector<uint16_t> Copy(N);
  convertFloats(DType::BF16, Bf.data(), DType::BF16, Copy.data(), N);
  EXPECT_EQ(Copy, Bf);
  // n == 0 touches nothing.
  convertFloats(DType::F32, nullptr, DType::BF16, nullptr, 0);
}

TEST(DTypeTest, ConvertF64ToNarrowRoundsOnce) {
  // 1 + 2^-8 + 2^-30 is just above the bf16 midpoint between 1 and 1 + 2^-7;
  // rounding to f32 first would land exactly on the midpoint and round down.
  double D = 1.0 + std::ldexp(1.0, -8) + std::ldexp(1.0, -30);
  uint16_t B;
  convertFloats(DType::F64, &D, DType::BF16, &B, 1);
  EXPECT_EQ(B, 0x3f81);
  // Same for f16: 1 + 2^-11 + 2^-40 rounds up to 1 + 2^-10.
  double E = 1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40);
  uint16_t H;
  convertFloats(DType::F64, &E, DType::F16, &H, 1);
  EXPECT_EQ(H, 0x3c01);
  double Big = 1e300;
  convertFloats(DType::F64, &Big, DType::F16, &H, 1);
  EXPECT_EQ(H, 0x7c00);
  double Nan = std::nan("");
  convertFloats(DType::F64, &Nan, DType::BF16, &B, 1);
  EXPECT_TRUE(std::isnan(bf16ToF32(B)));
}

TEST(DTypeTest, ConvertFloatsRejectsIntegers) {
  int32_t I = 1;
  float F;
  EXPECT_THROW(convertFloats(DType::I32, &I, DType::F32, &F, 1), Error);
  EXPECT_THROW(convertFloats(DType::F32, &F, DType::I64, &I, 1), Error);
  try {
    convertFloats(DType::Bool, &I, DType::F32, &F, 1);
    FAIL();
  } catch (const Error &E) {
    EXPECT_NE(std::string(E.what()).find("bool"), std::string::npos) << E.what();
  }
}

} // namespace

// float8_e4m3fn (FP8 checkpoints): normals, subnormals, signed zero, the
// largest value 448 and NaN (no infinities); every byte decodes exactly.
TEST(DTypeTest, Float8E4M3ToFloat) {
  EXPECT_EQ(f8e4m3ToF32(0x00), 0.0f);
  EXPECT_TRUE(std::signbit(f8e4m3ToF32(0x80)));
  EXPECT_EQ(f8e4m3ToF32(0x38), 1.0f);          // exponent 7 = bias
  EXPECT_EQ(f8e4m3ToF32(0x3c), 1.5f);
  EXPECT_EQ(f8e4m3ToF32(0xc0), -2.0f);
  EXPECT_EQ(f8e4m3ToF32(0x7e), 448.0f);        // largest finite
  EXPECT_EQ(f8e4m3ToF32(0x01), 0x1p-9f);       // smallest subnormal
  EXPECT_EQ(f8e4m3ToF32(0x87), -7 * 0x1p-9f);  // largest negative subnormal
  EXPECT_EQ(f8e4m3ToF32(0x08), 0x1p-6f);       // smallest normal
  EXPECT_TRUE(std::isnan(f8e4m3ToF32(0x7f)));
  EXPECT_TRUE(std::isnan(f8e4m3ToF32(0xff)));
  EXPECT_EQ(dtypeSize(DType::F8E4M3), 1u);
  EXPECT_EQ(parseSafetensorsDType("F8_E4M3"), DType::F8E4M3);
  EXPECT_STREQ(dtypeName(DType::F8E4M3), "f8e4m3");
}
