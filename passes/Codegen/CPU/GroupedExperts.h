//===- GroupedExperts.h - Cache-blocked CPU experts for prefill -*- C++ -*-===//
//
// The prefill path of the CPU experts kernel (#qkernel.schedule `panel`,
// `prefill_tile`, `prefill_tokens`, `tile` = [slots, group, down panel]):
// an expert's slots are gathered in groups and every L2-sized panel of its
// weights is applied to the whole group before the next panel is read.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_PASSES_CODEGEN_CPU_GROUPEDEXPERTS_H
#define QWEN_PASSES_CODEGEN_CPU_GROUPEDEXPERTS_H

#include "passes/Codegen/CPU/KernelEmitter.h"
#include "qwen/Passes/Codegen/Common/MoeMath.h"

#include <optional>

namespace qwen::codegen::cpu {

/// The dot products of the x rows at `xBases` with the expert weight rows at
/// `wBases` over `k` (row-major [x][w] f32 sums), in the kind the schedule
/// gives a tile of xBases.size() rows; fp8 experts: scaleRows[j] is weight
/// row j's scale row. Every (x, w) sum has the same order in every tile
/// shape, so a slot's results do not depend on the slots beside it.
llvm::SmallVector<mlir::Value> emitExpertDotTile(KernelEmitter &emitter,
                                                 const codegen::ExpertOperands &ops,
                                                 const RowAccess &x,
                                                 llvm::ArrayRef<mlir::Value> xBases,
                                                 const RowAccess &w,
                                                 llvm::ArrayRef<mlir::Value> wBases,
                                                 const std::optional<RowAccess> &scale,
                                                 llvm::ArrayRef<mlir::Value> scaleRows, int64_t k);

/// Emits, at the emitter's insertion point, the SwiGLU of `expert` (located
/// in `ops`) for every slot routed to it among `slotCount` slots, group by
/// group, panel by panel (the blocked prefill path of the experts kernel).
/// experts.gather: walks the routing slots [0, slotCount) and stores those
/// routed to `expert` in `matched`, calling `onFull` (at the insertion point
/// of the loop body) each time `block` of them are gathered. Returns how
/// many are left in `matched` after the last full block.
mlir::Value gatherRoutedSlots(KernelEmitter &emitter, const codegen::ExpertOperands &ops,
                              mlir::Value expert, mlir::Value slotCount, mlir::Value matched,
                              int64_t block, llvm::function_ref<void()> onFull);

void emitGroupedExperts(KernelEmitter &emitter, codegen::ExpertOperands &ops,
                        mlir::Value expert, mlir::Value slotCount);

} // namespace qwen::codegen::cpu

#endif // QWEN_PASSES_CODEGEN_CPU_GROUPEDEXPERTS_H
