//===- cuda_executor.h - Runs a CUDA artifact's step program ----*- C++ -*-===//
//
// The Executor of `--target=cuda` artifacts. It owns the CUDA context of one
// device, one stream, the module loaded from kernels.ptx, and the device
// memory: weights, the activation arena (laid out like the host arena of a
// CPU artifact, ArenaLayout), the paged KV cache, the linear-attention state
// slots and the cuBLASLt workspace. A step copies the step inputs from
// pinned staging memory, enqueues the program (generated kernels with
// cuLaunchKernel, GEMMs with cublasLtMatmul, plans and heuristics cached per
// GEMM and row count), copies the requested output rows (or the ids and
// candidates the generated samplers picked) back and waits. Decode steps are
// captured once per shape into CUDA graphs and replayed. The Engine keeps
// all bookkeeping (sequences, pages, step packing).
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_RT_CUDA_EXECUTOR_H
#define QWEN_RT_CUDA_EXECUTOR_H

#include "qwen_rt/artifact.h"
#include "qwen_rt/cuda_driver.h"
#include "qwen_rt/executor.h"
#include "qwen_rt/weights.h"

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace qwen::rt {

/// Device-memory sizes of a loaded engine.
struct CudaMemorySizes {
  uint64_t weights = 0, arena = 0, kvOneArray = 0, stateConv = 0, stateRecurrent = 0, workspace = 0;
  uint64_t total() const { return weights + arena + 2 * kvOneArray + stateConv + stateRecurrent + workspace; }
  /// The weight block: every weight at a 256-byte aligned offset.
  static uint64_t weightBytes(const Artifact &art);
  /// The cuBLASLt workspace the executor allocates.
  static uint64_t gemmWorkspaceBytes();
};

/// Decode-only steps (every request one token) launch the entries' decode
/// variants (attention with a block per kv head, reading each key once for
/// its query-head group), split over the context (flash-decoding) so that
/// short batches still fill the GPU.
struct CudaDecodeOptions {
  bool variants = true; ///< false: decode with the prefill kernels (tests, measurements)
  int64_t splits = 0;   ///< context splits per decode block; 0: picked per step shape
};

/// How an engine uses its GPU (EngineOptions' cuda fields).
struct CudaExecutorOptions {
  int device = 0;                ///< the CUDA device ordinal
  bool graphs = true;            ///< replay decode steps from CUDA graphs
  CudaDecodeOptions decode;      ///< decode-only steps: decode variants, split-K
  /// Launch the generated kernels with programmatic dependent launch when
  /// the artifact's kernels allow it.
  bool programmaticLaunch = true;
  /// Greedy ids and top-k candidates picked on the device when the artifact
  /// has the sampler kernels (false: the logits rows come back).
  bool deviceSampling = true;
  /// Pages of a sequence of the longest context: bounds the block-table
  /// width decode graphs are bucketed to.
  int64_t maxPagesPerSequence = 1;
};

class CudaExecutor final : public Executor {
public:
  struct Stats {
    int64_t steps = 0, kernelLaunches = 0, gemms = 0, graphsCaptured = 0, graphLaunches = 0;
    /// Decode-variant launches split over the context (splits > 1), counted
    /// when enqueued or captured (graph replays do not count again), like
    /// kernelLaunches and gemms.
    int64_t splitDecodes = 0;
  };

  /// The context splits of `entry`'s decode variant for a decode-only step
  /// of `dims` (1: no split); the same for every step of one shape, so a
  /// captured graph stays valid.
  int64_t decodeSplits(const ProgramEntry &entry, const StepDims &dims) const;

  using DecodeOptions = CudaDecodeOptions;

  /// Loads the driver and cuBLASLt, makes the device current, checks its
  /// architecture against the artifact's, creates the stream and loads
  /// kernels.cubin or kernels.ptx. Throws Error.
  CudaExecutor(const Artifact &artifact, const CudaExecutorOptions &options);
  /// Whether kernels are launched with programmatic dependent launch.
  bool programmaticLaunch() const { return Programmatic; }
  /// Makes the device's context current on the calling thread (the
  /// constructor did so on the constructing thread only).
  void makeCurrent() const override;
  ~CudaExecutor() override;
  CudaExecutor(const CudaExecutor &) = delete;
  CudaExecutor &operator=(const CudaExecutor &) = delete;

  const CudaDeviceInfo &device() const { return Device; }
  /// Free and total device memory now.
  std::pair<uint64_t, uint64_t> memoryInfo() const;

  // Executor.
  std::string deviceName() const override;
  bool hostMemory() const override { return false; }
  /// Allocates the device arrays (refuses, Error, when they exceed the free
  /// memory); the step inputs are staged in pinned host memory.
  uint8_t *allocate(const ArenaLayout &layout, KVCache &kv, StatePool &states) override;
  /// Uploads the weights, drops the host copy and resolves every kernel.
  BoundWeights bindWeights(WeightStore weights, bool progress) override;
  void resetStateSlot(int slot) override;
  void copyStateSlot(int from, int to) override;
  std::vector<uint8_t> stateSlotBytes(int slot) const override;
  /// Decode steps replay CUDA graphs captured per step shape; the
  /// block-table width is rounded up to a power of two so a growing
  /// sequence reuses its graph for a while instead of needing a new one
  /// every page.
  int64_t blockTableWidth(int64_t pages, bool decodeOnly) const override;
  /// Candidates per row of the generated top-k selection (0: the artifact
  /// has none, or device sampling is off).
  int64_t topKCandidates() const override {
    return DeviceSampling && TopKLaunch.function ? Art.topKCount() : 0;
  }
  const CudaExecutor *cuda() const override { return this; }
  /// Uploads the vision weights once; each run copies the inputs, lays its
  /// arena out in device memory kept between runs (grown when a batch needs
  /// more) and enqueues the program on the step stream.
  std::unique_ptr<BoundProgram> bindVision(const VisionProgramSpec &spec, WeightStore weights,
                                           ThreadPool &pool) override;

  const Stats &stats() const { return Counters; }

protected:
  bool greedyOnDevice() const override { return DeviceSampling && ArgmaxLaunch.function != nullptr; }
  StepRows run(const StepDims &dims, bool decodeOnly, StepOutput output) override;

private:
  /// What a step copies back: the logits rows, the R token ids the greedy
  /// sampler picked, or each row's top-k candidates.
  enum class Sampling { None, Greedy, TopK };
  /// Copies weight i (host bytes, manifest order) into device memory.
  void uploadWeight(size_t index, const void *host, uint64_t bytes);
  /// Fixes every launch argument and resolves every kernel. After the uploads.
  void bindProgram();
  /// Bytes [offset, offset + bytes) of the conv (which = 0) or recurrent
  /// (which = 1) state array.
  void zeroState(int which, uint64_t offset, uint64_t bytes);
  std::vector<uint8_t> readState(int which, uint64_t offset, uint64_t bytes) const;
  /// Copies bytes [from, from + bytes) of a state array to [to, to + bytes)
  /// on the stream.
  void copyState(int which, uint64_t from, uint64_t to, uint64_t bytes);

  struct GemmPlan;
  struct Launch {
    cuda::CUfunction function = nullptr;
    cuda::CUfunction decodeFunction = nullptr;  ///< the entry's decode variant, if any
    cuda::CUfunction combineFunction = nullptr; ///< and the merge of its splits
    std::vector<void *> slots;   ///< device pointers, in ABI order
    std::vector<void *> params;  ///< &slots[i]..., then &Dims[0..3]
    /// The decode variant's: &slots[i]..., &PartialsSlot, &Dims[0..3], &Splits.
    std::vector<void *> decodeParams;
    std::vector<char *> argBase; ///< device pointer of each launch argument (GEMMs)
    /// slots from argBase, params pointing at them and at `dims` (which
    /// must outlive the launch: the executor's Dims, set per step).
    void setParams(int64_t (&dims)[NumSymbols]) {
      for (char *p : argBase)
        slots.push_back(p);
      for (void *&slot : slots)
        params.push_back(&slot);
      for (int64_t &d : dims)
        params.push_back(&d);
    }
  };

  friend class CudaVisionProgram;
  using GemmPlanMap = std::map<std::pair<size_t, int64_t>, std::unique_ptr<GemmPlan>>;

  void enqueueProgram(const StepDims &dims, Sampling sampling);
  /// Launches prod(grid) * `factor` blocks of `blockThreads` with `params`.
  void launch(const std::string &kernel, const SymShape &grid, int64_t blockThreads, cuda::CUfunction function,
              std::vector<void *> &params, const StepDims &dims, int64_t factor = 1);
  void enqueueGemm(size_t entry, int64_t m);
  /// The GEMM `entry` (entry `index` of its program, `launch` its bound
  /// arguments) at `m` rows; plans cached in `plans` by (index, m).
  void enqueueGemm(const ProgramEntry &entry, const Launch &launch, GemmPlanMap &plans, size_t index, int64_t m);
  GemmPlan &gemmPlan(const ProgramEntry &entry, const Launch &launch, GemmPlanMap &plans, size_t index, int64_t m);
  /// The input bytes a step of `dims` reads: each input's rows at the step's
  /// sizes (image_embeds: the rows image_rows names), not the whole block.
  void copyStepInputs(const StepDims &dims);
  void releaseAll() noexcept;
  /// kernels.cubin when it loads on this device, else kernels.ptx.
  void loadModule();

  const CudaDriver &Driver;
  const CublasLt &Blas;
  CudaDeviceInfo Device;
  bool UseGraphs;
  DecodeOptions Decode;
  bool Programmatic = false;
  bool DeviceSampling = true;
  int64_t MaxPages = 1;
  ArenaLayout Layout;
  LinearStateSpec StateSpec; ///< of the state slots, for their offsets
  int NumStateSlots = 0;
  int64_t MaxRows = 1;       ///< the most output rows of a step
  cuda::CUcontext Context = nullptr;
  cuda::CUstream Stream = nullptr;
  cuda::CUmodule Module = nullptr;
  cuda::cublasLtHandle_t BlasHandle = nullptr;

  cuda::CUdeviceptr WeightBlock = 0, Arena = 0, Keys = 0, Values = 0, Conv = 0, Recurrent = 0, Workspace = 0;
  uint64_t WorkspaceBytes = 0, InputBytes = 0;
  std::vector<uint64_t> WeightOffsets;
  uint8_t *Staging = nullptr;
  /// The host end of the output: the logits rows (MaxRows of them, mapped
  /// lazily), the sampled ids, the top-k candidates.
  HostBuffer HostRows;
  std::vector<int32_t> HostIds, HostTopIds;
  std::vector<float> HostTopLogits;

  std::vector<Launch> Launches; ///< by program entry
  Launch ArgmaxLaunch;          ///< the greedy sampler: (logits, Ids)
  cuda::CUdeviceptr Ids = 0;    ///< [max R] int32 sampled ids
  Launch TopKLaunch;            ///< the top-k candidates: (logits, TopLogits, TopIds)
  cuda::CUdeviceptr TopLogits = 0, TopIds = 0; ///< [max R, topKCount]
  /// Split decode partial states: room for PartialTokenSplits (token, split)
  /// pairs of the largest decode variant's partial_floats.
  cuda::CUdeviceptr Partials = 0;
  void *PartialsSlot = nullptr;
  int64_t PartialTokenSplits = 0;
  int64_t Dims[NumSymbols] = {};
  int64_t Splits = 1; ///< the split count parameter of the decode launch being enqueued
  GemmPlanMap GemmPlans;

  struct Graph {
    int runs = 0; ///< eager runs of this shape so far
    cuda::CUgraphExec exec = nullptr;
  };
  /// By step sizes and the sampler that runs after the program.
  std::map<std::pair<std::array<int64_t, NumSymbols>, Sampling>, Graph> Graphs;
  Stats Counters;
};

} // namespace qwen::rt

#endif // QWEN_RT_CUDA_EXECUTOR_H
