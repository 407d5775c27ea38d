//===- ArtifactWriter.h - The CUDA artifact: manifest + PTX -----*- C++ -*-===//
#ifndef QWEN_TARGET_CUDA_ARTIFACTWRITER_H
#define QWEN_TARGET_CUDA_ARTIFACTWRITER_H

#include "qwen/Target/Common/Manifest.h"

namespace qwen::target {

/// Writes `outDir/manifest.json` (target "cuda": launch geometry and cuBLASLt
/// descriptors per program entry), `outDir/kernels.ptx`, the PTX module of
/// every generated kernel, and, where ptxas is found, `outDir/kernels.cubin`
/// assembled from it for the target architecture (a ptxas failure is an
/// error), from a module lowered with target=cuda.
llvm::Error writeCudaArtifact(mlir::ModuleOp module, const ArtifactOptions &options,
                              llvm::StringRef outDir);

} // namespace qwen::target

#endif // QWEN_TARGET_CUDA_ARTIFACTWRITER_H
