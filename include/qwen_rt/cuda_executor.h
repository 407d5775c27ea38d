//===- cuda_executor.h - Runs a CUDA artifact's step program ----*- C++ -*-===//
//
// The GPU half of the Engine for `--target=cuda` artifacts. It owns the CUDA
// context of one device, one stream, the module loaded from kernels.ptx, and
// the device memory: weights, the activation arena (laid out exactly like the
// host arena, so offsets are shared), the paged KV cache, the linear-attention
// state slots and the cuBLASLt workspace. A step copies the step inputs from
// pinned staging memory, enqueues the program (generated kernels with
// cuLaunchKernel, GEMMs with cublasLtMatmul, plans and heuristics cached per
// GEMM and row count), copies the requested output rows back and waits.
// Decode steps are captured once per shape into CUDA graphs and replayed.
// The Engine keeps all bookkeeping (sequences, pages, step packing).
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_RT_CUDA_EXECUTOR_H
#define QWEN_RT_CUDA_EXECUTOR_H

#include "qwen_rt/artifact.h"
#include "qwen_rt/cuda_driver.h"

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

class CudaExecutor {
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

  /// Loads the driver and cuBLASLt, makes device `ordinal` current, checks its
  /// architecture against the artifact's, creates the stream and loads
  /// kernels.cubin or kernels.ptx. Throws Error.
  /// `programmaticLaunch`: launch the generated kernels with programmatic
  /// dependent launch when the artifact's kernels allow it.
  CudaExecutor(const Artifact &artifact, int ordinal, bool useGraphs, DecodeOptions decode = {},
               bool programmaticLaunch = true);
  /// Whether kernels are launched with programmatic dependent launch.
  bool programmaticLaunch() const { return Programmatic; }
  /// Makes the device's context current on the calling thread (the
  /// constructor did so on the constructing thread only).
  void makeCurrent() const;
  ~CudaExecutor();
  CudaExecutor(const CudaExecutor &) = delete;
  CudaExecutor &operator=(const CudaExecutor &) = delete;

  const CudaDeviceInfo &device() const { return Device; }
  /// Free and total device memory now.
  std::pair<uint64_t, uint64_t> memoryInfo() const;

  /// Allocates the device arrays; refuses (Error) when they exceed the free memory.
  /// `inputBytes`: the leading part of the arena holding the step inputs,
  /// staged in pinned host memory (inputStaging()).
  void allocate(const CudaMemorySizes &sizes, uint64_t inputBytes);
  /// Pinned host memory the Engine writes the step inputs into, laid out as
  /// the first inputBytes of the arena.
  uint8_t *inputStaging() const { return Staging; }
  /// Copies weight i (host bytes, manifest order) into device memory.
  void uploadWeight(size_t index, const void *host, uint64_t bytes);
  /// Fixes every launch argument (offsets into the arena by input index and
  /// buffer index) and resolves every kernel. Call after the uploads.
  /// `outputOffset`: the logits buffer, which the greedy sampler reads;
  /// `maxRows`: the most logits rows of a step.
  void bindProgram(const std::vector<uint64_t> &inputOffsets, const std::vector<uint64_t> &bufferOffsets,
                   uint64_t outputOffset, int64_t maxRows);

  /// Zeroes bytes [offset, offset + bytes) of the conv (which = 0) or
  /// recurrent (which = 1) state array.
  void zeroState(int which, uint64_t offset, uint64_t bytes);
  std::vector<uint8_t> readState(int which, uint64_t offset, uint64_t bytes);
  /// Copies bytes [from, from + bytes) of a state array to [to, to + bytes)
  /// on the stream (prefix-cache checkpoints are state slots too).
  void copyState(int which, uint64_t from, uint64_t to, uint64_t bytes);

  /// True when the artifact has the generated greedy sampler (argmax on the GPU).
  bool hasGreedySampler() const { return ArgmaxLaunch.function != nullptr; }
  /// Candidates per row of the generated top-k selection (0: the artifact has none).
  int64_t topKCandidates() const { return TopKLaunch.function ? Art.topKCount() : 0; }

  /// What a step copies back: the logits rows, the R token ids the greedy
  /// sampler picked, or each row's top-k candidates.
  enum class Sampling { None, Greedy, TopK };
  struct StepOutput {
    Sampling sampling = Sampling::None;
    /// None: logits rows (arena bytes [offset, offset + bytes)); Greedy: R
    /// int32 ids; TopK: R x topKCandidates() candidate logits (f32).
    void *host = nullptr;
    int32_t *hostIds = nullptr; ///< TopK: R x topKCandidates() candidate ids
    uint64_t offset = 0, bytes = 0;
  };
  /// One step: the staged inputs to the device, the program for `dims`
  /// (replayed from a CUDA graph when `graphable` and the shape was seen
  /// before), then the output. Returns when the device is done.
  void step(const StepDims &dims, bool graphable, const StepOutput &out);

  const Stats &stats() const { return Counters; }

private:
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
  };

  void enqueueProgram(const StepDims &dims, Sampling sampling);
  /// Launches prod(grid) * `factor` blocks of `blockThreads` with `params`.
  void launch(const std::string &kernel, const SymShape &grid, int64_t blockThreads, cuda::CUfunction function,
              std::vector<void *> &params, const StepDims &dims, int64_t factor = 1);
  void enqueueGemm(size_t entry, int64_t m);
  GemmPlan &gemmPlan(size_t entry, int64_t m);
  void releaseAll() noexcept;
  /// kernels.cubin when it loads on this device, else kernels.ptx.
  void loadModule();

  const Artifact &Art;
  const CudaDriver &Driver;
  const CublasLt &Blas;
  CudaDeviceInfo Device;
  bool UseGraphs;
  DecodeOptions Decode;
  bool Programmatic = false;
  cuda::CUcontext Context = nullptr;
  cuda::CUstream Stream = nullptr;
  cuda::CUmodule Module = nullptr;
  cuda::cublasLtHandle_t BlasHandle = nullptr;

  cuda::CUdeviceptr WeightBlock = 0, Arena = 0, Keys = 0, Values = 0, Conv = 0, Recurrent = 0, Workspace = 0;
  uint64_t WorkspaceBytes = 0, InputBytes = 0;
  std::vector<uint64_t> WeightOffsets;
  uint8_t *Staging = nullptr;

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
  std::map<std::pair<size_t, int64_t>, std::unique_ptr<GemmPlan>> GemmPlans;

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
