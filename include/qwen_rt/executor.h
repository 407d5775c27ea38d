//===- executor.h - Where an artifact's step program runs -------*- C++ -*-===//
//
// The Engine keeps the bookkeeping that does not depend on where the kernels
// run (sequences, KV pages, the prefix cache, packing chunks into steps and
// writing the step inputs) and leaves the rest to an Executor: the memory of
// the weights, the KV cache, the linear-attention state slots and the
// activation arena, running one step of the program and bringing its output
// rows back. CpuExecutor runs kernels.so on the thread pool; CudaExecutor
// runs the PTX module and cuBLASLt on one GPU.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_RT_EXECUTOR_H
#define QWEN_RT_EXECUTOR_H

#include "qwen_rt/artifact.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace qwen::rt {

class KVCache;
class StatePool;
class ThreadPool;
class WeightStore;
class CudaExecutor;
struct VisionProgramSpec;

/// The step inputs the runtime fills, in this order at the start of the arena.
enum InputSlot {
  InTokens,
  InPositions,
  InTokenSeq,
  InBlockTable,
  InLogitRows,
  InMropePositions,
  InStateSlots,
  InImageRows,   ///< vision-language artifacts only
  InImageEmbeds, ///< f32 [T, hidden]; vision-language artifacts only
  NumInputSlots
};

/// Where each step input and activation buffer lives in the arena, for the
/// largest step an engine serves. On a GPU the device arena has this layout
/// and the inputs are staged in host memory laid out as its first inputBytes.
struct ArenaLayout {
  StepDims maxDims = {};
  uint64_t inputOffsets[NumInputSlots] = {};
  uint64_t inputBytes = 0;                     ///< the inputs come first: [0, inputBytes)
  std::vector<uint64_t> artifactInputOffsets;  ///< by the artifact's input index
  std::vector<uint64_t> bufferOffsets;         ///< by buffer index
  uint64_t outputOffset = 0;                   ///< of the output buffer
  uint64_t total = 0;
  int64_t imageWidth = 0; ///< image_embeds' row width (hidden size); 0 without image inputs

  /// Whether the arena has input `slot` (the image inputs are optional).
  bool hasInput(int slot) const { return slot < InImageRows || imageWidth > 0; }
  /// Bytes of input `slot` a step of `dims` reads: each input is packed at
  /// the step's sizes from its offset; image_embeds holds `imageRows` rows.
  uint64_t stepInputBytes(int slot, const StepDims &dims, int64_t imageRows) const;
};
/// Throws Error when the arena does not fit in 64 bits.
ArenaLayout layoutArena(const Artifact &art, const StepDims &maxDims);

/// What a step brings back for each of its R selected rows.
enum class StepOutput {
  Rows,          ///< the artifact's output row: outputWidth() logits (or hidden states)
  GreedyIds,     ///< the row's argmax (the first index of its maximum)
  TopCandidates, ///< the row's topKCandidates() best (logit, id) pairs
};

/// A step's output in host memory, valid until the next step.
struct StepRows {
  /// Rows: R x outputWidth values; TopCandidates: R x k candidate logits.
  const float *values = nullptr;
  /// GreedyIds: R ids; TopCandidates: R x k candidate ids.
  const int32_t *ids = nullptr;
};

/// A second program of the artifact (the vision tower, qwen_rt/vision.h)
/// bound where the executor runs its step program: its own weights, inputs
/// and activation arena, sized per run.
class BoundProgram {
public:
  virtual ~BoundProgram();
  /// Runs the program once for `dims` on `inputs` (host bytes, by the
  /// program's input index, each of its shape at `dims`) and returns the
  /// first `outputBytes` bytes of its output buffer, in host memory valid
  /// until the next run. Throws Error.
  virtual const uint8_t *run(const std::vector<const void *> &inputs, const StepDims &dims,
                             uint64_t outputBytes) = 0;
};

/// Bytes taken by the bound weights.
struct BoundWeights {
  uint64_t bytes = 0;
  uint64_t mapped = 0; ///< of which mapped from the checkpoint without a copy
};

class Executor {
public:
  virtual ~Executor();

  /// "" for the host CPU, else the GPU ("cuda:0 NVIDIA H100 ... (sm_90)").
  virtual std::string deviceName() const = 0;
  /// Whether the KV cache and state slots live in host memory, allocated by
  /// KVCache and StatePool (false: in the executor's device memory).
  virtual bool hostMemory() const = 0;
  /// Allocates the arena and whatever else the executor keeps (device
  /// copies of the KV cache and state slots); returns the host memory the
  /// engine writes the step inputs into (layout.inputOffsets).
  virtual uint8_t *allocate(const ArenaLayout &layout, KVCache &kv, StatePool &states) = 0;
  /// Takes the weights (kept, or uploaded and dropped) and resolves every
  /// kernel argument of the program. After allocate().
  virtual BoundWeights bindWeights(WeightStore weights, bool progress) = 0;

  /// Zeroes a state slot (a new sequence starts from an empty state).
  virtual void resetStateSlot(int slot) = 0;
  /// Copies state slot `from` over `to` (prefix-cache checkpoints are slots).
  virtual void copyStateSlot(int from, int to) = 0;
  /// A slot's bytes: conv windows, then recurrent states.
  virtual std::vector<uint8_t> stateSlotBytes(int slot) const = 0;

  /// The block-table width (P) of a step whose longest sequence holds
  /// `pages` pages.
  virtual int64_t blockTableWidth(int64_t pages, bool decodeOnly) const {
    (void)decodeOnly;
    return pages;
  }
  /// Candidates per row a TopCandidates step returns; 0 when this executor
  /// cannot select them.
  virtual int64_t topKCandidates() const { return 0; }
  /// Binds the artifact's vision program with its weights (host copies,
  /// kept or uploaded and dropped). The CPU's runs the kernels of
  /// kernels.so on `pool`. Throws Error.
  virtual std::unique_ptr<BoundProgram> bindVision(const VisionProgramSpec &spec, WeightStore weights,
                                                   ThreadPool &pool);
  /// Makes the calling thread able to drive the executor (a GPU context).
  virtual void makeCurrent() const {}
  /// The GPU executor, or nullptr.
  virtual const CudaExecutor *cuda() const { return nullptr; }

  /// Runs the program once on the inputs already written, for `dims`
  /// (R = dims[SymR] selected rows), and brings `output` back. GreedyIds
  /// without a device sampler pick the argmax of the rows on the host.
  StepRows step(const StepDims &dims, bool decodeOnly, StepOutput output);

protected:
  explicit Executor(const Artifact &artifact) : Art(artifact) {}
  /// Whether GreedyIds steps pick the ids on the device.
  virtual bool greedyOnDevice() const { return false; }
  /// step() for an output the executor produces itself.
  virtual StepRows run(const StepDims &dims, bool decodeOnly, StepOutput output) = 0;

  const Artifact &Art;

private:
  std::vector<int32_t> ArgmaxIds; ///< GreedyIds picked on the host
};

} // namespace qwen::rt

#endif // QWEN_RT_EXECUTOR_H
