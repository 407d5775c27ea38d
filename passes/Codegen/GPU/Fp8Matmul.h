//===- Fp8Matmul.h - Matmuls over block-wise FP8 weights on the GPU -------===//
#ifndef QWEN_PASSES_CODEGEN_GPU_FP8MATMUL_H
#define QWEN_PASSES_CODEGEN_GPU_FP8MATMUL_H

#include "passes/Codegen/GPU/GpuKernelEmitter.h"

namespace qwen::codegen::gpu {

/// Whether `weight_block` and the shape let cuBLASLt's block-scaled FP8
/// GEMM (sm_90, cuBLASLt 12.9+) run this f8E4M3FN matmul: 128 x 128 blocks,
/// K a multiple of 512 (whole K blocks, and the weight's scale rows of
/// K / 128 floats 16-byte aligned, as cuBLASLt reads them), no row gather,
/// no bias, f32 activations in 16-byte aligned rows (the pack's vectors).
/// The schedule makes the same choice (GpuSchedules.cpp); this also checks
/// the views' alignment, which only the lowering sees.
bool fp8MatmulFitsCublasLt(const codegen::MatmulPattern &plan);

/// An f8E4M3FN matmul as a generated kernel (any block size, any rows):
/// GemvKernel.h's emitGemvKernel, which scales each block's partial sum,
/// named like the emitter's source (GpuKernelLowering::lower records its
/// launch). The block and rows per pass are the schedule's threads and tile[0].
mlir::FailureOr<KernelGeometry> emitFp8MatmulKernel(GpuKernelEmitter &emitter);

/// The pack kernel `name` in front of cuBLASLt's FP8 GEMM: quantizes the
/// f32 activations `x` (argument `xArg`, [rows, K], rows = `rowSymbol`) as
/// HF's act_quant does, per row and 128 columns: scale = amax / 448 (1 for
/// an all-zero block, whose codes are all 0), codes = e4m3(x / scale) with
/// round to nearest even. Results: the codes [rows, K] (f8E4M3FN) and the
/// scales, stored [K / 128][rows] (rows contiguous, cuBLASLt's VEC128_32F
/// layout) in a buffer typed [rows, K / 128] f32 of the same size.
/// Needs K a multiple of 128 and 16-byte aligned rows of x.
mlir::FailureOr<KernelGeometry> emitFp8ActivationPack(GpuKernelEmitter &emitter, llvm::StringRef name,
                                                      mlir::BlockArgument xArg, mlir::Value x,
                                                      llvm::StringRef rowSymbol,
                                                      mlir::RankedTensorType codesType,
                                                      mlir::RankedTensorType scalesType);

} // namespace qwen::codegen::gpu

#endif // QWEN_PASSES_CODEGEN_GPU_FP8MATMUL_H
