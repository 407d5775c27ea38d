//===- MoeMath.h - Router and SwiGLU math of CPU and GPU MoE ----*- C++ -*-===//
//
// The router's softmax (its top-k rule is SelectionMath's), the experts'
// operands and SwiGLU, written once for the CPU and GPU mixture-of-experts
// kernels so that both compute the same f32 operations and pick the same
// experts.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_PASSES_CODEGEN_COMMON_MOEMATH_H
#define QWEN_PASSES_CODEGEN_COMMON_MOEMATH_H

#include "qwen/Passes/Codegen/Common/KernelTarget.h"
#include "qwen/Passes/Codegen/Common/SelectionMath.h"

#include "mlir/IR/ImplicitLocOpBuilder.h"

#include <array>
#include <optional>

namespace qwen::codegen {

/// p = e^(logit - maxLogit), an expert's unnormalized router probability.
mlir::Value routerProbability(mlir::ImplicitLocOpBuilder &b, mlir::Value logit,
                              mlir::Value maxLogit);

/// 1 / x: the softmax's inverse sum and the renormalization scale.
mlir::Value reciprocal(mlir::ImplicitLocOpBuilder &b, mlir::Value x);

/// silu(gate) * up = gate / (1 + e^-gate) * up, the SwiGLU of one element.
mlir::Value swiglu(mlir::ImplicitLocOpBuilder &b, mlir::Value gate, mlir::Value up);

/// The operands of one moe_expert_ffn bound to the slots of the kernel
/// `target` builds, and where one expert's rows start: the prologue of the
/// CPU and GPU experts kernels, which differ only in how they gather slots
/// and spread the dot products.
class ExpertOperands {
public:
  /// Binds the operands of `ffn` (its result is the kernel's); creates no
  /// ops.
  ExpertOperands(KernelTarget &target, qtf::MoeExpertFfnOp ffn);

  /// The first gate / up and down row of `expert` (gate_up is [E * 2I, H],
  /// down [E * H, I]) and, for block-wise FP8, the first scale row of its
  /// gate, up and down matrices (each with its own block grid).
  void locate(mlir::Value expert);
  /// The scale row of row `row` of the expert matrix whose first scale row
  /// is `first`.
  mlir::Value scaleRowOf(mlir::Value first, mlir::Value row);

  const int64_t inter, hidden, topK;
  RowAccess x, ids, routeWeights, gateUp, down, out;
  /// FP8: the scales and their [rows, columns] block.
  std::optional<RowAccess> gateUpScale, downScale;
  std::array<int64_t, 2> block{0, 0};
  mlir::Value gateBase, downBase;
  mlir::Value gateScaleBase, upScaleBase, downScaleBase;

private:
  KernelTarget &t;
  bool blockQuantized;
};

} // namespace qwen::codegen

#endif // QWEN_PASSES_CODEGEN_COMMON_MOEMATH_H
