//===- cuda_api_test.cpp - cuda_api.h against the CUDA toolkit headers ----===//
//
// The runtime declares the driver and cuBLASLt subset it calls by hand
// (qwen_rt/cuda_api.h) so it builds without the toolkit. Where the toolkit's
// headers are installed, this test checks every value, layout and signature
// of that subset against them at compile time; elsewhere it only checks that
// every entry point name is unique.
//
//===----------------------------------------------------------------------===//
// The toolkit's headers come first: cuda.h maps plain names to _v2 symbols
// by macros, which then apply to cuda_api.h's member names alike.
#if QWEN_HAVE_CUDA_HEADERS
#include <cublasLt.h>
#include <cuda.h>
#endif

#include "qwen_rt/cuda_api.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <set>
#include <string>

#if QWEN_HAVE_CUDA_HEADERS

namespace q = qwen::rt::cuda;

static_assert(q::CUDA_SUCCESS == CUDA_SUCCESS);
static_assert(q::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT == CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
static_assert(q::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR == CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
static_assert(q::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR == CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
static_assert(q::CU_JIT_ERROR_LOG_BUFFER == CU_JIT_ERROR_LOG_BUFFER);
static_assert(q::CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES == CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES);
static_assert(q::CU_STREAM_NON_BLOCKING == CU_STREAM_NON_BLOCKING);
static_assert(q::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL == CU_STREAM_CAPTURE_MODE_THREAD_LOCAL);
static_assert(sizeof(q::CUdeviceptr) == sizeof(CUdeviceptr));
static_assert(sizeof(q::CUdevice) == sizeof(CUdevice));
static_assert(sizeof(q::CUresult) == sizeof(CUresult));

static_assert(q::CUBLAS_STATUS_SUCCESS == CUBLAS_STATUS_SUCCESS);
static_assert(q::CUDA_R_32F == CUDA_R_32F && q::CUDA_R_16F == CUDA_R_16F && q::CUDA_R_16BF == CUDA_R_16BF);
static_assert(q::CUBLAS_COMPUTE_32F == CUBLAS_COMPUTE_32F);
static_assert(q::CUDA_R_8F_E4M3 == CUDA_R_8F_E4M3);
static_assert(q::CUBLASLT_MATMUL_DESC_A_SCALE_POINTER == CUBLASLT_MATMUL_DESC_A_SCALE_POINTER);
static_assert(q::CUBLASLT_MATMUL_DESC_B_SCALE_POINTER == CUBLASLT_MATMUL_DESC_B_SCALE_POINTER);
static_assert(q::CUBLASLT_MATMUL_DESC_A_SCALE_MODE == CUBLASLT_MATMUL_DESC_A_SCALE_MODE);
static_assert(q::CUBLASLT_MATMUL_DESC_B_SCALE_MODE == CUBLASLT_MATMUL_DESC_B_SCALE_MODE);
static_assert(q::CUBLASLT_MATMUL_MATRIX_SCALE_SCALAR_32F == CUBLASLT_MATMUL_MATRIX_SCALE_SCALAR_32F);
static_assert(q::CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F == CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F);
static_assert(q::CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F == CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F);
static_assert(q::CUBLAS_OP_N == CUBLAS_OP_N && q::CUBLAS_OP_T == CUBLAS_OP_T);
static_assert(q::CUBLASLT_MATMUL_DESC_TRANSA == CUBLASLT_MATMUL_DESC_TRANSA);
static_assert(q::CUBLASLT_MATMUL_DESC_TRANSB == CUBLASLT_MATMUL_DESC_TRANSB);
static_assert(q::CUBLASLT_MATMUL_DESC_EPILOGUE == CUBLASLT_MATMUL_DESC_EPILOGUE);
static_assert(q::CUBLASLT_MATMUL_DESC_BIAS_POINTER == CUBLASLT_MATMUL_DESC_BIAS_POINTER);
static_assert(q::CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE == CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE);
static_assert(q::CUBLASLT_EPILOGUE_DEFAULT == CUBLASLT_EPILOGUE_DEFAULT);
static_assert(q::CUBLASLT_EPILOGUE_BIAS == CUBLASLT_EPILOGUE_BIAS);
static_assert(q::CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES == CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES);
static_assert(sizeof(q::cublasLtMatmulAlgo_t) == sizeof(cublasLtMatmulAlgo_t));
static_assert(sizeof(q::cublasLtMatmulHeuristicResult_t) == sizeof(cublasLtMatmulHeuristicResult_t));
static_assert(offsetof(q::cublasLtMatmulHeuristicResult_t, workspaceSize) ==
              offsetof(cublasLtMatmulHeuristicResult_t, workspaceSize));
static_assert(offsetof(q::cublasLtMatmulHeuristicResult_t, state) == offsetof(cublasLtMatmulHeuristicResult_t, state));

// Each function pointer must have the ABI of the header's function: the same
// parameter and return types up to enums (passed as int) and opaque handles
// (passed as pointers). Checked by parameter count and sizes.
template <typename R, typename... A>
constexpr size_t arity(R (*)(A...)) {
  return sizeof...(A);
}
template <typename R, typename... A>
constexpr size_t argBytes(R (*)(A...)) {
  return (size_t(0) + ... + sizeof(A));
}
#define QWEN_CHECK_SIGNATURE(member, symbol)                                                                         \
  static_assert(arity(decltype(q::DriverApi::member){}) == arity(&::member), symbol);                                \
  static_assert(argBytes(decltype(q::DriverApi::member){}) == argBytes(&::member), symbol);
QWEN_CUDA_DRIVER_ENTRY_POINTS(QWEN_CHECK_SIGNATURE)
#undef QWEN_CHECK_SIGNATURE
#define QWEN_CHECK_SIGNATURE(member, symbol)                                                                         \
  static_assert(arity(decltype(q::CublasLtApi::member){}) == arity(&::member), symbol);                              \
  static_assert(argBytes(decltype(q::CublasLtApi::member){}) == argBytes(&::member), symbol);
QWEN_CUBLASLT_ENTRY_POINTS(QWEN_CHECK_SIGNATURE)
#undef QWEN_CHECK_SIGNATURE
#endif

TEST(CudaApiTest, EntryPointsAreDistinct) {
  std::set<std::string> names;
  size_t count = 0;
#define QWEN_COLLECT(member, symbol)                                                                                 \
  names.insert(symbol);                                                                                              \
  ++count;
  QWEN_CUDA_DRIVER_ENTRY_POINTS(QWEN_COLLECT)
  QWEN_CUBLASLT_ENTRY_POINTS(QWEN_COLLECT)
#undef QWEN_COLLECT
  EXPECT_EQ(names.size(), count);
}

TEST(CudaApiTest, CheckedAgainstTheToolkitHeadersWhenInstalled) {
#if QWEN_HAVE_CUDA_HEADERS
  SUCCEED() << "cuda_api.h matches cuda.h and cublasLt.h (static_asserts above)";
#else
  GTEST_SKIP() << "the CUDA toolkit headers are not installed: cuda_api.h is not checked against them";
#endif
}
