//===- MultimodalEmbedding.h - Token and image embedding rows ---*- C++ -*-===//
//
// The embedding kernel of a vision-language model: table rows by token id,
// except where a token's image row is set, which takes that row of the
// image embeddings (qtf.multimodal_embedding). Written once against
// KernelTarget, like the row families of RowFamilies.h; the embedding kind's
// lowering hands such kernels here.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_PASSES_CODEGEN_COMMON_MULTIMODALEMBEDDING_H
#define QWEN_PASSES_CODEGEN_COMMON_MULTIMODALEMBEDDING_H

#include "qwen/Passes/Codegen/Common/KernelTarget.h"

namespace qwen::codegen {

/// multimodal_embedding: one item per (token, column chunk).
mlir::FailureOr<llvm::SmallVector<mlir::Attribute>>
lowerMultimodalEmbeddingKernel(KernelTarget &target);

} // namespace qwen::codegen

#endif // QWEN_PASSES_CODEGEN_COMMON_MULTIMODALEMBEDDING_H
