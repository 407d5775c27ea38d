//===- LowerKernels.cpp - Kernels to the CPU ABI --------------------------===//
#include "qwen/Passes/Codegen/CPU/Passes.h"
#include "passes/Codegen/CPU/KernelEmitter.h"

#include "qwen/Dialect/QKernel/IR/QKernel.h"

#include "mlir/Conversion/ArithToLLVM/ArithToLLVM.h"
#include "mlir/Conversion/ControlFlowToLLVM/ControlFlowToLLVM.h"
#include "mlir/Conversion/FuncToLLVM/ConvertFuncToLLVMPass.h"
#include "mlir/Conversion/IndexToLLVM/IndexToLLVM.h"
#include "mlir/Conversion/MathToLLVM/MathToLLVM.h"
#include "mlir/Conversion/MemRefToLLVM/MemRefToLLVM.h"
#include "mlir/Conversion/ReconcileUnrealizedCasts/ReconcileUnrealizedCasts.h"
#include "mlir/Conversion/SCFToControlFlow/SCFToControlFlow.h"
#include "mlir/Conversion/VectorToLLVM/ConvertVectorToLLVMPass.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"

namespace qwen::codegen::cpu {
#define GEN_PASS_DEF_LOWERKERNELSTOLOOPSPASS
#include "qwen/Passes/Codegen/CPU/Passes.h.inc"
} // namespace qwen::codegen::cpu

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen::cpu;

LogicalResult
CpuKernelLowering::lower(func::FuncOp source, PatternRewriter &rewriter,
                         function_ref<FailureOr<codegen::Grid>(KernelEmitter &)> emit) {
  FailureOr<qkernel::ScheduleAttr> schedule =
      qkernel::requireSchedule(source, qkernel::ScheduleTarget::Cpu);
  if (failed(schedule))
    return failure();
  CpuCodegenOptions options{*schedule, schedule->getVectorWidth()};
  KernelEmitter emitter(kernels, source, options, rewriter);
  FailureOr<codegen::Grid> grid = emit(emitter);
  if (failed(grid))
    return failure();
  if (failed(codegen::verifyGridTraced(source, *grid)))
    return failure();
  // A CPU launch is its grid alone (a range of items per call).
  MLIRContext *ctx = source.getContext();
  auto launchAttr = qkernel::LaunchAttr::getChecked(
      [&] { return source.emitOpError("has an invalid launch: "); }, ctx,
      ArrayAttr::get(ctx, *grid), /*block=*/int64_t(0), /*shared=*/int64_t(0),
      qkernel::KernelVariantAttr(), /*maxSplits=*/int64_t(0), /*partialFloats=*/int64_t(0),
      qkernel::KernelVariantAttr(), /*programmatic=*/false, /*splitKeys=*/int64_t(0));
  if (!launchAttr)
    return failure();
  codegen::setLaunches(top, source, launchAttr, rewriter);
  std::string name = source.getSymName().str();
  auto lowered = kernels.lookupSymbol<func::FuncOp>(name + ".abi");
  rewriter.eraseOp(source);
  rewriter.modifyOpInPlace(lowered, [&] { lowered.setSymName(name); });
  return success();
}

LogicalResult CpuKernelLowering::lowerFamily(func::FuncOp source, PatternRewriter &rewriter,
                                             codegen::FamilyLowering lower) {
  return this->lower(source, rewriter, [&](KernelEmitter &emitter) { return lower(emitter); });
}

namespace {
struct LowerKernelsToLoopsPass final
    : qwen::codegen::cpu::impl::LowerKernelsToLoopsPassBase<LowerKernelsToLoopsPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp top = getOperation();
    ModuleOp kernels = qkernel::getKernelModule(top);
    if (!kernels)
      return;

    codegen::recordArgumentSymbols(kernels);
    // Each kernel kind's pattern replaces its sources, in module order.
    CpuKernelLowering lowering(top, kernels);
    RewritePatternSet patterns(&getContext());
    codegen::populateKernelLoweringPatterns(patterns, lowering);
    if (failed(codegen::applyKernelPatterns(kernels, std::move(patterns), lowering, "CPU",
                                                 auditRewrites)))
      return signalPassFailure();

    // Lets the runtime refuse a kernels.so built for another ABI.
    OpBuilder builder = OpBuilder::atBlockEnd(kernels.getBody());
    auto version = func::FuncOp::create(builder, kernels.getLoc(),
                                        "qwen_artifact_abi_version",
                                        builder.getFunctionType({}, {builder.getI64Type()}));
    builder.setInsertionPointToStart(version.addEntryBlock());
    Value one = arith::ConstantOp::create(builder, kernels.getLoc(), builder.getI64IntegerAttr(1));
    func::ReturnOp::create(builder, kernels.getLoc(), one);
    kernels->setAttr("qkernel.target", builder.getStringAttr("cpu"));
  }
};
} // namespace

void qwen::codegen::cpu::addCpuLowerToLLVMPasses(OpPassManager &pm) {
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  pm.addPass(createLoopInvariantCodeMotionPass());
  pm.addPass(createSCFToControlFlowPass());
  ConvertVectorToLLVMPassOptions vectorOptions;
  vectorOptions.x86Vector = true; // x86vector.avx512.dot of bf16 matmul tiles
  pm.addPass(createConvertVectorToLLVMPass(vectorOptions));
  pm.addPass(memref::createExpandStridedMetadataPass());
  pm.addPass(createFinalizeMemRefToLLVMConversionPass());
  pm.addPass(createConvertMathToLLVMPass());
  pm.addPass(createArithToLLVMConversionPass());
  pm.addPass(createConvertIndexToLLVMPass());
  pm.addPass(createConvertControlFlowToLLVMPass());
  pm.addPass(createConvertFuncToLLVMPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
  pm.addPass(createCanonicalizerPass());
}
