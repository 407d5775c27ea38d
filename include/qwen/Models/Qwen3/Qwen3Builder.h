//===- Qwen3Builder.h - Emit the qtf graph of a Qwen3 model -----*- C++ -*-===//
#ifndef QWEN_MODELS_QWEN3_QWEN3BUILDER_H
#define QWEN_MODELS_QWEN3_QWEN3BUILDER_H

#include "qwen/Models/Qwen3/Qwen3Config.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

#include <functional>
#include <string>

namespace qwen::models {

struct BuildOptions {
  /// Positions per KV page.
  int64_t pageSize = 16;
  /// Element type of the KV cache ("f32", "bf16" or "f16"): keys and values
  /// are rounded to it when written; attention computes in f32.
  std::string kvDtype = "f32";
  /// Whether the checkpoint has a tensor of this name; set when compiling
  /// from a checkpoint, so the builder follows its layout where releases
  /// differ (fused or per-expert MoE tensors, the text weights' prefix).
  std::function<bool(const std::string &)> hasTensor;
  /// The step returns the final hidden states (after the final norm, HF's
  /// last_hidden_state) of the `logit_rows` rows, [R, hidden_size], instead
  /// of their logits: embedding models (Qwen3-Embedding has no lm_head).
  bool hiddenStates = false;
  /// Block-wise FP8 checkpoints: linear weights stay f8E4M3FN with their
  /// f32 block scales (qtf.linear's scale operand) when the target's matmul
  /// kernels read them; false binds them dequantized to the compute dtype.
  bool fp8Weights = true;
};

/// Emits `func.func @step` for one ragged step (prefill, decode or mixed):
/// arguments tokens/positions/token_seq/block_table/logit_rows (plus
/// mrope_positions with MRoPE and state_slots with linear-attention layers),
/// the KV cache and, for hybrid models, the linear-attention state; results
/// the logits (or, with hiddenStates, the final hidden states) of the
/// `logit_rows` rows and the updated cache and state.
mlir::OwningOpRef<mlir::ModuleOp> buildQwen3Graph(mlir::MLIRContext &context,
                                                  const Qwen3Config &config,
                                                  const BuildOptions &options);

} // namespace qwen::models

#endif // QWEN_MODELS_QWEN3_QWEN3BUILDER_H
