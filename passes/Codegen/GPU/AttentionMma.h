//===- AttentionMma.h - Tensor-core prefill tiles of paged attention ------===//
//
// The query-tile path of the attention kernel on tensor cores (mma.sync),
// chosen by a schedule with `tensor_cores` (AttentionMma.cpp).
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_PASSES_CODEGEN_GPU_ATTENTIONMMA_H
#define QWEN_PASSES_CODEGEN_GPU_ATTENTIONMMA_H

#include "passes/Codegen/GPU/GpuKernelEmitter.h"

namespace qwen::codegen::gpu {

/// The block-uniform values of one query tile, computed by the kernel's role
/// phase (AttentionKernel.cpp).
struct MmaTileOperands {
  mlir::Value first;     ///< the tile's first token
  mlir::Value count;     ///< n, its tokens (2 <= n <= Q)
  mlir::Value head;      ///< the query head
  mlir::Value kvHead;    ///< its kv head
  mlir::Value sequence;  ///< the request (block-table row)
  mlir::Value queryRow;  ///< an f32 shared row of head_dim for the row chain
};

/// Whether the schedule asks for the tensor-core tile and the kernel admits
/// it; emits an error on the source when it asks and cannot.
mlir::LogicalResult checkMmaAttentionSchedule(GpuKernelEmitter &e, qtf::PagedAttentionOp attention);

/// Emits the query tile `tile` of `attention` on tensor cores.
void emitMmaAttentionTile(GpuKernelEmitter &e, qtf::PagedAttentionOp attention,
                          const MmaTileOperands &tile);

} // namespace qwen::codegen::gpu

#endif // QWEN_PASSES_CODEGEN_GPU_ATTENTIONMMA_H
