//===- engine.h - Runs the step program of an artifact ----------*- C++ -*-===//
//
// The Engine owns everything a loaded model needs at inference time: the
// artifact, the paged KV cache's bookkeeping, the prefix cache, the thread
// pool and the Executor that holds the weights and runs the kernels (on the
// CPU or a GPU, qwen_rt/executor.h). step() runs one ragged step (prefill,
// decode or both mixed) over several sequences and returns what its
// StepRequest asks for: logits rows, greedy ids or top-k candidates. All
// model math happens in the compiled kernels; the Engine packs the chunks
// into steps and fills the step inputs.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_RT_ENGINE_H
#define QWEN_RT_ENGINE_H

#include "qwen_rt/artifact.h"
#include "qwen_rt/cuda_executor.h"
#include "qwen_rt/executor.h"
#include "qwen_rt/generation_config.h"
#include "qwen_rt/image_cache.h"
#include "qwen_rt/kv_cache.h"
#include "qwen_rt/prefix_cache.h"
#include "qwen_rt/state_pool.h"
#include "qwen_rt/thread_pool.h"
#include "qwen_rt/tokenizer.h"
#include "qwen_rt/vision.h"
#include "qwen_rt/weights.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace qwen::rt {

struct EngineOptions {
  int numThreads = 0;             ///< 0 = hardware threads
  int64_t maxBatchTokens = 2048;  ///< tokens per kernel step; longer requests are split
  int maxSequences = 8;           ///< sequences alive at once
  int64_t maxContext = 0;         ///< 0 = the model's max_position_embeddings
  int64_t numPages = 0;           ///< 0 = enough for maxSequences full contexts
  std::string checkpointDir;      ///< overrides the manifest's checkpoint.dir
  bool randomWeights = false;     ///< seeded random weights instead of the checkpoint
  uint64_t seed = 0;              ///< for randomWeights
  bool progress = false;          ///< progress lines on stderr while loading
  int cudaDevice = 0;             ///< CUDA artifacts: the GPU to run on
  bool cudaGraphs = true;         ///< CUDA artifacts: replay decode steps from CUDA graphs
  /// CUDA artifacts whose kernels wait for their prerequisite grids: launch
  /// them with programmatic dependent launch (scheduled while the previous
  /// kernel drains).
  bool cudaProgrammaticLaunch = true;
  /// CUDA artifacts: decode-only steps launch the entries' decode variants, split-K.
  CudaExecutor::DecodeOptions cudaDecode;
  /// CUDA artifacts: greedy ids and top-k candidates are picked on the device
  /// (false: every step copies its logits rows back, for comparisons).
  bool cudaDeviceSampling = true;
  /// Reuse the KV pages (and linear-attention state checkpoints) of prompt
  /// prefixes seen before (docs/DESIGN.md, "Prefix caching").
  bool prefixCache = true;
  /// Hybrid models: linear-attention state checkpoints the prefix cache may
  /// keep; -1 = 2 per sequence. Ignored by models without such layers.
  int prefixCheckpoints = -1;
  /// Vision models: bytes of host memory for images seen before (their
  /// pixels and vision rows, image_cache.h); 0 keeps none.
  uint64_t imageCacheBytes = uint64_t(256) << 20;
};

/// What a loaded engine holds in memory, and what fits.
struct MemoryPlan {
  uint64_t weightBytes = 0;       ///< all weights, in their manifest dtypes
  uint64_t weightBytesMapped = 0; ///< of which bound zero-copy from the checkpoint mapping
  uint64_t kvBytesPerPage = 0;    ///< keys + values of one page
  uint64_t kvBytesTotal = 0;
  uint64_t stateBytesPerSequence = 0; ///< linear-attention state slot (hybrid models)
  uint64_t stateBytesTotal = 0;       ///< one slot per sequence
  int prefixCheckpoints = 0;          ///< prefix-cache checkpoint slots (hybrid models)
  uint64_t checkpointBytesTotal = 0;  ///< of the same size as a state slot each
  uint64_t arenaBytes = 0;        ///< step inputs + activation buffers at the largest step
  int64_t pageSize = 0, numPages = 0;
  int maxSequences = 0;
  int64_t maxContext = 0, maxBatchTokens = 0;
  std::string device;             ///< "" for the host CPU, else the GPU ("cuda:0 NVIDIA H100 ...")
  uint64_t gemmWorkspaceBytes = 0; ///< GPU: cuBLASLt workspace
  /// The vision program (qwen-compile --vision): its weights, and its
  /// activations for images whose <|image_pad|> tokens fill one step
  /// (maxBatchTokens * merge^2 patches); 0 without one.
  uint64_t visionWeightBytes = 0;
  uint64_t visionArenaBytes = 0;
  int64_t visionPatches = 0;
  uint64_t totalBytes() const {
    return weightBytes + kvBytesTotal + stateBytesTotal + checkpointBytesTotal + arenaBytes + gemmWorkspaceBytes +
           visionWeightBytes + visionArenaBytes;
  }
  /// Several lines: the sizes, then e.g. "fits 8 sequences of 512 tokens".
  std::string describe() const;
};

/// Physical memory of this machine in bytes.
uint64_t physicalMemoryBytes();

/// Computes the plan for `options` from the manifest alone (weightBytesMapped
/// is 0: it depends on the checkpoint's dtypes). Throws Error for options that
/// cannot work (maxContext beyond the model, too few pages, ...).
MemoryPlan planMemory(const Artifact &artifact, const EngineOptions &options);

/// Not thread-safe: one thread drives an Engine (its kernels use the pool).
class Engine {
public:
  /// Opens the artifact, loads its kernels, verifies and binds the checkpoint
  /// (or fills random weights), and allocates the KV cache and the arena.
  /// Refuses a plan larger than the machine's physical memory. Throws Error
  /// with a complete message.
  static std::unique_ptr<Engine> load(const std::string &artifactDir, const EngineOptions &options);

  const Artifact &artifact() const { return Art; }
  const nlohmann::json &modelInfo() const { return Art.model(); }
  MemoryPlan memoryPlan() const { return Plan; }
  /// Loaded (on first use) from the checkpoint folder and the manifest's
  /// checkpoint.tokenizer; nullptr if there is none. Throws Error for a bad file.
  const Tokenizer *tokenizer() const;
  /// generation_config.json & co of the checkpoint folder (empty when there is none).
  const GenerationConfig &generationConfig() const { return GenConfig; }
  /// The checkpoint folder in use ("" with random weights and no folder).
  const std::string &checkpointDir() const { return CheckpointDir; }
  int64_t vocabSize() const { return Art.vocabSize(); }
  int64_t maxContext() const { return Plan.maxContext; }
  int64_t maxBatchTokens() const { return Plan.maxBatchTokens; }
  int maxSequences() const { return Plan.maxSequences; }
  int numThreads() const { return Pool.numThreads(); }

  /// A new empty sequence; claims its linear-attention state slot (zeroed).
  /// Error when maxSequences are live.
  int createSequence();
  /// Ends a sequence and frees its KV pages and state slot. Its full pages
  /// stay in the prefix cache, idle, until their memory is needed.
  void releaseSequence(int seq);
  int64_t sequenceLength(int seq) const;
  int liveSequences() const;
  /// Pages a step can have: free ones and idle ones of the prefix cache.
  int64_t freePages() const { return KV.numFreePages() + (Prefix ? Prefix->idlePages() : 0); }
  int64_t numPages() const { return KV.numPages(); }

  /// Tokens appended to one sequence by a step. A prompt chunk of a
  /// vision-language artifact (acceptsImages()) may carry images: the rows
  /// of the vision tower's output that replace the embeddings of its
  /// `<|image_pad|>` tokens, and the three rotary position rows of every
  /// token (image_prompt.h, computeMropePositions). An image's pad run may
  /// be split over chunks: each chunk carries the rows of its own pad tokens.
  struct SequenceChunk {
    int seq;
    std::vector<int32_t> tokens;
    /// Indices into `tokens`, ascending: exactly the tokens that are
    /// imageTokenId(), one per row of imageEmbeds.
    std::vector<int32_t> imageRows = {};
    /// imageRows.size() x hidden_size f32, row-major.
    std::vector<float> imageEmbeds = {};
    /// Empty, or 3 x tokens.size(): the t, h and w positions of each token
    /// (MRoPE artifacts). Empty: text positions, each token at its index in
    /// the sequence plus the sequence's rope delta (ropeDelta()), which the
    /// last chunk with positions set to max position + 1 - length.
    std::vector<int32_t> mropePositions = {};
  };

  /// What reusePrefix() found: `reused` tokens are in the sequence now (a
  /// multiple of the page size); `matched` tokens had cached KV pages (for a
  /// hybrid model possibly more than `reused`: pages past the deepest state
  /// checkpoint). The prompt's prefill continues at `reused`.
  struct PrefixHit {
    int64_t reused = 0, matched = 0;
  };
  /// For a new (empty) sequence that will hold `tokens`: shares the longest
  /// run of cached full pages holding its first tokens and, for a hybrid
  /// model, restores the state checkpoint taken after the last of them. The
  /// last token is never reused (its logits are wanted), so at most
  /// (tokens - 1) / page_size pages are. The logits of every later position
  /// are bit-identical to a run without the cache (on the CPU). Nothing is
  /// reused when the prefix cache is off.
  /// `prompt`: the whole prompt of sequence `prompt.seq` as one chunk, with
  /// its images and rotary positions (ImagePrompt::chunk), which the cached
  /// pages must match too.
  PrefixHit reusePrefix(const SequenceChunk &prompt);
  PrefixHit reusePrefix(int seq, const std::vector<int32_t> &tokens) { return reusePrefix({seq, tokens}); }
  bool prefixCacheEnabled() const { return Prefix != nullptr; }
  /// Evicts every cached page no sequence holds (and its checkpoint).
  void clearPrefixCache() { makeFreePages(KV.numPages()); }
  /// Counters of the prefix cache (all zero when it is off).
  PrefixCacheStats prefixCacheStats() const { return Prefix ? Prefix->stats() : PrefixCacheStats{}; }
  /// Whether the model has linear-attention state (a hybrid model).
  bool hasLinearState() const { return !States.empty(); }
  /// The linear-attention state slots (empty for models without such layers).
  const StatePool &statePool() const { return States; }
  /// The bytes of one state slot (conv windows, then recurrent states), from
  /// host or device memory; empty for models without such layers.
  std::vector<uint8_t> stateSlotBytes(int slot) const;
  /// The GPU executor of a CUDA artifact; nullptr on the CPU.
  const CudaExecutor *cuda() const { return Exec->cuda(); }
  /// Lets the calling thread drive the engine from now on: on a GPU, makes
  /// the device's context current on it (a thread other than the one that
  /// loaded the engine must call this first); nothing to do on the CPU.
  void bindToCallingThread() const { Exec->makeCurrent(); }
  /// KV pages a sequence would need to grow to `length` positions.
  int64_t extraPagesFor(int seq, int64_t length) const;

  /// Whether this artifact's language model takes image embeddings (a
  /// checkpoint with a vision_config).
  bool acceptsImages() const { return ImageTokenId >= 0; }
  /// `<|image_pad|>`, `<|vision_start|>` and `<|vision_end|>` of a vision
  /// artifact (-1 otherwise), and the vision tower's spatial merge size.
  int32_t imageTokenId() const { return ImageTokenId; }
  int32_t visionStartTokenId() const { return VisionStartTokenId; }
  int32_t visionEndTokenId() const { return VisionEndTokenId; }
  int spatialMergeSize() const { return SpatialMergeSize; }
  /// Rotary position minus index of the sequence's next text token (HF's
  /// rope_deltas; 0 until a chunk with images sets it).
  int64_t ropeDelta(int seq) const;
  /// Each chunk's topKCandidates() best (logit, id) pairs of its last row,
  /// ordered by logit descending then id ascending (padding: id -1), as
  /// Sampler::sampleTopCandidates takes them.
  struct TopCandidates {
    int64_t count = 0; ///< per row
    std::vector<float> logits;
    std::vector<int32_t> ids;
  };
  /// What a step returns.
  struct StepRequest {
    /// Rows: logits (outputWidth() wide: hidden_size for an artifact
    /// returning hidden states); GreedyIds: each row's argmax, picked on the
    /// device when the artifact has the sampler kernel; TopCandidates: each
    /// row's candidates, selected on the device (needs topKCandidates() > 0).
    StepOutput output = StepOutput::Rows;
    /// Rows only: every token's row instead of each chunk's last.
    bool allRows = false;
  };
  /// The answer to a StepRequest; rows in chunk order. Only the member of
  /// the requested output is filled.
  struct StepResult {
    std::vector<float> rows;   ///< Rows: row-major [rows x outputWidth]
    std::vector<int32_t> ids;  ///< GreedyIds: one per row
    TopCandidates candidates;  ///< TopCandidates
  };
  /// One ragged step: appends each chunk's tokens to its sequence (prefill,
  /// decode, or mixed), runs the program and returns the requested output of
  /// each chunk's last token (or, with allRows, of every token). Everything
  /// is validated before any state changes, so a bad request loses nothing.
  /// Steps of more than maxBatchTokens tokens are split.
  StepResult step(const std::vector<SequenceChunk> &chunks, const StepRequest &request);

  /// step() for logits rows: row-major [rows x vocab] (hidden_size wide for
  /// an artifact returning hidden states: artifact().outputsHiddenStates()).
  std::vector<float> forward(const std::vector<SequenceChunk> &chunks, bool allLogits = false) {
    return step(chunks, {StepOutput::Rows, allLogits}).rows;
  }
  /// step() for greedy selection of each chunk's next token (the first
  /// index of its last row's maximum). On a GPU with the artifact's sampler
  /// kernel the argmax runs on the device and only the ids come back.
  std::vector<int32_t> forwardGreedy(const std::vector<SequenceChunk> &chunks) {
    return step(chunks, {StepOutput::GreedyIds, false}).ids;
  }
  /// step() for the top-k candidate selection on the device; only the
  /// candidates come back. Needs topKCandidates() > 0.
  TopCandidates forwardTopCandidates(const std::vector<SequenceChunk> &chunks) {
    return step(chunks, {StepOutput::TopCandidates, false}).candidates;
  }
  /// Candidates per row forwardTopCandidates() returns; 0 when this engine
  /// cannot select them (a CPU artifact, or no generated top-k kernel).
  int64_t topKCandidates() const { return Exec->topKCandidates(); }

  /// Images: whether the artifact has the vision program (qwen-compile --vision).
  bool hasVision() const { return parseVisionProgram(Art).has_value(); }
  /// The vision tower's geometry (patch, merge and output sizes). Throws
  /// Error when the artifact has no vision program.
  const VisionGeometry &visionGeometry();
  /// The embeddings of `images` (preprocessImage under the checkpoint's
  /// preprocessor_config.json) by the vision program: rows [sum of
  /// tokensPerImage, out_hidden_size] in image order, one per <|image_pad|>
  /// token of each image, to replace those tokens' embeddings. The vision
  /// weights are bound on first use. Throws Error when the artifact has no
  /// vision program (compiled without --vision, or a text-only model).
  ImageEmbeddings encodeImages(const std::vector<PixelValues> &images);
  /// Images seen before (thread-safe: front ends preprocess on their threads).
  ImageCache &imageCache() const { return *Images; }

  ~Engine();

private:
  Engine(Artifact artifact, const EngineOptions &options, const MemoryPlan &plan);
  void checkSequence(int seq, const char *what) const;
  /// Throws Error for a chunk whose images or rotary positions do not fit it.
  void checkImages(const SequenceChunk &chunk) const;
  /// Loads the weights (checkpoint or random) and hands them to the executor.
  void loadWeights(const EngineOptions &options);
  /// Evicts idle cached pages until `pages` are on the free list.
  void makeFreePages(int64_t pages);
  /// After a step appended tokens to `seq` (and to its History): names its
  /// newly full pages in the prefix cache and, when the step ended on a page
  /// boundary, checkpoints the linear-attention state there. `decode`: the
  /// step fed one sampled token.
  void cacheFullPages(int seq, bool decode);

  Artifact Art;
  MemoryPlan Plan;
  ThreadPool Pool;
  /// After Art and Pool, which it uses (so it is destroyed before them), and
  /// before KV and States, whose constructors ask it where the arrays live.
  std::unique_ptr<Executor> Exec;
  KVCache KV;
  StatePool States;
  mutable std::optional<Tokenizer> Tok;
  mutable bool TokLoaded = false;
  GenerationConfig GenConfig;
  std::string CheckpointDir;

  /// The step inputs, in the executor's host memory.
  int32_t *Tokens = nullptr, *Positions = nullptr, *TokenSeq = nullptr, *BlockTable = nullptr,
          *LogitRows = nullptr, *MropePositions = nullptr, *StateSlots = nullptr, *ImageRows = nullptr;
  float *ImageEmbeds = nullptr;
  int32_t ImageTokenId = -1, VisionStartTokenId = -1, VisionEndTokenId = -1;
  int SpatialMergeSize = 0;
  bool Mrope = false; ///< the artifact takes mrope_positions

  std::vector<bool> Live;
  std::vector<int64_t> Lengths;
  /// Per sequence: the largest rotary position it holds (-1: none) and its
  /// rope delta (next text position - length).
  std::vector<int64_t> MaxMrope, RopeDelta;

  std::unique_ptr<PrefixCache> Prefix; ///< null when the prefix cache is off
  /// The inputs of `prompt` (a chunk starting at position 0) as its history records them.
  TokenInputs promptInputs(const SequenceChunk &prompt) const;
  /// Appends to `seq`'s history inputs the tokens [begin, begin + count) of
  /// chunk `c`, the step's rows from `first` (their positions in MropePositions).
  void recordInputs(const SequenceChunk &c, int64_t begin, int64_t count, int64_t first,
                    const std::vector<int32_t> &imageRowOf);

  /// Per sequence, for the prefix cache: every token it holds, how many of
  /// its leading pages are cached (-1: no more can be, after a hash
  /// collision), and the page whose checkpoint its last decode step took.
  std::vector<std::vector<int32_t>> History;
  /// Per sequence: what its tokens were computed from besides their ids
  /// (rotary positions, image rows), which keys its pages too.
  std::vector<TokenInputs> HistoryInputs;
  std::vector<int64_t> CachedPages;
  std::vector<int32_t> DecodeCheckpoint;

  std::unique_ptr<ImageCache> Images;
  /// The vision program, bound on first use (encodeImages).
  std::unique_ptr<VisionEncoder> Vision;
};

} // namespace qwen::rt

#endif // QWEN_RT_ENGINE_H
