//===- BlockedMatmul.h - Cache-blocked CPU prefill matmul -------*- C++ -*-===//
//
// The prefill path of a CPU matmul kernel (#qkernel.schedule `panel`,
// `prefill_tile`, `prefill_tokens`): a thread's range of weight rows is cut
// into panels that stay in L2 while every token reads them.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_PASSES_CODEGEN_CPU_BLOCKEDMATMUL_H
#define QWEN_PASSES_CODEGEN_CPU_BLOCKEDMATMUL_H

#include "passes/Codegen/CPU/KernelEmitter.h"
#include "qwen/Passes/Codegen/Common/KernelABI.h"

namespace qwen::codegen::cpu {

/// Emits, at the emitter's insertion point, Y = X W^T (+ bias) (+ residual)
/// of `plan` for `tokens` tokens and the weight rows of work items
/// [begin, end) (`grain` rows each), panel by panel of the schedule. Each
/// (token, weight row) dot is the register tiles' (emitDotTile), so results
/// are bit-identical to the per-item path.
void emitBlockedMatmul(KernelEmitter &emitter, MatmulPattern plan, mlir::Value tokens,
                       mlir::Value begin, mlir::Value end);

/// Whether the schedule's prefill tile takes the packed layout for `weight`
/// rows of length `k`: bf16 weights, 16-lane vdpbf16ps over k and weight
/// rows a multiple of 16 (each accumulator holds 16 weight rows of one
/// token, the panel is packed as bf16 pairs per lane class).
bool isPackedPrefillTile(qkernel::ScheduleAttr schedule, mlir::Type weight, int64_t k);

/// Runs the item loop of a matmul kernel's range [begin, end), or the
/// blocked path when the step has at least `prefill_tokens` tokens and the
/// schedule has a panel (the dispatch hook of emitMatmulKernel).
void emitMatmulRange(KernelEmitter &emitter, MatmulPattern plan, mlir::Value tokens,
                     mlir::Value begin, mlir::Value end, llvm::function_ref<void()> itemLoop);

/// The sums vector.reduction <add> gives for each of `accs` (from 0.0, lanes
/// in order), bit for bit, W lanes per add: the accumulators are transposed,
/// then the columns added in lane order.
llvm::SmallVector<mlir::Value> orderedSums(mlir::ImplicitLocOpBuilder &b, llvm::ArrayRef<mlir::Value> accs);

/// emitBf16DotTile's single-dot tile (bf16 weights reinterpreted, f32
/// activations rounded to nearest even, one vdpbf16ps accumulator per
/// pair), with the pairs' sums taken by orderedSums: the same bits.
llvm::SmallVector<mlir::Value> emitBf16RoundTile(KernelEmitter &emitter, const RowAccess &x,
                                                 llvm::ArrayRef<mlir::Value> xBases, const RowAccess &w,
                                                 llvm::ArrayRef<mlir::Value> wBases, int64_t k);

/// A matmul tile's epilogue: each sum of tokens [m, m+mc) x `wRows` (row
/// major, as the tiles return them) plus bias[n], then residual[m, n] (in
/// that order), stored to y[m, n].
void storeTileSums(KernelEmitter &emitter, const RowAccess &y, const std::optional<RowAccess> &bias,
                   const std::optional<RowAccess> &residual, mlir::Value m, int64_t mc,
                   llvm::ArrayRef<mlir::Value> wRows, llvm::ArrayRef<mlir::Value> sums);

} // namespace qwen::codegen::cpu

#endif // QWEN_PASSES_CODEGEN_CPU_BLOCKEDMATMUL_H
