//===- VisionFamilies.h - Vision-encoder kernel math, written once -*- C++ -*-===//
//
// The kernels of the vision tower's ops, written once against
// codegen::KernelTarget for the CPU and the GPU, one file per family:
//
//   LayerNorm.cpp         layer_norm: one item per row (mean, biased variance)
//   Gelu.cpp              gelu (erf | tanh): one item per (row, column chunk)
//   RotaryEmbedding.cpp   rotary_embedding: one item per (row, head)
//   WeightedGather.cpp    weighted_gather: one item per (row, column chunk)
//   SegmentAttention.cpp  segment_attention: one item per (query, head),
//                         online softmax over the keys of its segment
//
// Each returns the kernel's grid, like the row families (RowFamilies.h).
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_PASSES_CODEGEN_COMMON_VISIONFAMILIES_H
#define QWEN_PASSES_CODEGEN_COMMON_VISIONFAMILIES_H

#include "qwen/Passes/Codegen/Common/RowFamilies.h"

namespace qwen::codegen {

mlir::FailureOr<Grid> lowerLayerNormKernel(KernelTarget &target);
mlir::FailureOr<Grid> lowerGeluKernel(KernelTarget &target);
mlir::FailureOr<Grid> lowerRotaryEmbeddingKernel(KernelTarget &target);
mlir::FailureOr<Grid> lowerWeightedGatherKernel(KernelTarget &target);
mlir::FailureOr<Grid> lowerSegmentAttentionKernel(KernelTarget &target);

/// erf(x) in f32 arithmetic on a scalar or vector (Abramowitz & Stegun
/// 7.1.26 on |x|, odd extension; absolute error below 1.5e-7), built from
/// exp so that every target lowers it.
mlir::Value erfApprox(KernelTarget &target, mlir::Value x);
/// tanh(x) = 1 - 2 / (exp(2x) + 1), saturating to +-1.
mlir::Value tanhApprox(KernelTarget &target, mlir::Value x);

} // namespace qwen::codegen

#endif // QWEN_PASSES_CODEGEN_COMMON_VISIONFAMILIES_H
