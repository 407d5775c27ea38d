//===- state_pool.cpp - Linear-attention state slots ----------------------===//
#include "qwen_rt/state_pool.h"

#include "qwen_rt/error.h"

#include <cstring>

namespace qwen::rt {

StatePool::StatePool(const LinearStateSpec &spec, int numSlots, bool allocateArrays)
    : Spec(spec), NumSlots(numSlots) {
  if (!Spec.present() || !allocateArrays)
    return;
  Conv = HostBuffer(Spec.convBytesPerSlot() * uint64_t(numSlots), "the linear-attention conv state");
  Recurrent = HostBuffer(Spec.recurrentBytesPerSlot() * uint64_t(numSlots), "the linear-attention recurrent state");
}

void StatePool::reset(int slot) {
  if (slot < 0 || slot >= NumSlots)
    throw Error("state slot " + std::to_string(slot) + " is out of range [0, " + std::to_string(NumSlots) + ")");
  if (empty() || !Conv.data())
    return;
  std::memset(Conv.data() + uint64_t(slot) * Spec.convBytesPerSlot(), 0, Spec.convBytesPerSlot());
  std::memset(Recurrent.data() + uint64_t(slot) * Spec.recurrentBytesPerSlot(), 0, Spec.recurrentBytesPerSlot());
}

void StatePool::copy(int from, int to) {
  if (from < 0 || from >= NumSlots || to < 0 || to >= NumSlots)
    throw Error("state slots " + std::to_string(from) + " -> " + std::to_string(to) + " are out of range [0, " +
                std::to_string(NumSlots) + ")");
  if (empty() || !Conv.data() || from == to)
    return;
  const uint64_t conv = Spec.convBytesPerSlot(), recurrent = Spec.recurrentBytesPerSlot();
  std::memcpy(Conv.data() + uint64_t(to) * conv, Conv.data() + uint64_t(from) * conv, conv);
  std::memcpy(Recurrent.data() + uint64_t(to) * recurrent, Recurrent.data() + uint64_t(from) * recurrent, recurrent);
}

std::vector<uint8_t> StatePool::snapshot(int slot) const {
  if (slot < 0 || slot >= NumSlots)
    throw Error("state slot " + std::to_string(slot) + " is out of range [0, " + std::to_string(NumSlots) + ")");
  std::vector<uint8_t> bytes;
  if (empty() || !Conv.data())
    return bytes;
  const uint8_t *conv = Conv.data() + uint64_t(slot) * Spec.convBytesPerSlot();
  const uint8_t *recurrent = Recurrent.data() + uint64_t(slot) * Spec.recurrentBytesPerSlot();
  bytes.insert(bytes.end(), conv, conv + Spec.convBytesPerSlot());
  bytes.insert(bytes.end(), recurrent, recurrent + Spec.recurrentBytesPerSlot());
  return bytes;
}

} // namespace qwen::rt
