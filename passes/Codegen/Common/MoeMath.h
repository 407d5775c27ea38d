//===- MoeMath.h - Router and SwiGLU math of CPU and GPU MoE ----*- C++ -*-===//
//
// The router's softmax and top-k selection rule and the experts' SwiGLU,
// written once for the CPU and GPU mixture-of-experts kernels so that both
// compute the same f32 operations and pick the same experts.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_PASSES_CODEGEN_COMMON_MOEMATH_H
#define QWEN_PASSES_CODEGEN_COMMON_MOEMATH_H

#include "mlir/IR/ImplicitLocOpBuilder.h"

namespace qwen::codegen {

/// p = e^(logit - maxLogit), an expert's unnormalized router probability.
mlir::Value routerProbability(mlir::ImplicitLocOpBuilder &b, mlir::Value logit,
                              mlir::Value maxLogit);

/// 1 / x: the softmax's inverse sum and the renormalization scale.
mlir::Value reciprocal(mlir::ImplicitLocOpBuilder &b, mlir::Value x);

/// A top-k candidate: its probability and its expert id (an index, or an
/// exact f32 where ids travel through shuffles).
struct RouterCandidate {
  mlir::Value value, id;
};

/// One step of a scan over candidates in increasing id: the candidate
/// replaces `best` when its value is strictly greater, so ties keep the
/// lowest id.
RouterCandidate scanCandidate(mlir::ImplicitLocOpBuilder &b, RouterCandidate best,
                              mlir::Value value, mlir::Value id);

/// The merge of two partial selections in any order: the larger value, or
/// on equal values the lower id (the scan's rule).
RouterCandidate mergeCandidates(mlir::ImplicitLocOpBuilder &b, RouterCandidate best,
                                RouterCandidate other);

/// silu(gate) * up = gate / (1 + e^-gate) * up, the SwiGLU of one element.
mlir::Value swiglu(mlir::ImplicitLocOpBuilder &b, mlir::Value gate, mlir::Value up);

} // namespace qwen::codegen

#endif // QWEN_PASSES_CODEGEN_COMMON_MOEMATH_H
