//===- WaitForPrerequisiteGrids.cpp - Kernels ready for programmatic launch ===//
//
// A decode step is hundreds of dependent kernels; on an H100 each one costs
// about a microsecond of launch and drain even inside a CUDA graph. With
// programmatic dependent launch (the runtime's cuLaunchKernelEx with
// CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION) the next kernel is
// scheduled while the previous one drains, and it must not touch memory
// before `griddepcontrol.wait` returns (the previous grid complete and its
// writes visible). This pass makes that the first thing every kernel does,
// which keeps the stream's order exactly. No kernel triggers its dependents
// early (griddepcontrol.launch_dependents): the trigger is each grid's
// exit. On the H100 that gained ~1% at batch 1; triggering at every
// kernel's start gained ~1.5% there but cost 10% at Qwen3-0.6B batch 8
// (docs/PERFORMANCE.md). The pass records it in the `programmatic` flag of
// every #qkernel.launch whose kernels (the entry's, its decode and combine
// variants) now wait, and the manifest writer turns that into the target's
// `programmatic_launch`, so that the runtime never uses the attribute with
// kernels that do not wait.
//
//===----------------------------------------------------------------------===//

#include "qwen/Passes/Codegen/GPU/Passes.h"

#include "qwen/Dialect/QKernel/IR/QKernel.h"

#include "llvm/ADT/StringSet.h"

namespace qwen::codegen::gpu {
#define GEN_PASS_DEF_GPUWAITFORPREREQUISITEGRIDSPASS
#include "qwen/Passes/Codegen/GPU/Passes.h.inc"
} // namespace qwen::codegen::gpu

using namespace mlir;
using namespace qwen;

namespace {
struct GpuWaitForPrerequisiteGridsPass final
    : qwen::codegen::gpu::impl::GpuWaitForPrerequisiteGridsPassBase<
          GpuWaitForPrerequisiteGridsPass> {
  void runOnOperation() override {
    llvm::StringSet<> waiting;
    getOperation().walk([&](mlir::gpu::GPUFuncOp kernel) {
      if (!kernel.isKernel() || kernel.getBody().empty())
        return;
      OpBuilder builder = OpBuilder::atBlockBegin(&kernel.getBody().front());
      NVVM::GriddepcontrolOp::create(builder, kernel.getLoc(), NVVM::GridDepActionKind::wait);
      waiting.insert(kernel.getName());
    });
    // A generated launch may be programmatic when every kernel it starts waits.
    getOperation().walk([&](qkernel::LaunchOp launch) {
      qkernel::LaunchAttr attr = launch.getLaunchAttr();
      if (!attr || !attr.isGpu())
        return;
      bool waits = waiting.contains(launch.getKernel().getLeafReference().getValue());
      for (qkernel::KernelVariantAttr variant : {attr.getDecode(), attr.getCombine()})
        if (variant)
          waits = waits && waiting.contains(variant.getKernel().getValue());
      launch.setLaunchAttr(attr.withProgrammatic(waits));
    });
  }
};
} // namespace
