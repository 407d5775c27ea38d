//===- ShapeSymbols.h - Symbolic leading dimensions -------------*- C++ -*-===//
//
// Activations have one dynamic leading dimension, which is one of the step's
// symbols: T (tokens), B (sequences) or R (logit rows). These helpers tell
// which one a value carries, by following the graph back to the step inputs.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_PASSES_COMMON_SHAPESYMBOLS_H
#define QWEN_PASSES_COMMON_SHAPESYMBOLS_H

#include "mlir/IR/Value.h"
#include "llvm/ADT/StringRef.h"

namespace qwen {
/// The symbols every kernel receives in `dims`, in this order.
inline constexpr llvm::StringLiteral kStepSymbols[] = {"T", "B", "P", "R"};

/// Index of `symbol` in kStepSymbols, or -1.
int stepSymbolIndex(llvm::StringRef symbol);

/// The symbol of a value's dynamic leading dimension, or "" when the leading
/// dimension is static or cannot be traced to a step input.
std::string getLeadingSymbol(mlir::Value value);
} // namespace qwen

#endif // QWEN_PASSES_COMMON_SHAPESYMBOLS_H
