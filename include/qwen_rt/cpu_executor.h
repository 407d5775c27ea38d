//===- cpu_executor.h - Runs a CPU artifact's step program ------*- C++ -*-===//
//
// The host half of the Engine for `--target=cpu` artifacts: kernels.so's
// kernels called in program order, each over its grid on the thread pool,
// with every argument a fixed pointer into the arena, the weights, the KV
// cache or the state slots (all in host memory).
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_RT_CPU_EXECUTOR_H
#define QWEN_RT_CPU_EXECUTOR_H

#include "qwen_rt/executor.h"
#include "qwen_rt/weights.h"

#include <optional>

namespace qwen::rt {

class ThreadPool;

class CpuExecutor final : public Executor {
public:
  /// Loads kernels.so (Artifact::loadKernels). Throws Error.
  CpuExecutor(Artifact &artifact, ThreadPool &pool);

  std::string deviceName() const override { return ""; }
  bool hostMemory() const override { return true; }
  uint8_t *allocate(const ArenaLayout &layout, KVCache &kv, StatePool &states) override;
  BoundWeights bindWeights(WeightStore weights, bool progress) override;
  void resetStateSlot(int slot) override;
  void copyStateSlot(int from, int to) override;
  std::vector<uint8_t> stateSlotBytes(int slot) const override;

protected:
  StepRows run(const StepDims &dims, bool decodeOnly, StepOutput output) override;

private:
  ThreadPool &Pool;
  const KVCache *KV = nullptr;
  StatePool *States = nullptr;
  std::optional<WeightStore> Weights;
  HostBuffer Arena; ///< inputs + activations
  ArenaLayout Layout;
  std::vector<std::vector<void *>> ProgramArgs; ///< argument pointers of each program entry
};

} // namespace qwen::rt

#endif // QWEN_RT_CPU_EXECUTOR_H
