//===- FakeCuda.cpp - The CUDA driver and cuBLASLt, emulated on the host --===//
//
// A test double for the runtime's CUDA path: libqwen-fake-cuda.so exports the
// driver and cuBLASLt entry points of qwen_rt/cuda_api.h (every symbol of
// QWEN_CUDA_DRIVER_ENTRY_POINTS and QWEN_CUBLASLT_ENTRY_POINTS, with exactly
// those signatures) and runs them on the CPU, so that
//
//   QWEN_CUDA_DRIVER=libqwen-fake-cuda.so QWEN_CUBLASLT=libqwen-fake-cuda.so \
//   QWEN_FAKE_CUDA_KERNELS=DIR qwen-run ARTIFACT ...
//
// runs a CUDA artifact end to end without a GPU.
//
// - One device ("qwen fake CUDA device (host emulation)", sm_90, 132 SMs,
//   $QWEN_FAKE_CUDA_MEMORY_GB GiB, default 16). Device memory is host memory
//   (anonymous mappings: zero-filled, committed lazily; filled with 0xff when
//   $QWEN_FAKE_CUDA_POISON=1), a CUdeviceptr is its address. Copies, memsets,
//   kernel pointers and GEMM operands are checked against live allocations.
// - Kernels: the PTX image only names the entries; the code that runs is the
//   SIMT emulation (test/Codegen/GPU/simt) of the same kernels, built by
//   build-emulated-kernels.sh into $QWEN_FAKE_CUDA_KERNELS (emu.so +
//   kernels.json).
// - Streams run their work at enqueue time, except while capturing: then
//   launches, matmuls, async copies and memsets are recorded into the graph,
//   and synchronous calls fail with CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED (and
//   invalidate the capture), as in thread-local capture mode.
// - A primary context must be current on the calling thread (thread-local, as
//   in the driver); releasing the last primary-context reference frees
//   everything it owned.
// - cuBLASLt: f32 compute and scale, f32 / f16 / bf16 column-major operands,
//   TRANSA / TRANSB, bias epilogue; float accumulation, round to nearest even.
//   FP8 (e4m3 x e4m3) as sm_90's cuBLASLt 12.9+ runs it: TN only, leading
//   dimensions multiples of 16, D / C in f32, f16 or bf16, and per-operand
//   scales: SCALAR_32F (one f32, or 1 without a pointer) or the block modes
//   VEC128_32F (1 x 128 blocks) / BLK128x128_32F (128 x 128 blocks, not on
//   both operands), whose partial sums over each 128-wide K block are scaled
//   as cuBLASLt defines (see blockScaleIndex).
// - $QWEN_FAKE_CUDA_STATS: one line of counts on stderr at exit. Kernel
//   launches and matmuls count every execution (direct or replayed); graph
//   launches count cuGraphLaunch calls, and the recorded operations they
//   replayed are summed. With the value "kernels", also one line per kernel
//   name: "fake-cuda: NAME ran N times".
// - Errors also print one line "fake-cuda: ..." on stderr saying why.
// - Tuning: $QWEN_FAKE_CUDA_THREADS (GEMM threads; default $QWEN_NUM_THREADS,
//   else all cores, at most 16).
//
//===----------------------------------------------------------------------===//
#include "qwen_rt/cuda_api.h"

#include <nlohmann/json.hpp>

#include <dlfcn.h>
#include <pthread.h>
#include <sys/mman.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

using namespace qwen::rt::cuda;

//===----------------------------------------------------------------------===//
// Handle types (opaque to the caller; declared in cuda_api.h's namespace)
//===----------------------------------------------------------------------===//

namespace qwen::rt::cuda {

struct CUctx_st {
  int magic = 0;
};

using Operation = std::function<CUresult()>;

struct CUstream_st {
  unsigned flags = 0;
  bool capturing = false;
  bool invalidated = false; ///< a recorded call failed, or an unsafe call was made
  std::vector<Operation> recorded;
};

struct CUgraph_st {
  std::vector<Operation> operations;
};

struct CUgraphExec_st {
  std::vector<Operation> operations;
};

using SimtLaunch = int (*)(void *wrapper, void **slots, int64_t *dims, int64_t blocks, int64_t threads,
                           int64_t nshared, int64_t *sharedFloats);

struct CUfunc_st {
  CUmod_st *module = nullptr;
  std::string name;
  void *wrapper = nullptr;
  int64_t slots = 0;
  int64_t dims = 4; ///< i64 parameters: T, B, P, R and any extra scalars
  int64_t block = 0;
  std::vector<int64_t> shared;
};

struct CUmod_st {
  void *emu = nullptr;
  SimtLaunch launch = nullptr;
  std::map<std::string, int> entries; ///< PTX entry -> number of .param
  std::set<std::string> waiting;       ///< entries whose code has griddepcontrol.wait
  nlohmann::json kernels;
  std::map<std::string, std::unique_ptr<CUfunc_st>> functions;
};

struct cublasLtContext {
  int magic = 0x4c74;
};

struct cublasLtMatmulDescOpaque {
  int32_t transA = CUBLAS_OP_N;
  int32_t transB = CUBLAS_OP_N;
  uint32_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
  const void *bias = nullptr;
  int32_t biasType = -1; ///< -1: D's type
  const void *aScale = nullptr, *bScale = nullptr;
  int32_t aScaleMode = CUBLASLT_MATMUL_MATRIX_SCALE_SCALAR_32F;
  int32_t bScaleMode = CUBLASLT_MATMUL_MATRIX_SCALE_SCALAR_32F;
};

struct cublasLtMatrixLayoutOpaque {
  int type = CUDA_R_32F;
  uint64_t rows = 0, cols = 0;
  int64_t ld = 0;
};

struct cublasLtMatmulPreferenceOpaque {
  uint64_t maxWorkspace = 0;
};

} // namespace qwen::rt::cuda

//===----------------------------------------------------------------------===//
// Global state
//===----------------------------------------------------------------------===//

namespace {

constexpr CUresult CUDA_ERROR_INVALID_VALUE = 1;
constexpr CUresult CUDA_ERROR_OUT_OF_MEMORY = 2;
constexpr CUresult CUDA_ERROR_NOT_INITIALIZED = 3;
constexpr CUresult CUDA_ERROR_INVALID_DEVICE = 101;
constexpr CUresult CUDA_ERROR_INVALID_IMAGE = 200;
constexpr CUresult CUDA_ERROR_INVALID_CONTEXT = 201;
constexpr CUresult CUDA_ERROR_FILE_NOT_FOUND = 301;
constexpr CUresult CUDA_ERROR_INVALID_HANDLE = 400;
constexpr CUresult CUDA_ERROR_ILLEGAL_STATE = 401;
constexpr CUresult CUDA_ERROR_NOT_FOUND = 500;
constexpr CUresult CUDA_ERROR_ILLEGAL_ADDRESS = 700;
constexpr CUresult CUDA_ERROR_MISALIGNED_ADDRESS = 716;
constexpr CUresult CUDA_ERROR_LAUNCH_FAILED = 719;
constexpr CUresult CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED = 900;
constexpr CUresult CUDA_ERROR_STREAM_CAPTURE_INVALIDATED = 901;
constexpr CUresult CUDA_ERROR_STREAM_CAPTURE_IMPLICIT = 906;
constexpr CUresult CUDA_ERROR_UNKNOWN = 999;

constexpr cublasStatus_t CUBLAS_STATUS_NOT_INITIALIZED = 1;
constexpr cublasStatus_t CUBLAS_STATUS_ALLOC_FAILED = 3;
constexpr cublasStatus_t CUBLAS_STATUS_INVALID_VALUE = 7;
constexpr cublasStatus_t CUBLAS_STATUS_ARCH_MISMATCH = 8;
constexpr cublasStatus_t CUBLAS_STATUS_MAPPING_ERROR = 11;
constexpr cublasStatus_t CUBLAS_STATUS_EXECUTION_FAILED = 13;
constexpr cublasStatus_t CUBLAS_STATUS_INTERNAL_ERROR = 14;
constexpr cublasStatus_t CUBLAS_STATUS_NOT_SUPPORTED = 15;
constexpr cublasStatus_t CUBLAS_STATUS_LICENSE_ERROR = 16;

const char *const DEVICE_NAME = "qwen fake CUDA device (host emulation)";

struct Allocation {
  size_t bytes = 0;  ///< as requested
  size_t mapped = 0; ///< mmap length
};

struct Statistics {
  uint64_t kernels = 0, matmuls = 0, graphLaunches = 0, replayed = 0;
  uint64_t copiesToDevice = 0, bytesToDevice = 0; ///< cuMemcpyHtoD(Async) calls
  size_t peakBytes = 0;
  std::map<std::string, uint64_t> byKernel;
  ~Statistics() {
    const char *env = std::getenv("QWEN_FAKE_CUDA_STATS");
    if (env && *env)
      std::fprintf(stderr,
                   "fake-cuda: %llu kernel launches, %llu matmuls, %llu graph launches replaying %llu recorded "
                   "operations, %zu bytes allocated at peak, %llu bytes copied to the device in %llu copies\n",
                   (unsigned long long)kernels, (unsigned long long)matmuls, (unsigned long long)graphLaunches,
                   (unsigned long long)replayed, peakBytes, (unsigned long long)bytesToDevice,
                   (unsigned long long)copiesToDevice);
    if (env && std::strcmp(env, "kernels") == 0)
      for (const auto &[name, count] : byKernel)
        std::fprintf(stderr, "fake-cuda: %s ran %llu times\n", name.c_str(), (unsigned long long)count);
  }
};

struct State {
  std::recursive_mutex mutex;
  bool initialized = false;
  size_t totalBytes = 0;
  CUctx_st primary;
  int primaryRefs = 0;
  std::map<uintptr_t, Allocation> device; ///< base -> allocation
  size_t liveBytes = 0;
  std::map<uintptr_t, size_t> pinned; ///< base -> bytes
  std::set<CUmod_st *> modules;
  std::set<CUfunc_st *> functions;
  std::set<CUstream_st *> streams;
  std::set<CUgraph_st *> graphs;
  std::set<CUgraphExec_st *> execs;
  int capturing = 0; ///< streams now capturing
  Statistics stats;
};

State &state() {
  // Never destroyed before the statistics line is printed (static storage,
  // destroyed at exit or dlclose).
  static State s;
  return s;
}

thread_local CUctx_st *current = nullptr;

void complain(const char *format, ...) __attribute__((format(printf, 1, 2)));
void complain(const char *format, ...) {
  std::va_list args;
  va_start(args, format);
  char line[1024];
  std::vsnprintf(line, sizeof(line), format, args);
  va_end(args);
  std::fprintf(stderr, "fake-cuda: %s\n", line);
}

using Lock = std::lock_guard<std::recursive_mutex>;

CUresult needContext(const char *call) {
  State &s = state();
  if (!s.initialized) {
    complain("%s: cuInit was not called", call);
    return CUDA_ERROR_NOT_INITIALIZED;
  }
  if (current != &s.primary || s.primaryRefs <= 0) {
    complain("%s: no current context on this thread (cuDevicePrimaryCtxRetain + cuCtxSetCurrent)", call);
    return CUDA_ERROR_INVALID_CONTEXT;
  }
  return CUDA_SUCCESS;
}

/// Synchronous calls are not allowed while a capture is in progress; like the
/// driver, the call fails and the captures are invalidated.
CUresult refuseWhileCapturing(const char *call) {
  State &s = state();
  if (s.capturing == 0)
    return CUDA_SUCCESS;
  complain("%s: not permitted while a stream is capturing", call);
  for (CUstream_st *stream : s.streams)
    if (stream->capturing)
      stream->invalidated = true;
  return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
}

CUresult checkStream(CUstream stream, const char *call) {
  State &s = state();
  if (stream && !s.streams.count(stream)) {
    complain("%s: unknown stream %p", call, (void *)stream);
    return CUDA_ERROR_INVALID_HANDLE;
  }
  if (!stream) {
    // The legacy stream synchronizes with blocking streams, which it cannot
    // do while one of them captures.
    for (CUstream_st *other : s.streams)
      if (other->capturing && !(other->flags & CU_STREAM_NON_BLOCKING)) {
        complain("%s: the null stream is used while a blocking stream is capturing", call);
        other->invalidated = true;
        return CUDA_ERROR_STREAM_CAPTURE_IMPLICIT;
      }
  }
  return CUDA_SUCCESS;
}

/// Runs \p op now, or records it when \p stream is capturing. When recording,
/// a failed check (done by the caller before) invalidates the capture.
CUresult enqueue(CUstream stream, Operation op) {
  if (stream && stream->capturing) {
    stream->recorded.push_back(std::move(op));
    return CUDA_SUCCESS;
  }
  return op();
}

CUresult failOnStream(CUstream stream, CUresult result) {
  if (stream && stream->capturing)
    stream->invalidated = true;
  return result;
}

/// Whether [address, address + bytes) lies in one allocation of \p live (base
/// -> bytes); with \p endInclusive, a pointer just past the end counts too.
template <typename Map, typename Bytes>
bool inOne(const Map &live, Bytes bytesOf, uintptr_t address, size_t bytes, bool endInclusive) {
  auto it = live.upper_bound(address);
  if (it == live.begin())
    return false;
  --it;
  uintptr_t end = it->first + bytesOf(it->second);
  bool starts = endInclusive ? address <= end : (address < end || (bytes == 0 && address == end));
  return starts && bytes <= end - address;
}

/// Whether [address, address + bytes) lies in one live device allocation (or
/// pinned host allocation when \p pinnedToo).
bool inAllocation(uintptr_t address, size_t bytes, bool pinnedToo, bool endInclusive = false) {
  State &s = state();
  if (inOne(s.device, [](const Allocation &a) { return a.bytes; }, address, bytes, endInclusive))
    return true;
  return pinnedToo && inOne(s.pinned, [](size_t b) { return b; }, address, bytes, endInclusive);
}

void freeEverything() {
  State &s = state();
  for (auto &[base, allocation] : s.device)
    munmap(reinterpret_cast<void *>(base), allocation.mapped);
  s.device.clear();
  s.liveBytes = 0;
  for (auto &[base, bytes] : s.pinned)
    std::free(reinterpret_cast<void *>(base));
  s.pinned.clear();
  for (CUgraphExec_st *exec : s.execs)
    delete exec;
  s.execs.clear();
  for (CUgraph_st *graph : s.graphs)
    delete graph;
  s.graphs.clear();
  for (CUstream_st *stream : s.streams)
    delete stream;
  s.streams.clear();
  s.capturing = 0;
  for (CUmod_st *module : s.modules) {
    for (auto &[name, function] : module->functions)
      s.functions.erase(function.get());
    if (module->emu)
      dlclose(module->emu);
    delete module;
  }
  s.modules.clear();
}

std::string readFile(const std::string &path, bool &ok) {
  std::ifstream in(path, std::ios::binary);
  ok = bool(in);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

//===----------------------------------------------------------------------===//
// Numbers
//===----------------------------------------------------------------------===//

inline float bitsToFloat(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline uint32_t floatToBits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  return bits;
}

inline float bf16ToFloat(uint16_t h) { return bitsToFloat(uint32_t(h) << 16); }

inline uint16_t floatToBf16(float f) {
  uint32_t bits = floatToBits(f);
  if ((bits & 0x7fffffff) > 0x7f800000)
    return uint16_t((bits >> 16) | 0x40); // quiet NaN
  return uint16_t((bits + 0x7fff + ((bits >> 16) & 1)) >> 16);
}

inline float f16ToFloat(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exponent = (h >> 10) & 0x1f;
  uint32_t mantissa = h & 0x3ff;
  if (exponent == 0) {
    float magnitude = float(mantissa) * 5.9604644775390625e-8f; // 2^-24
    return bitsToFloat(floatToBits(magnitude) | sign);
  }
  if (exponent == 31)
    return bitsToFloat(sign | 0x7f800000 | (mantissa << 13));
  return bitsToFloat(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

inline uint16_t floatToF16(float f) {
  uint32_t x = floatToBits(f);
  uint16_t sign = uint16_t((x >> 16) & 0x8000);
  x &= 0x7fffffff;
  if (x > 0x7f800000)
    return uint16_t(sign | 0x7e00 | ((x >> 13) & 0x3ff)); // quiet NaN
  if (x >= 0x477ff000)                                     // >= 65520: rounds to infinity
    return uint16_t(sign | 0x7c00);
  if (x < 0x38800000) { // below 2^-14: subnormal (or zero), steps of 2^-24
    float scaled = bitsToFloat(x) * 16777216.0f; // exact
    return uint16_t(sign | uint16_t(std::nearbyint(scaled)));
  }
  x += 0xc8000fffu + ((x >> 13) & 1); // rebias the exponent, round to nearest even
  return uint16_t(sign | (x >> 13));
}

size_t typeBytes(int type) {
  switch (type) {
  case CUDA_R_32F:
    return 4;
  case CUDA_R_16F:
  case CUDA_R_16BF:
    return 2;
  case CUDA_R_8F_E4M3:
    return 1;
  default:
    return 0;
  }
}

/// OCP float8 e4m3fn (the "FN" variant: no infinities, S.1111.111 is NaN,
/// max 448), as the hardware widens it: exact.
float e4m3ToFloat(uint8_t v) {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int i = 0; i < 256; ++i) {
      int exponent = (i >> 3) & 0xf, mantissa = i & 7;
      float magnitude;
      if (exponent == 0xf && mantissa == 7)
        magnitude = std::numeric_limits<float>::quiet_NaN();
      else if (exponent == 0)
        magnitude = std::ldexp(float(mantissa), -9); // subnormal: m/8 * 2^-6
      else
        magnitude = std::ldexp(float(8 + mantissa), exponent - 10);
      t[size_t(i)] = (i & 0x80) ? -magnitude : magnitude;
    }
    return t;
  }();
  return table[v];
}

const char *typeName(int type) {
  switch (type) {
  case CUDA_R_32F:
    return "f32";
  case CUDA_R_16F:
    return "f16";
  case CUDA_R_16BF:
    return "bf16";
  case CUDA_R_8F_E4M3:
    return "e4m3";
  default:
    return "?";
  }
}

/// out[i] = element (base + i * stride) of a \p type array, as float.
void loadVector(int type, const void *base, int64_t stride, int64_t count, float *out) {
  switch (type) {
  case CUDA_R_32F: {
    const float *p = static_cast<const float *>(base);
    if (stride == 1)
      std::memcpy(out, p, size_t(count) * 4);
    else
      for (int64_t i = 0; i < count; ++i)
        out[i] = p[i * stride];
    break;
  }
  case CUDA_R_16F: {
    const uint16_t *p = static_cast<const uint16_t *>(base);
    for (int64_t i = 0; i < count; ++i)
      out[i] = f16ToFloat(p[i * stride]);
    break;
  }
  case CUDA_R_16BF: {
    const uint16_t *p = static_cast<const uint16_t *>(base);
    for (int64_t i = 0; i < count; ++i)
      out[i] = bf16ToFloat(p[i * stride]);
    break;
  }
  case CUDA_R_8F_E4M3: {
    const uint8_t *p = static_cast<const uint8_t *>(base);
    for (int64_t i = 0; i < count; ++i)
      out[i] = e4m3ToFloat(p[i * stride]);
    break;
  }
  default:
    break;
  }
}

inline float loadOne(int type, const void *base, int64_t index) {
  float value = 0;
  loadVector(type, static_cast<const char *>(base) + index * int64_t(typeBytes(type)), 1, 1, &value);
  return value;
}

inline void storeOne(int type, void *base, int64_t index, float value) {
  switch (type) {
  case CUDA_R_32F:
    static_cast<float *>(base)[index] = value;
    break;
  case CUDA_R_16F:
    static_cast<uint16_t *>(base)[index] = floatToF16(value);
    break;
  case CUDA_R_16BF:
    static_cast<uint16_t *>(base)[index] = floatToBf16(value);
    break;
  default:
    break;
  }
}

inline float dot(const float *a, const float *b, int64_t k) {
  float lanes[16] = {};
  int64_t p = 0;
  for (; p + 16 <= k; p += 16)
    for (int l = 0; l < 16; ++l)
      lanes[l] += a[p + l] * b[p + l];
  float sum = 0;
  for (int l = 0; l < 16; ++l)
    sum += lanes[l];
  for (; p < k; ++p)
    sum += a[p] * b[p];
  return sum;
}

//===----------------------------------------------------------------------===//
// GEMM
//===----------------------------------------------------------------------===//

/// One matmul with every argument copied (so a recorded one outlives the
/// caller's descriptors).
struct Gemm {
  cublasLtMatmulDescOpaque desc;
  cublasLtMatrixLayoutOpaque a, b, c, d;
  float alpha = 1, beta = 0;
  const void *pa = nullptr, *pb = nullptr, *pc = nullptr;
  void *pd = nullptr;
};

bool isBlockScale(int32_t mode) {
  return mode == CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F || mode == CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F;
}

/// Where the scale of element (outer o, inner p) of an operand lives in its
/// scale tensor, for an operand whose op() is outer x K with K contiguous (A
/// under TRANSA = T, B under TRANSB = N). As cuBLASLt lays them out:
/// - VEC128_32F: outer x ceil(K/128) scales, outer-major (the outer index
///   contiguous): o + (p / 128) * outer.
/// - BLK128x128_32F: ceil(outer/128) x ceil(K/128) scales, K-block
///   contiguous with the leading dimension rounded up to 4 (16 bytes):
///   (o / 128) * round_up(ceil(K/128), 4) + p / 128. This is the layout of a
///   checkpoint's row-major weight_scale_inv[N/128][K/128] when K/128 is a
///   multiple of 4.
/// - SCALAR_32F: element 0.
/// The K-block leading dimension of a BLK128x128_32F scale tensor.
int64_t blk128Ld(int64_t k) { return ((k + 127) / 128 + 3) / 4 * 4; }

int64_t blockScaleIndex(int32_t mode, int64_t outer, int64_t k, int64_t o, int64_t p) {
  switch (mode) {
  case CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F:
    return o + (p / 128) * outer;
  case CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F:
    return (o / 128) * blk128Ld(k) + p / 128;
  default:
    return 0;
  }
}

/// Number of f32 scales a mode reads for an outer x K operand.
int64_t blockScaleCount(int32_t mode, int64_t outer, int64_t k) {
  switch (mode) {
  case CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F:
    return outer * ((k + 127) / 128);
  case CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F:
    return (outer + 127) / 128 * blk128Ld(k);
  default:
    return 1;
  }
}

/// The problem checks of cublasLtMatmulAlgoGetHeuristic and cublasLtMatmul;
/// empty when supported.
std::string unsupported(const cublasLtMatmulDescOpaque &desc, const cublasLtMatrixLayoutOpaque &a,
                        const cublasLtMatrixLayoutOpaque &b, const cublasLtMatrixLayoutOpaque &c,
                        const cublasLtMatrixLayoutOpaque &d) {
  std::ostringstream why;
  uint64_t m = d.rows, n = d.cols;
  bool ta = desc.transA == CUBLAS_OP_T, tb = desc.transB == CUBLAS_OP_T;
  uint64_t aRows = ta ? a.cols : a.rows, k = ta ? a.rows : a.cols; // op(A): m x k
  uint64_t bRows = tb ? b.cols : b.rows, bCols = tb ? b.rows : b.cols; // op(B): k x n
  if (aRows != m)
    why << "op(A) has " << aRows << " rows, D has " << m << "; ";
  if (bRows != k)
    why << "op(B) has " << bRows << " rows, op(A) has " << k << " columns; ";
  if (bCols != n)
    why << "op(B) has " << bCols << " columns, D has " << n << "; ";
  if (c.rows != m || c.cols != n)
    why << "C is " << c.rows << " x " << c.cols << ", D is " << m << " x " << n << "; ";
  if (a.type != b.type)
    why << "A is " << typeName(a.type) << ", B is " << typeName(b.type) << "; ";
  const bool fp8 = a.type == CUDA_R_8F_E4M3 || b.type == CUDA_R_8F_E4M3;
  if (fp8) {
    // sm_90's FP8 kernels: "TN" only, 16-byte aligned leading dimensions.
    if (!ta || tb)
      why << "FP8 needs TRANSA = T and TRANSB = N; ";
    if (a.ld % 16 || b.ld % 16)
      why << "FP8 leading dimensions " << a.ld << ", " << b.ld << " are not multiples of 16; ";
    if (d.type != CUDA_R_32F && d.type != CUDA_R_16F && d.type != CUDA_R_16BF)
      why << "D is " << typeName(d.type) << " with FP8 inputs; ";
    bool blockA = isBlockScale(desc.aScaleMode), blockB = isBlockScale(desc.bScaleMode);
    if (blockA != blockB)
      why << "block scaling on one operand only; ";
    if (blockA && blockB) {
      if (desc.aScaleMode == CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F &&
          desc.bScaleMode == CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F)
        why << "BLK128x128_32F on both operands; ";
      // Conservative: partial K blocks are not emulated (not verified on a
      // device), so the runtime only asks for multiples of 128.
      if (k % 128)
        why << "block-scaled K " << k << " is not a multiple of 128; ";
    }
  } else {
    if (d.type != CUDA_R_32F && d.type != a.type)
      why << "D is " << typeName(d.type) << " with A " << typeName(a.type) << "; ";
    if (isBlockScale(desc.aScaleMode) || isBlockScale(desc.bScaleMode))
      why << "block scaling needs FP8 operands; ";
  }
  if (c.type != d.type)
    why << "C is " << typeName(c.type) << ", D is " << typeName(d.type) << "; ";
  if (desc.epilogue == CUBLASLT_EPILOGUE_BIAS) {
    // As the H100's cuBLASLt 13: the bias in D's dtype or f32 (an f16 bias
    // with an f32 D is refused).
    int biasType = desc.biasType < 0 ? d.type : desc.biasType;
    if (biasType != CUDA_R_32F && biasType != d.type)
      why << "bias is " << typeName(biasType) << " with D " << typeName(d.type) << "; ";
  }
  std::string text = why.str();
  if (!text.empty())
    text.resize(text.size() - 2);
  return text;
}

/// Bytes spanned by a column-major matrix.
size_t span(const cublasLtMatrixLayoutOpaque &layout) {
  if (layout.rows == 0 || layout.cols == 0)
    return 0;
  return size_t(((layout.cols - 1) * uint64_t(layout.ld) + layout.rows) * typeBytes(layout.type));
}

unsigned gemmThreads() {
  static unsigned threads = [] {
    unsigned n = std::max(1u, std::thread::hardware_concurrency());
    if (const char *env = std::getenv("QWEN_FAKE_CUDA_THREADS"))
      n = unsigned(std::max(1, std::atoi(env)));
    else if (const char *env = std::getenv("QWEN_NUM_THREADS"))
      n = unsigned(std::max(1, std::atoi(env)));
    return std::min(n, 16u);
  }();
  return threads;
}

void runGemm(const Gemm &g) {
  const int64_t m = int64_t(g.d.rows), n = int64_t(g.d.cols);
  const bool ta = g.desc.transA == CUBLAS_OP_T, tb = g.desc.transB == CUBLAS_OP_T;
  const int64_t k = int64_t(ta ? g.a.rows : g.a.cols);
  if (m == 0 || n == 0)
    return;
  const size_t aBytes = typeBytes(g.a.type), bBytes = typeBytes(g.b.type);
  // op(B) columns as float: column j of op(B) at bt[j * k].
  std::vector<float> bt(size_t(n * std::max<int64_t>(k, 1)));
  for (int64_t j = 0; j < n; ++j) {
    // op(B)(p, j) = tb ? B(j, p) : B(p, j)
    const char *base = static_cast<const char *>(g.pb) + (tb ? j : j * g.b.ld) * int64_t(bBytes);
    loadVector(g.b.type, base, tb ? g.b.ld : 1, k, &bt[size_t(j * k)]);
  }
  std::vector<float> bias;
  if (g.desc.epilogue == CUBLASLT_EPILOGUE_BIAS) {
    bias.resize(size_t(m));
    loadVector(g.desc.biasType < 0 ? g.d.type : g.desc.biasType, g.desc.bias, 1, m, bias.data());
  }
  const bool readC = g.beta != 0.0f;
  // FP8 scales: block modes scale each 128-wide K block's partial sum;
  // SCALAR_32F ones fold into alpha.
  const bool blockScaled = isBlockScale(g.desc.aScaleMode);
  const float *aScale = static_cast<const float *>(g.desc.aScale);
  const float *bScale = static_cast<const float *>(g.desc.bScale);
  float alpha = g.alpha;
  if (!blockScaled) {
    if (aScale)
      alpha *= aScale[0];
    if (bScale)
      alpha *= bScale[0];
  }
  auto product = [&](const float *row, const float *column, int64_t i, int64_t j) {
    if (!blockScaled)
      return alpha * dot(row, column, k);
    float sum = 0;
    for (int64_t p0 = 0; p0 < k; p0 += 128) {
      float part = dot(row + p0, column + p0, std::min<int64_t>(128, k - p0));
      sum += part * aScale[blockScaleIndex(g.desc.aScaleMode, m, k, i, p0)] *
             bScale[blockScaleIndex(g.desc.bScaleMode, n, k, j, p0)];
    }
    return alpha * sum;
  };
  constexpr int64_t TILE = 64;
  const int64_t tiles = (m + TILE - 1) / TILE;
  std::atomic<int64_t> next{0};
  auto worker = [&] {
    std::vector<float> at(size_t(TILE * std::max<int64_t>(k, 1)));
    for (int64_t tile = next++; tile < tiles; tile = next++) {
      int64_t i0 = tile * TILE, rows = std::min(TILE, m - i0);
      for (int64_t ii = 0; ii < rows; ++ii) {
        // op(A)(i, p) = ta ? A(p, i) : A(i, p)
        int64_t i = i0 + ii;
        const char *base = static_cast<const char *>(g.pa) + (ta ? i * g.a.ld : i) * int64_t(aBytes);
        loadVector(g.a.type, base, ta ? 1 : g.a.ld, k, &at[size_t(ii * k)]);
      }
      for (int64_t j = 0; j < n; ++j) {
        const float *column = &bt[size_t(j * k)];
        for (int64_t ii = 0; ii < rows; ++ii) {
          int64_t i = i0 + ii;
          float value = product(&at[size_t(ii * k)], column, i, j);
          if (readC)
            value += g.beta * loadOne(g.c.type, g.pc, i + j * g.c.ld);
          if (!bias.empty())
            value += bias[size_t(i)];
          storeOne(g.d.type, g.pd, i + j * g.d.ld, value);
        }
      }
    }
  };
  unsigned threads = gemmThreads();
  double work = double(m) * double(n) * double(std::max<int64_t>(k, 1));
  if (threads <= 1 || tiles <= 1 || work < double(1 << 22)) {
    worker();
    return;
  }
  threads = unsigned(std::min<int64_t>(threads, tiles));
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t)
    pool.emplace_back(worker);
  worker();
  for (std::thread &thread : pool)
    thread.join();
}

} // namespace

//===----------------------------------------------------------------------===//
// Exported entry points
//===----------------------------------------------------------------------===//

#define FAKE_EXPORT extern "C" __attribute__((visibility("default")))

// ---- Driver: initialization, devices, contexts ----

FAKE_EXPORT CUresult cuInit(unsigned flags) {
  State &s = state();
  Lock lock(s.mutex);
  if (flags != 0) {
    complain("cuInit: flags must be 0");
    return CUDA_ERROR_INVALID_VALUE;
  }
  if (!s.initialized) {
    double gib = 16;
    if (const char *env = std::getenv("QWEN_FAKE_CUDA_MEMORY_GB"); env && *env) {
      char *end = nullptr;
      double value = std::strtod(env, &end);
      if (end != env && value > 0)
        gib = value;
      else
        complain("QWEN_FAKE_CUDA_MEMORY_GB=%s is not a positive number; using 16", env);
    }
    s.totalBytes = size_t(gib * 1024.0 * 1024.0 * 1024.0);
    s.initialized = true;
  }
  return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuDriverGetVersion(int *version) {
  if (!version)
    return CUDA_ERROR_INVALID_VALUE;
  *version = 13000;
  return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuGetErrorString(CUresult error, const char **message) {
  if (!message)
    return CUDA_ERROR_INVALID_VALUE;
  const char *text = nullptr;
  switch (error) {
  case CUDA_SUCCESS:
    text = "no error";
    break;
  case CUDA_ERROR_INVALID_VALUE:
    text = "invalid argument";
    break;
  case CUDA_ERROR_OUT_OF_MEMORY:
    text = "out of memory";
    break;
  case CUDA_ERROR_NOT_INITIALIZED:
    text = "initialization error";
    break;
  case CUDA_ERROR_INVALID_DEVICE:
    text = "invalid device ordinal";
    break;
  case CUDA_ERROR_INVALID_IMAGE:
    text = "device kernel image is invalid";
    break;
  case CUDA_ERROR_INVALID_CONTEXT:
    text = "invalid device context";
    break;
  case CUDA_ERROR_FILE_NOT_FOUND:
    text = "file not found (fake CUDA: the emulated kernels of $QWEN_FAKE_CUDA_KERNELS)";
    break;
  case CUDA_ERROR_INVALID_HANDLE:
    text = "invalid resource handle";
    break;
  case CUDA_ERROR_ILLEGAL_STATE:
    text = "the operation cannot be performed in the present state";
    break;
  case CUDA_ERROR_NOT_FOUND:
    text = "named symbol not found";
    break;
  case CUDA_ERROR_ILLEGAL_ADDRESS:
    text = "an illegal memory access was encountered";
    break;
  case CUDA_ERROR_MISALIGNED_ADDRESS:
    text = "misaligned address";
    break;
  case CUDA_ERROR_LAUNCH_FAILED:
    text = "unspecified launch failure";
    break;
  case CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED:
    text = "operation not permitted when stream is capturing";
    break;
  case CUDA_ERROR_STREAM_CAPTURE_INVALIDATED:
    text = "operation failed due to a previous error during capture";
    break;
  case CUDA_ERROR_STREAM_CAPTURE_IMPLICIT:
    text = "operation would make the legacy stream depend on a capturing blocking stream";
    break;
  case CUDA_ERROR_UNKNOWN:
    text = "unknown error";
    break;
  default:
    *message = nullptr;
    return CUDA_ERROR_INVALID_VALUE;
  }
  *message = text;
  return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuDeviceGetCount(int *count) {
  if (!count)
    return CUDA_ERROR_INVALID_VALUE;
  Lock lock(state().mutex);
  if (!state().initialized)
    return CUDA_ERROR_NOT_INITIALIZED;
  *count = 1;
  return CUDA_SUCCESS;
}

static CUresult checkDevice(CUdevice device) {
  if (!state().initialized)
    return CUDA_ERROR_NOT_INITIALIZED;
  if (device != 0) {
    complain("device %d does not exist (one device: 0)", device);
    return CUDA_ERROR_INVALID_DEVICE;
  }
  return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuDeviceGet(CUdevice *device, int ordinal) {
  Lock lock(state().mutex);
  if (!device)
    return CUDA_ERROR_INVALID_VALUE;
  if (CUresult result = checkDevice(ordinal))
    return result;
  *device = 0;
  return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuDeviceGetName(char *name, int length, CUdevice device) {
  Lock lock(state().mutex);
  if (!name || length <= 0)
    return CUDA_ERROR_INVALID_VALUE;
  if (CUresult result = checkDevice(device))
    return result;
  std::snprintf(name, size_t(length), "%s", DEVICE_NAME);
  return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice device) {
  Lock lock(state().mutex);
  if (!bytes)
    return CUDA_ERROR_INVALID_VALUE;
  if (CUresult result = checkDevice(device))
    return result;
  *bytes = state().totalBytes;
  return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuDeviceGetAttribute(int *value, int attribute, CUdevice device) {
  Lock lock(state().mutex);
  if (!value)
    return CUDA_ERROR_INVALID_VALUE;
  if (CUresult result = checkDevice(device))
    return result;
  switch (attribute) {
  case 1: // MAX_THREADS_PER_BLOCK
  case 2: // MAX_BLOCK_DIM_X
    *value = 1024;
    return CUDA_SUCCESS;
  case 5: // MAX_GRID_DIM_X
    *value = 2147483647;
    return CUDA_SUCCESS;
  case 8: // MAX_SHARED_MEMORY_PER_BLOCK
    *value = 49152;
    return CUDA_SUCCESS;
  case 10: // WARP_SIZE
    *value = 32;
    return CUDA_SUCCESS;
  case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT:
    *value = 132;
    return CUDA_SUCCESS;
  case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR:
    *value = 9;
    return CUDA_SUCCESS;
  case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR:
    *value = 0;
    return CUDA_SUCCESS;
  default:
    complain("cuDeviceGetAttribute: attribute %d is not emulated", attribute);
    return CUDA_ERROR_INVALID_VALUE;
  }
}

FAKE_EXPORT CUresult cuDevicePrimaryCtxRetain(CUcontext *context, CUdevice device) {
  State &s = state();
  Lock lock(s.mutex);
  if (!context)
    return CUDA_ERROR_INVALID_VALUE;
  if (CUresult result = checkDevice(device))
    return result;
  ++s.primaryRefs;
  *context = &s.primary;
  return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuDevicePrimaryCtxRelease_v2(CUdevice device) {
  State &s = state();
  Lock lock(s.mutex);
  if (CUresult result = checkDevice(device))
    return result;
  if (s.primaryRefs <= 0) {
    complain("cuDevicePrimaryCtxRelease: the primary context is not retained");
    return CUDA_ERROR_INVALID_CONTEXT;
  }
  // The last reference destroys the context and everything it owns.
  if (--s.primaryRefs == 0)
    freeEverything();
  return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuCtxSetCurrent(CUcontext context) {
  State &s = state();
  Lock lock(s.mutex);
  if (!s.initialized)
    return CUDA_ERROR_NOT_INITIALIZED;
  if (context && (context != &s.primary || s.primaryRefs <= 0)) {
    complain("cuCtxSetCurrent: not the (retained) primary context");
    return CUDA_ERROR_INVALID_CONTEXT;
  }
  current = context;
  return CUDA_SUCCESS;
}

// ---- Driver: memory ----

FAKE_EXPORT CUresult cuMemGetInfo_v2(size_t *free, size_t *total) {
  State &s = state();
  Lock lock(s.mutex);
  if (CUresult result = needContext("cuMemGetInfo"))
    return result;
  if (!free || !total)
    return CUDA_ERROR_INVALID_VALUE;
  *total = s.totalBytes;
  *free = s.totalBytes - std::min(s.totalBytes, s.liveBytes);
  return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuMemAlloc_v2(CUdeviceptr *pointer, size_t bytes) {
  State &s = state();
  Lock lock(s.mutex);
  if (CUresult result = needContext("cuMemAlloc"))
    return result;
  if (CUresult result = refuseWhileCapturing("cuMemAlloc"))
    return result;
  if (!pointer || bytes == 0) {
    complain("cuMemAlloc: null result pointer or 0 bytes");
    return CUDA_ERROR_INVALID_VALUE;
  }
  if (bytes > s.totalBytes - std::min(s.totalBytes, s.liveBytes)) {
    complain("cuMemAlloc: %zu bytes asked, %zu free of %zu", bytes, s.totalBytes - s.liveBytes, s.totalBytes);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  // Anonymous mappings: page (so 256-byte) aligned, zero, committed on use,
  // so a large KV cache costs only what is touched.
  size_t mapped = (bytes + 4095) / 4096 * 4096;
  void *memory = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (memory == MAP_FAILED) {
    complain("cuMemAlloc: the host has no %zu bytes to map", bytes);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  if (const char *poison = std::getenv("QWEN_FAKE_CUDA_POISON"); poison && std::strcmp(poison, "1") == 0)
    std::memset(memory, 0xff, bytes);
  s.device[reinterpret_cast<uintptr_t>(memory)] = Allocation{bytes, mapped};
  s.liveBytes += bytes;
  s.stats.peakBytes = std::max(s.stats.peakBytes, s.liveBytes);
  *pointer = CUdeviceptr(reinterpret_cast<uintptr_t>(memory));
  return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuMemFree_v2(CUdeviceptr pointer) {
  State &s = state();
  Lock lock(s.mutex);
  if (CUresult result = needContext("cuMemFree"))
    return result;
  if (CUresult result = refuseWhileCapturing("cuMemFree"))
    return result;
  auto it = s.device.find(uintptr_t(pointer));
  if (it == s.device.end()) {
    complain("cuMemFree: 0x%llx is not a live allocation", (unsigned long long)pointer);
    return CUDA_ERROR_INVALID_VALUE;
  }
  munmap(reinterpret_cast<void *>(it->first), it->second.mapped);
  s.liveBytes -= it->second.bytes;
  s.device.erase(it);
  return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuMemAllocHost_v2(void **pointer, size_t bytes) {
  State &s = state();
  Lock lock(s.mutex);
  if (CUresult result = needContext("cuMemAllocHost"))
    return result;
  if (!pointer || bytes == 0)
    return CUDA_ERROR_INVALID_VALUE;
  void *memory = std::aligned_alloc(256, (bytes + 255) / 256 * 256);
  if (!memory)
    return CUDA_ERROR_OUT_OF_MEMORY;
  s.pinned[reinterpret_cast<uintptr_t>(memory)] = bytes;
  *pointer = memory;
  return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuMemFreeHost(void *pointer) {
  State &s = state();
  Lock lock(s.mutex);
  if (CUresult result = needContext("cuMemFreeHost"))
    return result;
  auto it = s.pinned.find(reinterpret_cast<uintptr_t>(pointer));
  if (it == s.pinned.end()) {
    complain("cuMemFreeHost: %p is not pinned host memory", pointer);
    return CUDA_ERROR_INVALID_VALUE;
  }
  std::free(pointer);
  s.pinned.erase(it);
  return CUDA_SUCCESS;
}

static CUresult checkDeviceRange(const char *call, CUdeviceptr pointer, size_t bytes) {
  if (!inAllocation(uintptr_t(pointer), bytes, /*pinnedToo=*/false)) {
    complain("%s: [0x%llx, +%zu) is not inside one device allocation", call, (unsigned long long)pointer, bytes);
    return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src, size_t bytes) {
  Lock lock(state().mutex);
  if (CUresult result = needContext("cuMemcpyHtoD"))
    return result;
  if (CUresult result = refuseWhileCapturing("cuMemcpyHtoD"))
    return result;
  if (bytes == 0)
    return CUDA_SUCCESS;
  if (!src)
    return CUDA_ERROR_INVALID_VALUE;
  if (CUresult result = checkDeviceRange("cuMemcpyHtoD", dst, bytes))
    return result;
  ++state().stats.copiesToDevice;
  state().stats.bytesToDevice += bytes;
  std::memcpy(reinterpret_cast<void *>(uintptr_t(dst)), src, bytes);
  return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t bytes) {
  Lock lock(state().mutex);
  if (CUresult result = needContext("cuMemcpyDtoH"))
    return result;
  if (CUresult result = refuseWhileCapturing("cuMemcpyDtoH"))
    return result;
  if (bytes == 0)
    return CUDA_SUCCESS;
  if (!dst)
    return CUDA_ERROR_INVALID_VALUE;
  if (CUresult result = checkDeviceRange("cuMemcpyDtoH", src, bytes))
    return result;
  std::memcpy(dst, reinterpret_cast<const void *>(uintptr_t(src)), bytes);
  return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void *src, size_t bytes, CUstream stream) {
  Lock lock(state().mutex);
  if (CUresult result = needContext("cuMemcpyHtoDAsync"))
    return result;
  if (CUresult result = checkStream(stream, "cuMemcpyHtoDAsync"))
    return result;
  if (bytes == 0)
    return CUDA_SUCCESS;
  if (!src)
    return failOnStream(stream, CUDA_ERROR_INVALID_VALUE);
  if (CUresult result = checkDeviceRange("cuMemcpyHtoDAsync", dst, bytes))
    return failOnStream(stream, result);
  ++state().stats.copiesToDevice;
  state().stats.bytesToDevice += bytes;
  // A recorded copy reads the host memory when the graph runs, as a memcpy
  // node does.
  return enqueue(stream, [dst, src, bytes]() -> CUresult {
    if (CUresult result = checkDeviceRange("cuMemcpyHtoDAsync (replay)", dst, bytes))
      return result;
    std::memcpy(reinterpret_cast<void *>(uintptr_t(dst)), src, bytes);
    return CUDA_SUCCESS;
  });
}

FAKE_EXPORT CUresult cuMemcpyDtoHAsync_v2(void *dst, CUdeviceptr src, size_t bytes, CUstream stream) {
  Lock lock(state().mutex);
  if (CUresult result = needContext("cuMemcpyDtoHAsync"))
    return result;
  if (CUresult result = checkStream(stream, "cuMemcpyDtoHAsync"))
    return result;
  if (bytes == 0)
    return CUDA_SUCCESS;
  if (!dst)
    return failOnStream(stream, CUDA_ERROR_INVALID_VALUE);
  if (CUresult result = checkDeviceRange("cuMemcpyDtoHAsync", src, bytes))
    return failOnStream(stream, result);
  return enqueue(stream, [dst, src, bytes]() -> CUresult {
    if (CUresult result = checkDeviceRange("cuMemcpyDtoHAsync (replay)", src, bytes))
      return result;
    std::memcpy(dst, reinterpret_cast<const void *>(uintptr_t(src)), bytes);
    return CUDA_SUCCESS;
  });
}

FAKE_EXPORT CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream stream) {
  Lock lock(state().mutex);
  if (CUresult result = needContext("cuMemcpyDtoDAsync"))
    return result;
  if (CUresult result = checkStream(stream, "cuMemcpyDtoDAsync"))
    return result;
  if (bytes == 0)
    return CUDA_SUCCESS;
  if (CUresult result = checkDeviceRange("cuMemcpyDtoDAsync", src, bytes))
    return failOnStream(stream, result);
  if (CUresult result = checkDeviceRange("cuMemcpyDtoDAsync", dst, bytes))
    return failOnStream(stream, result);
  return enqueue(stream, [dst, src, bytes]() -> CUresult {
    if (CUresult result = checkDeviceRange("cuMemcpyDtoDAsync (replay)", src, bytes))
      return result;
    std::memmove(reinterpret_cast<void *>(uintptr_t(dst)), reinterpret_cast<const void *>(uintptr_t(src)), bytes);
    return CUDA_SUCCESS;
  });
}

FAKE_EXPORT CUresult cuMemsetD8Async(CUdeviceptr dst, unsigned char value, size_t bytes, CUstream stream) {
  Lock lock(state().mutex);
  if (CUresult result = needContext("cuMemsetD8Async"))
    return result;
  if (CUresult result = checkStream(stream, "cuMemsetD8Async"))
    return result;
  if (bytes == 0)
    return CUDA_SUCCESS;
  if (CUresult result = checkDeviceRange("cuMemsetD8Async", dst, bytes))
    return failOnStream(stream, result);
  return enqueue(stream, [dst, value, bytes]() -> CUresult {
    if (CUresult result = checkDeviceRange("cuMemsetD8Async (replay)", dst, bytes))
      return result;
    std::memset(reinterpret_cast<void *>(uintptr_t(dst)), value, bytes);
    return CUDA_SUCCESS;
  });
}

// ---- Driver: modules and kernels ----

FAKE_EXPORT CUresult cuModuleLoadDataEx(CUmodule *module, const void *image, unsigned numOptions, int *options,
                                        void **optionValues) {
  State &s = state();
  Lock lock(s.mutex);
  if (CUresult result = needContext("cuModuleLoadDataEx"))
    return result;
  if (!module || !image || (numOptions && (!options || !optionValues)))
    return CUDA_ERROR_INVALID_VALUE;
  char *log = nullptr;
  size_t logBytes = 0;
  for (unsigned i = 0; i < numOptions; ++i) {
    if (options[i] == CU_JIT_ERROR_LOG_BUFFER)
      log = static_cast<char *>(optionValues[i]);
    else if (options[i] == CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES)
      logBytes = size_t(reinterpret_cast<uintptr_t>(optionValues[i]));
  }
  if (log && logBytes)
    log[0] = '\0';
  auto fail = [&](CUresult result, const std::string &why) {
    complain("cuModuleLoadDataEx: %s", why.c_str());
    if (log && logBytes)
      std::snprintf(log, logBytes, "fake-cuda: %s", why.c_str());
    return result;
  };

  std::string ptx(static_cast<const char *>(image));
  if (ptx.find(".version") == std::string::npos)
    return fail(CUDA_ERROR_INVALID_IMAGE, "the image is not PTX text (no .version)");
  auto loaded = std::make_unique<CUmod_st>();
  // Entries: ".entry NAME(" then the .param list up to ")".
  for (size_t at = ptx.find(".entry"); at != std::string::npos; at = ptx.find(".entry", at + 6)) {
    size_t begin = ptx.find_first_not_of(" \t", at + 6);
    size_t end = begin == std::string::npos ? begin : ptx.find_first_of("( \t\r\n", begin);
    if (end == std::string::npos || end == begin)
      continue;
    std::string name = ptx.substr(begin, end - begin);
    size_t open = ptx.find('(', end), close = open == std::string::npos ? open : ptx.find(')', open);
    int params = 0;
    if (close != std::string::npos)
      for (size_t p = ptx.find(".param", open); p != std::string::npos && p < close; p = ptx.find(".param", p + 6))
        ++params;
    loaded->entries[name] = params;
    size_t next = ptx.find(".entry", end);
    size_t wait = ptx.find("griddepcontrol.wait", end);
    if (wait != std::string::npos && (next == std::string::npos || wait < next))
      loaded->waiting.insert(name);
  }

  const char *dir = std::getenv("QWEN_FAKE_CUDA_KERNELS");
  if (!dir || !*dir)
    return fail(CUDA_ERROR_FILE_NOT_FOUND,
                "QWEN_FAKE_CUDA_KERNELS is not set (the folder of emu.so and kernels.json made by "
                "test/tools/fake-cuda/build-emulated-kernels.sh)");
  bool ok = false;
  std::string jsonPath = std::string(dir) + "/kernels.json";
  std::string text = readFile(jsonPath, ok);
  if (!ok)
    return fail(CUDA_ERROR_FILE_NOT_FOUND, "cannot read " + jsonPath);
  loaded->kernels = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!loaded->kernels.is_object())
    return fail(CUDA_ERROR_INVALID_IMAGE, jsonPath + " is not a JSON object");
  std::string emuPath = std::string(dir) + "/emu.so";
  loaded->emu = dlopen(emuPath.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!loaded->emu) {
    const char *why = dlerror();
    return fail(CUDA_ERROR_FILE_NOT_FOUND, "cannot load " + emuPath + ": " + (why ? why : "?"));
  }
  loaded->launch = reinterpret_cast<SimtLaunch>(dlsym(loaded->emu, "simt_launch"));
  if (!loaded->launch) {
    dlclose(loaded->emu);
    return fail(CUDA_ERROR_INVALID_IMAGE, emuPath + " has no simt_launch");
  }
  *module = loaded.get();
  s.modules.insert(loaded.release());
  return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuModuleUnload(CUmodule module) {
  State &s = state();
  Lock lock(s.mutex);
  if (CUresult result = needContext("cuModuleUnload"))
    return result;
  if (!s.modules.count(module)) {
    complain("cuModuleUnload: unknown module %p", (void *)module);
    return CUDA_ERROR_INVALID_HANDLE;
  }
  for (auto &[name, function] : module->functions)
    s.functions.erase(function.get());
  dlclose(module->emu);
  s.modules.erase(module);
  delete module;
  return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuModuleGetFunction(CUfunction *function, CUmodule module, const char *name) {
  State &s = state();
  Lock lock(s.mutex);
  if (CUresult result = needContext("cuModuleGetFunction"))
    return result;
  if (!function || !name)
    return CUDA_ERROR_INVALID_VALUE;
  if (!s.modules.count(module)) {
    complain("cuModuleGetFunction: unknown module %p", (void *)module);
    return CUDA_ERROR_INVALID_HANDLE;
  }
  auto existing = module->functions.find(name);
  if (existing != module->functions.end()) {
    *function = existing->second.get();
    return CUDA_SUCCESS;
  }
  auto entry = module->entries.find(name);
  if (entry == module->entries.end()) {
    complain("cuModuleGetFunction: %s is not an .entry of the PTX", name);
    return CUDA_ERROR_NOT_FOUND;
  }
  const nlohmann::json *info = module->kernels.contains(name) ? &module->kernels[name] : nullptr;
  if (!info || !info->is_object() || !info->contains("slots") || !info->contains("block")) {
    complain("cuModuleGetFunction: %s is not in $QWEN_FAKE_CUDA_KERNELS/kernels.json (emulated kernels of "
             "another artifact?)",
             name);
    return CUDA_ERROR_NOT_FOUND;
  }
  std::string wrapName = std::string("wrap_") + name;
  void *wrapper = dlsym(module->emu, wrapName.c_str());
  if (!wrapper) {
    complain("cuModuleGetFunction: emu.so has no %s", wrapName.c_str());
    return CUDA_ERROR_NOT_FOUND;
  }
  auto loaded = std::make_unique<CUfunc_st>();
  loaded->module = module;
  loaded->name = name;
  loaded->wrapper = wrapper;
  loaded->slots = (*info)["slots"].get<int64_t>();
  loaded->block = (*info)["block"].get<int64_t>();
  if (info->contains("dims"))
    loaded->dims = (*info)["dims"].get<int64_t>();
  if (info->contains("shared"))
    for (const auto &floats : (*info)["shared"])
      loaded->shared.push_back(floats.get<int64_t>());
  if (entry->second != loaded->slots + loaded->dims) {
    complain("cuModuleGetFunction: %s has %d PTX parameters, the emulated kernel %lld slots + %lld sizes", name,
             entry->second, (long long)loaded->slots, (long long)loaded->dims);
    return CUDA_ERROR_NOT_FOUND;
  }
  if (loaded->shared.size() > 8 || loaded->block <= 0 || loaded->block > 1024) {
    complain("cuModuleGetFunction: %s: the emulator cannot run its block size or shared buffers", name);
    return CUDA_ERROR_NOT_FOUND;
  }
  *function = loaded.get();
  s.functions.insert(loaded.get());
  module->functions[name] = std::move(loaded);
  return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuLaunchKernel(CUfunction function, unsigned gridX, unsigned gridY, unsigned gridZ,
                                    unsigned blockX, unsigned blockY, unsigned blockZ, unsigned sharedBytes,
                                    CUstream stream, void **params, void **extra) {
  State &s = state();
  Lock lock(s.mutex);
  if (CUresult result = needContext("cuLaunchKernel"))
    return result;
  if (CUresult result = checkStream(stream, "cuLaunchKernel"))
    return result;
  if (!s.functions.count(function)) {
    complain("cuLaunchKernel: unknown function %p", (void *)function);
    return failOnStream(stream, CUDA_ERROR_INVALID_HANDLE);
  }
  const char *name = function->name.c_str();
  if (gridX == 0 || gridY != 1 || gridZ != 1 || blockY != 1 || blockZ != 1 || blockX != function->block ||
      sharedBytes != 0 || extra != nullptr || !params) {
    complain("cuLaunchKernel %s: grid (%u, %u, %u) block (%u, %u, %u) shared %u extra %p params %p; the ABI is "
             "grid (blocks > 0, 1, 1), block (%lld, 1, 1), shared 0, extra null, params set",
             name, gridX, gridY, gridZ, blockX, blockY, blockZ, sharedBytes, (void *)extra, (void *)params,
             (long long)function->block);
    return failOnStream(stream, CUDA_ERROR_INVALID_VALUE);
  }
  std::vector<void *> slots(size_t(function->slots));
  for (int64_t i = 0; i < function->slots; ++i) {
    if (!params[i]) {
      complain("cuLaunchKernel %s: params[%lld] is null", name, (long long)i);
      return failOnStream(stream, CUDA_ERROR_INVALID_VALUE);
    }
    slots[size_t(i)] = *static_cast<void **>(params[i]);
    uintptr_t address = reinterpret_cast<uintptr_t>(slots[size_t(i)]);
    if (!address)
      continue;
    if (!inAllocation(address, 0, /*pinnedToo=*/true, /*endInclusive=*/true)) {
      complain("cuLaunchKernel %s: slot %lld = %p is not in a live allocation", name, (long long)i,
               slots[size_t(i)]);
      return failOnStream(stream, CUDA_ERROR_ILLEGAL_ADDRESS);
    }
    if (address % 16) {
      complain("cuLaunchKernel %s: slot %lld = %p is not 16-byte aligned", name, (long long)i, slots[size_t(i)]);
      return failOnStream(stream, CUDA_ERROR_MISALIGNED_ADDRESS);
    }
  }
  std::vector<int64_t> dims(size_t(function->dims));
  for (int64_t j = 0; j < function->dims; ++j) {
    void *param = params[size_t(function->slots + j)];
    if (!param) {
      complain("cuLaunchKernel %s: params[%lld] is null", name, (long long)(function->slots + j));
      return failOnStream(stream, CUDA_ERROR_INVALID_VALUE);
    }
    dims[size_t(j)] = *static_cast<int64_t *>(param);
  }
  CUfunc_st *f = function;
  int64_t blocks = gridX;
  return enqueue(stream, [f, slots, dims, blocks]() mutable -> CUresult {
    State &st = state();
    if (!st.functions.count(f)) {
      complain("cuLaunchKernel (replay): the function's module was unloaded");
      return CUDA_ERROR_INVALID_HANDLE;
    }
    std::vector<int64_t> shared = f->shared;
    shared.resize(8, 0);
    int status = f->module->launch(f->wrapper, slots.data(), dims.data(), blocks, f->block,
                                   int64_t(f->shared.size()), shared.data());
    ++st.stats.kernels;
    ++st.stats.byKernel[f->name];
    if (status != 0) {
      complain("cuLaunchKernel %s: simt_launch failed (%d)", f->name.c_str(), status);
      return CUDA_ERROR_LAUNCH_FAILED;
    }
    return CUDA_SUCCESS;
  });
}

// ---- Driver: streams and graphs ----

/// cuLaunchKernel with attributes: only programmatic stream serialization,
/// which the fake accepts for kernels whose PTX waits for the grids before
/// them (griddepcontrol.wait; without it a real GPU would race). The
/// emulator runs launches in stream order, so the attribute changes nothing
/// else.
FAKE_EXPORT CUresult cuLaunchKernelEx(const CUlaunchConfig *config, CUfunction function, void **params,
                                      void **extra) {
  {
    State &s = state();
    Lock lock(s.mutex);
    if (!config || (config->numAttrs && !config->attrs)) {
      complain("cuLaunchKernelEx: config %p with %u attributes at %p", (const void *)config,
               config ? config->numAttrs : 0u, config ? (const void *)config->attrs : nullptr);
      return CUDA_ERROR_INVALID_VALUE;
    }
    for (unsigned i = 0; i < config->numAttrs; ++i) {
      const CUlaunchAttribute &attribute = config->attrs[i];
      if (attribute.id != CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION) {
        complain("cuLaunchKernelEx: launch attribute %d is not emulated", attribute.id);
        return failOnStream(config->hStream, CUDA_ERROR_INVALID_VALUE);
      }
      if (attribute.value.programmaticStreamSerializationAllowed && s.functions.count(function) &&
          !function->module->waiting.count(function->name)) {
        complain("cuLaunchKernelEx: programmatic launch of %s, whose PTX does not wait for the grids before it "
                 "(griddepcontrol.wait): a race on a GPU",
                 function->name.c_str());
        return failOnStream(config->hStream, CUDA_ERROR_INVALID_VALUE);
      }
    }
  }
  return cuLaunchKernel(function, config->gridDimX, config->gridDimY, config->gridDimZ, config->blockDimX,
                        config->blockDimY, config->blockDimZ, config->sharedMemBytes, config->hStream, params,
                        extra);
}

FAKE_EXPORT CUresult cuStreamCreate(CUstream *stream, unsigned flags) {
  State &s = state();
  Lock lock(s.mutex);
  if (CUresult result = needContext("cuStreamCreate"))
    return result;
  if (!stream || (flags & ~CU_STREAM_NON_BLOCKING))
    return CUDA_ERROR_INVALID_VALUE;
  auto created = new CUstream_st();
  created->flags = flags;
  s.streams.insert(created);
  *stream = created;
  return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuStreamDestroy_v2(CUstream stream) {
  State &s = state();
  Lock lock(s.mutex);
  if (CUresult result = needContext("cuStreamDestroy"))
    return result;
  if (!s.streams.count(stream)) {
    complain("cuStreamDestroy: unknown stream %p", (void *)stream);
    return CUDA_ERROR_INVALID_HANDLE;
  }
  if (stream->capturing)
    --s.capturing;
  s.streams.erase(stream);
  delete stream;
  return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuStreamSynchronize(CUstream stream) {
  Lock lock(state().mutex);
  if (CUresult result = needContext("cuStreamSynchronize"))
    return result;
  if (stream && !state().streams.count(stream)) {
    complain("cuStreamSynchronize: unknown stream %p", (void *)stream);
    return CUDA_ERROR_INVALID_HANDLE;
  }
  if (CUresult result = refuseWhileCapturing("cuStreamSynchronize"))
    return result;
  return CUDA_SUCCESS; // the work ran at enqueue time
}

FAKE_EXPORT CUresult cuStreamBeginCapture_v2(CUstream stream, int mode) {
  State &s = state();
  Lock lock(s.mutex);
  if (CUresult result = needContext("cuStreamBeginCapture"))
    return result;
  if (!stream) {
    complain("cuStreamBeginCapture: the legacy (null) stream cannot be captured");
    return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  }
  if (!s.streams.count(stream)) {
    complain("cuStreamBeginCapture: unknown stream %p", (void *)stream);
    return CUDA_ERROR_INVALID_HANDLE;
  }
  if (mode < 0 || mode > 2)
    return CUDA_ERROR_INVALID_VALUE;
  if (stream->capturing) {
    complain("cuStreamBeginCapture: the stream is already capturing");
    return CUDA_ERROR_ILLEGAL_STATE;
  }
  stream->capturing = true;
  stream->invalidated = false;
  stream->recorded.clear();
  ++s.capturing;
  return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuStreamEndCapture(CUstream stream, CUgraph *graph) {
  State &s = state();
  Lock lock(s.mutex);
  if (CUresult result = needContext("cuStreamEndCapture"))
    return result;
  if (!graph)
    return CUDA_ERROR_INVALID_VALUE;
  if (!stream || !s.streams.count(stream)) {
    complain("cuStreamEndCapture: unknown stream %p", (void *)stream);
    return CUDA_ERROR_INVALID_HANDLE;
  }
  if (!stream->capturing) {
    complain("cuStreamEndCapture: the stream is not capturing");
    return CUDA_ERROR_ILLEGAL_STATE;
  }
  stream->capturing = false;
  --s.capturing;
  std::vector<Operation> recorded = std::move(stream->recorded);
  stream->recorded.clear();
  if (stream->invalidated) {
    stream->invalidated = false;
    *graph = nullptr;
    complain("cuStreamEndCapture: the capture was invalidated by an earlier error");
    return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
  }
  auto created = new CUgraph_st();
  created->operations = std::move(recorded);
  s.graphs.insert(created);
  *graph = created;
  return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuGraphInstantiateWithFlags(CUgraphExec *exec, CUgraph graph, unsigned long long flags) {
  State &s = state();
  Lock lock(s.mutex);
  if (CUresult result = needContext("cuGraphInstantiateWithFlags"))
    return result;
  if (!exec)
    return CUDA_ERROR_INVALID_VALUE;
  if (!s.graphs.count(graph)) {
    complain("cuGraphInstantiateWithFlags: unknown graph %p", (void *)graph);
    return CUDA_ERROR_INVALID_VALUE;
  }
  (void)flags;
  auto created = new CUgraphExec_st();
  created->operations = graph->operations;
  s.execs.insert(created);
  *exec = created;
  return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuGraphLaunch(CUgraphExec exec, CUstream stream) {
  State &s = state();
  Lock lock(s.mutex);
  if (CUresult result = needContext("cuGraphLaunch"))
    return result;
  if (CUresult result = checkStream(stream, "cuGraphLaunch"))
    return result;
  if (!s.execs.count(exec)) {
    complain("cuGraphLaunch: unknown executable graph %p", (void *)exec);
    return failOnStream(stream, CUDA_ERROR_INVALID_VALUE);
  }
  // Launched into a capture: recorded as one operation (a child graph).
  std::vector<Operation> operations = exec->operations;
  return enqueue(stream, [operations]() -> CUresult {
    State &st = state();
    ++st.stats.graphLaunches;
    for (const Operation &op : operations) {
      ++st.stats.replayed;
      if (CUresult result = op())
        return result;
    }
    return CUDA_SUCCESS;
  });
}

FAKE_EXPORT CUresult cuGraphExecDestroy(CUgraphExec exec) {
  State &s = state();
  Lock lock(s.mutex);
  if (!s.execs.count(exec)) {
    complain("cuGraphExecDestroy: unknown executable graph %p", (void *)exec);
    return CUDA_ERROR_INVALID_VALUE;
  }
  s.execs.erase(exec);
  delete exec;
  return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuGraphDestroy(CUgraph graph) {
  State &s = state();
  Lock lock(s.mutex);
  if (!s.graphs.count(graph)) {
    complain("cuGraphDestroy: unknown graph %p", (void *)graph);
    return CUDA_ERROR_INVALID_VALUE;
  }
  s.graphs.erase(graph);
  delete graph;
  return CUDA_SUCCESS;
}

// ---- cuBLASLt ----

FAKE_EXPORT cublasStatus_t cublasLtCreate(cublasLtHandle_t *handle) {
  if (!handle)
    return CUBLAS_STATUS_INVALID_VALUE;
  *handle = new cublasLtContext();
  return CUBLAS_STATUS_SUCCESS;
}

FAKE_EXPORT cublasStatus_t cublasLtDestroy(cublasLtHandle_t handle) {
  if (!handle)
    return CUBLAS_STATUS_NOT_INITIALIZED;
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}

FAKE_EXPORT const char *cublasLtGetStatusString(cublasStatus_t status) {
  switch (status) {
  case CUBLAS_STATUS_SUCCESS:
    return "CUBLAS_STATUS_SUCCESS";
  case CUBLAS_STATUS_NOT_INITIALIZED:
    return "CUBLAS_STATUS_NOT_INITIALIZED";
  case CUBLAS_STATUS_ALLOC_FAILED:
    return "CUBLAS_STATUS_ALLOC_FAILED";
  case CUBLAS_STATUS_INVALID_VALUE:
    return "CUBLAS_STATUS_INVALID_VALUE";
  case CUBLAS_STATUS_ARCH_MISMATCH:
    return "CUBLAS_STATUS_ARCH_MISMATCH";
  case CUBLAS_STATUS_MAPPING_ERROR:
    return "CUBLAS_STATUS_MAPPING_ERROR";
  case CUBLAS_STATUS_EXECUTION_FAILED:
    return "CUBLAS_STATUS_EXECUTION_FAILED";
  case CUBLAS_STATUS_INTERNAL_ERROR:
    return "CUBLAS_STATUS_INTERNAL_ERROR";
  case CUBLAS_STATUS_NOT_SUPPORTED:
    return "CUBLAS_STATUS_NOT_SUPPORTED";
  case CUBLAS_STATUS_LICENSE_ERROR:
    return "CUBLAS_STATUS_LICENSE_ERROR";
  default:
    return "<unknown>";
  }
}

FAKE_EXPORT cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *desc, int computeType, int scaleType) {
  if (!desc)
    return CUBLAS_STATUS_INVALID_VALUE;
  if (computeType != CUBLAS_COMPUTE_32F || scaleType != CUDA_R_32F) {
    complain("cublasLtMatmulDescCreate: compute type %d / scale type %d; only CUBLAS_COMPUTE_32F / CUDA_R_32F "
             "are emulated",
             computeType, scaleType);
    return CUBLAS_STATUS_NOT_SUPPORTED;
  }
  *desc = new cublasLtMatmulDescOpaque();
  return CUBLAS_STATUS_SUCCESS;
}

FAKE_EXPORT cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t desc) {
  if (!desc)
    return CUBLAS_STATUS_INVALID_VALUE;
  delete desc;
  return CUBLAS_STATUS_SUCCESS;
}

FAKE_EXPORT cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t desc, int attribute,
                                                          const void *value, size_t bytes) {
  if (!desc || !value)
    return CUBLAS_STATUS_INVALID_VALUE;
  auto wrongSize = [&](size_t expected) {
    complain("cublasLtMatmulDescSetAttribute: attribute %d takes %zu bytes, got %zu", attribute, expected, bytes);
    return CUBLAS_STATUS_INVALID_VALUE;
  };
  switch (attribute) {
  case CUBLASLT_MATMUL_DESC_TRANSA:
  case CUBLASLT_MATMUL_DESC_TRANSB: {
    if (bytes != sizeof(int32_t))
      return wrongSize(sizeof(int32_t));
    int32_t op;
    std::memcpy(&op, value, sizeof(op));
    if (op != CUBLAS_OP_N && op != CUBLAS_OP_T) {
      complain("cublasLtMatmulDescSetAttribute: operation %d is not N or T", op);
      return CUBLAS_STATUS_INVALID_VALUE;
    }
    (attribute == CUBLASLT_MATMUL_DESC_TRANSA ? desc->transA : desc->transB) = op;
    return CUBLAS_STATUS_SUCCESS;
  }
  case CUBLASLT_MATMUL_DESC_EPILOGUE: {
    if (bytes != sizeof(uint32_t))
      return wrongSize(sizeof(uint32_t));
    uint32_t epilogue;
    std::memcpy(&epilogue, value, sizeof(epilogue));
    if (epilogue != CUBLASLT_EPILOGUE_DEFAULT && epilogue != CUBLASLT_EPILOGUE_BIAS) {
      complain("cublasLtMatmulDescSetAttribute: epilogue %u is not emulated (DEFAULT or BIAS)", epilogue);
      return CUBLAS_STATUS_INVALID_VALUE;
    }
    desc->epilogue = epilogue;
    return CUBLAS_STATUS_SUCCESS;
  }
  case CUBLASLT_MATMUL_DESC_BIAS_POINTER:
    if (bytes != sizeof(void *))
      return wrongSize(sizeof(void *));
    std::memcpy(&desc->bias, value, sizeof(void *));
    return CUBLAS_STATUS_SUCCESS;
  case CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE: {
    if (bytes != sizeof(int32_t))
      return wrongSize(sizeof(int32_t));
    int32_t type;
    std::memcpy(&type, value, sizeof(type));
    if (type != -1 && !typeBytes(type)) {
      complain("cublasLtMatmulDescSetAttribute: bias data type %d is not f32, f16 or bf16", type);
      return CUBLAS_STATUS_INVALID_VALUE;
    }
    desc->biasType = type;
    return CUBLAS_STATUS_SUCCESS;
  }
  case CUBLASLT_MATMUL_DESC_A_SCALE_POINTER:
  case CUBLASLT_MATMUL_DESC_B_SCALE_POINTER:
    if (bytes != sizeof(void *))
      return wrongSize(sizeof(void *));
    std::memcpy(attribute == CUBLASLT_MATMUL_DESC_A_SCALE_POINTER ? &desc->aScale : &desc->bScale, value,
                sizeof(void *));
    return CUBLAS_STATUS_SUCCESS;
  case CUBLASLT_MATMUL_DESC_A_SCALE_MODE:
  case CUBLASLT_MATMUL_DESC_B_SCALE_MODE: {
    if (bytes != sizeof(int32_t))
      return wrongSize(sizeof(int32_t));
    int32_t mode;
    std::memcpy(&mode, value, sizeof(mode));
    if (mode != CUBLASLT_MATMUL_MATRIX_SCALE_SCALAR_32F && !isBlockScale(mode)) {
      complain("cublasLtMatmulDescSetAttribute: scale mode %d is not emulated (SCALAR_32F, VEC128_32F, "
               "BLK128x128_32F)",
               mode);
      return CUBLAS_STATUS_INVALID_VALUE;
    }
    (attribute == CUBLASLT_MATMUL_DESC_A_SCALE_MODE ? desc->aScaleMode : desc->bScaleMode) = mode;
    return CUBLAS_STATUS_SUCCESS;
  }
  default:
    complain("cublasLtMatmulDescSetAttribute: attribute %d is not emulated", attribute);
    return CUBLAS_STATUS_INVALID_VALUE;
  }
}

FAKE_EXPORT cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *layout, int dataType, uint64_t rows,
                                                      uint64_t cols, int64_t ld) {
  if (!layout)
    return CUBLAS_STATUS_INVALID_VALUE;
  if (!typeBytes(dataType)) {
    complain("cublasLtMatrixLayoutCreate: data type %d is not f32, f16, bf16 or e4m3", dataType);
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  if (ld < 0 || uint64_t(ld) < rows || ld == 0) {
    complain("cublasLtMatrixLayoutCreate: ld %lld < rows %llu", (long long)ld, (unsigned long long)rows);
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  auto created = new cublasLtMatrixLayoutOpaque();
  created->type = dataType;
  created->rows = rows;
  created->cols = cols;
  created->ld = ld;
  *layout = created;
  return CUBLAS_STATUS_SUCCESS;
}

FAKE_EXPORT cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t layout) {
  if (!layout)
    return CUBLAS_STATUS_INVALID_VALUE;
  delete layout;
  return CUBLAS_STATUS_SUCCESS;
}

FAKE_EXPORT cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *preference) {
  if (!preference)
    return CUBLAS_STATUS_INVALID_VALUE;
  *preference = new cublasLtMatmulPreferenceOpaque();
  return CUBLAS_STATUS_SUCCESS;
}

FAKE_EXPORT cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t preference) {
  if (!preference)
    return CUBLAS_STATUS_INVALID_VALUE;
  delete preference;
  return CUBLAS_STATUS_SUCCESS;
}

FAKE_EXPORT cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t preference,
                                                                int attribute, const void *value, size_t bytes) {
  if (!preference || !value)
    return CUBLAS_STATUS_INVALID_VALUE;
  if (attribute != CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES) {
    complain("cublasLtMatmulPreferenceSetAttribute: attribute %d is not emulated", attribute);
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  if (bytes != sizeof(uint64_t)) {
    complain("cublasLtMatmulPreferenceSetAttribute: MAX_WORKSPACE_BYTES takes 8 bytes, got %zu", bytes);
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  std::memcpy(&preference->maxWorkspace, value, sizeof(uint64_t));
  return CUBLAS_STATUS_SUCCESS;
}

FAKE_EXPORT cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc,
                                                          cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                                                          cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t d,
                                                          cublasLtMatmulPreference_t preference, int requested,
                                                          cublasLtMatmulHeuristicResult_t *results, int *returned) {
  if (!handle)
    return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!desc || !a || !b || !c || !d || !preference || requested <= 0 || !results || !returned)
    return CUBLAS_STATUS_INVALID_VALUE;
  *returned = 0;
  std::string why = unsupported(*desc, *a, *b, *c, *d);
  if (!why.empty()) {
    complain("cublasLtMatmulAlgoGetHeuristic: no algorithm: %s", why.c_str());
    return CUBLAS_STATUS_NOT_SUPPORTED;
  }
  std::memset(&results[0], 0, sizeof(results[0]));
  results[0].algo.data[0] = 0x66616b65; // "fake"
  results[0].workspaceSize = 0;
  results[0].state = CUBLAS_STATUS_SUCCESS;
  results[0].wavesCount = 1.0f;
  *returned = 1;
  return CUBLAS_STATUS_SUCCESS;
}

FAKE_EXPORT cublasStatus_t cublasLtMatmul(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, const void *alpha,
                                          const void *a, cublasLtMatrixLayout_t aLayout, const void *b,
                                          cublasLtMatrixLayout_t bLayout, const void *beta, const void *c,
                                          cublasLtMatrixLayout_t cLayout, void *d, cublasLtMatrixLayout_t dLayout,
                                          const cublasLtMatmulAlgo_t *algo, void *workspace, size_t workspaceBytes,
                                          CUstream stream) {
  (void)algo;
  (void)workspace;
  (void)workspaceBytes;
  State &s = state();
  Lock lock(s.mutex);
  if (!handle)
    return CUBLAS_STATUS_NOT_INITIALIZED;
  if (needContext("cublasLtMatmul") != CUDA_SUCCESS)
    return CUBLAS_STATUS_EXECUTION_FAILED;
  if (checkStream(stream, "cublasLtMatmul") != CUDA_SUCCESS)
    return CUBLAS_STATUS_INVALID_VALUE;
  auto fail = [&](cublasStatus_t status) {
    failOnStream(stream, CUDA_ERROR_INVALID_VALUE);
    return status;
  };
  if (!desc || !aLayout || !bLayout || !cLayout || !dLayout || !alpha || !beta) {
    complain("cublasLtMatmul: null descriptor, layout, alpha or beta");
    return fail(CUBLAS_STATUS_INVALID_VALUE);
  }
  std::string why = unsupported(*desc, *aLayout, *bLayout, *cLayout, *dLayout);
  if (!why.empty()) {
    complain("cublasLtMatmul: not supported: %s", why.c_str());
    return fail(CUBLAS_STATUS_NOT_SUPPORTED);
  }
  Gemm g;
  g.desc = *desc;
  g.a = *aLayout;
  g.b = *bLayout;
  g.c = *cLayout;
  g.d = *dLayout;
  std::memcpy(&g.alpha, alpha, sizeof(float));
  std::memcpy(&g.beta, beta, sizeof(float));
  g.pa = a;
  g.pb = b;
  g.pc = c;
  g.pd = d;
  if (g.d.rows && g.d.cols) {
    auto check = [&](const char *what, const void *pointer, size_t bytes) {
      if (bytes && !inAllocation(reinterpret_cast<uintptr_t>(pointer), bytes, /*pinnedToo=*/true)) {
        complain("cublasLtMatmul: %s [%p, +%zu) is not inside one allocation", what, pointer, bytes);
        return false;
      }
      return true;
    };
    uint64_t k = desc->transA == CUBLAS_OP_T ? g.a.rows : g.a.cols;
    if (!check("A", a, k ? span(g.a) : 0) || !check("B", b, k ? span(g.b) : 0) || !check("D", d, span(g.d)) ||
        (g.beta != 0.0f && !check("C", c, span(g.c))))
      return fail(CUBLAS_STATUS_INVALID_VALUE);
    if (g.desc.epilogue == CUBLASLT_EPILOGUE_BIAS &&
        !check("bias", g.desc.bias,
               size_t(g.d.rows) * typeBytes(g.desc.biasType < 0 ? g.d.type : g.desc.biasType)))
      return fail(CUBLAS_STATUS_INVALID_VALUE);
    // Scale tensors: FP8 only; block modes need one, 16-byte aligned.
    const bool fp8 = g.a.type == CUDA_R_8F_E4M3;
    for (int operand = 0; operand < 2; ++operand) {
      const void *scale = operand ? g.desc.bScale : g.desc.aScale;
      int32_t mode = operand ? g.desc.bScaleMode : g.desc.aScaleMode;
      const char *name = operand ? "B scale" : "A scale";
      if (!fp8 && scale) {
        complain("cublasLtMatmul: %s pointer with %s operands (scales are for FP8)", name, typeName(g.a.type));
        return fail(CUBLAS_STATUS_INVALID_VALUE);
      }
      if (isBlockScale(mode) && !scale) {
        complain("cublasLtMatmul: %s mode %d without a scale pointer", name, mode);
        return fail(CUBLAS_STATUS_INVALID_VALUE);
      }
      if (!scale)
        continue;
      if (reinterpret_cast<uintptr_t>(scale) % 16) {
        complain("cublasLtMatmul: %s pointer %p is not 16-byte aligned", name, scale);
        return fail(CUBLAS_STATUS_INVALID_VALUE);
      }
      int64_t outer = int64_t(operand ? g.d.cols : g.d.rows);
      if (!check(name, scale, size_t(blockScaleCount(mode, outer, int64_t(k))) * sizeof(float)))
        return fail(CUBLAS_STATUS_INVALID_VALUE);
    }
  }
  CUresult result = enqueue(stream, [g]() -> CUresult {
    runGemm(g);
    ++state().stats.matmuls;
    return CUDA_SUCCESS;
  });
  return result == CUDA_SUCCESS ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}

//===----------------------------------------------------------------------===//
// Signatures: every export has the type of its DriverApi / CublasLtApi slot.
//===----------------------------------------------------------------------===//

#define FAKE_CHECK_DRIVER(member, symbol)                                                                          \
  static_assert(std::is_same_v<decltype(DriverApi::member), decltype(&symbol)>, #symbol " has the wrong type");
#define FAKE_CHECK_LT(member)                                                                                      \
  static_assert(std::is_same_v<decltype(CublasLtApi::member), decltype(&member)>, #member " has the wrong type");
FAKE_CHECK_DRIVER(cuInit, cuInit)
FAKE_CHECK_DRIVER(cuDriverGetVersion, cuDriverGetVersion)
FAKE_CHECK_DRIVER(cuGetErrorString, cuGetErrorString)
FAKE_CHECK_DRIVER(cuDeviceGetCount, cuDeviceGetCount)
FAKE_CHECK_DRIVER(cuDeviceGet, cuDeviceGet)
FAKE_CHECK_DRIVER(cuDeviceGetName, cuDeviceGetName)
FAKE_CHECK_DRIVER(cuDeviceTotalMem, cuDeviceTotalMem_v2)
FAKE_CHECK_DRIVER(cuDeviceGetAttribute, cuDeviceGetAttribute)
FAKE_CHECK_DRIVER(cuDevicePrimaryCtxRetain, cuDevicePrimaryCtxRetain)
FAKE_CHECK_DRIVER(cuDevicePrimaryCtxRelease, cuDevicePrimaryCtxRelease_v2)
FAKE_CHECK_DRIVER(cuCtxSetCurrent, cuCtxSetCurrent)
FAKE_CHECK_DRIVER(cuMemGetInfo, cuMemGetInfo_v2)
FAKE_CHECK_DRIVER(cuMemAlloc, cuMemAlloc_v2)
FAKE_CHECK_DRIVER(cuMemFree, cuMemFree_v2)
FAKE_CHECK_DRIVER(cuMemAllocHost, cuMemAllocHost_v2)
FAKE_CHECK_DRIVER(cuMemFreeHost, cuMemFreeHost)
FAKE_CHECK_DRIVER(cuMemcpyHtoD, cuMemcpyHtoD_v2)
FAKE_CHECK_DRIVER(cuMemcpyDtoH, cuMemcpyDtoH_v2)
FAKE_CHECK_DRIVER(cuMemcpyHtoDAsync, cuMemcpyHtoDAsync_v2)
FAKE_CHECK_DRIVER(cuMemcpyDtoHAsync, cuMemcpyDtoHAsync_v2)
FAKE_CHECK_DRIVER(cuMemsetD8Async, cuMemsetD8Async)
FAKE_CHECK_DRIVER(cuModuleLoadDataEx, cuModuleLoadDataEx)
FAKE_CHECK_DRIVER(cuModuleUnload, cuModuleUnload)
FAKE_CHECK_DRIVER(cuModuleGetFunction, cuModuleGetFunction)
FAKE_CHECK_DRIVER(cuLaunchKernel, cuLaunchKernel)
FAKE_CHECK_DRIVER(cuLaunchKernelEx, cuLaunchKernelEx)
FAKE_CHECK_DRIVER(cuStreamCreate, cuStreamCreate)
FAKE_CHECK_DRIVER(cuStreamDestroy, cuStreamDestroy_v2)
FAKE_CHECK_DRIVER(cuStreamSynchronize, cuStreamSynchronize)
FAKE_CHECK_DRIVER(cuStreamBeginCapture, cuStreamBeginCapture_v2)
FAKE_CHECK_DRIVER(cuStreamEndCapture, cuStreamEndCapture)
FAKE_CHECK_DRIVER(cuGraphInstantiateWithFlags, cuGraphInstantiateWithFlags)
FAKE_CHECK_DRIVER(cuGraphLaunch, cuGraphLaunch)
FAKE_CHECK_DRIVER(cuGraphExecDestroy, cuGraphExecDestroy)
FAKE_CHECK_DRIVER(cuGraphDestroy, cuGraphDestroy)
FAKE_CHECK_LT(cublasLtCreate)
FAKE_CHECK_LT(cublasLtDestroy)
FAKE_CHECK_LT(cublasLtGetStatusString)
FAKE_CHECK_LT(cublasLtMatmulDescCreate)
FAKE_CHECK_LT(cublasLtMatmulDescDestroy)
FAKE_CHECK_LT(cublasLtMatmulDescSetAttribute)
FAKE_CHECK_LT(cublasLtMatrixLayoutCreate)
FAKE_CHECK_LT(cublasLtMatrixLayoutDestroy)
FAKE_CHECK_LT(cublasLtMatmulPreferenceCreate)
FAKE_CHECK_LT(cublasLtMatmulPreferenceDestroy)
FAKE_CHECK_LT(cublasLtMatmulPreferenceSetAttribute)
FAKE_CHECK_LT(cublasLtMatmulAlgoGetHeuristic)
FAKE_CHECK_LT(cublasLtMatmul)
