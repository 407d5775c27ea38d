//===- engine.cpp - Runs the step program of an artifact ------------------===//

#include "qwen_rt/engine.h"

#include "qwen_rt/error.h"

#include <unistd.h>

#include <cstring>
#include <filesystem>

namespace fs = std::filesystem;

namespace qwen::rt {

//===----------------------------------------------------------------------===//
// Memory plan
//===----------------------------------------------------------------------===//

namespace {
constexpr uint64_t kAlign = 64;
uint64_t alignUp(uint64_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

/// The step inputs the runtime fills, in this order in the arena.
enum InputSlot {
  InTokens,
  InPositions,
  InTokenSeq,
  InBlockTable,
  InLogitRows,
  InMropePositions,
  InStateSlots,
  NumInputSlots
};
const char *const kInputNames[NumInputSlots] = {"tokens",     "positions",       "token_seq",  "block_table",
                                                "logit_rows", "mrope_positions", "state_slots"};

/// Where each step input and activation buffer lives in the arena, for the
/// largest step the engine serves.
struct ArenaLayout {
  uint64_t inputOffsets[NumInputSlots] = {};
  std::vector<uint64_t> bufferOffsets; ///< by buffer index
  uint64_t total = 0;
};

ArenaLayout layoutArena(const Artifact &art, const StepDims &maxDims) {
  ArenaLayout l;
  auto place = [&](uint64_t bytes) {
    uint64_t at = l.total;
    l.total += alignUp(std::max<uint64_t>(bytes, 1));
    return at;
  };
  const int64_t T = maxDims[SymT], B = maxDims[SymB], P = maxDims[SymP], R = maxDims[SymR];
  const int64_t counts[NumInputSlots] = {T, T, T, B * P, R, 3 * T, B};
  for (int i = 0; i < NumInputSlots; ++i)
    l.inputOffsets[i] = place(uint64_t(counts[i]) * sizeof(int32_t));
  for (const BufferSpec &b : art.buffers())
    l.bufferOffsets.push_back(place(uint64_t(shapeProduct(b.shape, maxDims)) * dtypeSize(b.dtype)));
  return l;
}

StepDims maxStepDims(const MemoryPlan &plan) {
  int64_t pagesPerSeq = (plan.maxContext + plan.pageSize - 1) / plan.pageSize;
  return {plan.maxBatchTokens, plan.maxSequences, pagesPerSeq, plan.maxBatchTokens};
}
} // namespace

MemoryPlan planMemory(const Artifact &art, const EngineOptions &o) {
  MemoryPlan p;
  const int64_t modelMax = art.maxPositionEmbeddings();
  p.maxContext = o.maxContext > 0 ? o.maxContext : modelMax;
  if (o.maxContext < 0)
    throw Error("the context length must be positive, got " + std::to_string(o.maxContext));
  if (p.maxContext > modelMax)
    throw Error("a context of " + std::to_string(p.maxContext) + " tokens exceeds the model's " +
                std::to_string(modelMax) + " (max_position_embeddings)");
  if (o.maxSequences <= 0)
    throw Error("the number of sequences must be positive, got " + std::to_string(o.maxSequences));
  if (o.maxBatchTokens <= 0 || o.maxBatchTokens > INT32_MAX)
    throw Error("the tokens per step must be between 1 and 2^31-1, got " + std::to_string(o.maxBatchTokens));
  if (o.numPages < 0)
    throw Error("the number of KV pages must not be negative, got " + std::to_string(o.numPages));
  p.maxSequences = o.maxSequences;
  p.maxBatchTokens = o.maxBatchTokens;
  p.pageSize = art.kvCache().pageSize;
  int64_t pagesPerSeq = (p.maxContext + p.pageSize - 1) / p.pageSize;
  p.numPages = o.numPages > 0 ? o.numPages : pagesPerSeq * o.maxSequences;
  p.kvBytesPerPage = 2 * art.kvCache().bytesPerPageOneArray();
  p.kvBytesTotal = p.kvBytesPerPage * uint64_t(p.numPages);
  p.stateBytesPerSequence = art.linearState().bytesPerSlot();
  p.stateBytesTotal = p.stateBytesPerSequence * uint64_t(p.maxSequences);
  for (const WeightSpec &w : art.weights())
    p.weightBytes += w.nbytes();
  p.arenaBytes = layoutArena(art, maxStepDims(p)).total;
  return p;
}

uint64_t physicalMemoryBytes() {
  long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && size > 0 ? uint64_t(pages) * uint64_t(size) : 0;
}

std::string MemoryPlan::describe() const {
  std::string s;
  s += "weights      " + formatBytes(weightBytes);
  if (weightBytesMapped)
    s += " (" + formatBytes(weightBytesMapped) + " mapped from the checkpoint without a copy)";
  s += "\nKV cache     " + formatBytes(kvBytesTotal) + ": " + std::to_string(numPages) + " pages of " +
       std::to_string(pageSize) + " tokens, " + formatBytes(kvBytesPerPage) + " each";
  if (stateBytesPerSequence)
    s += "\nstate slots  " + formatBytes(stateBytesTotal) + ": " + std::to_string(maxSequences) + " of " +
         formatBytes(stateBytesPerSequence) + " (linear-attention conv + recurrent state, one per live sequence)";
  s += "\nactivations  " + formatBytes(arenaBytes) + " for steps of up to " + std::to_string(maxBatchTokens) +
       " tokens";
  s += "\ntotal        " + formatBytes(totalBytes()) +
       " (KV and activation pages are committed as they are used)";
  int64_t pagesPerSeq = (maxContext + pageSize - 1) / pageSize;
  int64_t full = std::min<int64_t>(maxSequences, numPages / pagesPerSeq);
  s += "\nfits         " + std::to_string(full) + " sequence" + (full == 1 ? "" : "s") + " of " +
       std::to_string(maxContext) + " tokens";
  if (full < maxSequences)
    s += " (or up to " + std::to_string(maxSequences) + " shorter ones sharing " +
         std::to_string(numPages * pageSize) + " tokens of KV cache)";
  return s;
}

//===----------------------------------------------------------------------===//
// Loading
//===----------------------------------------------------------------------===//

Engine::Engine(Artifact artifact, const EngineOptions &options, const MemoryPlan &plan)
    : Art(std::move(artifact)), Plan(plan), Pool(options.numThreads),
      KV(Art.kvCache(), plan.numPages, plan.maxSequences), States(Art.linearState(), plan.maxSequences), Live(size_t(plan.maxSequences), false),
      Lengths(size_t(plan.maxSequences), 0) {
  ArenaLayout layout = layoutArena(Art, maxStepDims(Plan));
  Arena = HostBuffer(layout.total, "the activation arena");
  uint8_t *base = Arena.data();
  int32_t *inputs[NumInputSlots];
  for (int i = 0; i < NumInputSlots; ++i)
    inputs[i] = reinterpret_cast<int32_t *>(base + layout.inputOffsets[i]);
  Tokens = inputs[InTokens];
  Positions = inputs[InPositions];
  TokenSeq = inputs[InTokenSeq];
  BlockTable = inputs[InBlockTable];
  LogitRows = inputs[InLogitRows];
  MropePositions = inputs[InMropePositions];
  StateSlots = inputs[InStateSlots];
  for (const InputSpec &in : Art.inputs())
    for (int i = 0; i < NumInputSlots; ++i)
      if (in.name == kInputNames[i])
        InputPtrs.push_back(inputs[i]);
  for (uint64_t off : layout.bufferOffsets)
    BufferPtrs.push_back(base + off);
  Logits = reinterpret_cast<const float *>(BufferPtrs[size_t(Art.bufferIndex(Art.outputBuffer()))]);
}

Engine::~Engine() = default;

std::unique_ptr<Engine> Engine::load(const std::string &artifactDir, const EngineOptions &options) {
  Artifact art = Artifact::open(artifactDir);
  art.loadKernels();
  MemoryPlan plan = planMemory(art, options);
  uint64_t physical = physicalMemoryBytes();
  if (physical && plan.totalBytes() > physical)
    throw Error("this model needs " + formatBytes(plan.totalBytes()) + " (weights " + formatBytes(plan.weightBytes) +
                ", KV cache " + formatBytes(plan.kvBytesTotal) + " for " + std::to_string(plan.maxSequences) +
                " sequences of " + std::to_string(plan.maxContext) + " tokens, " +
                (plan.stateBytesTotal ? "linear-attention state " + formatBytes(plan.stateBytesTotal) + ", " : "") +
                "activations " +
                formatBytes(plan.arenaBytes) + "), but this machine has " + formatBytes(physical) +
                "; lower --max-context, --max-sequences, --kv-pages or --max-batch-tokens");
  std::unique_ptr<Engine> e(new Engine(std::move(art), options, plan));

  e->CheckpointDir = e->Art.resolveCheckpointDir(options.checkpointDir);
  if (options.randomWeights) {
    e->Weights.emplace(WeightStore::random(e->Art, options.seed, e->Pool, options.progress));
    if (!fs::is_directory(e->CheckpointDir))
      e->CheckpointDir.clear();
  } else {
    e->Art.verifyCheckpoint(e->CheckpointDir);
    e->Weights.emplace(
        WeightStore::bind(e->Art, SafetensorsArchive::openDir(e->CheckpointDir), e->Pool, options.progress));
  }
  e->Plan.weightBytes = e->Weights->totalBytes();
  e->Plan.weightBytesMapped = e->Weights->mappedBytes();

  if (!e->CheckpointDir.empty())
    e->GenConfig = readGenerationConfig(e->CheckpointDir);

  // Every argument pointer is fixed from now on: resolve them once.
  for (const ProgramEntry &entry : e->Art.program()) {
    std::vector<void *> args;
    for (const ArgRef &a : entry.args) {
      switch (a.kind) {
      case ArgRef::Input: args.push_back(e->InputPtrs[size_t(a.index)]); break;
      case ArgRef::Weight: args.push_back(e->Weights->data(size_t(e->Art.weightIndex(a.index)))); break;
      case ArgRef::Buffer: args.push_back(e->BufferPtrs[size_t(e->Art.bufferIndex(a.index))]); break;
      case ArgRef::KV: args.push_back(a.index == 0 ? e->KV.keys() : e->KV.values()); break;
      case ArgRef::State: args.push_back(a.index == 0 ? e->States.conv() : e->States.recurrent()); break;
      }
    }
    e->ProgramArgs.push_back(std::move(args));
  }
  return e;
}

const Tokenizer *Engine::tokenizer() const {
  if (!TokLoaded) {
    TokLoaded = true;
    const std::string &name = Art.checkpoint().tokenizer;
    if (!CheckpointDir.empty() && !name.empty() && fs::exists(fs::path(CheckpointDir) / name))
      Tok.emplace(Tokenizer::fromFile((fs::path(CheckpointDir) / name).string()));
  }
  return Tok ? &*Tok : nullptr;
}

//===----------------------------------------------------------------------===//
// Sequences
//===----------------------------------------------------------------------===//

void Engine::checkSequence(int seq, const char *what) const {
  if (seq < 0 || seq >= Plan.maxSequences || !Live[size_t(seq)])
    throw Error(std::string(what) + ": sequence " + std::to_string(seq) + " does not exist (it was never created or was released)");
}

int Engine::createSequence() {
  for (int s = 0; s < Plan.maxSequences; ++s) {
    if (!Live[size_t(s)]) {
      States.reset(s);
      Live[size_t(s)] = true;
      Lengths[size_t(s)] = 0;
      return s;
    }
  }
  throw Error("all " + std::to_string(Plan.maxSequences) +
              " sequences are in use; release one first or load the engine with more sequences");
}

void Engine::releaseSequence(int seq) {
  checkSequence(seq, "releaseSequence");
  KV.release(seq);
  Live[size_t(seq)] = false;
  Lengths[size_t(seq)] = 0;
}

int64_t Engine::sequenceLength(int seq) const {
  checkSequence(seq, "sequenceLength");
  return Lengths[size_t(seq)];
}

int Engine::liveSequences() const {
  int n = 0;
  for (bool l : Live)
    n += l;
  return n;
}

int64_t Engine::extraPagesFor(int seq, int64_t length) const {
  checkSequence(seq, "extraPagesFor");
  return KV.extraPagesFor(seq, length);
}

//===----------------------------------------------------------------------===//
// Steps
//===----------------------------------------------------------------------===//

void Engine::runProgram(const StepDims &dims) {
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
}

std::vector<float> Engine::forward(const std::vector<SequenceChunk> &chunks, bool allLogits) {
  const int64_t vocab = vocabSize();
  // Validate everything first: a bad request must not change any state.
  std::vector<bool> seen(size_t(Plan.maxSequences), false);
  int64_t extraPages = 0;
  for (size_t i = 0; i < chunks.size(); ++i) {
    const SequenceChunk &c = chunks[i];
    checkSequence(c.seq, "forward");
    if (seen[size_t(c.seq)])
      throw Error("forward: sequence " + std::to_string(c.seq) + " appears twice in one step");
    seen[size_t(c.seq)] = true;
    if (c.tokens.empty())
      throw Error("forward: the chunk for sequence " + std::to_string(c.seq) + " has no tokens");
    for (size_t j = 0; j < c.tokens.size(); ++j)
      if (c.tokens[j] < 0 || c.tokens[j] >= vocab)
        throw Error("token id " + std::to_string(c.tokens[j]) + " at position " + std::to_string(j) +
                    " is out of range for vocabulary of " + std::to_string(vocab));
    int64_t have = Lengths[size_t(c.seq)], add = int64_t(c.tokens.size());
    if (have + add > Plan.maxContext)
      throw Error(have == 0 ? "prompt of " + std::to_string(add) + " tokens exceeds the context of " +
                                  std::to_string(Plan.maxContext) + " tokens"
                            : "sequence of " + std::to_string(have) + " tokens plus " + std::to_string(add) +
                                  " new exceeds the context of " + std::to_string(Plan.maxContext) + " tokens");
    extraPages += KV.extraPagesFor(c.seq, have + add);
  }
  if (extraPages > KV.numFreePages())
    throw Error("out of KV cache pages: this step needs " + std::to_string(extraPages) + " more pages of " +
                std::to_string(Plan.pageSize) + " tokens, but only " + std::to_string(KV.numFreePages()) + " of " +
                std::to_string(KV.numPages()) + " are free; finish or release other sequences first");
  if (chunks.empty())
    return {};

  // Commit: reserve pages, then run the steps.
  for (const SequenceChunk &c : chunks)
    KV.reserve(c.seq, Lengths[size_t(c.seq)] + int64_t(c.tokens.size()));
  std::vector<int64_t> firstRow(chunks.size());
  int64_t rows = 0;
  for (size_t i = 0; i < chunks.size(); ++i) {
    firstRow[i] = rows;
    rows += allLogits ? int64_t(chunks[i].tokens.size()) : 1;
  }
  std::vector<float> out(size_t(rows * vocab));

  struct Part {
    size_t chunk;
    int64_t begin, count;
  };
  std::vector<Part> parts;
  std::vector<int64_t> destRows;
  size_t next = 0;
  int64_t offset = 0;
  while (next < chunks.size()) {
    // Fill one step with up to maxBatchTokens tokens; a long chunk continues in the next step.
    parts.clear();
    int64_t T = 0;
    while (next < chunks.size() && T < Plan.maxBatchTokens) {
      int64_t size = int64_t(chunks[next].tokens.size());
      int64_t take = std::min(size - offset, Plan.maxBatchTokens - T);
      parts.push_back({next, offset, take});
      T += take;
      offset += take;
      if (offset == size) {
        ++next;
        offset = 0;
      }
    }
    int64_t P = 1;
    for (const Part &p : parts)
      P = std::max<int64_t>(P, int64_t(KV.pages(chunks[p.chunk].seq).size()));
    const int64_t B = int64_t(parts.size());
    std::fill(BlockTable, BlockTable + B * P, 0);
    destRows.clear();
    int64_t t = 0;
    for (int64_t b = 0; b < B; ++b) {
      const Part &p = parts[size_t(b)];
      const SequenceChunk &c = chunks[p.chunk];
      const int64_t start = Lengths[size_t(c.seq)] + p.begin;
      for (int64_t j = 0; j < p.count; ++j, ++t) {
        Tokens[t] = c.tokens[size_t(p.begin + j)];
        Positions[t] = int32_t(start + j);
        // Text only: the temporal, height and width positions are equal.
        for (int axis = 0; axis < 3; ++axis)
          MropePositions[3 * t + axis] = Positions[t];
        TokenSeq[t] = int32_t(b);
        if (allLogits) {
          LogitRows[destRows.size()] = int32_t(t);
          destRows.push_back(firstRow[p.chunk] + p.begin + j);
        }
      }
      if (!allLogits && p.begin + p.count == int64_t(c.tokens.size())) {
        LogitRows[destRows.size()] = int32_t(t - 1);
        destRows.push_back(firstRow[p.chunk]);
      }
      StateSlots[b] = int32_t(c.seq);
      const std::vector<int32_t> &pages = KV.pages(c.seq);
      std::copy(pages.begin(), pages.end(), BlockTable + b * P);
    }
    int64_t R = int64_t(destRows.size());
    if (R == 0) { // a step in the middle of a long prompt: compute one row, drop it
      LogitRows[0] = int32_t(T - 1);
      R = 1;
    }
    runProgram({T, B, P, R});
    for (size_t r = 0; r < destRows.size(); ++r)
      std::memcpy(&out[size_t(destRows[r] * vocab)], Logits + r * size_t(vocab), size_t(vocab) * sizeof(float));
  }
  for (const SequenceChunk &c : chunks)
    Lengths[size_t(c.seq)] += int64_t(c.tokens.size());
  return out;
}

} // namespace qwen::rt
