//===- ExpandSubgroupReduce.cpp - gpu.subgroup_reduce to xor shuffles -----===//
//
// The kernels reduce across a warp with gpu.subgroup_reduce (one two-lane
// cluster per butterfly step, GpuKernelEmitter::laneReduce); the upstream
// patterns turn each into its xor gpu.shuffle and combining op, which
// convert-gpu-to-nvvm lowers to shfl.sync.bfly.
//
//===----------------------------------------------------------------------===//
#include "qwen/Passes/Codegen/GPU/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace qwen::codegen::gpu {
#define GEN_PASS_DEF_GPUEXPANDSUBGROUPREDUCEPASS
#include "qwen/Passes/Codegen/GPU/Passes.h.inc"
} // namespace qwen::codegen::gpu

using namespace mlir;

namespace {
constexpr unsigned kWarpSize = 32;
constexpr unsigned kShuffleBits = 32;

struct GpuExpandSubgroupReducePass final
    : qwen::codegen::gpu::impl::GpuExpandSubgroupReducePassBase<GpuExpandSubgroupReducePass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populateGpuLowerSubgroupReduceToShufflePatterns(patterns, kWarpSize, kShuffleBits);
    populateGpuLowerClusteredSubgroupReduceToShufflePatterns(patterns, kWarpSize, kShuffleBits);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      return signalPassFailure();
    WalkResult left = getOperation().walk([](mlir::gpu::SubgroupReduceOp op) {
      op.emitOpError("has no shuffle expansion (a type wider than 32 bits?)");
      return WalkResult::interrupt();
    });
    if (left.wasInterrupted())
      signalPassFailure();
  }
};
} // namespace
