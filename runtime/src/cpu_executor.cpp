//===- cpu_executor.cpp - Runs a CPU artifact's step program --------------===//
#include "qwen_rt/cpu_executor.h"

#include "qwen_rt/error.h"
#include "qwen_rt/kv_cache.h"
#include "qwen_rt/state_pool.h"
#include "qwen_rt/thread_pool.h"

namespace qwen::rt {

CpuExecutor::CpuExecutor(Artifact &artifact, ThreadPool &pool) : Executor(artifact), Pool(pool) {
  artifact.loadKernels();
}

uint8_t *CpuExecutor::allocate(const ArenaLayout &layout, KVCache &kv, StatePool &states) {
  Layout = layout;
  KV = &kv;
  States = &states;
  Arena = HostBuffer(layout.total, "the activation arena");
  return Arena.data();
}

BoundWeights CpuExecutor::bindWeights(WeightStore weights, bool /*progress*/) {
  Weights.emplace(std::move(weights));
  // Every argument pointer is fixed from now on: resolve them once.
  uint8_t *base = Arena.data();
  ProgramArgs.clear();
  for (const ProgramEntry &entry : Art.program()) {
    std::vector<void *> args;
    for (const ArgRef &a : entry.args) {
      switch (a.kind) {
      case ArgRef::Input: args.push_back(base + Layout.artifactInputOffsets[size_t(a.index)]); break;
      case ArgRef::Weight: args.push_back(Weights->data(size_t(Art.weightIndex(a.index)))); break;
      case ArgRef::Buffer: args.push_back(base + Layout.bufferOffsets[size_t(Art.bufferIndex(a.index))]); break;
      case ArgRef::KV: args.push_back(a.index == 0 ? KV->keys() : KV->values()); break;
      case ArgRef::State: args.push_back(a.index == 0 ? States->conv() : States->recurrent()); break;
      }
    }
    ProgramArgs.push_back(std::move(args));
  }
  return {Weights->totalBytes(), Weights->mappedBytes()};
}

void CpuExecutor::resetStateSlot(int slot) { States->reset(slot); }

void CpuExecutor::copyStateSlot(int from, int to) { States->copy(from, to); }

std::vector<uint8_t> CpuExecutor::stateSlotBytes(int slot) const { return States->snapshot(slot); }

StepRows CpuExecutor::run(const StepDims &dims, bool /*decodeOnly*/, StepOutput output) {
  if (output != StepOutput::Rows)
    throw Error("internal error: the CPU executor only returns output rows");
  const std::vector<ProgramEntry> &program = Art.program();
  const int64_t *d = dims.data();
  for (size_t k = 0; k < program.size(); ++k) {
    int64_t n = shapeProduct(program[k].grid, dims);
    if (n <= 0)
      continue;
    KernelFn fn = program[k].fn;
    void *const *args = ProgramArgs[k].data();
    Pool.parallelFor(n, [fn, args, d](int64_t begin, int64_t end) { fn(args, d, begin, end); });
  }
  return {reinterpret_cast<const float *>(Arena.data() + Layout.outputOffset), nullptr};
}

} // namespace qwen::rt
