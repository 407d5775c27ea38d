//===- Passes.h - CPU codegen -----------------------------------*- C++ -*-===//
#ifndef QWEN_PASSES_CODEGEN_CPU_PASSES_H
#define QWEN_PASSES_CODEGEN_CPU_PASSES_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Dialect/X86Vector/X86VectorDialect.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace qwen::codegen::cpu {
#define GEN_PASS_DECL
#include "qwen/Passes/Codegen/CPU/Passes.h.inc"

/// Upstream lowering of the kernels module (scf / vector / memref / math /
/// arith / func) to the LLVM dialect.
void addCpuLowerToLLVMPasses(mlir::OpPassManager &kernelsModulePM);

#define GEN_PASS_REGISTRATION
#include "qwen/Passes/Codegen/CPU/Passes.h.inc"
} // namespace qwen::codegen::cpu

#endif // QWEN_PASSES_CODEGEN_CPU_PASSES_H
