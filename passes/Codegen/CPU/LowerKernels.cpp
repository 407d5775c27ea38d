//===- LowerKernels.cpp - Kernels to the CPU ABI --------------------------===//
#include "qwen/Passes/Codegen/CPU/Passes.h"
#include "passes/Codegen/CPU/KernelEmitter.h"
#include "qwen/Passes/Codegen/Common/RowFamilies.h"
#include "qwen/Passes/Common/ShapeSymbols.h"

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

namespace {
using EmitFn = FailureOr<SmallVector<Attribute>> (*)(KernelEmitter &);

/// The CPU's own emitter of a kernel kind; the families written once for
/// every target come from codegen::getFamilyLowering.
EmitFn emitterForKind(qkernel::KernelKind kind) {
  using qkernel::KernelKind;
  switch (kind) {
  case KernelKind::Matmul:
    return emitMatmulKernel;
  case KernelKind::Attention:
    return emitAttentionKernel;
  case KernelKind::Router:
    return emitRouterKernel;
  case KernelKind::Experts:
    return emitExpertsKernel;
  case KernelKind::DeltaRule:
    return emitDeltaRuleKernel;
  default:
    return nullptr;
  }
}

struct LowerKernelsToLoopsPass final
    : qwen::codegen::cpu::impl::LowerKernelsToLoopsPassBase<LowerKernelsToLoopsPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp top = getOperation();
    ModuleOp kernels = qkernel::getKernelModule(top);
    if (!kernels)
      return;

    SmallVector<func::FuncOp> sources;
    for (auto func : kernels.getOps<func::FuncOp>())
      if (func->hasAttr(qkernel::kKernelAttrName))
        sources.push_back(func);
    // Record argument symbols first: lowering a kernel removes the tensor
    // signature later kernels would otherwise trace their sizes through.
    for (func::FuncOp source : sources)
      for (BlockArgument arg : source.getArguments()) {
        std::string symbol = getLeadingSymbol(arg);
        if (!symbol.empty())
          source.setArgAttr(arg.getArgNumber(), "qkernel.symbol",
                            StringAttr::get(&getContext(), symbol));
      }
    for (func::FuncOp source : sources) {
      auto kind = source->getAttrOfType<qkernel::KernelKindAttr>(qkernel::kKindAttrName);
      codegen::FamilyLowering lower = kind ? codegen::getFamilyLowering(kind.getValue()) : nullptr;
      EmitFn emit = kind ? emitterForKind(kind.getValue()) : nullptr;
      if (!lower && !emit) {
        source.emitOpError("has no CPU codegen for kernel kind ") << kind;
        return signalPassFailure();
      }
      FailureOr<qkernel::ScheduleAttr> schedule =
          qkernel::requireSchedule(source, qkernel::ScheduleTarget::Cpu);
      if (failed(schedule))
        return signalPassFailure();
      CpuCodegenOptions options{*schedule, schedule->getVectorWidth()};
      KernelEmitter emitter(kernels, source, options);
      FailureOr<SmallVector<Attribute>> grid = lower ? lower(emitter) : emit(emitter);
      if (failed(grid))
        return signalPassFailure();
      for (Attribute factor : *grid)
        if (auto symbol = dyn_cast<StringAttr>(factor); symbol && symbol.empty()) {
          source.emitOpError("cannot tell the size of its grid: a dynamic "
                             "dimension does not trace back to a step input");
          return signalPassFailure();
        }
      // A CPU launch is its grid alone (a range of items per call).
      auto launchAttr = qkernel::LaunchAttr::getChecked(
          [&] { return source.emitOpError("has an invalid launch: "); }, &getContext(),
          ArrayAttr::get(&getContext(), *grid), /*block=*/int64_t(0), /*shared=*/int64_t(0),
          qkernel::KernelVariantAttr(), /*maxSplits=*/int64_t(0), /*partialFloats=*/int64_t(0),
          qkernel::KernelVariantAttr(), /*programmatic=*/false, /*splitKeys=*/int64_t(0));
      if (!launchAttr)
        return signalPassFailure();
      top.walk([&](qkernel::LaunchOp launch) {
        if (launch.getKernel().getLeafReference() == source.getSymName())
          launch.setLaunchAttr(launchAttr);
      });
      std::string name = source.getSymName().str();
      auto lowered = kernels.lookupSymbol<func::FuncOp>(name + ".abi");
      source.erase();
      lowered.setSymName(name);
    }

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
