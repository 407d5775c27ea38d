//===- RowKernels.cpp - GPU entry points of the row families --------------===//
//
// rows, kv_write, embedding, elementwise, conv and gated_norm (the Gated
// DeltaNet rows; the delta rule is DeltaRuleKernel.cpp) are written once against
// codegen::KernelTarget (passes/Codegen/Common/RowFamilies.h); on the GPU a
// work item is one block, and the launch adds its threads and shared memory.
//
//===----------------------------------------------------------------------===//
#include "qwen/Passes/Codegen/Common/RowFamilies.h"
#include "passes/Codegen/GPU/GpuKernelEmitter.h"

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen::gpu;

FailureOr<KernelGeometry>
qwen::codegen::gpu::withLaunchOf(GpuKernelEmitter &e, FailureOr<codegen::Grid> grid) {
  if (failed(grid))
    return failure();
  return KernelGeometry{std::move(*grid), e.blockSize(), e.sharedBytes()};
}

FailureOr<KernelGeometry> qwen::codegen::gpu::emitRowsKernel(GpuKernelEmitter &e) {
  return withLaunchOf(e, codegen::lowerRowsKernel(e));
}

FailureOr<KernelGeometry> qwen::codegen::gpu::emitKVWriteKernel(GpuKernelEmitter &e) {
  return withLaunchOf(e, codegen::lowerKVWriteKernel(e));
}

FailureOr<KernelGeometry> qwen::codegen::gpu::emitEmbeddingKernel(GpuKernelEmitter &e) {
  return withLaunchOf(e, codegen::lowerEmbeddingKernel(e));
}

FailureOr<KernelGeometry> qwen::codegen::gpu::emitElementwiseKernel(GpuKernelEmitter &e) {
  return withLaunchOf(e, codegen::lowerElementwiseKernel(e));
}

FailureOr<KernelGeometry> qwen::codegen::gpu::emitConvKernel(GpuKernelEmitter &e) {
  return withLaunchOf(e, codegen::lowerConvKernel(e));
}

FailureOr<KernelGeometry> qwen::codegen::gpu::emitGatedNormKernel(GpuKernelEmitter &e) {
  return withLaunchOf(e, codegen::lowerGatedNormKernel(e));
}
