//===- engine.cpp - Runs the step program of an artifact ------------------===//

#include "qwen_rt/engine.h"

#include "qwen_rt/cpu_executor.h"
#include "qwen_rt/error.h"
#include "qwen_rt/limits.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace fs = std::filesystem;

namespace qwen::rt {

//===----------------------------------------------------------------------===//
// Memory plan
//===----------------------------------------------------------------------===//

namespace {
int64_t pagesPerSequence(const MemoryPlan &plan) { return (plan.maxContext + plan.pageSize - 1) / plan.pageSize; }

StepDims maxStepDims(const MemoryPlan &plan) {
  return {plan.maxBatchTokens, plan.maxSequences, pagesPerSequence(plan), plan.maxBatchTokens};
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
  // The manifest's sizes are bounded (limits.h); the options are not.
  auto tooLarge = [](const std::string &what) {
    return Error(what + " does not fit in 64 bits; ask for fewer sequences, pages or tokens");
  };
  int64_t pagesPerSeq = (p.maxContext + p.pageSize - 1) / p.pageSize;
  std::optional<int64_t> pages = limits::checkedMul<int64_t>(pagesPerSeq, o.maxSequences);
  if (!pages)
    throw tooLarge("the number of KV pages");
  p.numPages = o.numPages > 0 ? o.numPages : *pages;
  p.kvBytesPerPage = 2 * art.kvCache().bytesPerPageOneArray();
  std::optional<uint64_t> kvBytes = limits::checkedMul<uint64_t>(p.kvBytesPerPage, uint64_t(p.numPages));
  if (!kvBytes)
    throw tooLarge("the KV cache size");
  p.kvBytesTotal = *kvBytes;
  p.stateBytesPerSequence = art.linearState().bytesPerSlot();
  std::optional<uint64_t> stateBytes =
      limits::checkedMul<uint64_t>(p.stateBytesPerSequence, uint64_t(p.maxSequences));
  if (!stateBytes)
    throw tooLarge("the linear-attention state size");
  p.stateBytesTotal = *stateBytes;
  if (o.prefixCheckpoints < -1)
    throw Error("the number of prefix-cache checkpoints must not be negative, got " +
                std::to_string(o.prefixCheckpoints));
  if (o.prefixCache && art.linearState().present())
    p.prefixCheckpoints = o.prefixCheckpoints >= 0 ? o.prefixCheckpoints : 2 * o.maxSequences;
  std::optional<uint64_t> checkpointBytes =
      limits::checkedMul<uint64_t>(p.stateBytesPerSequence, uint64_t(p.prefixCheckpoints));
  if (!checkpointBytes)
    throw tooLarge("the prefix-cache checkpoint pool");
  p.checkpointBytesTotal = *checkpointBytes;
  for (const WeightSpec &w : art.weights()) {
    std::optional<uint64_t> sum = limits::checkedAdd<uint64_t>(p.weightBytes, w.nbytes());
    if (!sum)
      throw tooLarge("the weights' size");
    p.weightBytes = *sum;
  }
  p.arenaBytes = layoutArena(art, maxStepDims(p)).total;
  // totalBytes() adds these up; it must not wrap either.
  uint64_t total = 0;
  for (uint64_t part : {p.weightBytes, p.kvBytesTotal, p.stateBytesTotal, p.checkpointBytesTotal, p.arenaBytes})
    if (std::optional<uint64_t> sum = limits::checkedAdd(total, part))
      total = *sum;
    else
      throw tooLarge("the memory plan");
  if (art.isCuda()) {
    p.weightBytes = CudaMemorySizes::weightBytes(art);
    p.gemmWorkspaceBytes = CudaMemorySizes::gemmWorkspaceBytes();
    p.device = "cuda";
  }
  if (std::optional<VisionProgramSpec> vision = parseVisionProgram(art)) {
    for (const WeightSpec &w : vision->weights)
      p.visionWeightBytes += w.nbytes();
    p.visionPatches = o.maxBatchTokens * vision->geometry.mergeUnit();
    p.visionArenaBytes = visionActivationBytes(*vision, p.visionPatches);
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
  if (visionWeightBytes)
    s += "\nvision       " + formatBytes(visionWeightBytes) + " of weights, " + formatBytes(visionArenaBytes) +
         " of activations for images of up to " + std::to_string(visionPatches) + " patches (" +
         std::to_string(maxBatchTokens) + " image tokens), bound on the first image";
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

namespace {
/// The executor of the artifact's target. Loads a CPU artifact's kernels.
std::unique_ptr<Executor> makeExecutor(Artifact &art, const EngineOptions &options, const MemoryPlan &plan,
                                       ThreadPool &pool) {
  if (!art.isCuda())
    return std::make_unique<CpuExecutor>(art, pool);
  CudaExecutorOptions cuda;
  cuda.device = options.cudaDevice;
  cuda.graphs = options.cudaGraphs;
  cuda.decode = options.cudaDecode;
  cuda.programmaticLaunch = options.cudaProgrammaticLaunch;
  cuda.deviceSampling = options.cudaDeviceSampling;
  cuda.maxPagesPerSequence = pagesPerSequence(plan);
  return std::make_unique<CudaExecutor>(art, cuda);
}
} // namespace

Engine::Engine(Artifact artifact, const EngineOptions &options, const MemoryPlan &plan)
    : Art(std::move(artifact)), Plan(plan), Pool(options.numThreads), Exec(makeExecutor(Art, options, plan, Pool)),
      KV(Art.kvCache(), plan.numPages, plan.maxSequences, /*allocateArrays=*/Exec->hostMemory()),
      States(Art.linearState(), plan.maxSequences + plan.prefixCheckpoints, /*allocateArrays=*/Exec->hostMemory()),
      Live(size_t(plan.maxSequences), false), Lengths(size_t(plan.maxSequences), 0),
      MaxMrope(size_t(plan.maxSequences), -1), RopeDelta(size_t(plan.maxSequences), 0),
      History(size_t(plan.maxSequences)), HistoryInputs(size_t(plan.maxSequences)),
      CachedPages(size_t(plan.maxSequences), 0),
      DecodeCheckpoint(size_t(plan.maxSequences), -1) {
  if (options.prefixCache)
    Prefix = std::make_unique<PrefixCache>(plan.pageSize, plan.numPages, plan.prefixCheckpoints);
  Images = std::make_unique<ImageCache>(options.imageCacheBytes);
  for (TokenInputs &inputs : HistoryInputs)
    inputs.hidden = Art.model().value("hidden_size", int64_t(0));
  if (std::string device = Exec->deviceName(); !device.empty())
    Plan.device = device;
  ArenaLayout layout = layoutArena(Art, maxStepDims(Plan));
  uint8_t *base = Exec->allocate(layout, KV, States);
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
    Mrope |= in.name == "mrope_positions";
  if (const nlohmann::json &model = Art.model(); model.contains("vision")) {
    const nlohmann::json &vision = model["vision"];
    auto id = [&](const char *key) {
      const nlohmann::json &v = vision.value(key, nlohmann::json());
      if (!v.is_number_integer() || v.get<int64_t>() < -1 || v.get<int64_t>() > INT32_MAX)
        throw Error("manifest: model.vision." + std::string(key) + " must be a token id");
      return int32_t(v.get<int64_t>());
    };
    ImageTokenId = id("image_token_id");
    VisionStartTokenId = id("vision_start_token_id");
    VisionEndTokenId = id("vision_end_token_id");
    SpatialMergeSize = int(vision.value("spatial_merge_size", int64_t(0)));
    if (SpatialMergeSize <= 0 || SpatialMergeSize > 64)
      throw Error("manifest: model.vision.spatial_merge_size must be in [1, 64]");
    bool imageInputs = false;
    for (const InputSpec &in : Art.inputs())
      imageInputs |= in.name == "image_embeds";
    if (!imageInputs)
      throw Error("manifest: a model with a vision section needs the image_rows and image_embeds inputs");
    // model.vision.encoder names the top-level program that makes the rows
    // (docs/ARTIFACT.md); the two are written together or not at all.
    const bool named = vision.contains("encoder");
    if (named && vision["encoder"] != "vision")
      throw Error("manifest: model.vision.encoder must be \"vision\" (the vision program's section)");
    if (named != Art.manifest().contains("vision"))
      throw Error(named ? "manifest: model.vision.encoder names the vision program, but the manifest has no vision section"
                        : "manifest: a vision program without model.vision.encoder naming it");
    // An image token outside the vocabulary never appears: no images then.
    if (ImageTokenId >= Art.vocabSize())
      ImageTokenId = -1;
    ImageRows = inputs[InImageRows];
    ImageEmbeds = reinterpret_cast<float *>(base + layout.inputOffsets[InImageEmbeds]);
  }
}

Engine::~Engine() = default;

std::unique_ptr<Engine> Engine::load(const std::string &artifactDir, const EngineOptions &options) {
  Artifact art = Artifact::open(artifactDir);
  MemoryPlan plan = planMemory(art, options);
  uint64_t physical = physicalMemoryBytes();
  // A GPU plan is checked against the device's free memory by its executor.
  if (plan.device.empty() && physical && plan.totalBytes() > physical)
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
  return e;
}

void Engine::loadWeights(const EngineOptions &options) {
  CheckpointDir = Art.resolveCheckpointDir(options.checkpointDir);
  std::optional<WeightStore> weights;
  if (options.randomWeights) {
    weights.emplace(WeightStore::random(Art, options.seed, Pool, options.progress));
    if (!fs::is_directory(CheckpointDir))
      CheckpointDir.clear();
  } else {
    Art.verifyCheckpoint(CheckpointDir);
    weights.emplace(WeightStore::bind(Art, SafetensorsArchive::openDir(CheckpointDir), Pool, options.progress));
  }
  BoundWeights bound = Exec->bindWeights(std::move(*weights), options.progress);
  Plan.weightBytes = bound.bytes;
  Plan.weightBytesMapped = bound.mapped;
}

std::vector<uint8_t> Engine::stateSlotBytes(int slot) const { return Exec->stateSlotBytes(slot); }

const Tokenizer *Engine::tokenizer() const {
  if (!TokLoaded) {
    TokLoaded = true;
    // An artifact compiled from config.json alone names no tokenizer; the
    // checkpoint bound at load time may still have the standard one.
    std::string name = Art.checkpoint().tokenizer.empty() ? "tokenizer.json" : Art.checkpoint().tokenizer;
    if (!CheckpointDir.empty() && fs::exists(fs::path(CheckpointDir) / name))
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
      Exec->resetStateSlot(s);
      Live[size_t(s)] = true;
      Lengths[size_t(s)] = 0;
      MaxMrope[size_t(s)] = -1;
      RopeDelta[size_t(s)] = 0;
      History[size_t(s)].clear();
      HistoryInputs[size_t(s)].clear();
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
  HistoryInputs[size_t(seq)].clear();
}

int64_t Engine::sequenceLength(int seq) const {
  checkSequence(seq, "sequenceLength");
  return Lengths[size_t(seq)];
}

int64_t Engine::ropeDelta(int seq) const {
  checkSequence(seq, "ropeDelta");
  return RopeDelta[size_t(seq)];
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

void Engine::makeFreePages(int64_t pages) {
  while (Prefix && KV.numFreePages() < pages) {
    int32_t page = Prefix->evict();
    if (page < 0)
      return;
    KV.unretain(page);
  }
}

TokenInputs Engine::promptInputs(const SequenceChunk &prompt) const {
  TokenInputs inputs;
  inputs.hidden = Art.model().value("hidden_size", int64_t(0));
  const size_t n = prompt.tokens.size();
  if (Mrope) {
    inputs.positions.resize(3 * n);
    for (size_t i = 0; i < n; ++i)
      for (size_t axis = 0; axis < 3; ++axis)
        inputs.positions[3 * i + axis] = prompt.mropePositions.empty() ? int32_t(i) : prompt.mropePositions[axis * n + i];
  }
  inputs.imageTokens.assign(prompt.imageRows.begin(), prompt.imageRows.end());
  inputs.imageRows = prompt.imageEmbeds;
  return inputs;
}

void Engine::recordInputs(const SequenceChunk &c, int64_t begin, int64_t count, int64_t first,
                          const std::vector<int32_t> &imageRowOf) {
  TokenInputs &inputs = HistoryInputs[size_t(c.seq)];
  const int64_t at = int64_t(History[size_t(c.seq)].size()) - count; // the part's first token in the sequence
  if (Mrope)
    inputs.positions.insert(inputs.positions.end(), MropePositions + 3 * first, MropePositions + 3 * (first + count));
  if (imageRowOf.empty())
    return;
  const size_t hidden = size_t(inputs.hidden);
  for (int64_t j = 0; j < count; ++j)
    if (const int32_t row = imageRowOf[size_t(begin + j)]; row >= 0) {
      inputs.imageTokens.push_back(at + j);
      inputs.imageRows.insert(inputs.imageRows.end(), c.imageEmbeds.begin() + long(size_t(row) * hidden),
                              c.imageEmbeds.begin() + long(size_t(row + 1) * hidden));
    }
}

Engine::PrefixHit Engine::reusePrefix(const SequenceChunk &prompt) {
  const int seq = prompt.seq;
  const std::vector<int32_t> &tokens = prompt.tokens;
  checkSequence(seq, "reusePrefix");
  if (Lengths[size_t(seq)] != 0)
    throw Error("reusePrefix: sequence " + std::to_string(seq) + " already holds tokens");
  PrefixHit hit;
  if (!Prefix || tokens.empty())
    return hit;
  checkImages(prompt);
  const int64_t pageSize = Plan.pageSize;
  // The last token is always computed: its logits are wanted.
  const int64_t reusable = std::min<int64_t>(int64_t(tokens.size()), Plan.maxContext) - 1;
  const int64_t pages = std::max<int64_t>(reusable, 0) / pageSize;
  TokenInputs inputs = promptInputs(prompt);
  std::vector<PageExtra> extras;
  for (int64_t k = 0; k < pages; ++k)
    extras.push_back(inputs.pageExtra(k * pageSize, pageSize));
  PrefixCache::Match match = Prefix->lookup(tokens.data(), pages, &extras);
  // A hybrid model continues from a state checkpoint; attention alone needs none.
  const size_t reuse = hasLinearState() ? match.checkpointed : match.pages.size();
  for (size_t i = 0; i < reuse; ++i) {
    KV.share(seq, match.pages[i]);
    Prefix->markHeld(match.pages[i]);
  }
  if (reuse && hasLinearState()) {
    const int32_t last = match.pages[reuse - 1];
    Exec->copyStateSlot(Plan.maxSequences + Prefix->checkpointOf(last), seq);
    Prefix->useCheckpoint(last);
  }
  hit.reused = int64_t(reuse) * pageSize;
  hit.matched = int64_t(match.pages.size()) * pageSize;
  Lengths[size_t(seq)] = hit.reused;
  History[size_t(seq)].assign(tokens.begin(), tokens.begin() + hit.reused);
  inputs.truncate(hit.reused);
  MaxMrope[size_t(seq)] = inputs.maxPosition(hit.reused);
  RopeDelta[size_t(seq)] = MaxMrope[size_t(seq)] + 1 - hit.reused;
  HistoryInputs[size_t(seq)] = std::move(inputs);
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
    // Image tokens share one id: the page's key holds their rows and positions too.
    const int32_t page = Prefix->insert(own, parent, history.data() + cached * pageSize,
                                        HistoryInputs[size_t(seq)].pageExtra(cached * pageSize, pageSize));
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
  Exec->copyStateSlot(seq, Plan.maxSequences + slot);
  if (decode)
    previous = last;
}

//===----------------------------------------------------------------------===//
// Steps
//===----------------------------------------------------------------------===//

void Engine::checkImages(const SequenceChunk &c) const {
  const std::string where = "forward: the chunk for sequence " + std::to_string(c.seq);
  const int64_t n = int64_t(c.tokens.size());
  if (!c.mropePositions.empty()) {
    if (!Mrope)
      throw Error(where + " has rotary position rows, but this model has no multimodal RoPE");
    if (int64_t(c.mropePositions.size()) != 3 * n)
      throw Error(where + " has " + std::to_string(c.mropePositions.size()) + " rotary positions for " +
                  std::to_string(n) + " tokens (expected three rows: " + std::to_string(3 * n) + ")");
    for (int32_t position : c.mropePositions)
      if (position < 0)
        throw Error(where + " has a negative rotary position " + std::to_string(position));
  }
  // A chunk without images embeds an image token as any other (as HF does
  // for one the model generates); one with images must give every one a row.
  if (c.imageRows.empty() && c.imageEmbeds.empty())
    return;
  if (!acceptsImages())
    throw Error(where + " has images, but this model takes none (its checkpoint has no vision_config)");
  const size_t hidden = size_t(Art.model().value("hidden_size", int64_t(0)));
  if (c.imageEmbeds.size() != c.imageRows.size() * hidden)
    throw Error(where + " has " + std::to_string(c.imageRows.size()) + " image rows but " +
                std::to_string(c.imageEmbeds.size()) + " embedding values (expected " +
                std::to_string(c.imageRows.size()) + " x " + std::to_string(hidden) + ")");
  size_t next = 0;
  for (int64_t k = 0; k < n; ++k) {
    const bool image = c.tokens[size_t(k)] == ImageTokenId;
    const bool row = next < c.imageRows.size() && c.imageRows[next] == k;
    if (image && !row)
      throw Error(where + " has an image token at " + std::to_string(k) + " without an embedding row");
    if (row && !image)
      throw Error(where + " has an image row for token " + std::to_string(k) + ", which is not an image token");
    next += row;
  }
  if (next != c.imageRows.size())
    throw Error(where + " has image rows out of order or beyond its " + std::to_string(n) + " tokens");
  if (c.mropePositions.empty())
    throw Error(where + " has images but no rotary position rows (computeMropePositions gives them)");
}

Engine::StepResult Engine::step(const std::vector<SequenceChunk> &chunks, const StepRequest &request) {
  const StepOutput output = request.output;
  const int64_t vocab = vocabSize(), width = Art.outputWidth();
  if (output == StepOutput::TopCandidates && !topKCandidates())
    throw Error("forwardTopCandidates: this engine selects no top-k candidates on a device");
  if (Art.outputsHiddenStates() && output != StepOutput::Rows)
    throw Error("this artifact returns hidden states (qwen-compile --hidden-states), not logits: "
                "it cannot pick tokens");
  if (request.allRows && output != StepOutput::Rows)
    throw Error("step: only logits rows can be returned for every token");
  const bool allRows = request.allRows;
  StepResult result;
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
    checkImages(c);
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
    return result;

  // Commit: reserve pages, then run the steps.
  makeFreePages(extraPages);
  for (const SequenceChunk &c : chunks)
    KV.reserve(c.seq, Lengths[size_t(c.seq)] + int64_t(c.tokens.size()));
  std::vector<int64_t> firstRow(chunks.size());
  int64_t rows = 0;
  for (size_t i = 0; i < chunks.size(); ++i) {
    firstRow[i] = rows;
    rows += allRows ? int64_t(chunks[i].tokens.size()) : 1;
  }
  const int64_t candidates = output == StepOutput::TopCandidates ? topKCandidates() : 0;
  switch (output) {
  case StepOutput::Rows: result.rows.assign(size_t(rows * width), 0.f); break;
  case StepOutput::GreedyIds: result.ids.assign(size_t(rows), 0); break;
  case StepOutput::TopCandidates:
    result.candidates.count = candidates;
    result.candidates.logits.assign(size_t(rows * candidates), 0.f);
    result.candidates.ids.assign(size_t(rows * candidates), -1);
    break;
  }

  struct Part {
    size_t chunk;
    int64_t begin, count;
  };
  std::vector<Part> parts;
  std::vector<int64_t> destRows;
  // Per chunk with images: the embedding row of each token (-1: none).
  std::vector<std::vector<int32_t>> imageRowOf(chunks.size());
  for (size_t i = 0; i < chunks.size(); ++i)
    if (!chunks[i].imageRows.empty()) {
      imageRowOf[i].assign(chunks[i].tokens.size(), -1);
      for (size_t r = 0; r < chunks[i].imageRows.size(); ++r)
        imageRowOf[i][size_t(chunks[i].imageRows[r])] = int32_t(r);
    }
  const size_t hidden = size_t(Art.model().value("hidden_size", int64_t(0)));
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
    P = Exec->blockTableWidth(P, decodeOnly);
    std::fill(BlockTable, BlockTable + B * P, 0);
    destRows.clear();
    int64_t t = 0, images = 0;
    for (int64_t b = 0; b < B; ++b) {
      const Part &p = parts[size_t(b)];
      const SequenceChunk &c = chunks[p.chunk];
      const int64_t start = Lengths[size_t(c.seq)] + p.begin;
      const int64_t n = int64_t(c.tokens.size());
      for (int64_t j = 0; j < p.count; ++j, ++t) {
        const int64_t k = p.begin + j;
        Tokens[t] = c.tokens[size_t(k)];
        Positions[t] = int32_t(start + j);
        if (c.mropePositions.empty()) {
          // Text: the temporal, height and width positions are equal.
          for (int axis = 0; axis < 3; ++axis)
            MropePositions[3 * t + axis] = int32_t(start + j + RopeDelta[size_t(c.seq)]);
        } else {
          for (int axis = 0; axis < 3; ++axis)
            MropePositions[3 * t + axis] = c.mropePositions[size_t(axis * n + k)];
        }
        if (ImageRows) {
          const int32_t row = imageRowOf[p.chunk].empty() ? -1 : imageRowOf[p.chunk][size_t(k)];
          ImageRows[t] = row < 0 ? -1 : int32_t(images);
          if (row >= 0)
            std::memcpy(ImageEmbeds + size_t(images++) * hidden, c.imageEmbeds.data() + size_t(row) * hidden,
                        hidden * sizeof(float));
        }
        TokenSeq[t] = int32_t(b);
        if (allRows) {
          LogitRows[destRows.size()] = int32_t(t);
          destRows.push_back(firstRow[p.chunk] + p.begin + j);
        }
      }
      if (!allRows && p.begin + p.count == int64_t(c.tokens.size())) {
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
    StepRows out = Exec->step({T, B, P, R}, decodeOnly, output);
    if (Prefix) {
      int64_t first = 0; // the part's first row of the step
      for (const Part &p : parts) {
        const SequenceChunk &c = chunks[p.chunk];
        History[size_t(c.seq)].insert(History[size_t(c.seq)].end(), c.tokens.begin() + p.begin,
                                      c.tokens.begin() + p.begin + p.count);
        recordInputs(c, p.begin, p.count, first, imageRowOf[p.chunk]);
        first += p.count;
        cacheFullPages(c.seq, c.tokens.size() == 1);
      }
    }
    for (size_t r = 0; r < destRows.size(); ++r) {
      const size_t dest = size_t(destRows[r]);
      switch (output) {
      case StepOutput::Rows:
        std::memcpy(&result.rows[dest * size_t(width)], out.values + r * size_t(width), size_t(width) * sizeof(float));
        break;
      case StepOutput::GreedyIds: result.ids[dest] = out.ids[r]; break;
      case StepOutput::TopCandidates: {
        const size_t from = r * size_t(candidates), to = dest * size_t(candidates);
        std::copy_n(out.values + from, candidates, result.candidates.logits.begin() + long(to));
        std::copy_n(out.ids + from, candidates, result.candidates.ids.begin() + long(to));
        break;
      }
      }
    }
  }
  for (const SequenceChunk &c : chunks) {
    int64_t &length = Lengths[size_t(c.seq)], &maxPosition = MaxMrope[size_t(c.seq)];
    if (c.mropePositions.empty())
      maxPosition = std::max<int64_t>(maxPosition, length + int64_t(c.tokens.size()) - 1 + RopeDelta[size_t(c.seq)]);
    else
      for (int32_t position : c.mropePositions)
        maxPosition = std::max<int64_t>(maxPosition, position);
    length += int64_t(c.tokens.size());
    // HF's rope_deltas: the text after the chunk resumes at max + 1.
    RopeDelta[size_t(c.seq)] = maxPosition + 1 - length;
  }
  return result;
}

} // namespace qwen::rt

//===----------------------------------------------------------------------===//
// Images (the vision program)
//===----------------------------------------------------------------------===//

namespace qwen::rt {

const VisionGeometry &Engine::visionGeometry() {
  if (!Vision)
    Vision = std::make_unique<VisionEncoder>(Art, CheckpointDir, Pool, *Exec);
  return Vision->geometry();
}

ImageEmbeddings Engine::encodeImages(const std::vector<PixelValues> &images) {
  visionGeometry();
  return Vision->encode(images);
}

} // namespace qwen::rt
