//===- RowFamilies.h - Row-wise kernel math, written once -------*- C++ -*-===//
//
// The kernels whose work splits into rows (norms, rope, elementwise,
// embedding, KV-cache writes, the causal conv) are written once, against
// codegen::KernelTarget, one file per op family:
//
//   Norms.cpp        rows (rms_norm / rope chains), gated_norm, the row chain
//   Rope.cpp         rope applied to a scratch row
//   Elementwise.cpp  silu_mul, sigmoid_mul, add, moe_combine (+ residual)
//   Embedding.cpp    table rows gathered by token id
//   KVWrite.cpp      key / value rows stored into their cache page
//   Conv.cpp         causal depthwise conv1d + SiLU over a request's window
//
// Each `lower<Family>Kernel(target)` recognizes the outlined kernel function
// `target.source()` (emitting an error on it when it is not of the family),
// builds the kernel through `target.buildKernel` and returns its grid (step
// symbol and integer factors). Its file registers it as the family's rewrite
// pattern (`populate<Family>Patterns`, KernelPatterns.h), which the CPU
// (KernelEmitter) and the GPU (GpuKernelEmitter) both apply; what differs between them
// (lanes, reductions, vector widths, scratch memory, barriers, rounding) is
// the target's. The math is that of the former per-target emitters: f32
// arithmetic, bf16 widened by a shift, sums reduced in the order each target
// reduced them before (each lane in increasing columns, then across lanes).
//
// Sizes come from the kernel's #qkernel.schedule, never from the row: a
// family takes its vector width from `target.rowWidth(length)` and its lanes
// from `target.itemThreads()` (or `planColumns` / `planLanes`), and
// qwen-select-schedule sizes it from `getRowShape` below. A new family adds
// its kind to getRowShape (its row length and the views it loads through)
// and to the kinds CpuSchedules / GpuSchedules send there.
//
// The patterns match the whole outlined function rather than its qtf ops: a
// row chain is one kernel that reads the ops bottom-up (rms_norm(rope(x))),
// which a per-op pattern would have to fuse again.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_PASSES_CODEGEN_COMMON_ROWFAMILIES_H
#define QWEN_PASSES_CODEGEN_COMMON_ROWFAMILIES_H

#include "qwen/Dialect/QKernel/IR/QKernel.h"
#include "qwen/Passes/Codegen/Common/KernelPatterns.h"
#include "qwen/Passes/Codegen/Common/KernelTarget.h"

namespace qwen::codegen {

/// The row a row-family kernel walks, which its schedule is sized by.
struct RowShape {
  int64_t length = 0;                   ///< columns of a row
  llvm::SmallVector<RowAccess> accesses; ///< views its vector accesses use
  /// conv: every GPU lane owns one column (the CPU: one vector), since a
  /// lane walks the step's tokens carrying its columns' window.
  bool lanePerColumn = false;
};
/// Whether kernels of `kind` are a family written once, a row family (this
/// header) or a vision family (VisionFamilies.h): getRowShape knows them and
/// qwen-select-schedule sizes them by it. The kinds each target lowers itself
/// (matmul, attention, delta_rule, router, experts, gemm_pack) are not.
bool isRowFamily(qkernel::KernelKind kind);
/// The row shape of `kernel`, a rows, gated_norm, elementwise, embedding,
/// kv_write or conv kernel; emits an error on it otherwise.
mlir::FailureOr<RowShape> getRowShape(mlir::func::FuncOp kernel, qkernel::KernelKind kind);
/// The GPU's rule for a row of `length` columns: f32 per thread, the widest
/// vector <= 4 (one 16-byte access) that divides `length` and keeps every
/// access in `accesses` aligned (row stride, offset and unit width).
int64_t gpuRowWidth(int64_t length, llvm::ArrayRef<RowAccess> accesses = {});
/// The GPU's block for a row of `vectors` vectors: the smallest power of two
/// >= 32 that covers them, at most max(maxThreads, 32).
int64_t gpuRowBlock(int64_t vectors, int64_t maxThreads);
/// The value the kernel's single result computes; null without one.
mlir::Value singleComputedResult(mlir::func::FuncOp source);

/// rows: an rms_norm / rope chain, one work item per (token, unit).
mlir::FailureOr<Grid> lowerRowsKernel(KernelTarget &target);
/// gated_norm: per-head RMSNorm times silu(gate), one item per (token, head).
mlir::FailureOr<Grid> lowerGatedNormKernel(KernelTarget &target);
/// elementwise: one item per (row, column chunk).
mlir::FailureOr<Grid> lowerElementwiseKernel(KernelTarget &target);
/// embedding: one item per (token, column chunk).
mlir::FailureOr<Grid> lowerEmbeddingKernel(KernelTarget &target);
/// kv_write: one item per (token, kv head).
mlir::FailureOr<Grid> lowerKVWriteKernel(KernelTarget &target);
/// conv: one lane per channel vector, walking the step's tokens in order.
mlir::FailureOr<Grid> lowerConvKernel(KernelTarget &target);

/// rms_norm of the f32 scratch row `row` of `length` columns, in place.
void applyRmsNorm(KernelTarget &target, qtf::RmsNormOp norm, mlir::Value row,
                  int64_t length);
/// rope of the scratch row `row` of row `token`, in place; lanes take pairs
/// (i, i + rotary / 2), so a lane writes columns another lane filled.
void applyRope(KernelTarget &target, qtf::RopeOp rope, mlir::Value token, mlir::Value row);

} // namespace qwen::codegen

#endif // QWEN_PASSES_CODEGEN_COMMON_ROWFAMILIES_H
