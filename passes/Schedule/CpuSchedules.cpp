//===- CpuSchedules.cpp - Schedules of the CPU kernels --------------------===//
//
// Every CPU kernel vectorizes with the register width (`vector_width`).
// A matmul work item owns `grain` = 8 output columns (weight rows), so
// decode streams each weight row exactly once and threads never share an
// output; register tiles of 4 tokens x 2 weight rows reuse each loaded
// weight vector 4 times, and a lone token (decode) takes 1 x 4 tiles: more
// independent FMA chains and memory streams for what is a bandwidth-bound
// matrix-vector product. The experts kernel gathers 4 slots per block.
//
//===----------------------------------------------------------------------===//
#include "passes/Schedule/Schedules.h"

using namespace mlir;
using namespace qwen;
using namespace qwen::qkernel;

static constexpr int64_t kMatmulRowsPerItem = 8;
static constexpr int64_t kMatmulTokenTile = 4;
static constexpr int64_t kMatmulWeightTile = 2;
static constexpr int64_t kMatmulDecodeWeightTile = 4;
static constexpr int64_t kExpertsSlotBlock = 4;

FailureOr<ScheduleAttr> qwen::schedule::selectCpuSchedule(func::FuncOp kernel,
                                                          const CpuScheduleOptions &options) {
  MLIRContext *ctx = kernel.getContext();
  std::optional<KernelKind> kind = kernelKind(kernel);
  if (!kind)
    return kernel.emitOpError("has no qkernel.kind to schedule"), failure();
  auto array = [&](ArrayRef<int64_t> values) { return DenseI64ArrayAttr::get(ctx, values); };
  auto schedule = [&](int64_t grain, DenseI64ArrayAttr tile, DotKind dot,
                      DenseI64ArrayAttr decodeTile) {
    return ScheduleAttr::get(ctx, ScheduleTarget::Cpu, /*threads=*/0, grain,
                             options.vectorWidth, /*lanes=*/0, tile, /*tile_lanes=*/0,
                             /*stages=*/1, /*tensor_cores=*/false, dot, /*decode_threads=*/0,
                             /*decode_lanes=*/0, decodeTile, /*splits=*/0,
                             /*combine_threads=*/0);
  };
  if (*kind == KernelKind::Matmul)
    return schedule(kMatmulRowsPerItem, array({kMatmulTokenTile, kMatmulWeightTile}),
                    DotKind::Fma, array({1, kMatmulDecodeWeightTile}));
  if (*kind == KernelKind::Experts)
    return schedule(1, array({kExpertsSlotBlock}), DotKind::Fma, {});
  return schedule(1, {}, DotKind::None, {});
}
