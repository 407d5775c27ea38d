//===- KernelABI.h - What every target's kernel codegen shares --*- C++ -*-===//
//
// Kernels receive raw pointers (docs/ARTIFACT.md); codegen views each as a
// flat memref, stores bf16 as i16 (widened to f32 with a shift on any
// target), and recognizes the same fused patterns the fusion pass formed.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_PASSES_CODEGEN_COMMON_KERNELABI_H
#define QWEN_PASSES_CODEGEN_COMMON_KERNELABI_H

#include "dialects/QTF/IR/QTF.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

namespace qwen::codegen {

/// Where the rows of a kernel value live: element (row, unit, col) is at
/// `row * rowStride + offset + unit * unitWidth + col` of `memref`.
struct RowAccess {
  mlir::Value memref;
  mlir::Type elementType; ///< logical element type (bf16 is stored as i16)
  int64_t rowStride = 0;
  int64_t offset = 0;
  int64_t unitWidth = 0;
  int64_t units = 1;
};

/// Row geometry of a whole tensor argument stored at `memref`.
RowAccess wholeTensorAccess(mlir::Value memref, mlir::RankedTensorType type);

/// Resolves a value of a kernel function through view ops (split, reshape)
/// down to a kernel argument, whose access `base` provides.
RowAccess resolveView(mlir::Value value,
                      llvm::function_ref<RowAccess(mlir::BlockArgument)> base);

/// The RoPE inverse frequencies `1 / theta^(2i/d)` in float32 (as HF computes
/// them) as a constant memref.global in `symbolTable` (created once), loaded
/// at the builder's insertion point.
mlir::Value getInvFreqTable(mlir::OpBuilder &builder, mlir::Location loc,
                            mlir::Operation *symbolTable, double theta, int64_t rotaryDim);

/// The element type kernels address memory with: i16 for bf16, else itself.
mlir::Type storageType(mlir::Type elementType);

/// A 1-D dynamic memref over `pointer` (an !llvm.ptr), built as an LLVM
/// memref descriptor behind an unrealized cast that the LLVM lowering folds.
mlir::Value memrefFromPointer(mlir::OpBuilder &builder, mlir::Location loc,
                              mlir::Value pointer, mlir::Type elementType);

/// The parts of a `matmul` kernel: a linear with an optional row-gather
/// prologue and an optional residual-add epilogue.
struct MatmulPattern {
  qtf::LinearOp linear;
  qtf::GatherRowsOp gather; ///< null when the input is read directly
  mlir::Value residual;     ///< null without a residual epilogue
  mlir::Value output;       ///< the kernel's result
};

/// Recognizes a matmul kernel function; emits an error on `source` if it is not one.
mlir::FailureOr<MatmulPattern> matchMatmulKernel(mlir::func::FuncOp source);

} // namespace qwen::codegen

#endif // QWEN_PASSES_CODEGEN_COMMON_KERNELABI_H
