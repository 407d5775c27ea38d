//===- engine.cpp - Runs the step program of an artifact ------------------===//

#include "qwen_rt/engine.h"

#include "qwen_rt/error.h"
#include "qwen_rt/sampling.h"

#include <unistd.h>

#include <cstdio>
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
  uint64_t inputBytes = 0;             ///< the inputs come first: [0, inputBytes)
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
  l.inputBytes = l.total;
  for (const BufferSpec &b : art.buffers())
    l.bufferOffsets.push_back(place(uint64_t(shapeProduct(b.shape, maxDims)) * dtypeSize(b.dtype)));
  return l;
}

int64_t pagesPerSequence(const MemoryPlan &plan) { return (plan.maxContext + plan.pageSize - 1) / plan.pageSize; }

StepDims maxStepDims(const MemoryPlan &plan) {
  return {plan.maxBatchTokens, plan.maxSequences, pagesPerSequence(plan), plan.maxBatchTokens};
}

/// Decode steps on a GPU replay CUDA graphs captured per step shape; the
/// block-table width P is rounded up to a power of two so a growing sequence
/// reuses its graph for a while instead of needing a new one every page.
int64_t graphPageBucket(int64_t pages, int64_t maxPages) {
  int64_t bucket = 1;
  while (bucket < pages)
    bucket *= 2;
  return std::min(bucket, maxPages);
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
  if (o.prefixCheckpoints < -1)
    throw Error("the number of prefix-cache checkpoints must not be negative, got " +
                std::to_string(o.prefixCheckpoints));
  if (o.prefixCache && art.linearState().present())
    p.prefixCheckpoints = o.prefixCheckpoints >= 0 ? o.prefixCheckpoints : 2 * o.maxSequences;
  p.checkpointBytesTotal = p.stateBytesPerSequence * uint64_t(p.prefixCheckpoints);
  for (const WeightSpec &w : art.weights())
    p.weightBytes += w.nbytes();
  p.arenaBytes = layoutArena(art, maxStepDims(p)).total;
  if (art.isCuda()) {
    p.weightBytes = CudaMemorySizes::weightBytes(art);
    p.gemmWorkspaceBytes = CudaMemorySizes::gemmWorkspaceBytes();
    p.device = "cuda";
  }
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
  if (prefixCheckpoints)
    s += "\ncheckpoints  " + formatBytes(checkpointBytesTotal) + ": " + std::to_string(prefixCheckpoints) +
         " state slots for the prefix cache (the state at a page boundary)";
  s += "\nactivations  " + formatBytes(arenaBytes) + " for steps of up to " + std::to_string(maxBatchTokens) +
       " tokens";
  if (gemmWorkspaceBytes)
    s += "\nworkspace    " + formatBytes(gemmWorkspaceBytes) + " for cuBLASLt";
  if (device.empty())
    s += "\ntotal        " + formatBytes(totalBytes()) + " (KV and activation pages are committed as they are used)";
  else
    s += "\ntotal        " + formatBytes(totalBytes()) + " of GPU memory on " + device;
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
      KV(Art.kvCache(), plan.numPages, plan.maxSequences, /*allocateArrays=*/!Art.isCuda()),
      States(Art.linearState(), plan.maxSequences + plan.prefixCheckpoints, /*allocateArrays=*/!Art.isCuda()),
      Live(size_t(plan.maxSequences), false), Lengths(size_t(plan.maxSequences), 0),
      History(size_t(plan.maxSequences)), CachedPages(size_t(plan.maxSequences), 0),
      DecodeCheckpoint(size_t(plan.maxSequences), -1) {
  if (options.prefixCache)
    Prefix = std::make_unique<PrefixCache>(plan.pageSize, plan.numPages, plan.prefixCheckpoints);
  ArenaLayout layout = layoutArena(Art, maxStepDims(Plan));
  OutputOffset = layout.bufferOffsets[size_t(Art.bufferIndex(Art.outputBuffer()))];
  uint8_t *base = nullptr;
  if (Art.isCuda()) {
    Cuda = std::make_unique<CudaExecutor>(Art, options.cudaDevice, options.cudaGraphs, options.cudaDecode,
                                          options.cudaProgrammaticLaunch);
    DeviceSampling = options.cudaDeviceSampling;
    const CudaDeviceInfo &gpu = Cuda->device();
    Plan.device = "cuda:" + std::to_string(gpu.ordinal) + " " + gpu.name + " (" + gpu.arch() + ")";
    CudaMemorySizes sizes;
    sizes.weights = Plan.weightBytes;
    sizes.arena = layout.total;
    sizes.kvOneArray = Art.kvCache().bytesPerPageOneArray() * uint64_t(Plan.numPages);
    sizes.stateConv = Art.linearState().convBytesPerSlot() * uint64_t(States.numSlots());
    sizes.stateRecurrent = Art.linearState().recurrentBytesPerSlot() * uint64_t(States.numSlots());
    sizes.workspace = Plan.gemmWorkspaceBytes;
    Cuda->allocate(sizes, layout.inputBytes);
    // Host memory only for the inputs (pinned, the executor's) and the logits.
    base = Cuda->inputStaging();
    uint64_t logitBytes = uint64_t(Plan.maxBatchTokens) * uint64_t(Art.vocabSize()) * sizeof(float);
    Arena = HostBuffer(logitBytes, "the logits copied from the GPU");
    Logits = reinterpret_cast<const float *>(Arena.data());
  } else {
    Arena = HostBuffer(layout.total, "the activation arena");
    base = Arena.data();
  }
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
  if (Cuda) {
    std::vector<uint64_t> inputOffsets;
    for (const InputSpec &in : Art.inputs())
      for (int i = 0; i < NumInputSlots; ++i)
        if (in.name == kInputNames[i])
          inputOffsets.push_back(layout.inputOffsets[i]);
    BufferOffsets = layout.bufferOffsets;
    InputOffsets = std::move(inputOffsets);
    return;
  }
  for (uint64_t off : layout.bufferOffsets)
    BufferPtrs.push_back(base + off);
  Logits = reinterpret_cast<const float *>(BufferPtrs[size_t(Art.bufferIndex(Art.outputBuffer()))]);
}

Engine::~Engine() = default;

std::unique_ptr<Engine> Engine::load(const std::string &artifactDir, const EngineOptions &options) {
  Artifact art = Artifact::open(artifactDir);
  if (!art.isCuda())
    art.loadKernels();
  MemoryPlan plan = planMemory(art, options);
  uint64_t physical = physicalMemoryBytes();
  // A GPU plan is checked against the device's free memory by the executor.
  if (!art.isCuda() && physical && plan.totalBytes() > physical)
    throw Error("this model needs " + formatBytes(plan.totalBytes()) + " (weights " + formatBytes(plan.weightBytes) +
                ", KV cache " + formatBytes(plan.kvBytesTotal) + " for " + std::to_string(plan.maxSequences) +
                " sequences of " + std::to_string(plan.maxContext) + " tokens, " +
                (plan.stateBytesTotal ? "linear-attention state " + formatBytes(plan.stateBytesTotal) + ", " : "") +
                "activations " +
                formatBytes(plan.arenaBytes) + "), but this machine has " + formatBytes(physical) +
                "; lower --max-context, --max-sequences, --kv-pages or --max-batch-tokens");
  std::unique_ptr<Engine> e(new Engine(std::move(art), options, plan));
  e->loadWeights(options);
  if (!e->CheckpointDir.empty())
    e->GenConfig = readGenerationConfig(e->CheckpointDir);
  if (e->Cuda) {
    e->Cuda->bindProgram(e->InputOffsets, e->BufferOffsets, e->OutputOffset, e->Plan.maxBatchTokens);
    return e;
  }

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

void Engine::loadWeights(const EngineOptions &options) {
  CheckpointDir = Art.resolveCheckpointDir(options.checkpointDir);
  if (options.randomWeights) {
    Weights.emplace(WeightStore::random(Art, options.seed, Pool, options.progress));
    if (!fs::is_directory(CheckpointDir))
      CheckpointDir.clear();
  } else {
    Art.verifyCheckpoint(CheckpointDir);
    Weights.emplace(WeightStore::bind(Art, SafetensorsArchive::openDir(CheckpointDir), Pool, options.progress));
  }
  if (!Cuda) {
    Plan.weightBytes = Weights->totalBytes();
    Plan.weightBytesMapped = Weights->mappedBytes();
    return;
  }
  // On a GPU the host copy is only the source of the upload.
  for (size_t i = 0; i < Art.weights().size(); ++i)
    Cuda->uploadWeight(i, Weights->data(i), Art.weights()[i].nbytes());
  Weights.reset();
  if (options.progress)
    std::fprintf(stderr, "uploaded %s of weights to %s\n", formatBytes(Plan.weightBytes).c_str(), Plan.device.c_str());
}

std::vector<uint8_t> Engine::stateSlotBytes(int slot) const {
  if (!Cuda)
    return States.snapshot(slot);
  if (slot < 0 || slot >= States.numSlots())
    throw Error("state slot " + std::to_string(slot) + " is out of range [0, " + std::to_string(States.numSlots()) +
                ")");
  if (States.empty())
    return {};
  const LinearStateSpec &spec = States.spec();
  std::vector<uint8_t> bytes = Cuda->readState(0, uint64_t(slot) * spec.convBytesPerSlot(), spec.convBytesPerSlot());
  std::vector<uint8_t> recurrent =
      Cuda->readState(1, uint64_t(slot) * spec.recurrentBytesPerSlot(), spec.recurrentBytesPerSlot());
  bytes.insert(bytes.end(), recurrent.begin(), recurrent.end());
  return bytes;
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
      if (Cuda && !States.empty()) {
        const LinearStateSpec &spec = States.spec();
        Cuda->zeroState(0, uint64_t(s) * spec.convBytesPerSlot(), spec.convBytesPerSlot());
        Cuda->zeroState(1, uint64_t(s) * spec.recurrentBytesPerSlot(), spec.recurrentBytesPerSlot());
      } else {
        States.reset(s);
      }
      Live[size_t(s)] = true;
      Lengths[size_t(s)] = 0;
      History[size_t(s)].clear();
      CachedPages[size_t(s)] = 0;
      DecodeCheckpoint[size_t(s)] = -1;
      return s;
    }
  }
  throw Error("all " + std::to_string(Plan.maxSequences) +
              " sequences are in use; release one first or load the engine with more sequences");
}

void Engine::releaseSequence(int seq) {
  checkSequence(seq, "releaseSequence");
  std::vector<int32_t> idle = KV.release(seq);
  // Leaves first: of one sequence's pages the last is evicted first.
  if (Prefix)
    for (auto it = idle.rbegin(); it != idle.rend(); ++it)
      Prefix->markIdle(*it);
  Live[size_t(seq)] = false;
  Lengths[size_t(seq)] = 0;
  History[size_t(seq)].clear();
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
// Prefix cache
//===----------------------------------------------------------------------===//

void Engine::copyStateSlot(int from, int to) {
  if (!Cuda) {
    States.copy(from, to);
    return;
  }
  const LinearStateSpec &spec = States.spec();
  const uint64_t conv = spec.convBytesPerSlot(), recurrent = spec.recurrentBytesPerSlot();
  Cuda->copyState(0, uint64_t(from) * conv, uint64_t(to) * conv, conv);
  Cuda->copyState(1, uint64_t(from) * recurrent, uint64_t(to) * recurrent, recurrent);
}

void Engine::makeFreePages(int64_t pages) {
  while (Prefix && KV.numFreePages() < pages) {
    int32_t page = Prefix->evict();
    if (page < 0)
      return;
    KV.unretain(page);
  }
}

Engine::PrefixHit Engine::reusePrefix(int seq, const std::vector<int32_t> &tokens) {
  checkSequence(seq, "reusePrefix");
  if (Lengths[size_t(seq)] != 0)
    throw Error("reusePrefix: sequence " + std::to_string(seq) + " already holds tokens");
  PrefixHit hit;
  if (!Prefix || tokens.empty())
    return hit;
  const int64_t pageSize = Plan.pageSize;
  // The last token is always computed: its logits are wanted.
  const int64_t reusable = std::min<int64_t>(int64_t(tokens.size()), Plan.maxContext) - 1;
  PrefixCache::Match match = Prefix->lookup(tokens.data(), std::max<int64_t>(reusable, 0) / pageSize);
  // A hybrid model continues from a state checkpoint; attention alone needs none.
  const size_t reuse = hasLinearState() ? match.checkpointed : match.pages.size();
  for (size_t i = 0; i < reuse; ++i) {
    KV.share(seq, match.pages[i]);
    Prefix->markHeld(match.pages[i]);
  }
  if (reuse && hasLinearState()) {
    const int32_t last = match.pages[reuse - 1];
    copyStateSlot(Plan.maxSequences + Prefix->checkpointOf(last), seq);
    Prefix->useCheckpoint(last);
  }
  hit.reused = int64_t(reuse) * pageSize;
  hit.matched = int64_t(match.pages.size()) * pageSize;
  Lengths[size_t(seq)] = hit.reused;
  History[size_t(seq)].assign(tokens.begin(), tokens.begin() + hit.reused);
  CachedPages[size_t(seq)] = int64_t(reuse);
  Prefix->countLookup(int64_t(tokens.size()), hit.reused);
  return hit;
}

void Engine::cacheFullPages(int seq, bool decode) {
  int64_t &cached = CachedPages[size_t(seq)];
  const std::vector<int32_t> &history = History[size_t(seq)];
  const int64_t pageSize = Plan.pageSize, full = int64_t(history.size()) / pageSize;
  while (cached >= 0 && cached < full) {
    const std::vector<int32_t> &pages = KV.pages(seq);
    const int32_t own = pages[size_t(cached)], parent = cached ? pages[size_t(cached - 1)] : -1;
    const int32_t page = Prefix->insert(own, parent, history.data() + cached * pageSize);
    if (page < 0) {
      cached = -1; // a hash collision: this sequence's later pages stay private
      return;
    }
    if (page == own) {
      KV.retain(own);
    } else {
      // The same tokens after the same pages were cached by another
      // sequence: hold that page (the same bits) and free ours.
      KV.replace(seq, size_t(cached), page);
      Prefix->markHeld(page);
    }
    ++cached;
  }
  if (!hasLinearState() || !Prefix->numCheckpointSlots() || full == 0 || cached != full ||
      int64_t(history.size()) != full * pageSize)
    return;
  const int32_t last = KV.pages(seq)[size_t(full - 1)];
  if (Prefix->checkpointOf(last) >= 0)
    return;
  // Decoding, a conversation only needs its latest checkpoint: the previous
  // one of this sequence gives its slot up unless a hit restored it.
  int32_t &previous = DecodeCheckpoint[size_t(seq)];
  if (decode && previous >= 0 && Prefix->cached(previous) && !Prefix->checkpointUsed(previous))
    Prefix->dropCheckpoint(previous);
  int slot = Prefix->addCheckpoint(last);
  copyStateSlot(seq, Plan.maxSequences + slot);
  if (decode)
    previous = last;
}

//===----------------------------------------------------------------------===//
// Steps
//===----------------------------------------------------------------------===//

void Engine::runProgram(const StepDims &dims, bool graphable, CudaExecutor::Sampling sampling) {
  if (Cuda) {
    CudaExecutor::StepOutput out;
    out.sampling = sampling;
    if (sampling == CudaExecutor::Sampling::Greedy) {
      StepIds.resize(size_t(dims[SymR]));
      out.host = StepIds.data();
    } else if (sampling == CudaExecutor::Sampling::TopK) {
      StepTopLogits.resize(size_t(dims[SymR] * Cuda->topKCandidates()));
      StepTopIds.resize(StepTopLogits.size());
      out.host = StepTopLogits.data();
      out.hostIds = StepTopIds.data();
    } else {
      out.host = Arena.data();
      out.offset = OutputOffset;
      out.bytes = uint64_t(dims[SymR]) * uint64_t(vocabSize()) * sizeof(float);
    }
    Cuda->step(dims, graphable, out);
    return;
  }
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
  std::vector<float> logits;
  run(chunks, allLogits, &logits, nullptr);
  return logits;
}

std::vector<int32_t> Engine::forwardGreedy(const std::vector<SequenceChunk> &chunks) {
  std::vector<int32_t> ids;
  run(chunks, /*allLogits=*/false, nullptr, &ids);
  return ids;
}

Engine::TopCandidates Engine::forwardTopCandidates(const std::vector<SequenceChunk> &chunks) {
  if (!topKCandidates())
    throw Error("forwardTopCandidates: this engine selects no top-k candidates on a device");
  TopCandidates top;
  run(chunks, /*allLogits=*/false, nullptr, nullptr, &top);
  return top;
}

void Engine::run(const std::vector<SequenceChunk> &chunks, bool allLogits, std::vector<float> *logits,
                 std::vector<int32_t> *ids, TopCandidates *top) {
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
  if (extraPages > freePages())
    throw Error("out of KV cache pages: this step needs " + std::to_string(extraPages) + " more pages of " +
                std::to_string(Plan.pageSize) + " tokens, but only " + std::to_string(freePages()) + " of " +
                std::to_string(KV.numPages()) + " are free; finish or release other sequences first");
  if (chunks.empty())
    return;

  // Commit: reserve pages, then run the steps.
  makeFreePages(extraPages);
  for (const SequenceChunk &c : chunks)
    KV.reserve(c.seq, Lengths[size_t(c.seq)] + int64_t(c.tokens.size()));
  std::vector<int64_t> firstRow(chunks.size());
  int64_t rows = 0;
  for (size_t i = 0; i < chunks.size(); ++i) {
    firstRow[i] = rows;
    rows += allLogits ? int64_t(chunks[i].tokens.size()) : 1;
  }
  if (logits)
    logits->assign(size_t(rows * vocab), 0.f);
  if (ids)
    ids->assign(size_t(rows), 0);
  const int64_t candidates = top ? topKCandidates() : 0;
  if (top) {
    top->count = candidates;
    top->logits.assign(size_t(rows * candidates), 0.f);
    top->ids.assign(size_t(rows * candidates), -1);
  }
  const bool deviceGreedy = ids && Cuda && DeviceSampling && Cuda->hasGreedySampler();
  const CudaExecutor::Sampling sampling = deviceGreedy ? CudaExecutor::Sampling::Greedy
                                          : top        ? CudaExecutor::Sampling::TopK
                                                       : CudaExecutor::Sampling::None;

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
    const bool decodeOnly = T == B;
    if (Cuda && decodeOnly)
      P = graphPageBucket(P, pagesPerSequence(Plan));
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
    runProgram({T, B, P, R}, decodeOnly, sampling);
    if (Prefix) {
      for (const Part &p : parts) {
        const SequenceChunk &c = chunks[p.chunk];
        History[size_t(c.seq)].insert(History[size_t(c.seq)].end(), c.tokens.begin() + p.begin,
                                      c.tokens.begin() + p.begin + p.count);
        cacheFullPages(c.seq, c.tokens.size() == 1);
      }
    }
    for (size_t r = 0; r < destRows.size(); ++r) {
      if (top) {
        const size_t from = r * size_t(candidates), to = size_t(destRows[r] * candidates);
        std::copy_n(StepTopLogits.begin() + long(from), candidates, top->logits.begin() + long(to));
        std::copy_n(StepTopIds.begin() + long(from), candidates, top->ids.begin() + long(to));
      } else if (deviceGreedy)
        (*ids)[size_t(destRows[r])] = StepIds[r];
      else if (ids)
        (*ids)[size_t(destRows[r])] = argmax(Logits + r * size_t(vocab), vocab);
      else
        std::memcpy(&(*logits)[size_t(destRows[r] * vocab)], Logits + r * size_t(vocab), size_t(vocab) * sizeof(float));
    }
  }
  for (const SequenceChunk &c : chunks)
    Lengths[size_t(c.seq)] += int64_t(c.tokens.size());
}

} // namespace qwen::rt
