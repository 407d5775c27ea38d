//===- LinearAttentionKernels.cpp - CPU codegen for Gated DeltaNet --------===//
//
// conv:       Common/Conv.cpp (one work item per vector of channels)
// delta_rule: DeltaRuleKernel.cpp
// gated_norm: Common/Norms.cpp (one work item per (token, head))
//
//===----------------------------------------------------------------------===//
#include "passes/Codegen/CPU/KernelEmitter.h"
#include "qwen/Passes/Codegen/Common/RowFamilies.h"

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen::cpu;

FailureOr<SmallVector<Attribute>> qwen::codegen::cpu::emitConvKernel(KernelEmitter &e) {
  return codegen::lowerConvKernel(e);
}

FailureOr<SmallVector<Attribute>> qwen::codegen::cpu::emitGatedNormKernel(KernelEmitter &e) {
  return codegen::lowerGatedNormKernel(e);
}
