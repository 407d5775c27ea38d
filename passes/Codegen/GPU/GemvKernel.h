//===- GemvKernel.h - Decode-sized matmuls as a generated GEMV --*- C++ -*-===//
#ifndef QWEN_PASSES_CODEGEN_GPU_GEMVKERNEL_H
#define QWEN_PASSES_CODEGEN_GPU_GEMVKERNEL_H

#include "passes/Codegen/GPU/GpuKernelEmitter.h"

namespace qwen::codegen::gpu {

/// The most rows a decode step runs through a GEMM's generated decode
/// variant: its SIMT products cost 2 flops per weight element and row,
/// which at 16 rows approach the time an H100 takes to read the weights
/// (~60 TFLOP/s of f32 FMA against 3.35 TB/s); past that the tensor cores
/// win.
inline constexpr int64_t kGemvMaxRows = 8;

/// Y[m, n] = X[m, k] * W[n, k]^T (+ bias[n]) (+ R[m, n]) as the kernel `name`
/// in the emitter's GPU module, taking all the source function's arguments
/// and results (the ABI of a kernel lowered from it). A warp per output
/// column reads the weight row in 16-byte vectors (or the widest that
/// divides K and the rows' offsets), widens it in registers and dots it
/// with `rowsAtOnce` activation rows per pass in f32, then reduces across
/// the warp; `threads` per block. Weights in bf16, f16 or f32, or
/// block-wise f8E4M3FN (each block's partial sum times its weight_scale).
/// Gathered activation rows (qtf.gather_rows: the logits rows) are read
/// through their row ids. Returns the launch geometry.
mlir::FailureOr<KernelGeometry> emitGemvKernel(GpuKernelEmitter &emitter, llvm::StringRef name,
                                               const codegen::MatmulPattern &plan, int64_t threads,
                                               int64_t rowsAtOnce);

} // namespace qwen::codegen::gpu

#endif // QWEN_PASSES_CODEGEN_GPU_GEMVKERNEL_H
