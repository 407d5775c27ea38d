//===- LinearAttentionKernels.cpp - GPU codegen for Gated DeltaNet --------===//
//
// conv:       Common/Conv.cpp (one thread per channel, blocks of up to
//             max-threads channels)
// delta_rule: DeltaRuleKernel.cpp
// gated_norm: Common/Norms.cpp (one block per (token, head), the sum of
//             squares reduced across the block)
//
//===----------------------------------------------------------------------===//
#include "qwen/Passes/Codegen/Common/RowFamilies.h"
#include "passes/Codegen/GPU/GpuKernelEmitter.h"

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen::gpu;

FailureOr<KernelGeometry> qwen::codegen::gpu::emitConvKernel(GpuKernelEmitter &e) {
  return withLaunchOf(e, codegen::lowerConvKernel(e));
}

FailureOr<KernelGeometry> qwen::codegen::gpu::emitGatedNormKernel(GpuKernelEmitter &e) {
  return withLaunchOf(e, codegen::lowerGatedNormKernel(e));
}
