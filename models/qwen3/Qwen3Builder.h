//===- Qwen3Builder.h - Emit the qtf graph of a Qwen3 model -----*- C++ -*-===//
#ifndef QWEN_MODELS_QWEN3_QWEN3BUILDER_H
#define QWEN_MODELS_QWEN3_QWEN3BUILDER_H

#include "models/qwen3/Qwen3Config.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

namespace qwen::models {

struct BuildOptions {
  /// Positions per KV page.
  int64_t pageSize = 16;
};

/// Emits `func.func @step` for one ragged step (prefill, decode or mixed):
/// arguments tokens/positions/token_seq/block_table/logit_rows and the KV
/// cache; results the logits of the `logit_rows` rows and the updated cache.
mlir::OwningOpRef<mlir::ModuleOp> buildQwen3Graph(mlir::MLIRContext &context,
                                                  const Qwen3Config &config,
                                                  const BuildOptions &options);

} // namespace qwen::models

#endif // QWEN_MODELS_QWEN3_QWEN3BUILDER_H
