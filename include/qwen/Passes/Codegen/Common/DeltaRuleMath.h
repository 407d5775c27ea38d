//===- DeltaRuleMath.h - Gate math of the CPU and GPU delta rule -*- C++ -*-===//
//
// The per-token gates and the q / k normalization of the gated delta rule
// (qwen-models.md section 1.8), written once for the CPU and GPU kernels so
// that both compute the same f32 operations in the same order.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_PASSES_CODEGEN_COMMON_DELTARULEMATH_H
#define QWEN_PASSES_CODEGEN_COMMON_DELTARULEMATH_H

#include "mlir/IR/ImplicitLocOpBuilder.h"

namespace qwen::codegen {

/// -exp(A_log), a head's decay rate, in f32 as HF computes it.
mlir::Value deltaRuleDecayRate(mlir::ImplicitLocOpBuilder &b, mlir::Value aLog);

/// beta = sigmoid(b) = 1 / (1 + e^-b) of a token.
mlir::Value deltaRuleBeta(mlir::ImplicitLocOpBuilder &b, mlir::Value raw);

/// g = -exp(A_log) softplus(a + dt_bias), a token's log decay (softplus(x)
/// = x above 20, as torch); `negA` from deltaRuleDecayRate.
mlir::Value deltaRuleLogDecay(mlir::ImplicitLocOpBuilder &b, mlir::Value negA, mlir::Value a,
                              mlir::Value dtBias);

/// factor / sqrt(sumOfSquares + 1e-6): the scale that L2-normalizes a q or
/// k row. `rsqrt` is the target's correctly rounded 1 / sqrt.
mlir::Value l2NormFactor(mlir::ImplicitLocOpBuilder &b, mlir::Value sumOfSquares, float factor,
                         llvm::function_ref<mlir::Value(mlir::Value)> rsqrt);

} // namespace qwen::codegen

#endif // QWEN_PASSES_CODEGEN_COMMON_DELTARULEMATH_H
