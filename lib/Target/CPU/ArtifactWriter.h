//===- ArtifactWriter.h - Serialize a compiled module as an artifact -*- C++ -*-===//
#ifndef QWEN_LIB_TARGET_CPU_ARTIFACTWRITER_H
#define QWEN_LIB_TARGET_CPU_ARTIFACTWRITER_H

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"

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
  /// LLVM CPU name the kernels are compiled for, and the features it implies
  /// (checked by the runtime before it loads kernels.so).
  std::string cpu = "x86-64-v3";
  std::vector<std::string> requiredFeatures = {"avx2", "fma", "f16c"};
};

/// Writes `outDir/manifest.json` from the host function `@step` and
/// `outDir/kernels.so` from the LLVM-dialect `@kernels` module. `outDir` is
/// replaced only when everything succeeded.
llvm::Error writeCpuArtifact(mlir::ModuleOp module, const ArtifactOptions &options,
                             llvm::StringRef outDir);

/// The manifest alone (for tests and `qwen-compile --emit=manifest`).
llvm::Expected<llvm::json::Object> buildManifest(mlir::ModuleOp module,
                                                 const ArtifactOptions &options);

} // namespace qwen::target

#endif // QWEN_LIB_TARGET_CPU_ARTIFACTWRITER_H
