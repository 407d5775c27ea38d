//===- QKernel.h - kernel region dialect ------------------------*- C++ -*-===//
#ifndef QWEN_DIALECT_QKERNEL_IR_QKERNEL_H
#define QWEN_DIALECT_QKERNEL_IR_QKERNEL_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/ControlFlowInterfaces.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "qwen/Dialect/QKernel/IR/QKernelDialect.h.inc"
#include "qwen/Dialect/QKernel/IR/QKernelEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "qwen/Dialect/QKernel/IR/QKernelAttrs.h.inc"

#define GET_OP_CLASSES
#include "qwen/Dialect/QKernel/IR/QKernelOps.h.inc"

#include "qwen/Dialect/QKernel/IR/QKernelSchedule.h"

namespace qwen::qkernel {
/// Unit attribute marking a func.func as a kernel produced by outlining.
inline constexpr llvm::StringLiteral kKernelAttrName = "qkernel.kernel";
/// #qkernel.kind of a kernel function (outlined from a region, or declared
/// by target codegen).
inline constexpr llvm::StringLiteral kKindAttrName = "qkernel.kind";
/// On @step (GPU codegen): the on-device sampler kernels,
/// `{argmax = #qkernel.variant<...>, topk = #qkernel.variant<...>,
/// topk_count = N}`.
inline constexpr llvm::StringLiteral kSamplerAttrName = "qkernel.sampler";
/// Name of the nested module that holds the kernel functions.
inline constexpr llvm::StringLiteral kKernelModuleName = "kernels";

/// The nested kernels module of `top` (null if it has none).
mlir::ModuleOp getKernelModule(mlir::ModuleOp top);

/// The kind of a kernel function, if it has one.
std::optional<KernelKind> getKernelKind(mlir::Operation *func);
} // namespace qwen::qkernel

#endif // QWEN_DIALECT_QKERNEL_IR_QKERNEL_H
