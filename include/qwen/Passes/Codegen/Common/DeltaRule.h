//===- DeltaRule.h - The gated delta rule, for every target -----*- C++ -*-===//
//
// What the CPU and the GPU delta_rule kernels share, written once against
// codegen::KernelTarget (qwen-models.md section 1.8): the op's operands and
// sizes, a work item's (request, value head) and its state slot, the
// per-token gates, the L2 normalization of a q / k row, and the recurrent
// step over the state S [key_dim][value_dim] (m = S^T k, the delta update,
// o = S^T q) on a lane's ColumnBlock of S. Both targets compute these in the
// same f32 operations in the same order:
//   CPU (CPU/DeltaRuleKernel.cpp)  every token takes the recurrent step, S in
//       the slot, walked in column blocks of up to four vectors.
//   GPU (GPU/DeltaRuleKernel.cpp)  each column of S in the registers of
//       `split` lanes (or in the slot when too large); a run of one token
//       takes the recurrent step, a longer one the chunked WY form with the
//       block's warps over a shared chunk buffer (GPU only: its phases over
//       the chunk buffer are the GPU's schedule).
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_PASSES_CODEGEN_COMMON_DELTARULE_H
#define QWEN_PASSES_CODEGEN_COMMON_DELTARULE_H

#include "qwen/Passes/Codegen/Common/KernelTarget.h"

namespace qwen::codegen {

/// beta = sigmoid(b) and g = -exp(A_log) softplus(a + dt_bias) of a token.
struct TokenGates {
  mlir::Value beta, logDecay;
};

/// alpha = e^g and beta of a token (scalars), and its v at a column block.
struct StepScalars {
  mlir::Value alpha, beta, v;
};

/// factor / sqrt(sumOfSquares + 1e-6): the scale that L2-normalizes a q or
/// k row. `rsqrt` is the target's correctly rounded 1 / sqrt.
mlir::Value l2NormFactor(mlir::ImplicitLocOpBuilder &b, mlir::Value sumOfSquares, float factor,
                         llvm::function_ref<mlir::Value(mlir::Value)> rsqrt);

/// One gated_delta_rule in the kernel `target` is building: its operands
/// bound to the kernel's slots, and the (request, head) of a work item.
/// The methods are the shared phases; each creates its ops where the
/// builder is, so that a target interleaves them with its own.
class DeltaRuleItem {
public:
  /// Binds the operands of `rule`; `output` is the index of the kernel
  /// result the rule computes. Creates no ops.
  DeltaRuleItem(KernelTarget &target, qtf::GatedDeltaRuleOp rule, unsigned output);

  /// sequence = item / heads, head = item % heads and its key head.
  void locate(mlir::Value item);
  /// The request's tokens, a contiguous run [start, end) (every request's
  /// tokens are contiguous and in order in a ragged step): each lane scans
  /// its share of token_seq, then min / sum across the lanes (token indices
  /// travel as f32: exact below 2^24 tokens per step). Needs locate.
  std::pair<mlir::Value, mlir::Value> findRun();
  /// Flat offset of this head's S [key_dim][value_dim] f32 in the
  /// recurrent array, in the request's state slot.
  mlir::Value stateOffset();
  /// negA = -exp(A_log) and dt_bias of this head.
  void loadDecay();
  /// beta and g of token `token`, this head (needs loadDecay).
  TokenGates gates(mlir::Value token);
  /// Copies the [key_dim] row of `token` (this head's key head) of `from`
  /// (query or key) into `row` from `rowBase` (null: 0), L2-normalized
  /// and times `factor`: each lane sums the squares of its columns in
  /// pieces of `width` (1: scalars), the sum is taken across the work
  /// item's lanes, and each lane rescales what it stored.
  void normalizeRow(const RowAccess &from, mlir::Value token, mlir::Value row,
                    mlir::Value rowBase, float factor, int64_t width);

  /// The recurrent step's token prologue (phase delta_rule.load_qk, then
  /// delta_rule.gates): q (scaled) and k of `token` L2-normalized into the
  /// scratch rows `q` and `k` (normalizeRow in pieces of `width`), complete
  /// for every lane; returns alpha and beta (v is the caller's, per block).
  StepScalars prepareToken(mlir::Value token, mlir::Value q, mlir::Value k, int64_t width);
  /// v of `token`, this head, at the columns of `s`.
  mlir::Value valueColumns(const ColumnBlock &s, mlir::Value token);

  //===--- Phases over the state S, on a lane's ColumnBlock of it --------===//

  /// The recurrent step of one token (phases delta_rule.state_update, then
  /// delta_rule.output): m = S^T k; d = beta (v - alpha m);
  /// S = alpha S + k d^T; o = S^T q with the updated S, stored to the
  /// token's output row where `writer` (null: by every lane). `q` and `k`
  /// are the token's normalized rows. Each lane sums its rows in increasing
  /// order (fused multiply-adds), then across the column's lanes.
  void recurrentStep(ColumnBlock &s, const StepScalars &scalars, RowOperand q, RowOperand k,
                     mlir::Value token, mlir::Value writer);

  const DeltaRuleSizes sizes;
  RowAccess query, key, value, a, beta, aLog, dtBias, tokenSeq, slots, recurrent, out;
  qtf::LinearStateType stateType;
  mlir::Value sequence, head, keyHead, negA, bias;

private:
  KernelTarget &t;
};

} // namespace qwen::codegen

#endif // QWEN_PASSES_CODEGEN_COMMON_DELTARULE_H
