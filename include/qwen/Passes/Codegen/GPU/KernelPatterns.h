//===- KernelPatterns.h - GPU kernel lowering patterns ----------*- C++ -*-===//
//
// The GPU's side of the kernel patterns (Common/KernelPatterns.h): a kernel
// source becomes a `gpu.func` in `gpu.module @qwen_kernels` built by a
// GpuKernelEmitter (or a cuBLASLt call, for a matmul), every qkernel.launch
// of it records its #qkernel.launch, and the source is replaced by the
// bodiless declaration the launches keep naming.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_PASSES_CODEGEN_GPU_KERNELPATTERNS_H
#define QWEN_PASSES_CODEGEN_GPU_KERNELPATTERNS_H

#include "qwen/Passes/Codegen/Common/KernelPatterns.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/IR/BuiltinOps.h"

namespace qwen::codegen::gpu {

class GpuKernelEmitter;
struct GpuCodegenOptions;
struct KernelGeometry;

/// Lowers kernel sources of `top`'s kernels module into `gpuModule`.
class GpuKernelLowering final : public codegen::TargetLowering {
public:
  using Emit = mlir::FailureOr<KernelGeometry> (*)(GpuKernelEmitter &emitter);

  GpuKernelLowering(mlir::ModuleOp top, mlir::gpu::GPUModuleOp gpuModule, bool convertGemmInputs)
      : top(top), gpuModule(gpuModule), convertGemmInputs(convertGemmInputs) {}

  mlir::ModuleOp getTop() const { return top; }
  mlir::gpu::GPUModuleOp getGpuModule() const { return gpuModule; }
  /// The codegen options of `source`: its #qkernel.schedule (an error when
  /// it has none) and the pass's options.
  mlir::FailureOr<GpuCodegenOptions> getOptions(mlir::func::FuncOp source) const;

  /// Builds `source`'s gpu.func with `emit`, sets the launch geometry it
  /// returns on the launches and replaces `source` with a declaration.
  mlir::LogicalResult
  lower(mlir::func::FuncOp source, mlir::PatternRewriter &rewriter,
        llvm::function_ref<mlir::FailureOr<KernelGeometry>(GpuKernelEmitter &)> emit);

  mlir::LogicalResult lowerFamily(mlir::func::FuncOp source, mlir::PatternRewriter &rewriter,
                                  codegen::FamilyLowering lower) override;

private:
  mlir::ModuleOp top;
  mlir::gpu::GPUModuleOp gpuModule;
  bool convertGemmInputs;
};

/// A kernel kind the GPU lowers with its own emitter.
using GpuKernelPattern = codegen::TargetKernelPattern<GpuKernelLowering>;

// One per kernel file of this folder.
void populateMatmulPatterns(mlir::RewritePatternSet &patterns, GpuKernelLowering &lowering);
void populateAttentionPatterns(mlir::RewritePatternSet &patterns, GpuKernelLowering &lowering);
void populateMoePatterns(mlir::RewritePatternSet &patterns, GpuKernelLowering &lowering);
void populateDeltaRulePatterns(mlir::RewritePatternSet &patterns, GpuKernelLowering &lowering);

} // namespace qwen::codegen::gpu

#endif // QWEN_PASSES_CODEGEN_GPU_KERNELPATTERNS_H
