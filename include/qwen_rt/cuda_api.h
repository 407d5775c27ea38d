//===- cuda_api.h - The CUDA driver and cuBLASLt entry points we call -----===//
//
// The runtime builds without the CUDA toolkit and loads the driver
// (libcuda.so.1) and cuBLASLt (libcublasLt.so.13) with dlopen, so it declares
// here, by hand, the small subset of cuda.h and cublasLt.h it uses: handle
// types, enum values, one struct, and a table of function pointers per
// library. unittests/CudaApiTest.cpp checks every value and layout against the
// toolkit's headers wherever they are installed. The test double
// test/tools/fake-cuda implements the same tables on the host.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_RT_CUDA_API_H
#define QWEN_RT_CUDA_API_H

#include <cstddef>
#include <cstdint>

namespace qwen::rt::cuda {

//===----------------------------------------------------------------------===//
// Driver API (cuda.h)
//===----------------------------------------------------------------------===//

using CUresult = int;
using CUdevice = int;
using CUdeviceptr = unsigned long long;
using CUcontext = struct CUctx_st *;
using CUmodule = struct CUmod_st *;
using CUfunction = struct CUfunc_st *;
using CUstream = struct CUstream_st *;
using CUgraph = struct CUgraph_st *;
using CUgraphExec = struct CUgraphExec_st *;

constexpr CUresult CUDA_SUCCESS = 0;
constexpr int CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16;
constexpr int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75;
constexpr int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;
constexpr int CU_JIT_ERROR_LOG_BUFFER = 5;
constexpr int CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES = 6;
constexpr unsigned CU_STREAM_NON_BLOCKING = 1;
/// cuStreamBeginCapture mode: only this thread's unsafe calls are refused.
constexpr int CU_STREAM_CAPTURE_MODE_THREAD_LOCAL = 1;
constexpr int CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION = 6;

/// cuLaunchKernelEx's attribute (cuda.h's CUlaunchAttribute: an enum id
/// padded to 8 bytes, then a 64-byte value union).
struct CUlaunchAttribute {
  int id = 0;
  char pad[4] = {};
  union {
    char bytes[64];
    int programmaticStreamSerializationAllowed;
  } value = {};
};
static_assert(sizeof(CUlaunchAttribute) == 72, "CUlaunchAttribute must match cuda.h");

/// cuLaunchKernelEx's configuration (cuda.h's CUlaunchConfig).
struct CUlaunchConfig {
  unsigned gridDimX = 1, gridDimY = 1, gridDimZ = 1;
  unsigned blockDimX = 1, blockDimY = 1, blockDimZ = 1;
  unsigned sharedMemBytes = 0;
  struct CUstream_st *hStream = nullptr;
  CUlaunchAttribute *attrs = nullptr;
  unsigned numAttrs = 0;
};

/// The driver entry points, resolved by name (the _v2 names where cuda.h
/// maps the plain name to them).
struct DriverApi {
  CUresult (*cuInit)(unsigned flags) = nullptr;
  CUresult (*cuDriverGetVersion)(int *version) = nullptr;
  CUresult (*cuGetErrorString)(CUresult, const char **message) = nullptr;
  CUresult (*cuDeviceGetCount)(int *count) = nullptr;
  CUresult (*cuDeviceGet)(CUdevice *, int ordinal) = nullptr;
  CUresult (*cuDeviceGetName)(char *name, int length, CUdevice) = nullptr;
  CUresult (*cuDeviceTotalMem)(size_t *bytes, CUdevice) = nullptr;
  CUresult (*cuDeviceGetAttribute)(int *value, int attribute, CUdevice) = nullptr;
  CUresult (*cuDevicePrimaryCtxRetain)(CUcontext *, CUdevice) = nullptr;
  CUresult (*cuDevicePrimaryCtxRelease)(CUdevice) = nullptr;
  CUresult (*cuCtxSetCurrent)(CUcontext) = nullptr;
  CUresult (*cuMemGetInfo)(size_t *free, size_t *total) = nullptr;
  CUresult (*cuMemAlloc)(CUdeviceptr *, size_t bytes) = nullptr;
  CUresult (*cuMemFree)(CUdeviceptr) = nullptr;
  CUresult (*cuMemAllocHost)(void **, size_t bytes) = nullptr;
  CUresult (*cuMemFreeHost)(void *) = nullptr;
  CUresult (*cuMemcpyHtoD)(CUdeviceptr dst, const void *src, size_t bytes) = nullptr;
  CUresult (*cuMemcpyDtoH)(void *dst, CUdeviceptr src, size_t bytes) = nullptr;
  CUresult (*cuMemcpyHtoDAsync)(CUdeviceptr dst, const void *src, size_t bytes, CUstream) = nullptr;
  CUresult (*cuMemcpyDtoHAsync)(void *dst, CUdeviceptr src, size_t bytes, CUstream) = nullptr;
  CUresult (*cuMemcpyDtoDAsync)(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream) = nullptr;
  CUresult (*cuMemsetD8Async)(CUdeviceptr dst, unsigned char value, size_t bytes, CUstream) = nullptr;
  CUresult (*cuModuleLoadDataEx)(CUmodule *, const void *image, unsigned numOptions, int *options,
                                 void **optionValues) = nullptr;
  CUresult (*cuModuleUnload)(CUmodule) = nullptr;
  CUresult (*cuModuleGetFunction)(CUfunction *, CUmodule, const char *name) = nullptr;
  CUresult (*cuLaunchKernel)(CUfunction, unsigned gridX, unsigned gridY, unsigned gridZ, unsigned blockX,
                             unsigned blockY, unsigned blockZ, unsigned sharedBytes, CUstream, void **params,
                             void **extra) = nullptr;
  CUresult (*cuLaunchKernelEx)(const CUlaunchConfig *, CUfunction, void **params, void **extra) = nullptr;
  CUresult (*cuStreamCreate)(CUstream *, unsigned flags) = nullptr;
  CUresult (*cuStreamDestroy)(CUstream) = nullptr;
  CUresult (*cuStreamSynchronize)(CUstream) = nullptr;
  CUresult (*cuStreamBeginCapture)(CUstream, int mode) = nullptr;
  CUresult (*cuStreamEndCapture)(CUstream, CUgraph *) = nullptr;
  CUresult (*cuGraphInstantiateWithFlags)(CUgraphExec *, CUgraph, unsigned long long flags) = nullptr;
  CUresult (*cuGraphLaunch)(CUgraphExec, CUstream) = nullptr;
  CUresult (*cuGraphExecDestroy)(CUgraphExec) = nullptr;
  CUresult (*cuGraphDestroy)(CUgraph) = nullptr;
};

/// Every DriverApi member with the symbol it is resolved from, in order.
#define QWEN_CUDA_DRIVER_ENTRY_POINTS(X)                                                                             \
  X(cuInit, "cuInit")                                                                                                \
  X(cuDriverGetVersion, "cuDriverGetVersion")                                                                        \
  X(cuGetErrorString, "cuGetErrorString")                                                                            \
  X(cuDeviceGetCount, "cuDeviceGetCount")                                                                            \
  X(cuDeviceGet, "cuDeviceGet")                                                                                      \
  X(cuDeviceGetName, "cuDeviceGetName")                                                                              \
  X(cuDeviceTotalMem, "cuDeviceTotalMem_v2")                                                                         \
  X(cuDeviceGetAttribute, "cuDeviceGetAttribute")                                                                    \
  X(cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain")                                                            \
  X(cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2")                                                       \
  X(cuCtxSetCurrent, "cuCtxSetCurrent")                                                                              \
  X(cuMemGetInfo, "cuMemGetInfo_v2")                                                                                 \
  X(cuMemAlloc, "cuMemAlloc_v2")                                                                                     \
  X(cuMemFree, "cuMemFree_v2")                                                                                       \
  X(cuMemAllocHost, "cuMemAllocHost_v2")                                                                             \
  X(cuMemFreeHost, "cuMemFreeHost")                                                                                  \
  X(cuMemcpyHtoD, "cuMemcpyHtoD_v2")                                                                                 \
  X(cuMemcpyDtoH, "cuMemcpyDtoH_v2")                                                                                 \
  X(cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2")                                                                       \
  X(cuMemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2")                                                                       \
  X(cuMemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2")                                                                       \
  X(cuMemsetD8Async, "cuMemsetD8Async")                                                                              \
  X(cuModuleLoadDataEx, "cuModuleLoadDataEx")                                                                        \
  X(cuModuleUnload, "cuModuleUnload")                                                                                \
  X(cuModuleGetFunction, "cuModuleGetFunction")                                                                      \
  X(cuLaunchKernel, "cuLaunchKernel")                                                                                \
  X(cuLaunchKernelEx, "cuLaunchKernelEx")                                                                            \
  X(cuStreamCreate, "cuStreamCreate")                                                                                \
  X(cuStreamDestroy, "cuStreamDestroy_v2")                                                                           \
  X(cuStreamSynchronize, "cuStreamSynchronize")                                                                      \
  X(cuStreamBeginCapture, "cuStreamBeginCapture_v2")                                                                 \
  X(cuStreamEndCapture, "cuStreamEndCapture")                                                                        \
  X(cuGraphInstantiateWithFlags, "cuGraphInstantiateWithFlags")                                                      \
  X(cuGraphLaunch, "cuGraphLaunch")                                                                                  \
  X(cuGraphExecDestroy, "cuGraphExecDestroy")                                                                        \
  X(cuGraphDestroy, "cuGraphDestroy")

//===----------------------------------------------------------------------===//
// cuBLASLt (cublasLt.h, cublas_api.h, library_types.h)
//===----------------------------------------------------------------------===//

using cublasStatus_t = int;
using cublasLtHandle_t = struct cublasLtContext *;
using cublasLtMatmulDesc_t = struct cublasLtMatmulDescOpaque *;
using cublasLtMatrixLayout_t = struct cublasLtMatrixLayoutOpaque *;
using cublasLtMatmulPreference_t = struct cublasLtMatmulPreferenceOpaque *;

constexpr cublasStatus_t CUBLAS_STATUS_SUCCESS = 0;
// cudaDataType_t
constexpr int CUDA_R_32F = 0;
constexpr int CUDA_R_16F = 2;
constexpr int CUDA_R_16BF = 14;
constexpr int CUDA_R_8F_E4M3 = 28;
// cublasComputeType_t
constexpr int CUBLAS_COMPUTE_32F = 68;
// cublasOperation_t
constexpr int32_t CUBLAS_OP_N = 0;
constexpr int32_t CUBLAS_OP_T = 1;
// cublasLtMatmulDescAttributes_t
constexpr int CUBLASLT_MATMUL_DESC_TRANSA = 3;           ///< int32_t
constexpr int CUBLASLT_MATMUL_DESC_TRANSB = 4;           ///< int32_t
constexpr int CUBLASLT_MATMUL_DESC_EPILOGUE = 7;         ///< uint32_t
constexpr int CUBLASLT_MATMUL_DESC_BIAS_POINTER = 8;     ///< const void *
constexpr int CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE = 26;  ///< int32_t (cudaDataType_t)
// FP8 block scaling (cuBLASLt 12.9+ on sm_90): a scale tensor per operand,
// interpreted as the operand's SCALE_MODE says.
constexpr int CUBLASLT_MATMUL_DESC_A_SCALE_POINTER = 17; ///< const void *
constexpr int CUBLASLT_MATMUL_DESC_B_SCALE_POINTER = 18; ///< const void *
constexpr int CUBLASLT_MATMUL_DESC_A_SCALE_MODE = 31;    ///< int32_t (cublasLtMatmulMatrixScale_t)
constexpr int CUBLASLT_MATMUL_DESC_B_SCALE_MODE = 32;    ///< int32_t (cublasLtMatmulMatrixScale_t)
// cublasLtMatmulMatrixScale_t
constexpr int32_t CUBLASLT_MATMUL_MATRIX_SCALE_SCALAR_32F = 0;
/// One f32 per 128 consecutive elements of the inner (K) dimension.
constexpr int32_t CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F = 4;
/// One f32 per 128 x 128 block.
constexpr int32_t CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F = 5;
// cublasLtEpilogue_t
constexpr uint32_t CUBLASLT_EPILOGUE_DEFAULT = 1;
constexpr uint32_t CUBLASLT_EPILOGUE_BIAS = 4;
// cublasLtMatmulPreferenceAttributes_t
constexpr int CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES = 1; ///< uint64_t

struct cublasLtMatmulAlgo_t {
  uint64_t data[8];
};

struct cublasLtMatmulHeuristicResult_t {
  cublasLtMatmulAlgo_t algo;
  size_t workspaceSize;
  cublasStatus_t state;
  float wavesCount;
  int reserved[4];
};

struct CublasLtApi {
  cublasStatus_t (*cublasLtCreate)(cublasLtHandle_t *) = nullptr;
  cublasStatus_t (*cublasLtDestroy)(cublasLtHandle_t) = nullptr;
  const char *(*cublasLtGetStatusString)(cublasStatus_t) = nullptr;
  cublasStatus_t (*cublasLtMatmulDescCreate)(cublasLtMatmulDesc_t *, int computeType, int scaleType) = nullptr;
  cublasStatus_t (*cublasLtMatmulDescDestroy)(cublasLtMatmulDesc_t) = nullptr;
  cublasStatus_t (*cublasLtMatmulDescSetAttribute)(cublasLtMatmulDesc_t, int attribute, const void *value,
                                                   size_t bytes) = nullptr;
  cublasStatus_t (*cublasLtMatrixLayoutCreate)(cublasLtMatrixLayout_t *, int dataType, uint64_t rows,
                                               uint64_t cols, int64_t ld) = nullptr;
  cublasStatus_t (*cublasLtMatrixLayoutDestroy)(cublasLtMatrixLayout_t) = nullptr;
  cublasStatus_t (*cublasLtMatmulPreferenceCreate)(cublasLtMatmulPreference_t *) = nullptr;
  cublasStatus_t (*cublasLtMatmulPreferenceDestroy)(cublasLtMatmulPreference_t) = nullptr;
  cublasStatus_t (*cublasLtMatmulPreferenceSetAttribute)(cublasLtMatmulPreference_t, int attribute,
                                                         const void *value, size_t bytes) = nullptr;
  cublasStatus_t (*cublasLtMatmulAlgoGetHeuristic)(cublasLtHandle_t, cublasLtMatmulDesc_t,
                                                   cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                                                   cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t d,
                                                   cublasLtMatmulPreference_t, int requested,
                                                   cublasLtMatmulHeuristicResult_t *results,
                                                   int *returned) = nullptr;
  cublasStatus_t (*cublasLtMatmul)(cublasLtHandle_t, cublasLtMatmulDesc_t, const void *alpha, const void *a,
                                   cublasLtMatrixLayout_t, const void *b, cublasLtMatrixLayout_t,
                                   const void *beta, const void *c, cublasLtMatrixLayout_t, void *d,
                                   cublasLtMatrixLayout_t, const cublasLtMatmulAlgo_t *algo, void *workspace,
                                   size_t workspaceBytes, CUstream) = nullptr;
};

#define QWEN_CUBLASLT_ENTRY_POINTS(X)                                                                                \
  X(cublasLtCreate, "cublasLtCreate")                                                                                \
  X(cublasLtDestroy, "cublasLtDestroy")                                                                              \
  X(cublasLtGetStatusString, "cublasLtGetStatusString")                                                              \
  X(cublasLtMatmulDescCreate, "cublasLtMatmulDescCreate")                                                            \
  X(cublasLtMatmulDescDestroy, "cublasLtMatmulDescDestroy")                                                          \
  X(cublasLtMatmulDescSetAttribute, "cublasLtMatmulDescSetAttribute")                                                \
  X(cublasLtMatrixLayoutCreate, "cublasLtMatrixLayoutCreate")                                                        \
  X(cublasLtMatrixLayoutDestroy, "cublasLtMatrixLayoutDestroy")                                                      \
  X(cublasLtMatmulPreferenceCreate, "cublasLtMatmulPreferenceCreate")                                                \
  X(cublasLtMatmulPreferenceDestroy, "cublasLtMatmulPreferenceDestroy")                                              \
  X(cublasLtMatmulPreferenceSetAttribute, "cublasLtMatmulPreferenceSetAttribute")                                    \
  X(cublasLtMatmulAlgoGetHeuristic, "cublasLtMatmulAlgoGetHeuristic")                                                \
  X(cublasLtMatmul, "cublasLtMatmul")

} // namespace qwen::rt::cuda

#endif // QWEN_RT_CUDA_API_H
