//===- executor.cpp - Where an artifact's step program runs ---------------===//
#include "qwen_rt/executor.h"

#include "qwen_rt/error.h"
#include "qwen_rt/limits.h"
#include "qwen_rt/sampling.h"
#include "qwen_rt/vision.h"
#include "qwen_rt/weights.h"

#include <algorithm>

namespace qwen::rt {

namespace {
constexpr uint64_t kAlign = 64;
uint64_t alignUp(uint64_t v) { return (v + kAlign - 1) / kAlign * kAlign; }
const char *const kInputNames[NumInputSlots] = {"tokens",      "positions",       "token_seq",  "block_table",
                                                "logit_rows",  "mrope_positions", "state_slots", "image_rows",
                                                "image_embeds"};
} // namespace

ArenaLayout layoutArena(const Artifact &art, const StepDims &maxDims) {
  ArenaLayout l;
  l.maxDims = maxDims;
  auto place = [&](uint64_t bytes) {
    uint64_t at = l.total;
    std::optional<uint64_t> end = limits::checkedAdd(l.total, alignUp(std::max<uint64_t>(bytes, 1)));
    if (!end || *end > (uint64_t(1) << 62))
      throw Error("the activation arena of this artifact does not fit in 64 bits");
    l.total = *end;
    return at;
  };
  const int64_t T = maxDims[SymT];
  // The image inputs take space only in the arenas of artifacts that have them.
  bool images = false;
  for (const InputSpec &in : art.inputs())
    images |= in.name == "image_embeds";
  l.imageWidth = images ? art.model().value("hidden_size", int64_t(0)) : 0;
  for (int i = 0; i < NumInputSlots; ++i)
    if (l.hasInput(i))
      l.inputOffsets[i] = place(l.stepInputBytes(i, maxDims, T));
  l.inputBytes = l.total;
  for (const InputSpec &in : art.inputs())
    for (int i = 0; i < NumInputSlots; ++i)
      if (in.name == kInputNames[i])
        l.artifactInputOffsets.push_back(l.inputOffsets[i]);
  for (const BufferSpec &b : art.buffers())
    l.bufferOffsets.push_back(place(uint64_t(shapeProduct(b.shape, maxDims)) * dtypeSize(b.dtype)));
  if (!art.buffers().empty())
    l.outputOffset = l.bufferOffsets[size_t(art.bufferIndex(art.outputBuffer()))];
  return l;
}

uint64_t ArenaLayout::stepInputBytes(int slot, const StepDims &dims, int64_t imageRows) const {
  if (!hasInput(slot))
    return 0;
  const int64_t T = dims[SymT], B = dims[SymB], P = dims[SymP], R = dims[SymR];
  const int64_t counts[NumInputSlots] = {T, T, T, B * P, R, 3 * T, B, T, imageRows * imageWidth};
  return uint64_t(counts[slot]) * sizeof(int32_t); // i32 or f32
}

Executor::~Executor() = default;
BoundProgram::~BoundProgram() = default;

std::unique_ptr<BoundProgram> Executor::bindVision(const VisionProgramSpec &spec, WeightStore weights,
                                                   ThreadPool &pool) {
  return bindHostVisionProgram(Art, spec, std::move(weights), pool);
}

StepRows Executor::step(const StepDims &dims, bool decodeOnly, StepOutput output) {
  if (output == StepOutput::TopCandidates && !topKCandidates())
    throw Error("internal error: a top-k step on an executor that selects no candidates");
  if (output != StepOutput::GreedyIds || greedyOnDevice())
    return run(dims, decodeOnly, output);
  // The argmax of each row on the host.
  StepRows rows = run(dims, decodeOnly, StepOutput::Rows);
  const int64_t width = Art.outputWidth();
  ArgmaxIds.resize(size_t(dims[SymR]));
  for (size_t r = 0; r < ArgmaxIds.size(); ++r)
    ArgmaxIds[r] = argmax(rows.values + r * size_t(width), width);
  return {nullptr, ArgmaxIds.data()};
}

} // namespace qwen::rt
