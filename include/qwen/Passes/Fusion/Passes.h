//===- Passes.h - Fusion and outlining --------------------------*- C++ -*-===//
#ifndef QWEN_PASSES_FUSION_PASSES_H
#define QWEN_PASSES_FUSION_PASSES_H

#include "qwen/Dialect/QKernel/IR/QKernel.h"
#include "qwen/Dialect/QTF/IR/QTF.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace qwen::fusion {
#define GEN_PASS_DECL
#include "qwen/Passes/Fusion/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "qwen/Passes/Fusion/Passes.h.inc"
} // namespace qwen::fusion

#endif // QWEN_PASSES_FUSION_PASSES_H
