//===- DotProduct.h - How matmul register tiles multiply --------*- C++ -*-===//
//
// The dot kind of a matmul register tile is decided in one place,
// selectDotKind, from the target's ISA features and the operand types; the
// schedule pass (#qkernel.schedule's dot kind) is meant to take this decision
// over, so nothing else in the CPU codegen looks at target features for it.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_PASSES_CODEGEN_CPU_DOTPRODUCT_H
#define QWEN_PASSES_CODEGEN_CPU_DOTPRODUCT_H

#include "passes/Codegen/CPU/KernelEmitter.h"

namespace qwen::codegen::cpu {

enum class DotKind {
  /// Weights widened to f32 in registers, f32 vector FMAs (any AVX2 CPU).
  Fma,
  /// AVX512-BF16 `vdpbf16ps` on bf16 weights and the f32 activations split
  /// into two bf16 parts, x = hi + lo (16 of f32's 24 significand bits, a
  /// relative error <= 2^-17 per element): f32-level results, no widening.
  Avx512Bf16Split,
  /// `vdpbf16ps` on activations rounded to bf16 (as HF's bf16 run and
  /// llama.cpp's bf16 GEMMs do): one instruction per 32 products.
  Avx512Bf16Round,
};

llvm::StringRef stringifyDotKind(DotKind kind);

/// The dot kind of a register tile of `tokens` activation rows by weight
/// rows, sum_k x[k] * w[k] over `k` elements, activations of type `xElement`
/// and weights of type `wElement`, under `options`.
DotKind selectDotKind(const CpuCodegenOptions &options, mlir::Type xElement,
                      mlir::Type wElement, int64_t k, int64_t tokens);

/// f32 lanes of the accumulators of an AVX512-BF16 dot over `k` elements
/// (each step consumes twice as many bf16 elements), or 0 when none fits.
int64_t bf16DotLanes(const CpuCodegenOptions &options, int64_t k);

/// emitDotTile for the Avx512Bf16* kinds: `x86vector.avx512.dot` per
/// (token, weight row) pair of the tile, row-major f32 sums.
llvm::SmallVector<mlir::Value> emitBf16DotTile(KernelEmitter &emitter, DotKind kind,
                                               const RowAccess &x,
                                               llvm::ArrayRef<mlir::Value> xBases,
                                               const RowAccess &w,
                                               llvm::ArrayRef<mlir::Value> wBases, int64_t k);

} // namespace qwen::codegen::cpu

#endif // QWEN_PASSES_CODEGEN_CPU_DOTPRODUCT_H
