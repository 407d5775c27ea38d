//===- Passes.h - kernel schedules ------------------------------*- C++ -*-===//
#ifndef QWEN_PASSES_SCHEDULE_PASSES_H
#define QWEN_PASSES_SCHEDULE_PASSES_H

#include "qwen/Dialect/QKernel/IR/QKernel.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace qwen::schedule {
#define GEN_PASS_DECL
#include "qwen/Passes/Schedule/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "qwen/Passes/Schedule/Passes.h.inc"
} // namespace qwen::schedule

#endif // QWEN_PASSES_SCHEDULE_PASSES_H
