//===- LowerKernels.cpp - Kernels to the CPU ABI --------------------------===//
#include "passes/Codegen/CPU/Passes.h"
#include "passes/Codegen/CPU/KernelEmitter.h"
#include "passes/Common/ShapeSymbols.h"

#include "dialects/QKernel/IR/QKernel.h"

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
#include "passes/Codegen/CPU/Passes.h.inc"
} // namespace qwen::codegen::cpu

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen::cpu;

namespace {
using EmitFn = FailureOr<SmallVector<Attribute>> (*)(KernelEmitter &);

EmitFn emitterForKind(StringRef kind) {
  return llvm::StringSwitch<EmitFn>(kind)
      .Case("matmul", emitMatmulKernel)
      .Case("attention", emitAttentionKernel)
      .Case("rows", emitRowsKernel)
      .Case("kv_write", emitKVWriteKernel)
      .Case("embedding", emitEmbeddingKernel)
      .Case("elementwise", emitElementwiseKernel)
      .Case("router", emitRouterKernel)
      .Case("experts", emitExpertsKernel)
      .Case("conv", emitConvKernel)
      .Case("delta_rule", emitDeltaRuleKernel)
      .Case("gated_norm", emitGatedNormKernel)
      .Default(nullptr);
}

struct LowerKernelsToLoopsPass final
    : qwen::codegen::cpu::impl::LowerKernelsToLoopsPassBase<LowerKernelsToLoopsPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp top = getOperation();
    ModuleOp kernels;
    for (auto nested : top.getOps<ModuleOp>())
      if (nested.getSymName() == qkernel::kKernelModuleName)
        kernels = nested;
    if (!kernels)
      return;
    CpuCodegenOptions options;
    options.vectorWidth = vectorWidth;
    options.cpuFeatures.assign(cpuFeatures.begin(), cpuFeatures.end());
    if (bf16Activations == "round")
      options.bf16Activations = Bf16Activations::Round;
    else if (bf16Activations != "split") {
      top.emitError("bf16-activations must be split or round, not '") << bf16Activations << "'";
      return signalPassFailure();
    }

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
      auto kind = source->getAttrOfType<StringAttr>("qkernel.kind");
      EmitFn emit = kind ? emitterForKind(kind.getValue()) : nullptr;
      if (!emit) {
        source.emitOpError("has no CPU codegen for kernel kind ") << kind;
        return signalPassFailure();
      }
      KernelEmitter emitter(kernels, source, options);
      FailureOr<SmallVector<Attribute>> grid = emit(emitter);
      if (failed(grid))
        return signalPassFailure();
      for (Attribute factor : *grid)
        if (auto symbol = dyn_cast<StringAttr>(factor); symbol && symbol.empty()) {
          source.emitOpError("cannot tell the size of its grid: a dynamic "
                             "dimension does not trace back to a step input");
          return signalPassFailure();
        }
      ArrayAttr gridAttr = ArrayAttr::get(&getContext(), *grid);
      top.walk([&](qkernel::LaunchOp launch) {
        if (launch.getKernel().getLeafReference() == source.getSymName())
          launch.setGridAttr(gridAttr);
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
