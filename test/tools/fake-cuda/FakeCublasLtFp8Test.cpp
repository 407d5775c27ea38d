//===- FakeCublasLtFp8Test.cpp - The fake's FP8 block-scaled cuBLASLt GEMM ===//
//
// The runtime's FP8 prefill GEMM is cuBLASLt's block-scaled e4m3 x e4m3
// matmul (sm_90, cuBLASLt 12.9+): weights with one f32 scale per 128 x 128
// block (BLK128x128_32F), activations with one per row and 128-wide K block
// (VEC128_32F). The fake must compute exactly that, through the runtime's own
// loader (CudaDriver / CublasLt with $QWEN_CUDA_DRIVER / $QWEN_CUBLASLT), and
// refuse what cuBLASLt refuses: other transposes, a block mode without its
// scale tensor, misaligned scales or leading dimensions, block scaling on
// both operands at 128 x 128.
//
//===----------------------------------------------------------------------===//
#include "qwen_rt/cuda_driver.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

using namespace qwen::rt;
using namespace qwen::rt::cuda;

namespace {

// cublas_api.h's statuses the fake returns (the runtime only names SUCCESS).
constexpr cublasStatus_t CUBLAS_STATUS_INVALID_VALUE = 7;
constexpr cublasStatus_t CUBLAS_STATUS_NOT_SUPPORTED = 15;

/// e4m3fn by its definition (bias 7, subnormals m/8 * 2^-6, no infinities).
double e4m3(uint8_t v) {
  int e = (v >> 3) & 15, m = v & 7;
  double magnitude = e == 0 ? std::ldexp(m / 8.0, -6) : std::ldexp(1 + m / 8.0, e - 7);
  return (v & 0x80) ? -magnitude : magnitude;
}

/// Random finite e4m3 bytes (not the NaN encodings S.1111.111).
uint8_t randomE4m3(std::mt19937 &rng) {
  for (;;) {
    uint8_t v = uint8_t(rng());
    if ((v & 0x7f) != 0x7f)
      return v;
  }
}

struct FakeCublasLtFp8 : ::testing::Test {
  const CudaDriver *driver = nullptr;
  const CublasLt *blas = nullptr;
  cublasLtHandle_t handle = nullptr;
  CUstream stream = nullptr;

  void SetUp() override {
    setenv("QWEN_CUDA_DRIVER", QWEN_FAKE_CUDA_LIBRARY, 1);
    setenv("QWEN_CUBLASLT", QWEN_FAKE_CUDA_LIBRARY, 1);
    driver = &CudaDriver::get();
    blas = &CublasLt::get();
    CUcontext context = nullptr;
    driver->check(driver->api().cuDevicePrimaryCtxRetain(&context, 0), "retain");
    driver->check(driver->api().cuCtxSetCurrent(context), "set current");
    driver->check(driver->api().cuStreamCreate(&stream, 0), "stream");
    blas->check(blas->api().cublasLtCreate(&handle), "create");
  }
  void TearDown() override {
    blas->api().cublasLtDestroy(handle);
    driver->api().cuStreamDestroy(stream);
  }

  template <typename T> T *alloc(size_t count, size_t extraBytes = 0) {
    CUdeviceptr p = 0;
    driver->check(driver->api().cuMemAlloc(&p, count * sizeof(T) + extraBytes), "alloc");
    return reinterpret_cast<T *>(p); // the fake's device memory is host memory
  }
};

/// One GEMM D[m, n] = X[m, k] W[n, k]^T the way the runtime calls it:
/// cuBLASLt A = W (k x n, TRANSA = T), B = X (k x m, TRANSB = N).
struct Fp8Gemm {
  int64_t m = 6, n = 256, k = 384;
  int32_t transA = CUBLAS_OP_T, transB = CUBLAS_OP_N;
  int32_t aMode = CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F;
  int32_t bMode = CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F;
  const void *aScale = nullptr, *bScale = nullptr;
  int64_t lda = 0, ldb = 0;
  int dType = CUDA_R_32F;
};

/// Runs \p g; returns the heuristic's status, or the matmul's when the
/// heuristic succeeded.
cublasStatus_t run(FakeCublasLtFp8 &f, const Fp8Gemm &g, const void *w, const void *x, void *d) {
  const CublasLtApi &api = f.blas->api();
  cublasLtMatmulDesc_t desc = nullptr;
  f.blas->check(api.cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "desc");
  auto set = [&](int attribute, const void *value, size_t bytes) {
    f.blas->check(api.cublasLtMatmulDescSetAttribute(desc, attribute, value, bytes), "set");
  };
  set(CUBLASLT_MATMUL_DESC_TRANSA, &g.transA, 4);
  set(CUBLASLT_MATMUL_DESC_TRANSB, &g.transB, 4);
  set(CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &g.aMode, 4);
  set(CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &g.bMode, 4);
  if (g.aScale)
    set(CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &g.aScale, sizeof(void *));
  if (g.bScale)
    set(CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &g.bScale, sizeof(void *));
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, dl = nullptr;
  int64_t lda = g.lda ? g.lda : g.k, ldb = g.ldb ? g.ldb : g.k;
  f.blas->check(api.cublasLtMatrixLayoutCreate(&a, CUDA_R_8F_E4M3, g.transA == CUBLAS_OP_T ? g.k : g.n,
                                               g.transA == CUBLAS_OP_T ? g.n : g.k, lda),
                "layout a");
  f.blas->check(api.cublasLtMatrixLayoutCreate(&b, CUDA_R_8F_E4M3, g.k, g.m, ldb), "layout b");
  f.blas->check(api.cublasLtMatrixLayoutCreate(&dl, g.dType, g.n, g.m, g.n), "layout d");
  cublasLtMatmulPreference_t preference = nullptr;
  f.blas->check(api.cublasLtMatmulPreferenceCreate(&preference), "preference");
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  cublasStatus_t status =
      api.cublasLtMatmulAlgoGetHeuristic(f.handle, desc, a, b, dl, dl, preference, 1, &result, &found);
  if (status == CUBLAS_STATUS_SUCCESS) {
    const float alpha = 1, beta = 0;
    status = api.cublasLtMatmul(f.handle, desc, &alpha, w, a, x, b, &beta, d, dl, d, dl, &result.algo, nullptr, 0,
                                f.stream);
    f.driver->check(f.driver->api().cuStreamSynchronize(f.stream), "sync");
  }
  api.cublasLtMatmulPreferenceDestroy(preference);
  for (cublasLtMatrixLayout_t l : {a, b, dl})
    api.cublasLtMatrixLayoutDestroy(l);
  api.cublasLtMatmulDescDestroy(desc);
  return status;
}

struct Operands {
  uint8_t *w = nullptr, *x = nullptr;
  float *ws = nullptr, *xs = nullptr, *d = nullptr;
  int64_t wsLd = 0;
};

/// Random operands for \p g, scales laid out as cuBLASLt reads them: the
/// weight's [ceil(n/128)][round_up(ceil(k/128), 4)] (a checkpoint's
/// weight_scale_inv rows, padded), the activations' [ceil(k/128)][m].
Operands fill(FakeCublasLtFp8 &f, const Fp8Gemm &g, std::mt19937 &rng) {
  Operands o;
  int64_t kBlocks = (g.k + 127) / 128;
  o.wsLd = (kBlocks + 3) / 4 * 4;
  o.w = f.alloc<uint8_t>(size_t(g.n * g.k));
  o.x = f.alloc<uint8_t>(size_t(g.m * g.k));
  o.ws = f.alloc<float>(size_t((g.n + 127) / 128 * o.wsLd));
  o.xs = f.alloc<float>(size_t(kBlocks * g.m));
  o.d = f.alloc<float>(size_t(g.m * g.n));
  for (int64_t i = 0; i < g.n * g.k; ++i)
    o.w[i] = randomE4m3(rng);
  for (int64_t i = 0; i < g.m * g.k; ++i)
    o.x[i] = randomE4m3(rng);
  std::uniform_real_distribution<float> scale(1e-3f, 2e-2f);
  for (int64_t i = 0; i < (g.n + 127) / 128 * o.wsLd; ++i)
    o.ws[i] = scale(rng);
  for (int64_t i = 0; i < kBlocks * g.m; ++i)
    o.xs[i] = scale(rng);
  return o;
}

TEST_F(FakeCublasLtFp8, BlockScaledFp8GemmMatchesItsDefinition) {
  std::mt19937 rng(7);
  for (int64_t m : {1, 6, 37}) {
    Fp8Gemm g;
    g.m = m;
    g.n = 320; // a partial 128-row weight block
    Operands o = fill(*this, g, rng);
    g.aScale = o.ws;
    g.bScale = o.xs;
    ASSERT_EQ(run(*this, g, o.w, o.x, o.d), CUBLAS_STATUS_SUCCESS);
    double worst = 0;
    for (int64_t t = 0; t < g.m; ++t)
      for (int64_t j = 0; j < g.n; ++j) {
        double sum = 0, magnitude = 0;
        for (int64_t p = 0; p < g.k; ++p) {
          double term = e4m3(o.x[t * g.k + p]) * o.xs[(p / 128) * g.m + t] * e4m3(o.w[j * g.k + p]) *
                        o.ws[(j / 128) * o.wsLd + p / 128];
          sum += term;
          magnitude += std::fabs(term);
        }
        worst = std::max(worst, std::fabs(o.d[t * g.n + j] - sum) / std::max(magnitude, 1e-30));
      }
    // f32 accumulation of k = 384 terms: relative to the sum of magnitudes.
    EXPECT_LT(worst, 1e-6) << "m " << m;
  }
}

TEST_F(FakeCublasLtFp8, Bf16OutputRoundsTheF32Result) {
  std::mt19937 rng(11);
  Fp8Gemm g;
  Operands o = fill(*this, g, rng);
  g.aScale = o.ws;
  g.bScale = o.xs;
  ASSERT_EQ(run(*this, g, o.w, o.x, o.d), CUBLAS_STATUS_SUCCESS);
  std::vector<float> f32(o.d, o.d + g.m * g.n);
  g.dType = CUDA_R_16BF;
  ASSERT_EQ(run(*this, g, o.w, o.x, o.d), CUBLAS_STATUS_SUCCESS);
  const uint16_t *bf16 = reinterpret_cast<const uint16_t *>(o.d);
  for (int64_t i = 0; i < g.m * g.n; ++i) {
    uint32_t bits = uint32_t(bf16[i]) << 16;
    float value;
    std::memcpy(&value, &bits, 4);
    EXPECT_LE(std::fabs(value - f32[size_t(i)]), std::fabs(f32[size_t(i)]) * (1.0f / 256)) << i;
  }
}

TEST_F(FakeCublasLtFp8, RefusesWhatCublasLtRefuses) {
  std::mt19937 rng(3);
  Fp8Gemm base;
  Operands o = fill(*this, base, rng);
  base.aScale = o.ws;
  base.bScale = o.xs;
  Fp8Gemm g = base;
  g.transA = CUBLAS_OP_N; // FP8 is TN only
  EXPECT_EQ(run(*this, g, o.w, o.x, o.d), CUBLAS_STATUS_NOT_SUPPORTED);
  g = base;
  g.transB = CUBLAS_OP_T;
  EXPECT_EQ(run(*this, g, o.w, o.x, o.d), CUBLAS_STATUS_NOT_SUPPORTED);
  g = base;
  g.aScale = nullptr; // a block mode without its scale tensor
  EXPECT_EQ(run(*this, g, o.w, o.x, o.d), CUBLAS_STATUS_INVALID_VALUE);
  g = base;
  g.bScale = reinterpret_cast<const char *>(o.xs) + 4; // not 16-byte aligned
  EXPECT_EQ(run(*this, g, o.w, o.x, o.d), CUBLAS_STATUS_INVALID_VALUE);
  g = base;
  g.bMode = CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F; // 128x128 on both
  EXPECT_EQ(run(*this, g, o.w, o.x, o.d), CUBLAS_STATUS_NOT_SUPPORTED);
  g = base;
  g.bMode = CUBLASLT_MATMUL_MATRIX_SCALE_SCALAR_32F; // block scaling on one operand only
  EXPECT_EQ(run(*this, g, o.w, o.x, o.d), CUBLAS_STATUS_NOT_SUPPORTED);
  g = base;
  g.k = 376; // leading dimension 376: not a multiple of 16
  EXPECT_EQ(run(*this, g, o.w, o.x, o.d), CUBLAS_STATUS_NOT_SUPPORTED);
  g = base;
  g.k = 368; // ld 368 is, but K is not a multiple of 128
  EXPECT_EQ(run(*this, g, o.w, o.x, o.d), CUBLAS_STATUS_NOT_SUPPORTED);
  g = base;
  g.k = 256; // the weight's scale tensor is read as 3 x round_up(2, 4): inside o.ws
  EXPECT_EQ(run(*this, g, o.w, o.x, o.d), CUBLAS_STATUS_SUCCESS);
}

} // namespace
