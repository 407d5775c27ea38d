//===- MoeMath.h - Router and SwiGLU math of CPU and GPU MoE ----*- C++ -*-===//
//
// The router's softmax (its top-k rule is SelectionMath's) and the experts'
// SwiGLU,
// written once for the CPU and GPU mixture-of-experts kernels so that both
// compute the same f32 operations and pick the same experts.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_PASSES_CODEGEN_COMMON_MOEMATH_H
#define QWEN_PASSES_CODEGEN_COMMON_MOEMATH_H

#include "qwen/Passes/Codegen/Common/SelectionMath.h"

#include "mlir/IR/ImplicitLocOpBuilder.h"

namespace qwen::codegen {

/// p = e^(logit - maxLogit), an expert's unnormalized router probability.
mlir::Value routerProbability(mlir::ImplicitLocOpBuilder &b, mlir::Value logit,
                              mlir::Value maxLogit);

/// 1 / x: the softmax's inverse sum and the renormalization scale.
mlir::Value reciprocal(mlir::ImplicitLocOpBuilder &b, mlir::Value x);

/// silu(gate) * up = gate / (1 + e^-gate) * up, the SwiGLU of one element.
mlir::Value swiglu(mlir::ImplicitLocOpBuilder &b, mlir::Value gate, mlir::Value up);

} // namespace qwen::codegen

#endif // QWEN_PASSES_CODEGEN_COMMON_MOEMATH_H
