//===- DotProduct.h - How matmul register tiles multiply --------*- C++ -*-===//
//
// The dot kind of a matmul or experts register tile is the kernel's
// #qkernel.schedule's (`dot`, `decode_dot` for one-token tiles), chosen by
// qwen-select-schedule from the target's features (passes/Schedule/
// CpuSchedules.cpp); the CPU codegen never looks at target features.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_PASSES_CODEGEN_CPU_DOTPRODUCT_H
#define QWEN_PASSES_CODEGEN_CPU_DOTPRODUCT_H

#include "passes/Codegen/CPU/KernelEmitter.h"

#include <array>

namespace qwen::codegen::cpu {

/// f32 lanes of the accumulators of an AVX512-BF16 dot over `k` elements
/// with `vectorWidth`-lane registers (each step consumes twice as many bf16
/// elements): the widest of 16, 8, 4 that fits, or 0 when none does.
int64_t bf16DotLanes(int64_t vectorWidth, int64_t k);

/// Checks that `source`'s schedule can run its dot products of `x` by `w`
/// elements over `k` with the schedule's dot kinds (bf16 kinds: bf16
/// weights, f32 or bf16 activations, a `k` the bf16 dot fits).
mlir::LogicalResult verifyDotKinds(mlir::func::FuncOp source, qkernel::ScheduleAttr schedule,
                                   mlir::Type x, mlir::Type w, int64_t k);

/// emitDotTile for the Avx512Bf16* kinds: `x86vector.avx512.dot` per
/// (token, weight row) pair of the tile, row-major f32 sums.
llvm::SmallVector<mlir::Value> emitBf16DotTile(KernelEmitter &emitter, qkernel::DotKind kind,
                                               const RowAccess &x,
                                               llvm::ArrayRef<mlir::Value> xBases,
                                               const RowAccess &w,
                                               llvm::ArrayRef<mlir::Value> wBases, int64_t k);

/// Block-wise FP8 weights of a matmul register tile: f8E4M3FN weight rows
/// `wRows[j]` (flat starts `wBases[j]`), f32 `scale` [ceil(N / block[0]),
/// ceil(k / block[1])].
struct Fp8Weights {
  RowAccess scale;
  llvm::ArrayRef<mlir::Value> wRows;
  std::array<int64_t, 2> block;
};

/// emitDotTile for block-wise FP8 weights (the Fma kind): the fp8 bytes are
/// widened in registers with integer ops and multiplied by their block's
/// scale, so each weight is exactly HF's f32 dequantization fp8 * scale,
/// then f32 FMAs as for f32 weights. K is walked block by block so a scale
/// is loaded once per block and weight row.
llvm::SmallVector<mlir::Value> emitFp8DotTile(KernelEmitter &emitter, const RowAccess &x,
                                              llvm::ArrayRef<mlir::Value> xBases,
                                              const RowAccess &w,
                                              llvm::ArrayRef<mlir::Value> wBases,
                                              const Fp8Weights &fp8, int64_t k);

} // namespace qwen::codegen::cpu

#endif // QWEN_PASSES_CODEGEN_CPU_DOTPRODUCT_H
