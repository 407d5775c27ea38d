//===- Manifest.h - The target-independent part of an artifact --*- C++ -*-===//
#ifndef QWEN_TARGET_COMMON_MANIFEST_H
#define QWEN_TARGET_COMMON_MANIFEST_H

#include "qwen/Dialect/QKernel/IR/QKernel.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"

#include <functional>
#include <string>
#include <vector>

namespace qwen::target {

struct CheckpointFile {
  std::string name;
  uint64_t size = 0;
  uint64_t headerHash = 0;
};

struct ArtifactOptions {
  /// Absolute checkpoint folder, or empty when compiled from config.json alone.
  std::string checkpointDir;
  std::vector<CheckpointFile> checkpointFiles;
  /// Tokenizer file name inside the checkpoint folder, or empty.
  std::string tokenizer;
  /// Model facts copied into the manifest's "model" object.
  llvm::json::Object model;
  /// The vision_config facts of the manifest's "vision" section, when the
  /// module has the program @vision (qwen-compile --vision); else empty.
  llvm::json::Object vision;
  /// "cpu" or "cuda": which manifest "target" and launch fields to write.
  std::string target = "cpu";
  /// LLVM CPU name the kernels are compiled for, and the features it implies
  /// (checked by the runtime before it loads kernels.so).
  std::string cpu = "x86-64-v3";
  std::vector<std::string> requiredFeatures = {"avx2", "fma", "f16c"};
  /// GPU architecture of the PTX (target "cuda").
  std::string gpuArch = "sm_90";
  /// Target "cuda": ptxas to assemble kernels.cubin with; "" searches PATH
  /// and /usr/local/cuda/bin, "none" writes PTX only.
  std::string ptxas;
};

/// The manifest (docs/ARTIFACT.md) of a compiled module: inputs, KV cache,
/// linear-attention state, weights, buffers and the program of `@step`.
/// For target "cuda" each program entry also carries its launch geometry
/// (`block`, `shared_bytes`) or its cuBLASLt descriptor.
llvm::Expected<llvm::json::Object> buildManifest(mlir::ModuleOp module,
                                                 const ArtifactOptions &options);

/// The one writer of a #qkernel.launch into a manifest program entry: its
/// grid and, for a generated GPU kernel, block, shared_bytes and the decode
/// variant with its splits and combine kernel. Field names and limits are
/// those of include/qwen_rt/launch_schema.h, which the runtime's parser
/// reads with (unittests/Target checks the round trip).
void writeLaunch(qwen::qkernel::LaunchAttr launch, llvm::json::Object &entry);
/// A kernel variant as a manifest launch object: kernel, grid, block,
/// shared_bytes.
llvm::json::Object variantJson(qwen::qkernel::KernelVariantAttr variant);

/// Writes an artifact folder: `manifest.json` plus whatever `writeFiles`
/// puts into the staging folder it is given. `outDir` is replaced only when
/// everything succeeded, so a failure never leaves a half-written artifact.
llvm::Error writeArtifactFolder(llvm::StringRef outDir, llvm::json::Object manifest,
                                const std::function<llvm::Error(llvm::StringRef staging)> &writeFiles);

llvm::Error makeError(const llvm::Twine &message);

} // namespace qwen::target

#endif // QWEN_TARGET_COMMON_MANIFEST_H
