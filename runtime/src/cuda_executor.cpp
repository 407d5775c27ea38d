//===- cuda_executor.cpp - Runs a CUDA artifact's step program ------------===//
#include "qwen_rt/cuda_executor.h"

#include "qwen_rt/error.h"
#include "qwen_rt/kv_cache.h"
#include "qwen_rt/state_pool.h"
#include "qwen_rt/vision.h"
#include "qwen_rt/weights.h"

#include <cstdio>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace qwen::rt {

using namespace cuda;

namespace {
constexpr uint64_t kDeviceAlign = 256;
/// cuBLASLt workspace: enough for its split-K and stream-K kernels on H100.
constexpr uint64_t kGemmWorkspaceBytes = 32ull << 20;
/// Graph shapes kept at once; beyond that, steps run eagerly.
constexpr size_t kMaxGraphs = 256;
/// Split decode: (token, split) pairs of partial state per multiprocessor.
constexpr int64_t kPartialTokenSplitsPerSM = 4;

uint64_t alignDevice(uint64_t v) { return (v + kDeviceAlign - 1) / kDeviceAlign * kDeviceAlign; }

int cudaDataType(DType t) {
  switch (t) {
  case DType::F32: return CUDA_R_32F;
  case DType::F16: return CUDA_R_16F;
  case DType::BF16: return CUDA_R_16BF;
  case DType::F8E4M3: return CUDA_R_8F_E4M3;
  default: throw Error(std::string("cuBLASLt operands are f32, bf16, f16 or f8e4m3, not ") + dtypeName(t));
  }
}
} // namespace

uint64_t CudaMemorySizes::weightBytes(const Artifact &art) {
  uint64_t total = 0;
  for (const WeightSpec &w : art.weights())
    total += alignDevice(w.nbytes());
  return total;
}

uint64_t CudaMemorySizes::gemmWorkspaceBytes() { return kGemmWorkspaceBytes; }

/// A GEMM at one row count: its cuBLASLt descriptors and chosen algorithm.
struct CudaExecutor::GemmPlan {
  const CublasLt *blas = nullptr;
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr, d = nullptr;
  cublasLtMatmulAlgo_t algo{};
  uint64_t workspace = 0;
  ~GemmPlan() {
    const CublasLtApi &api = blas->api();
    for (cublasLtMatrixLayout_t l : {a, b, c, d})
      if (l)
        api.cublasLtMatrixLayoutDestroy(l);
    if (desc)
      api.cublasLtMatmulDescDestroy(desc);
  }
};

//===----------------------------------------------------------------------===//
// Setup
//===----------------------------------------------------------------------===//

CudaExecutor::CudaExecutor(const Artifact &artifact, const CudaExecutorOptions &options)
    : Executor(artifact), Driver(CudaDriver::get()), Blas(CublasLt::get()), UseGraphs(options.graphs),
      Decode(options.decode), Programmatic(options.programmaticLaunch && artifact.target().programmaticLaunch),
      DeviceSampling(options.deviceSampling), MaxPages(options.maxPagesPerSequence) {
  const int ordinal = options.device;
  if (Decode.splits < 0)
    throw Error("the decode split count must be >= 1 (0: automatic), got " + std::to_string(Decode.splits));
  const DriverApi &api = Driver.api();
  if (Driver.devices().empty())
    throw Error("the CUDA driver reports no GPU; this artifact (" + Art.target().arch + ") needs one");
  if (ordinal < 0 || size_t(ordinal) >= Driver.devices().size())
    throw Error("there is no CUDA device " + std::to_string(ordinal) + " (this machine has " +
                std::to_string(Driver.devices().size()) + ")");
  Device = Driver.devices()[size_t(ordinal)];
  // PTX for sm_XY runs on devices of compute capability X.Y and newer.
  const std::string &arch = Art.target().arch;
  int want = 0;
  if (arch.rfind("sm_", 0) != 0 || !(std::istringstream(arch.substr(3)) >> want))
    throw Error("artifact " + Art.dir() + ": target.arch \"" + arch + "\" is not of the form sm_XY");
  if (Device.computeMajor * 10 + Device.computeMinor < want)
    throw Error("artifact " + Art.dir() + " was compiled for " + arch + ", but CUDA device " +
                std::to_string(ordinal) + " (" + Device.name + ") is " + Device.arch());

  try {
    CUdevice dev = 0;
    Driver.check(api.cuDeviceGet(&dev, ordinal), "cuDeviceGet");
    Driver.check(api.cuDevicePrimaryCtxRetain(&Context, dev), "cuDevicePrimaryCtxRetain");
    Driver.check(api.cuCtxSetCurrent(Context), "cuCtxSetCurrent");
    Driver.check(api.cuStreamCreate(&Stream, CU_STREAM_NON_BLOCKING), "cuStreamCreate");

    loadModule();
    Blas.check(Blas.api().cublasLtCreate(&BlasHandle), "cublasLtCreate");
  } catch (...) {
    releaseAll();
    throw;
  }
}

void CudaExecutor::makeCurrent() const {
  Driver.check(Driver.api().cuCtxSetCurrent(Context), "cuCtxSetCurrent");
}

std::string CudaExecutor::deviceName() const {
  return "cuda:" + std::to_string(Device.ordinal) + " " + Device.name + " (" + Device.arch() + ")";
}

CudaExecutor::~CudaExecutor() { releaseAll(); }

namespace {
std::string readBinaryFile(const fs::path &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return {};
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}
} // namespace

void CudaExecutor::loadModule() {
  const DriverApi &api = Driver.api();
  char log[8192] = {};
  int options[] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
  void *values[] = {log, reinterpret_cast<void *>(uintptr_t(sizeof(log)))};
  // The cubin needs no JIT compilation; it only runs on its own architecture
  // family, so any failure falls back to the PTX, which the driver compiles.
  if (!Art.target().cubin.empty()) {
    std::string cubin = readBinaryFile(fs::path(Art.dir()) / Art.target().cubin);
    if (!cubin.empty() && api.cuModuleLoadDataEx(&Module, cubin.data(), 0, nullptr, nullptr) == CUDA_SUCCESS)
      return;
    Module = nullptr;
  }
  fs::path ptxPath = fs::path(Art.dir()) / Art.target().object;
  std::string ptx = readBinaryFile(ptxPath);
  if (ptx.empty())
    throw Error("artifact " + Art.dir() + " has no kernel module " + Art.target().object +
                "; recompile with qwen-compile --target=cuda");
  CUresult loaded = api.cuModuleLoadDataEx(&Module, ptx.c_str(), 2, options, values);
  if (loaded != CUDA_SUCCESS) {
    std::string jit(log);
    try {
      Driver.check(loaded, "cuModuleLoadDataEx");
    } catch (const Error &e) {
      throw Error(std::string(e.what()) + " loading " + ptxPath.string() + (jit.empty() ? "" : ":\n" + jit));
    }
  }
}

void CudaExecutor::releaseAll() noexcept {
  const DriverApi &api = Driver.api();
  // Errors while tearing down are ignored: there is nothing left to protect.
  if (Stream)
    api.cuStreamSynchronize(Stream);
  for (auto &entry : Graphs)
    if (entry.second.exec)
      api.cuGraphExecDestroy(entry.second.exec);
  Graphs.clear();
  GemmPlans.clear();
  if (BlasHandle)
    Blas.api().cublasLtDestroy(BlasHandle);
  BlasHandle = nullptr;
  for (CUdeviceptr *p : {&WeightBlock, &Arena, &Keys, &Values, &Conv, &Recurrent, &Workspace, &Ids, &Partials, &TopLogits, &TopIds}) {
    if (*p)
      api.cuMemFree(*p);
    *p = 0;
  }
  if (Staging)
    api.cuMemFreeHost(Staging);
  Staging = nullptr;
  if (Module)
    api.cuModuleUnload(Module);
  Module = nullptr;
  if (Stream)
    api.cuStreamDestroy(Stream);
  Stream = nullptr;
  if (Context)
    api.cuDevicePrimaryCtxRelease(Device.ordinal);
  Context = nullptr;
}

std::pair<uint64_t, uint64_t> CudaExecutor::memoryInfo() const {
  size_t free = 0, total = 0;
  Driver.check(Driver.api().cuMemGetInfo(&free, &total), "cuMemGetInfo");
  return {free, total};
}

uint8_t *CudaExecutor::allocate(const ArenaLayout &layout, KVCache &kv, StatePool &states) {
  const DriverApi &api = Driver.api();
  Layout = layout;
  StateSpec = states.spec();
  NumStateSlots = states.numSlots();
  MaxRows = std::max<int64_t>(layout.maxDims[SymR], 1);
  CudaMemorySizes sizes;
  sizes.weights = CudaMemorySizes::weightBytes(Art);
  sizes.arena = layout.total;
  sizes.kvOneArray = Art.kvCache().bytesPerPageOneArray() * uint64_t(kv.numPages());
  sizes.stateConv = StateSpec.convBytesPerSlot() * uint64_t(states.numSlots());
  sizes.stateRecurrent = StateSpec.recurrentBytesPerSlot() * uint64_t(states.numSlots());
  sizes.workspace = CudaMemorySizes::gemmWorkspaceBytes();
  const uint64_t inputBytes = layout.inputBytes;
  auto [free, total] = memoryInfo();
  if (sizes.total() > free)
    throw Error("this model needs " + formatBytes(sizes.total()) + " of GPU memory (weights " +
                formatBytes(sizes.weights) + ", KV cache " + formatBytes(2 * sizes.kvOneArray) +
                (sizes.stateConv + sizes.stateRecurrent
                     ? ", linear-attention state " + formatBytes(sizes.stateConv + sizes.stateRecurrent)
                     : std::string()) +
                ", activations " + formatBytes(sizes.arena) + ", GEMM workspace " + formatBytes(sizes.workspace) +
                "), but " + Device.name + " has " + formatBytes(free) + " free of " + formatBytes(total) +
                "; lower --max-context, --max-sequences, --kv-pages or --max-batch-tokens");
  auto alloc = [&](CUdeviceptr &p, uint64_t bytes, const char *what) {
    if (!bytes)
      return;
    try {
      Driver.check(api.cuMemAlloc(&p, bytes), "cuMemAlloc");
    } catch (const Error &e) {
      throw Error(std::string(e.what()) + " allocating " + formatBytes(bytes) + " for " + what);
    }
  };
  WeightOffsets.clear();
  uint64_t offset = 0;
  for (const WeightSpec &w : Art.weights()) {
    WeightOffsets.push_back(offset);
    offset += alignDevice(w.nbytes());
  }
  if (offset != sizes.weights)
    throw Error("internal error: the weight block is " + std::to_string(offset) + " bytes, the plan says " +
                std::to_string(sizes.weights));
  alloc(WeightBlock, sizes.weights, "the weights");
  alloc(Arena, sizes.arena, "the activation arena");
  alloc(Keys, sizes.kvOneArray, "the KV cache keys");
  alloc(Values, sizes.kvOneArray, "the KV cache values");
  alloc(Conv, sizes.stateConv, "the linear-attention conv state");
  alloc(Recurrent, sizes.stateRecurrent, "the linear-attention recurrent state");
  alloc(Workspace, sizes.workspace, "the cuBLASLt workspace");
  WorkspaceBytes = sizes.workspace;
  if (inputBytes > sizes.arena)
    throw Error("internal error: the step inputs do not fit the arena");
  InputBytes = inputBytes;
  void *staging = nullptr;
  Driver.check(api.cuMemAllocHost(&staging, std::max<uint64_t>(inputBytes, 1)), "cuMemAllocHost");
  Staging = static_cast<uint8_t *>(staging);
  // Zero everything the kernels may read before writing: the KV pages of a
  // fresh cache are never read past a sequence's length, but NaN garbage in
  // an unused block-table row or state slot must not exist either.
  for (auto [p, bytes] : {std::pair{Keys, sizes.kvOneArray}, std::pair{Values, sizes.kvOneArray},
                          std::pair{Conv, sizes.stateConv}, std::pair{Recurrent, sizes.stateRecurrent},
                          std::pair{Arena, sizes.arena}})
    if (bytes)
      Driver.check(api.cuMemsetD8Async(p, 0, bytes, Stream), "cuMemsetD8Async");
  Driver.check(api.cuStreamSynchronize(Stream), "cuStreamSynchronize");
  // Host memory only for the inputs (pinned) and the logits rows.
  HostRows = HostBuffer(uint64_t(MaxRows) * uint64_t(Art.outputWidth()) * sizeof(float),
                        "the logits copied from the GPU");
  return Staging;
}

BoundWeights CudaExecutor::bindWeights(WeightStore weights, bool progress) {
  {
    // The host copy is only the source of the upload: freed right after it.
    WeightStore host = std::move(weights);
    for (size_t i = 0; i < Art.weights().size(); ++i)
      uploadWeight(i, host.data(i), Art.weights()[i].nbytes());
  }
  const uint64_t bytes = CudaMemorySizes::weightBytes(Art);
  if (progress)
    std::fprintf(stderr, "uploaded %s of weights to %s\n", formatBytes(bytes).c_str(), deviceName().c_str());
  bindProgram();
  return {bytes, 0};
}

void CudaExecutor::uploadWeight(size_t index, const void *host, uint64_t bytes) {
  if (index >= WeightOffsets.size() || bytes != Art.weights()[index].nbytes())
    throw Error("internal error: weight " + std::to_string(index) + " does not match the device layout");
  Driver.check(Driver.api().cuMemcpyHtoD(WeightBlock + WeightOffsets[index], host, bytes), "cuMemcpyHtoD");
}

void CudaExecutor::bindProgram() {
  const DriverApi &api = Driver.api();
  const std::vector<uint64_t> &inputOffsets = Layout.artifactInputOffsets, &bufferOffsets = Layout.bufferOffsets;
  const uint64_t outputOffset = Layout.outputOffset;
  const int64_t maxRows = MaxRows;
  auto setDecodeParams = [&](Launch &launch) {
    for (void *&slot : launch.slots)
      launch.decodeParams.push_back(&slot);
    launch.decodeParams.push_back(&PartialsSlot);
    for (int64_t &d : Dims)
      launch.decodeParams.push_back(&d);
    launch.decodeParams.push_back(&Splits);
  };
  int64_t partialFloats = 0;
  for (const ProgramEntry &entry : Art.program())
    partialFloats = std::max(partialFloats, entry.decode.partialFloats);
  if (partialFloats > 0 && Decode.variants) {
    PartialTokenSplits = kPartialTokenSplitsPerSM * std::max(Device.multiprocessors, 1);
    Driver.check(api.cuMemAlloc(&Partials, uint64_t(PartialTokenSplits * partialFloats) * sizeof(float)),
                 "cuMemAlloc");
    PartialsSlot = reinterpret_cast<void *>(uintptr_t(Partials));
  }
  if (!Art.argmaxKernel().kernel.empty()) {
    const std::string &name = Art.argmaxKernel().kernel;
    Driver.check(api.cuModuleGetFunction(&ArgmaxLaunch.function, Module, name.c_str()),
                 ("cuModuleGetFunction(" + name + ")").c_str());
    Driver.check(api.cuMemAlloc(&Ids, uint64_t(std::max<int64_t>(maxRows, 1)) * sizeof(int32_t)), "cuMemAlloc");
    ArgmaxLaunch.argBase = {reinterpret_cast<char *>(uintptr_t(Arena + outputOffset)),
                            reinterpret_cast<char *>(uintptr_t(Ids))};
    ArgmaxLaunch.setParams(Dims);
  }
  if (!Art.topKKernel().kernel.empty()) {
    const std::string &name = Art.topKKernel().kernel;
    Driver.check(api.cuModuleGetFunction(&TopKLaunch.function, Module, name.c_str()),
                 ("cuModuleGetFunction(" + name + ")").c_str());
    const uint64_t candidates = uint64_t(std::max<int64_t>(maxRows, 1) * Art.topKCount());
    Driver.check(api.cuMemAlloc(&TopLogits, candidates * sizeof(float)), "cuMemAlloc");
    Driver.check(api.cuMemAlloc(&TopIds, candidates * sizeof(int32_t)), "cuMemAlloc");
    TopKLaunch.argBase = {reinterpret_cast<char *>(uintptr_t(Arena + outputOffset)),
                          reinterpret_cast<char *>(uintptr_t(TopLogits)),
                          reinterpret_cast<char *>(uintptr_t(TopIds))};
    TopKLaunch.setParams(Dims);
  }
  Launches.clear();
  Launches.reserve(Art.program().size()); // params point into the elements: no reallocation
  for (const ProgramEntry &entry : Art.program()) {
    Launches.emplace_back();
    Launch &launch = Launches.back();
    for (const ArgRef &a : entry.args) {
      CUdeviceptr p = 0;
      switch (a.kind) {
      case ArgRef::Input: p = Arena + inputOffsets.at(size_t(a.index)); break;
      case ArgRef::Weight: p = WeightBlock + WeightOffsets.at(size_t(Art.weightIndex(a.index))); break;
      case ArgRef::Buffer: p = Arena + bufferOffsets.at(size_t(Art.bufferIndex(a.index))); break;
      case ArgRef::KV: p = a.index == 0 ? Keys : Values; break;
      case ArgRef::State: p = a.index == 0 ? Conv : Recurrent; break;
      }
      launch.argBase.push_back(reinterpret_cast<char *>(uintptr_t(p)));
    }
    if (entry.isGemm) {
      // An FP8 GEMM's decode variant: a generated kernel on the arguments
      // it names, then the step sizes.
      if (!entry.decode.kernel.empty() && Decode.variants) {
        Driver.check(api.cuModuleGetFunction(&launch.decodeFunction, Module, entry.decode.kernel.c_str()),
                     ("cuModuleGetFunction(" + entry.decode.kernel + ")").c_str());
        for (int a : entry.decode.args)
          launch.slots.push_back(launch.argBase.at(size_t(a)));
        for (void *&slot : launch.slots)
          launch.decodeParams.push_back(&slot);
        for (int64_t &d : Dims)
          launch.decodeParams.push_back(&d);
      }
      continue;
    }
    Driver.check(api.cuModuleGetFunction(&launch.function, Module, entry.kernel.c_str()),
                 ("cuModuleGetFunction(" + entry.kernel + ")").c_str());
    if (!entry.decode.kernel.empty() && Decode.variants) {
      Driver.check(api.cuModuleGetFunction(&launch.decodeFunction, Module, entry.decode.kernel.c_str()),
                   ("cuModuleGetFunction(" + entry.decode.kernel + ")").c_str());
      Driver.check(api.cuModuleGetFunction(&launch.combineFunction, Module, entry.decode.combine.kernel.c_str()),
                   ("cuModuleGetFunction(" + entry.decode.combine.kernel + ")").c_str());
    }
    launch.setParams(Dims);
    if (launch.decodeFunction)
      setDecodeParams(launch);
  }
}

//===----------------------------------------------------------------------===//
// State slots
//===----------------------------------------------------------------------===//

void CudaExecutor::zeroState(int which, uint64_t offset, uint64_t bytes) {
  CUdeviceptr base = which == 0 ? Conv : Recurrent;
  if (!base || !bytes)
    return;
  Driver.check(Driver.api().cuMemsetD8Async(base + offset, 0, bytes, Stream), "cuMemsetD8Async");
  Driver.check(Driver.api().cuStreamSynchronize(Stream), "cuStreamSynchronize");
}

void CudaExecutor::copyState(int which, uint64_t from, uint64_t to, uint64_t bytes) {
  CUdeviceptr base = which == 0 ? Conv : Recurrent;
  if (!base || !bytes)
    return;
  // Ordered with the steps on the one stream: no synchronization needed.
  Driver.check(Driver.api().cuMemcpyDtoDAsync(base + to, base + from, bytes, Stream), "cuMemcpyDtoDAsync");
}

std::vector<uint8_t> CudaExecutor::readState(int which, uint64_t offset, uint64_t bytes) const {
  std::vector<uint8_t> out(bytes);
  CUdeviceptr base = which == 0 ? Conv : Recurrent;
  if (base && bytes) {
    Driver.check(Driver.api().cuStreamSynchronize(Stream), "cuStreamSynchronize");
    Driver.check(Driver.api().cuMemcpyDtoH(out.data(), base + offset, bytes), "cuMemcpyDtoH");
  }
  return out;
}

void CudaExecutor::resetStateSlot(int slot) {
  if (!StateSpec.present())
    return;
  zeroState(0, uint64_t(slot) * StateSpec.convBytesPerSlot(), StateSpec.convBytesPerSlot());
  zeroState(1, uint64_t(slot) * StateSpec.recurrentBytesPerSlot(), StateSpec.recurrentBytesPerSlot());
}

void CudaExecutor::copyStateSlot(int from, int to) {
  const uint64_t conv = StateSpec.convBytesPerSlot(), recurrent = StateSpec.recurrentBytesPerSlot();
  copyState(0, uint64_t(from) * conv, uint64_t(to) * conv, conv);
  copyState(1, uint64_t(from) * recurrent, uint64_t(to) * recurrent, recurrent);
}

std::vector<uint8_t> CudaExecutor::stateSlotBytes(int slot) const {
  if (slot < 0 || slot >= NumStateSlots)
    throw Error("state slot " + std::to_string(slot) + " is out of range [0, " + std::to_string(NumStateSlots) +
                ")");
  if (!StateSpec.present())
    return {};
  std::vector<uint8_t> bytes =
      readState(0, uint64_t(slot) * StateSpec.convBytesPerSlot(), StateSpec.convBytesPerSlot());
  std::vector<uint8_t> recurrent =
      readState(1, uint64_t(slot) * StateSpec.recurrentBytesPerSlot(), StateSpec.recurrentBytesPerSlot());
  bytes.insert(bytes.end(), recurrent.begin(), recurrent.end());
  return bytes;
}

//===----------------------------------------------------------------------===//
// Steps
//===----------------------------------------------------------------------===//

int64_t CudaExecutor::blockTableWidth(int64_t pages, bool decodeOnly) const {
  if (!decodeOnly)
    return pages;
  int64_t bucket = 1;
  while (bucket < pages)
    bucket *= 2;
  return std::min(bucket, MaxPages);
}

CudaExecutor::GemmPlan &CudaExecutor::gemmPlan(const ProgramEntry &entry, const Launch &launch, GemmPlanMap &plans,
                                               size_t index, int64_t m) {
  std::unique_ptr<GemmPlan> &slot = plans[{index, m}];
  if (slot)
    return *slot;
  const GemmSpec &g = entry.gemm;
  const CublasLtApi &api = Blas.api();
  auto plan = std::make_unique<GemmPlan>();
  plan->blas = &Blas;
  // Row-major D[m, n] = A[m, k] B[n, k]^T is column-major D^T[n, m] = B^T... :
  // cuBLASLt's A is our weight B (k x n, transposed), its B our activations A.
  Blas.check(api.cublasLtMatmulDescCreate(&plan->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "cublasLtMatmulDescCreate");
  int32_t transA = CUBLAS_OP_T, transB = CUBLAS_OP_N;
  Blas.check(api.cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_TRANSA, &transA, sizeof(transA)),
             "cublasLtMatmulDescSetAttribute(TRANSA)");
  Blas.check(api.cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_TRANSB, &transB, sizeof(transB)),
             "cublasLtMatmulDescSetAttribute(TRANSB)");
  if (g.bias.arg >= 0) {
    uint32_t epilogue = CUBLASLT_EPILOGUE_BIAS;
    const void *bias = launch.argBase[size_t(g.bias.arg)] + g.bias.offset * dtypeSize(g.bias.dtype);
    int32_t biasType = cudaDataType(g.bias.dtype);
    Blas.check(api.cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue,
                                                  sizeof(epilogue)),
               "cublasLtMatmulDescSetAttribute(EPILOGUE)");
    Blas.check(api.cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)),
               "cublasLtMatmulDescSetAttribute(BIAS_POINTER)");
    Blas.check(api.cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &biasType,
                                                  sizeof(biasType)),
               "cublasLtMatmulDescSetAttribute(BIAS_DATA_TYPE)");
  }
  if (g.a.dtype == DType::F8E4M3) {
    // cuBLASLt's A (our weight): one f32 per 128 x 128 block; its B (our
    // activations, quantized by the pack): one per row and 128-wide K block.
    const std::vector<char *> &base = launch.argBase;
    const void *weightScale = base[size_t(g.bScale.arg)] + g.bScale.offset * sizeof(float);
    const void *activationScale = base[size_t(g.aScale.arg)] + g.aScale.offset * sizeof(float);
    int32_t weightMode = CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F;
    int32_t activationMode = CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F;
    Blas.check(api.cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &weightMode,
                                                  sizeof(weightMode)),
               "cublasLtMatmulDescSetAttribute(A_SCALE_MODE)");
    Blas.check(api.cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &activationMode,
                                                  sizeof(activationMode)),
               "cublasLtMatmulDescSetAttribute(B_SCALE_MODE)");
    Blas.check(api.cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &weightScale,
                                                  sizeof(weightScale)),
               "cublasLtMatmulDescSetAttribute(A_SCALE_POINTER)");
    Blas.check(api.cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER,
                                                  &activationScale, sizeof(activationScale)),
               "cublasLtMatmulDescSetAttribute(B_SCALE_POINTER)");
  }
  auto layout = [&](cublasLtMatrixLayout_t &l, DType t, int64_t rows, int64_t cols, int64_t ld) {
    Blas.check(api.cublasLtMatrixLayoutCreate(&l, cudaDataType(t), uint64_t(rows), uint64_t(cols), ld),
               "cublasLtMatrixLayoutCreate");
  };
  layout(plan->a, g.b.dtype, g.k, g.n, g.b.ld);
  layout(plan->b, g.a.dtype, g.k, m, g.a.ld);
  layout(plan->d, g.dDtype, g.n, m, g.ldd);
  if (g.c.arg >= 0)
    layout(plan->c, g.c.dtype, g.n, m, g.c.ld);
  else
    layout(plan->c, g.dDtype, g.n, m, g.ldd);

  cublasLtMatmulPreference_t preference = nullptr;
  Blas.check(api.cublasLtMatmulPreferenceCreate(&preference), "cublasLtMatmulPreferenceCreate");
  uint64_t maxWorkspace = WorkspaceBytes;
  cublasStatus_t set = api.cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                                &maxWorkspace, sizeof(maxWorkspace));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  cublasStatus_t status = set == CUBLAS_STATUS_SUCCESS
                              ? api.cublasLtMatmulAlgoGetHeuristic(BlasHandle, plan->desc, plan->a, plan->b, plan->c,
                                                                   plan->d, preference, 1, &result, &found)
                              : set;
  api.cublasLtMatmulPreferenceDestroy(preference);
  const std::string what = "GEMM " + entry.kernel + " (m " + std::to_string(m) + ", n " +
                           std::to_string(g.n) + ", k " + std::to_string(g.k) + ", " + dtypeName(g.a.dtype) +
                           " x " + dtypeName(g.b.dtype) + " -> " + dtypeName(g.dDtype) + ")";
  try {
    Blas.check(status, "cublasLtMatmulAlgoGetHeuristic");
  } catch (const Error &e) {
    throw Error(std::string(e.what()) + " for " + what);
  }
  if (found < 1 || result.state != CUBLAS_STATUS_SUCCESS)
    throw Error("cuBLASLt has no algorithm for " + what);
  plan->algo = result.algo;
  plan->workspace = result.workspaceSize;
  slot = std::move(plan);
  return *slot;
}

void CudaExecutor::enqueueGemm(size_t entry, int64_t m) {
  enqueueGemm(Art.program()[entry], Launches[entry], GemmPlans, entry, m);
}

void CudaExecutor::enqueueGemm(const ProgramEntry &entry, const Launch &launch, GemmPlanMap &plans, size_t index,
                               int64_t m) {
  const GemmSpec &g = entry.gemm;
  GemmPlan &plan = gemmPlan(entry, launch, plans, index, m);
  const std::vector<char *> &base = launch.argBase;
  const void *a = base[size_t(g.a.arg)] + g.a.offset * dtypeSize(g.a.dtype);
  const void *b = base[size_t(g.b.arg)] + g.b.offset * dtypeSize(g.b.dtype);
  // D is the launch's result: its last argument.
  void *d = base.back();
  const void *c = g.c.arg >= 0 ? base[size_t(g.c.arg)] + g.c.offset * dtypeSize(g.c.dtype) : d;
  const float alpha = 1.f, beta = g.c.arg >= 0 ? 1.f : 0.f;
  Blas.check(Blas.api().cublasLtMatmul(BlasHandle, plan.desc, &alpha, b, plan.a, a, plan.b, &beta, c, plan.c, d,
                                       plan.d, &plan.algo, reinterpret_cast<void *>(uintptr_t(Workspace)),
                                       plan.workspace, Stream),
             ("cublasLtMatmul(" + entry.kernel + ")").c_str());
  ++Counters.gemms;
}

int64_t CudaExecutor::decodeSplits(const ProgramEntry &entry, const StepDims &dims) const {
  const int64_t tokens = dims[SymT];
  if (tokens <= 0 || entry.decode.maxSplits <= 1)
    return 1;
  int64_t splits = Decode.splits;
  if (splits == 0) {
    // Enough blocks for about two per multiprocessor, but no split shorter
    // than the schedule's split length (the manifest's splits.min_keys)
    // over the widest context the step's block table holds (P pages: fixed
    // per captured shape).
    const int64_t blocks = shapeProduct(entry.decode.grid, dims);
    if (blocks >= Device.multiprocessors)
      return 1;
    const int64_t keys = dims[SymP] * Art.kvCache().pageSize;
    splits = std::min((2 * Device.multiprocessors + blocks - 1) / std::max<int64_t>(blocks, 1),
                      (keys + entry.decode.splitKeys - 1) / entry.decode.splitKeys);
  }
  return std::clamp<int64_t>(std::min(splits, PartialTokenSplits / tokens), 1, entry.decode.maxSplits);
}

void CudaExecutor::launch(const std::string &kernel, const SymShape &grid, int64_t blockThreads, CUfunction function,
                          std::vector<void *> &params, const StepDims &dims, int64_t factor) {
  int64_t blocks = shapeProduct(grid, dims) * factor;
  if (blocks <= 0)
    return;
  if (blocks > INT32_MAX)
    throw Error("kernel " + kernel + " needs " + std::to_string(blocks) +
                " blocks, more than a CUDA grid holds; lower --max-batch-tokens");
  if (Programmatic) {
    // The kernel's first instruction waits for the grids before it
    // (griddepcontrol.wait): it may be scheduled while they drain.
    CUlaunchAttribute attribute;
    attribute.id = CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION;
    attribute.value.programmaticStreamSerializationAllowed = 1;
    CUlaunchConfig config;
    config.gridDimX = unsigned(blocks);
    config.blockDimX = unsigned(blockThreads);
    config.hStream = Stream;
    config.attrs = &attribute;
    config.numAttrs = 1;
    Driver.check(Driver.api().cuLaunchKernelEx(&config, function, params.data(), nullptr),
                 ("cuLaunchKernelEx(" + kernel + ")").c_str());
  } else {
    Driver.check(Driver.api().cuLaunchKernel(function, unsigned(blocks), 1, 1, unsigned(blockThreads), 1, 1, 0,
                                             Stream, params.data(), nullptr),
                 ("cuLaunchKernel(" + kernel + ")").c_str());
  }
  ++Counters.kernelLaunches;
}

void CudaExecutor::enqueueProgram(const StepDims &dims, Sampling sampling) {
  for (int i = 0; i < NumSymbols; ++i)
    Dims[i] = dims[size_t(i)];
  const std::vector<ProgramEntry> &program = Art.program();
  // A decode-only step of few rows runs a GEMM's decode variant (the
  // generated GEMV of an FP8 GEMM, or of any GEMM compiled with
  // --gpu-gemv=generated, on the f32 activations) instead of the GEMM and
  // its pack, the nearest launch of the prologue kernel before it.
  const bool decodeStep = dims[SymT] == dims[SymB];
  auto gemmDecodes = [&](size_t k) {
    const ProgramEntry &entry = program[k];
    const int64_t m = entry.gemm.m.eval(dims);
    return decodeStep && Launches[k].decodeFunction && m > 0 && m <= entry.decode.maxRows;
  };
  std::vector<bool> skipped(program.size(), false);
  for (size_t k = 0; k < program.size(); ++k) {
    if (!program[k].isGemm || program[k].gemm.prologue.empty() || !gemmDecodes(k))
      continue;
    for (size_t j = k; j-- > 0;)
      if (!program[j].isGemm && program[j].kernel == program[k].gemm.prologue) {
        skipped[j] = true;
        break;
      }
  }
  for (size_t k = 0; k < program.size(); ++k) {
    const ProgramEntry &entry = program[k];
    if (skipped[k])
      continue;
    if (entry.isGemm) {
      int64_t m = entry.gemm.m.eval(dims);
      if (gemmDecodes(k))
        launch(entry.decode.kernel, entry.decode.grid, entry.decode.blockThreads, Launches[k].decodeFunction,
               Launches[k].decodeParams, dims);
      else if (m > 0)
        enqueueGemm(k, m);
      continue;
    }
    // A decode-only step (one token per request) takes the entry's decode
    // variant where the compiler made one, split over the context when the
    // batch alone does not fill the GPU.
    Launch &l = Launches[k];
    if (l.decodeFunction && dims[SymT] == dims[SymB]) {
      Splits = decodeSplits(entry, dims);
      launch(entry.decode.kernel, entry.decode.grid, entry.decode.blockThreads, l.decodeFunction, l.decodeParams,
             dims, Splits);
      if (Splits > 1) {
        const ProgramEntry::Launchable &combine = entry.decode.combine;
        launch(combine.kernel, combine.grid, combine.blockThreads, l.combineFunction, l.decodeParams, dims);
        ++Counters.splitDecodes;
      }
    } else {
      launch(entry.kernel, entry.grid, entry.blockThreads, l.function, l.params, dims);
    }
  }
  if (sampling == Sampling::Greedy) {
    const ProgramEntry::Launchable &argmax = Art.argmaxKernel();
    launch(argmax.kernel, argmax.grid, argmax.blockThreads, ArgmaxLaunch.function, ArgmaxLaunch.params, dims);
  } else if (sampling == Sampling::TopK) {
    const ProgramEntry::Launchable &topk = Art.topKKernel();
    launch(topk.kernel, topk.grid, topk.blockThreads, TopKLaunch.function, TopKLaunch.params, dims);
  }
}

void CudaExecutor::copyStepInputs(const StepDims &dims) {
  // image_embeds (vision-language artifacts) is [max tokens, hidden] f32:
  // only the rows image_rows names, packed from row 0, travel.
  int64_t imageRows = 0;
  if (Layout.hasInput(InImageRows)) {
    const auto *rows = reinterpret_cast<const int32_t *>(Staging + Layout.inputOffsets[InImageRows]);
    for (int64_t t = 0; t < dims[SymT]; ++t)
      imageRows = std::max<int64_t>(imageRows, int64_t(rows[t]) + 1);
  }
  // Each input's bytes at this step's sizes; neighbours closer than
  // kCoalesceBytes travel in one copy (one call instead of several tiny ones).
  constexpr uint64_t kCoalesceBytes = 64 << 10;
  uint64_t begin = 0, end = 0;
  auto flush = [&] {
    if (end > begin)
      Driver.check(Driver.api().cuMemcpyHtoDAsync(Arena + begin, Staging + begin, end - begin, Stream),
                   "cuMemcpyHtoDAsync");
    begin = end = 0;
  };
  for (int i = 0; i < NumInputSlots; ++i) {
    const uint64_t bytes = Layout.stepInputBytes(i, dims, imageRows);
    if (!bytes)
      continue;
    const uint64_t at = Layout.inputOffsets[i];
    if (end > begin && at - end > kCoalesceBytes)
      flush();
    if (end == begin)
      begin = at;
    end = at + bytes;
  }
  flush();
}

StepRows CudaExecutor::run(const StepDims &dims, bool decodeOnly, StepOutput output) {
  const DriverApi &api = Driver.api();
  // Executor::step() asks for ids and candidates only when the samplers exist.
  const Sampling sampling = output == StepOutput::GreedyIds       ? Sampling::Greedy
                            : output == StepOutput::TopCandidates ? Sampling::TopK
                                                                  : Sampling::None;
  copyStepInputs(dims);
  Graph *graph = nullptr;
  if (UseGraphs && decodeOnly) {
    auto key = std::make_pair(dims, sampling);
    auto it = Graphs.find(key);
    if (it != Graphs.end() || Graphs.size() < kMaxGraphs)
      graph = &Graphs[key];
  }
  if (graph && !graph->exec && graph->runs > 0) {
    // Seen before: the GEMM plans of this shape exist, so capture it once.
    CUgraph captured = nullptr;
    Driver.check(api.cuStreamBeginCapture(Stream, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL), "cuStreamBeginCapture");
    try {
      enqueueProgram(dims, sampling);
    } catch (...) {
      api.cuStreamEndCapture(Stream, &captured);
      if (captured)
        api.cuGraphDestroy(captured);
      throw;
    }
    Driver.check(api.cuStreamEndCapture(Stream, &captured), "cuStreamEndCapture");
    CUresult made = api.cuGraphInstantiateWithFlags(&graph->exec, captured, 0);
    api.cuGraphDestroy(captured);
    Driver.check(made, "cuGraphInstantiateWithFlags");
    ++Counters.graphsCaptured;
  }
  if (graph && graph->exec) {
    Driver.check(api.cuGraphLaunch(graph->exec, Stream), "cuGraphLaunch");
    ++Counters.graphLaunches;
  } else {
    enqueueProgram(dims, sampling);
    if (graph)
      ++graph->runs;
  }
  StepRows rows;
  if (sampling == Sampling::Greedy) {
    HostIds.resize(size_t(dims[SymR]));
    Driver.check(api.cuMemcpyDtoHAsync(HostIds.data(), Ids, HostIds.size() * sizeof(int32_t), Stream),
                 "cuMemcpyDtoHAsync");
    rows.ids = HostIds.data();
  } else if (sampling == Sampling::TopK) {
    const uint64_t candidates = uint64_t(dims[SymR] * Art.topKCount());
    HostTopLogits.resize(candidates);
    HostTopIds.resize(candidates);
    Driver.check(api.cuMemcpyDtoHAsync(HostTopLogits.data(), TopLogits, candidates * sizeof(float), Stream),
                 "cuMemcpyDtoHAsync");
    Driver.check(api.cuMemcpyDtoHAsync(HostTopIds.data(), TopIds, candidates * sizeof(int32_t), Stream),
                 "cuMemcpyDtoHAsync");
    rows.values = HostTopLogits.data();
    rows.ids = HostTopIds.data();
  } else {
    const uint64_t bytes = uint64_t(dims[SymR]) * uint64_t(Art.outputWidth()) * sizeof(float);
    if (bytes)
      Driver.check(api.cuMemcpyDtoHAsync(HostRows.data(), Arena + Layout.outputOffset, bytes, Stream),
                   "cuMemcpyDtoHAsync");
    rows.values = reinterpret_cast<const float *>(HostRows.data());
  }
  Driver.check(api.cuStreamSynchronize(Stream), "cuStreamSynchronize");
  ++Counters.steps;
  return rows;
}

//===----------------------------------------------------------------------===//
// The vision program
//===----------------------------------------------------------------------===//

/// The artifact's vision program on the executor's GPU: its weights in one
/// device block uploaded at bind time, its inputs and buffers in an arena of
/// its own laid out per run (the buffers' sizes follow the run's patches),
/// kept between runs and grown when a batch needs more. Runs on the step
/// stream, so it is ordered with the steps and never inside a decode graph.
class CudaVisionProgram final : public BoundProgram {
public:
  CudaVisionProgram(CudaExecutor &executor, const VisionProgramSpec &spec, WeightStore weights)
      : X(executor), Spec(spec) {
    const DriverApi &api = X.Driver.api();
    uint64_t total = 0;
    for (const WeightSpec &w : Spec.weights) {
      WeightOffsets.push_back(total);
      total += alignDevice(w.nbytes());
    }
    if (total) {
      reserve(WeightBlock, total, "the vision weights", "");
      for (size_t i = 0; i < Spec.weights.size(); ++i)
        X.Driver.check(api.cuMemcpyHtoD(WeightBlock + WeightOffsets[i], weights.data(i), Spec.weights[i].nbytes()),
                       "cuMemcpyHtoD");
    }
    for (const ProgramEntry &e : Spec.program) {
      Functions.emplace_back();
      if (!e.isGemm)
        X.Driver.check(api.cuModuleGetFunction(&Functions.back(), X.Module, e.kernel.c_str()),
                       ("cuModuleGetFunction(" + e.kernel + ")").c_str());
    }
  }
  ~CudaVisionProgram() override {
    const DriverApi &api = X.Driver.api();
    if (X.Stream)
      api.cuStreamSynchronize(X.Stream);
    Plans.clear();
    for (CUdeviceptr p : {WeightBlock, Arena})
      if (p)
        api.cuMemFree(p);
  }

  const uint8_t *run(const std::vector<const void *> &inputs, const StepDims &dims, uint64_t outputBytes) override {
    const DriverApi &api = X.Driver.api();
    X.makeCurrent();
    // The arena of this run: the inputs, then the buffers.
    std::vector<uint64_t> inputOffsets, bufferOffsets, inputBytes;
    uint64_t total = 0;
    for (const InputSpec &in : Spec.inputs) {
      inputOffsets.push_back(total);
      inputBytes.push_back(uint64_t(shapeProduct(in.shape, dims)) * dtypeSize(in.dtype));
      total += alignDevice(std::max<uint64_t>(inputBytes.back(), 1));
    }
    for (const BufferSpec &b : Spec.buffers) {
      bufferOffsets.push_back(total);
      total += alignDevice(std::max<uint64_t>(uint64_t(shapeProduct(b.shape, dims)) * dtypeSize(b.dtype), 1));
    }
    if (total > ArenaBytes) {
      X.Driver.check(api.cuStreamSynchronize(X.Stream), "cuStreamSynchronize");
      if (Arena)
        X.Driver.check(api.cuMemFree(Arena), "cuMemFree");
      Arena = 0;
      ArenaBytes = 0;
      reserve(Arena, total, "the vision activations", "; encode fewer or smaller images at once");
      ArenaBytes = total;
    }
    // The plans hold no arena pointer unless a GEMM's bias lives there.
    if (total != PlannedBytes || dims != PlannedDims) {
      Plans.clear();
      PlannedBytes = total;
      PlannedDims = dims;
    }
    for (size_t i = 0; i < inputs.size(); ++i)
      if (inputBytes[i])
        X.Driver.check(api.cuMemcpyHtoDAsync(Arena + inputOffsets[i], inputs[i], inputBytes[i], X.Stream),
                       "cuMemcpyHtoDAsync");
    for (int i = 0; i < NumSymbols; ++i)
      Dims[i] = dims[size_t(i)];
    for (size_t k = 0; k < Spec.program.size(); ++k) {
      const ProgramEntry &e = Spec.program[k];
      CudaExecutor::Launch launch;
      for (const ArgRef &a : e.args) {
        CUdeviceptr p = a.kind == ArgRef::Input    ? Arena + inputOffsets[size_t(a.index)]
                        : a.kind == ArgRef::Weight ? WeightBlock + WeightOffsets[size_t(a.index)]
                                                   : Arena + bufferOffsets[size_t(a.index)];
        launch.argBase.push_back(reinterpret_cast<char *>(uintptr_t(p)));
      }
      if (e.isGemm) {
        const int64_t m = e.gemm.m.eval(dims);
        if (m > 0)
          X.enqueueGemm(e, launch, Plans, k, m);
        continue;
      }
      launch.setParams(Dims);
      // Programmatic when the step's launches are: the module's kernels,
      // the vision ones included, all begin with griddepcontrol.wait.
      X.launch(e.kernel, e.grid, e.blockThreads, Functions[k], launch.params, dims);
    }
    Output.resize(outputBytes);
    if (outputBytes)
      X.Driver.check(api.cuMemcpyDtoHAsync(Output.data(), Arena + bufferOffsets[size_t(Spec.outputBuffer)],
                                           outputBytes, X.Stream),
                     "cuMemcpyDtoHAsync");
    X.Driver.check(api.cuStreamSynchronize(X.Stream), "cuStreamSynchronize");
    return Output.data();
  }

private:
  /// cuMemAlloc that says what did not fit.
  void reserve(CUdeviceptr &p, uint64_t bytes, const char *what, const char *advice) {
    auto [free, total] = X.memoryInfo();
    if (bytes > free)
      throw Error(std::string(what) + " need " + formatBytes(bytes) + " of GPU memory, but " + X.Device.name +
                  " has " + formatBytes(free) + " free of " + formatBytes(total) + advice);
    try {
      X.Driver.check(X.Driver.api().cuMemAlloc(&p, bytes), "cuMemAlloc");
    } catch (const Error &e) {
      throw Error(std::string(e.what()) + " allocating " + formatBytes(bytes) + " for " + what);
    }
  }

  CudaExecutor &X;
  VisionProgramSpec Spec;
  std::vector<CUfunction> Functions; ///< by program entry (null for GEMMs)
  std::vector<uint64_t> WeightOffsets;
  CUdeviceptr WeightBlock = 0, Arena = 0;
  uint64_t ArenaBytes = 0, PlannedBytes = 0;
  StepDims PlannedDims = {};
  CudaExecutor::GemmPlanMap Plans;
  int64_t Dims[NumSymbols] = {};
  std::vector<uint8_t> Output;
};

std::unique_ptr<BoundProgram> CudaExecutor::bindVision(const VisionProgramSpec &spec, WeightStore weights,
                                                       ThreadPool &pool) {
  (void)pool;
  makeCurrent();
  return std::make_unique<CudaVisionProgram>(*this, spec, std::move(weights));
}

} // namespace qwen::rt
