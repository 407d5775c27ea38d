//===- state_pool.h - Linear-attention state slots --------------*- C++ -*-===//
//
// Hybrid models (Qwen3-Next, Qwen3.5) keep, per live request, the last
// conv_window inputs of every linear-attention layer's convolution and its
// f32 recurrent state. The pool preallocates one slot per sequence the engine
// serves; a slot is zeroed when a request claims it, and the kernels read and
// write it in place through the step's `state_slots` input. The prefix
// cache's checkpoints are further slots after those, which only copy() reads
// and writes. Two arrays:
//   conv       [slot][layer][conv_window][conv_channels]
//   recurrent  [slot][layer][heads][key_dim][value_dim]
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_RT_STATE_POOL_H
#define QWEN_RT_STATE_POOL_H

#include "qwen_rt/artifact.h"
#include "qwen_rt/weights.h"

namespace qwen::rt {

class StatePool {
public:
  /// An empty pool when the model has no linear-attention layers.
  /// `allocateArrays` false: the arrays live elsewhere (GPU memory).
  StatePool(const LinearStateSpec &spec, int numSlots, bool allocateArrays = true);
  const LinearStateSpec &spec() const { return Spec; }

  bool empty() const { return !Spec.present(); }
  int numSlots() const { return NumSlots; }
  uint64_t bytesPerSlot() const { return Spec.bytesPerSlot(); }
  uint64_t totalBytes() const { return bytesPerSlot() * uint64_t(NumSlots); }
  void *conv() const { return Conv.data(); }
  void *recurrent() const { return Recurrent.data(); }

  /// Zeroes `slot`: a new request starts with an empty window and state.
  void reset(int slot);
  /// Copies slot `from` over slot `to` (prefix-cache checkpoints are slots).
  void copy(int from, int to);
  /// Copies of one slot's bytes (tests check that a step leaves other slots alone).
  std::vector<uint8_t> snapshot(int slot) const;

private:
  LinearStateSpec Spec;
  int NumSlots = 0;
  HostBuffer Conv, Recurrent;
};

} // namespace qwen::rt

#endif // QWEN_RT_STATE_POOL_H
