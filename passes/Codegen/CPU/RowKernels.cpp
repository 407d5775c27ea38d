//===- RowKernels.cpp - CPU entry points of the row families --------------===//
//
// rows, kv_write, embedding, elementwise, conv and gated_norm (the Gated
// DeltaNet rows; the delta rule is DeltaRuleKernel.cpp) are written once against
// codegen::KernelTarget (passes/Codegen/Common/RowFamilies.h); on the CPU a
// work item is one index of the runtime's range and its grid is the kernel's.
//
//===----------------------------------------------------------------------===//
#include "passes/Codegen/CPU/KernelEmitter.h"
#include "qwen/Passes/Codegen/Common/RowFamilies.h"

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen::cpu;

FailureOr<SmallVector<Attribute>> qwen::codegen::cpu::emitRowsKernel(KernelEmitter &e) {
  return codegen::lowerRowsKernel(e);
}

FailureOr<SmallVector<Attribute>> qwen::codegen::cpu::emitKVWriteKernel(KernelEmitter &e) {
  return codegen::lowerKVWriteKernel(e);
}

FailureOr<SmallVector<Attribute>> qwen::codegen::cpu::emitEmbeddingKernel(KernelEmitter &e) {
  return codegen::lowerEmbeddingKernel(e);
}

FailureOr<SmallVector<Attribute>> qwen::codegen::cpu::emitElementwiseKernel(KernelEmitter &e) {
  return codegen::lowerElementwiseKernel(e);
}

FailureOr<SmallVector<Attribute>> qwen::codegen::cpu::emitConvKernel(KernelEmitter &e) {
  return codegen::lowerConvKernel(e);
}

FailureOr<SmallVector<Attribute>> qwen::codegen::cpu::emitGatedNormKernel(KernelEmitter &e) {
  return codegen::lowerGatedNormKernel(e);
}
