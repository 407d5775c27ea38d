//===- QKernel.h - kernel region dialect ------------------------*- C++ -*-===//
#ifndef QWEN_DIALECTS_QKERNEL_IR_QKERNEL_H
#define QWEN_DIALECTS_QKERNEL_IR_QKERNEL_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/ControlFlowInterfaces.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "dialects/QKernel/IR/QKernelDialect.h.inc"

#define GET_OP_CLASSES
#include "dialects/QKernel/IR/QKernelOps.h.inc"

#include "dialects/QKernel/IR/QKernelSchedule.h"

namespace qwen::qkernel {
/// Unit attribute marking a func.func as a kernel produced by outlining.
inline constexpr llvm::StringLiteral kKernelAttrName = "qkernel.kernel";
/// Work-item count chosen by a target's codegen: array of symbol names and
/// integers whose product is the grid size.
inline constexpr llvm::StringLiteral kGridAttrName = "qkernel.grid";
/// Name of the nested module that holds the kernel functions.
inline constexpr llvm::StringLiteral kKernelModuleName = "kernels";
} // namespace qwen::qkernel

#endif // QWEN_DIALECTS_QKERNEL_IR_QKERNEL_H
