//===- CompileCheckpoint.h - HF checkpoint -> compiled module ---*- C++ -*-===//
//
// What qwen-compile does between parsing its options and writing its output:
// reads config.json, opens and validates the checkpoint (files, NaN scan,
// every graph weight against the tensors it binds), describes the model for
// the manifest, builds the Qwen3 graph and runs the stage table up to a
// stage, printing the IR after the stages asked for.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_COMPILER_COMPILECHECKPOINT_H
#define QWEN_COMPILER_COMPILECHECKPOINT_H

#include "qwen/Target/Common/Manifest.h"
#include "qwen/Passes/Pipelines/Pipelines.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"

#include <functional>
#include <memory>
#include <string>

namespace qwen {

struct CompileCheckpointOptions {
  /// A checkpoint folder, or a config.json alone (weights bound at load time).
  std::string input;
  CompileTarget target = CompileTarget::CPU;
  /// The last stage to run; an artifact needs every stage.
  CompileStage stopAfter = CompileStage::LLVM;
  /// Stages after which the IR is printed to `dumpStream`.
  llvm::SmallVector<CompileStage> dumpAfter;
  llvm::raw_ostream *dumpStream = nullptr;
  int64_t pageSize = 16;         ///< positions per KV-cache page
  std::string kvDtype = "f32";   ///< f32, bf16 or f16
  int64_t vectorWidth = 0;       ///< CPU f32 lanes per vector: 4, 8 or 16; 0: 16 with AVX-512, else 8
  bool hiddenStates = false;     ///< return final hidden states instead of logits
  /// The vision tower (vision_config) as the program @vision: Auto compiles
  /// it for a CPU target and a checkpoint with a vision_config whose weights
  /// hold the tower (or a config.json alone), On requires it, Off leaves it
  /// out. (CUDA: Auto is Off until the CUDA runtime runs the program.)
  enum class Vision { Auto, On, Off } vision = Vision::Auto;
  std::string ptxas;             ///< cuda: the ptxas for kernels.cubin ("none": PTX only)
  std::string cpu = "native";    ///< native, portable (x86-64-v3) or an LLVM CPU name
  /// bf16 matmuls on AVX512-BF16: auto (round but the lm_head / router), off, split or round.
  std::string bf16Activations = "auto";
  /// cuda: prefill attention tiles on CUDA cores (simt) or tensor cores (mma).
  std::string gpuAttention = "simt";
  /// cuda: decode steps of bf16 / f16 / f32 GEMMs on cublaslt or a generated GEMV.
  std::string gpuGemv = "cublaslt";
  bool scanWeights = true;       ///< warn about NaN / infinite checkpoint values
  /// "" (the checkpoint's own) or "fp8": quantize the checkpoint's linear
  /// weights to block-wise FP8 (128 x 128) into `quantizedDir`, which the
  /// artifact then binds (moved into the artifact folder as `checkpoint`).
  std::string weightDtype;
  std::string quantizedDir;
  /// Warnings and notes that do not stop compilation ("warning" or "note",
  /// then the message).
  std::function<void(llvm::StringRef severity, const llvm::Twine &message)> report;
};

/// Checks the option values the pipeline and the graph builder rely on
/// (target-independent ranges, kv dtype): the error message names the
/// qwen-compile option.
llvm::Error verifyCompileCheckpointOptions(const CompileCheckpointOptions &options);

/// A model compiled up to some stage: the module (owning its context) and
/// everything the manifest needs beyond it.
class CompiledModel {
public:
  mlir::ModuleOp module() { return *Module; }
  const target::ArtifactOptions &artifactOptions() const { return Artifact; }
  int64_t numLayers() const { return NumLayers; }
  /// The manifest the artifact would hold (the whole pipeline must have run).
  llvm::Expected<llvm::json::Object> manifest();
  /// Writes the artifact folder (the whole pipeline must have run).
  llvm::Error writeArtifact(llvm::StringRef outputDir);

private:
  friend llvm::Expected<std::unique_ptr<CompiledModel>>
  compileCheckpoint(const CompileCheckpointOptions &options);
  CompiledModel();

  std::unique_ptr<mlir::MLIRContext> Context; ///< declared first: outlives Module
  mlir::OwningOpRef<mlir::ModuleOp> Module;
  target::ArtifactOptions Artifact;
  CompileTarget Target = CompileTarget::CPU;
  CompileStage StopAfter = CompileStage::LLVM;
  /// --weight-dtype=fp8: the quantized checkpoint, moved into the artifact.
  std::string QuantizedDir;
  int64_t NumLayers = 0;
};

/// Compiles `options.input` through `options.stopAfter`. Errors carry the
/// complete message (qwen-compile prefixes "qwen-compile: error: ").
llvm::Expected<std::unique_ptr<CompiledModel>>
compileCheckpoint(const CompileCheckpointOptions &options);

namespace models {
struct Qwen3Config;
} // namespace models

/// The manifest's "model" object: the facts of config.json the runtime and
/// the server read (sizes, dtypes, special tokens, quantization).
llvm::json::Object describeModel(const models::Qwen3Config &config);

} // namespace qwen

#endif // QWEN_COMPILER_COMPILECHECKPOINT_H
