//===- AttentionMath.h - Online-softmax math of CPU and GPU attention -*- C++ -*-===//
//
// The per-key update and the state merge of the online softmax (flash
// attention), written once for the CPU and GPU attention kernels so that
// both compute the same f32 operations in the same order.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_PASSES_CODEGEN_COMMON_ATTENTIONMATH_H
#define QWEN_PASSES_CODEGEN_COMMON_ATTENTIONMATH_H

#include "mlir/IR/ImplicitLocOpBuilder.h"

namespace qwen::codegen {

/// One key of the online softmax with score s on the state (m, l):
/// m' = max(m, s), correction = e^(m - m'), weight = e^(s - m'),
/// l' = l correction + weight; correctionVector / weightVector are the two
/// factors broadcast to `vecType` for the accumulator update.
struct OnlineSoftmaxStep {
  mlir::Value max, sum, correction, weight;
  mlir::Value correctionVector, weightVector;
};
OnlineSoftmaxStep onlineSoftmaxStep(mlir::ImplicitLocOpBuilder &b, mlir::VectorType vecType,
                                    mlir::Value runningMax, mlir::Value runningSum,
                                    mlir::Value score);

/// acc' = weight v + acc correction, on one vector of the V accumulator.
mlir::Value accumulateValue(mlir::ImplicitLocOpBuilder &b, const OnlineSoftmaxStep &step,
                            mlir::Value acc, mlir::Value v);

/// e^(max - globalMax), the weight of a partial softmax state in a merge;
/// 0 for a state that saw no key (max -inf), even when every state is empty
/// (globalMax -inf, where the exp alone would give NaN).
mlir::Value softmaxMergeFactor(mlir::ImplicitLocOpBuilder &b, mlir::Value max,
                               mlir::Value globalMax);

} // namespace qwen::codegen

#endif // QWEN_PASSES_CODEGEN_COMMON_ATTENTIONMATH_H
