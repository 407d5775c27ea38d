//===- Passes.h - Graph rewrites --------------------------------*- C++ -*-===//
#ifndef QWEN_PASSES_GRAPH_PASSES_H
#define QWEN_PASSES_GRAPH_PASSES_H

#include "qwen/Dialect/QTF/IR/QTF.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/Pass.h"

namespace qwen::graph {
#define GEN_PASS_DECL
#include "qwen/Passes/Graph/Passes.h.inc"

/// Adds the pattern that stacks sibling linears.
void populateStackProjectionsPatterns(mlir::RewritePatternSet &patterns);

#define GEN_PASS_REGISTRATION
#include "qwen/Passes/Graph/Passes.h.inc"
} // namespace qwen::graph

#endif // QWEN_PASSES_GRAPH_PASSES_H
