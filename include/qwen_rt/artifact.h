//===- artifact.h - A compiled artifact: manifest + kernels -----*- C++ -*-===//
//
// Reads and validates the manifest.json of a compiled artifact folder (see
// docs/ARTIFACT.md), loads its kernel library and resolves every kernel of the
// step program. Nothing here runs a kernel: that is the Engine's job.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_RT_ARTIFACT_H
#define QWEN_RT_ARTIFACT_H

#include "qwen_rt/cpu_features.h"
#include "qwen_rt/dtype.h"

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace qwen::rt {

/// The artifact format version this runtime reads.
constexpr int64_t kArtifactFormatVersion = 1;
/// The kernel ABI version kernels.so must report.
constexpr int64_t kKernelAbiVersion = 1;

/// The four dynamic sizes of a step, in the order kernels receive them.
enum Symbol : int { SymT = 0, SymB = 1, SymP = 2, SymR = 3, NumSymbols = 4 };
using StepDims = std::array<int64_t, NumSymbols>;

/// One entry of a symbolic shape: a constant or one of the symbols.
struct ShapeDim {
  int64_t value = 0;
  int symbol = -1; ///< >= 0: the size is dims[symbol].
  int64_t eval(const StepDims &dims) const { return symbol >= 0 ? dims[symbol] : value; }
};
using SymShape = std::vector<ShapeDim>;

/// Product of a symbolic shape's entries for the given step sizes. Throws
/// Error above limits::kMaxTensorElements, so bytes of it fit 64 bits.
int64_t shapeProduct(const SymShape &shape, const StepDims &dims);
/// "[T, 64]".
std::string formatShape(const SymShape &shape);
std::string formatShape(const std::vector<int64_t> &shape);

/// The CPU kernel ABI (docs/ARTIFACT.md).
using KernelFn = void (*)(void *const *args, const int64_t *dims, int64_t begin, int64_t end);

struct InputSpec {
  std::string name;
  DType dtype;
  SymShape shape;
};

struct WeightSpec {
  int id = 0;
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<std::string> sources; ///< checkpoint tensors, concatenated along dim 0
  /// FP8 block-wise checkpoints (model.weight_quantization): rows x columns
  /// of one scale block; {0, 0} when the checkpoint is not quantized. An
  /// F8_E4M3 source is bound through its `<name>_scale_inv` blocks.
  std::array<int64_t, 2> fp8Block{0, 0};
  int64_t numel() const; ///< at most limits::kMaxTensorElements (checked by the parser)
  uint64_t nbytes() const { return uint64_t(numel()) * dtypeSize(dtype); }
};

struct BufferSpec {
  int id = 0;
  DType dtype;
  SymShape shape;
};

struct ArgRef {
  enum Kind { Input, Weight, Buffer, KV, State };
  Kind kind;
  /// input: index in inputs(); weight/buffer: id; kv: 0 keys, 1 values;
  /// state: 0 conv windows, 1 recurrent states
  int index = 0;
};

/// A GEMM of a CUDA artifact, run by cuBLASLt (passes/Codegen/GPU/README.md,
/// "cuBLASLt descriptor"): row-major D[m, n] = A[m, k] B[n, k]^T (+ bias[n])
/// (+ C[m, n]), f32 accumulation. Operands name launch arguments.
struct GemmSpec {
  struct Operand {
    int arg = -1;        ///< index into the entry's args; -1 when absent
    DType dtype = DType::F32;
    int64_t ld = 0;      ///< row stride in elements (0 for the bias)
    int64_t offset = 0;  ///< element offset of row 0
  };
  ShapeDim m;
  int64_t n = 0, k = 0;
  Operand a, b, c, bias; ///< c: the residual (beta = 1); c.arg / bias.arg -1 when absent
  DType dDtype = DType::F32;
  int64_t ldd = 0;
  /// FP8 (a and b f8e4m3): cuBLASLt's block scaling on sm_90. aScale: the
  /// activations' f32 scales, one per row and 128-wide K block, stored
  /// [ceil(k/128)][m] (rows contiguous, VEC128_32F; the pack writes them);
  /// bScale: the weight's, one per 128 x 128 block, [ceil(n/128)][ld]
  /// (BLK128x128_32F, ld = ceil(k/128), a multiple of 4). arg -1 otherwise.
  Operand aScale, bScale;
  /// The pack kernel launched right before the GEMM (its "prologue"), if any.
  std::string prologue;
};

struct ProgramEntry {
  std::string kernel;
  SymShape grid;             ///< empty for a GEMM
  std::vector<ArgRef> args;
  KernelFn fn = nullptr;     ///< CPU: set by Artifact::loadKernels
  int64_t blockThreads = 0;  ///< CUDA: threads per block of a generated kernel
  int64_t sharedBytes = 0;   ///< CUDA: static shared memory it declares
  bool isGemm = false;       ///< CUDA: a cuBLASLt call described by `gemm`
  GemmSpec gemm;
  /// CUDA: a generated kernel launched by name (decode variants, samplers).
  struct Launchable {
    std::string kernel;
    SymShape grid;
    int64_t blockThreads = 0, sharedBytes = 0;
  };
  /// CUDA: the kernel launched instead for decode-only steps (every request
  /// one token, T = B); empty name when there is none. It takes the entry's
  /// arguments, then a partials array, the step sizes, then a split count:
  /// grid x splits blocks (1 <= splits <= maxSplits), each split writing
  /// partialFloats floats per token to partials when splits > 1, merged by
  /// `combine` (same parameters) into the entry's result. No split covers
  /// fewer than splitKeys context positions (the compiler's schedule).
  ///
  /// A cuBLASLt entry's decode variant (the generated GEMV of an FP8 GEMM,
  /// or of any GEMM compiled with --gpu-gemv=generated)
  /// instead takes `args` (indices into the entry's arguments) and the step
  /// sizes, runs on decode-only steps of at most `maxRows` GEMM rows, and
  /// replaces the GEMM and its prologue (the pack).
  struct Variant : Launchable {
    int64_t maxSplits = 0, partialFloats = 0, splitKeys = 0;
    Launchable combine;
    std::vector<int> args;  ///< GEMM entries only
    int64_t maxRows = 0;    ///< GEMM entries only
  } decode;
};

/// The manifest parser's reading of one launch (a program entry's "grid"
/// and, when `cuda`, "block", "shared_bytes" and "decode"; fields in
/// qwen_rt/launch_schema.h), as Artifact::open reads each entry: for tests
/// that check it against the compiler's writer. Throws Error naming `origin`.
ProgramEntry parseLaunch(std::string_view entryJson, bool cuda, const std::string &origin = "launch");
/// The same for a kernel launched by name (a variant or a sampler kernel).
ProgramEntry::Launchable parseLaunchable(std::string_view variantJson,
                                         const std::string &origin = "launch");

/// The sizes below are bounded by the manifest parser (limits.h), so the
/// byte counts derived from them cannot overflow.
struct KVCacheSpec {
  int64_t numLayers = 0, numKvHeads = 0, headDim = 0, pageSize = 0;
  DType dtype = DType::F32;
  /// Bytes of one page of one of the two arrays (keys or values).
  uint64_t bytesPerPageOneArray() const {
    return uint64_t(numLayers) * uint64_t(pageSize) * uint64_t(numKvHeads) * uint64_t(headDim) *
           dtypeSize(dtype);
  }
};

/// The per-request state of the linear-attention layers (docs/ARTIFACT.md):
/// for each state slot, `conv` [num_layers][conv_window][conv_channels] in
/// convDtype and `recurrent` [num_layers][num_heads][key_dim][value_dim] f32.
struct LinearStateSpec {
  int64_t numLayers = 0, convChannels = 0, convWindow = 0, numHeads = 0, keyDim = 0, valueDim = 0;
  DType convDtype = DType::F32;
  bool present() const { return numLayers > 0; }
  uint64_t convBytesPerSlot() const {
    return uint64_t(numLayers) * uint64_t(convWindow) * uint64_t(convChannels) * dtypeSize(convDtype);
  }
  uint64_t recurrentBytesPerSlot() const {
    return uint64_t(numLayers) * uint64_t(numHeads) * uint64_t(keyDim) * uint64_t(valueDim) * sizeof(float);
  }
  uint64_t bytesPerSlot() const { return convBytesPerSlot() + recurrentBytesPerSlot(); }
};

struct CheckpointFileRef {
  std::string name;
  uint64_t size = 0;
  uint64_t headerHash = 0;
};

struct CheckpointRef {
  std::string dir;       ///< as recorded at compile time
  std::vector<CheckpointFileRef> files;
  std::string tokenizer; ///< relative to dir; empty if none
};

struct TargetSpec {
  std::string kind; ///< "cpu" (kernels.so) or "cuda" (kernels.ptx + cuBLASLt)
  std::string triple, cpu, object;
  std::string arch;  ///< cuda: "sm_90"
  std::string cubin; ///< cuda: the PTX assembled for `arch` ("" when compiled without ptxas)
  /// cuda: every kernel starts with griddepcontrol.wait, so the runtime may
  /// launch it with programmatic dependent launch.
  bool programmaticLaunch = false;
  std::vector<std::string> features;
  /// cpu: the dtype the GEMMs' f32 activations are rounded to: "f32" (not
  /// rounded) or "bf16" (AVX512-BF16 tiles, --bf16-activations=auto|round).
  std::string gemmActivations = "f32";
};

/// A compiled artifact folder. open() parses and validates the manifest;
/// loadKernels() checks the host CPU, dlopens the kernel library and resolves
/// every kernel. Move-only; the library stays loaded while it lives.
class Artifact {
public:
  /// Parses and validates DIR/manifest.json. Throws Error.
  static Artifact open(const std::string &dir);
  /// CPU artifacts: checks target features against the host, dlopens
  /// target.object, checks its ABI version and resolves every kernel of the
  /// program. Throws Error (also for a CUDA artifact: CudaExecutor loads those).
  void loadKernels();
  bool isCuda() const { return Target.kind == "cuda"; }
  bool kernelsLoaded() const { return Library != nullptr; }

  Artifact(Artifact &&) noexcept;
  Artifact &operator=(Artifact &&) noexcept;
  Artifact(const Artifact &) = delete;
  Artifact &operator=(const Artifact &) = delete;
  ~Artifact();

  const std::string &dir() const { return Dir; }
  const nlohmann::json &manifest() const { return Manifest; }
  const nlohmann::json &model() const { return Manifest.at("model"); }
  const std::string &compiler() const { return Compiler; }
  const TargetSpec &target() const { return Target; }
  const CheckpointRef &checkpoint() const { return Checkpoint; }
  const KVCacheSpec &kvCache() const { return KV; }
  /// Linear-attention state (hybrid models); !present() otherwise.
  const LinearStateSpec &linearState() const { return State; }
  const std::vector<InputSpec> &inputs() const { return Inputs; }
  /// Weights in manifest order; weightIndex(id) maps an id into this list.
  const std::vector<WeightSpec> &weights() const { return Weights; }
  const std::vector<BufferSpec> &buffers() const { return Buffers; }
  const std::vector<ProgramEntry> &program() const { return Program; }
  /// CUDA: the generated greedy sampler (manifest "sampler.argmax"): reads
  /// the output logits [R, vocab], writes R int32 ids; kernel empty if absent.
  const ProgramEntry::Launchable &argmaxKernel() const { return Argmax; }
  /// CUDA: the generated top-k candidate selection (manifest "sampler.topk"):
  /// reads the output logits [R, vocab], writes each row's topKCount() best
  /// (logit, id) pairs in order; kernel empty if absent.
  const ProgramEntry::Launchable &topKKernel() const { return TopK; }
  int64_t topKCount() const { return TopKCount; }
  int weightIndex(int id) const;  ///< -1 if no weight has this id
  int bufferIndex(int id) const;  ///< -1 if no buffer has this id
  int outputBuffer() const { return OutputBuffer; } ///< buffer id of the logits
  /// Whether the output is the final hidden states (qwen-compile
  /// --hidden-states) rather than logits.
  bool outputsHiddenStates() const { return HiddenStatesOutput; }
  /// Floats per output row: vocab_size, or hidden_size for hidden states.
  int64_t outputWidth() const { return OutputWidth; }
  int64_t vocabSize() const { return VocabSize; }
  /// The longest sequence the artifact accepts: max_context when the manifest
  /// has one (a scaled RoPE), else max_position_embeddings.
  int64_t maxPositionEmbeddings() const { return MaxPositions; }

  /// The checkpoint folder to bind: `override` when non-empty, else the
  /// manifest's checkpoint.dir (relative paths are taken from the artifact
  /// folder); "" when the artifact was compiled without one. Does not check
  /// that it exists.
  std::string resolveCheckpointDir(const std::string &override) const;
  /// Checks that `checkpointDir` exists and that every file listed in the
  /// manifest has the size and header hash recorded at compile time. Throws Error.
  void verifyCheckpoint(const std::string &checkpointDir) const;

private:
  Artifact() = default;
  void parse(const nlohmann::json &m);

  std::string Dir, Compiler;
  nlohmann::json Manifest;
  TargetSpec Target;
  CheckpointRef Checkpoint;
  KVCacheSpec KV;
  LinearStateSpec State;
  std::vector<InputSpec> Inputs;
  std::vector<WeightSpec> Weights;
  std::vector<BufferSpec> Buffers;
  std::vector<ProgramEntry> Program;
  ProgramEntry::Launchable Argmax, TopK;
  int64_t TopKCount = 0;
  std::vector<int> WeightById, BufferById;
  int OutputBuffer = -1;
  int64_t VocabSize = 0, MaxPositions = 0, OutputWidth = 0;
  bool HiddenStatesOutput = false;
  struct LibraryCloser {
    void operator()(void *library) const;
  };
  std::unique_ptr<void, LibraryCloser> Library; ///< kernels.so, closed with the artifact
};


} // namespace qwen::rt

#endif // QWEN_RT_ARTIFACT_H
