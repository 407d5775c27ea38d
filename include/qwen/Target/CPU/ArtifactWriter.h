//===- ArtifactWriter.h - The CPU artifact: manifest + kernels.so -*- C++ -*-===//
#ifndef QWEN_TARGET_CPU_ARTIFACTWRITER_H
#define QWEN_TARGET_CPU_ARTIFACTWRITER_H

#include "qwen/Target/Common/Manifest.h"

namespace qwen::target {

/// Writes `outDir/manifest.json` from the host function `@step` and
/// `outDir/kernels.so` from the LLVM-dialect `@kernels` module. `outDir` is
/// replaced only when everything succeeded.
llvm::Error writeCpuArtifact(mlir::ModuleOp module, const ArtifactOptions &options,
                             llvm::StringRef outDir);

} // namespace qwen::target

#endif // QWEN_TARGET_CPU_ARTIFACTWRITER_H
