//===- LowerKernels.cpp - Kernels to gpu.func and cuBLASLt calls ----------===//
#include "passes/Codegen/GPU/GpuKernelEmitter.h"
#include "passes/Codegen/GPU/Passes.h"
#include "passes/Common/ShapeSymbols.h"

#include "dialects/QKernel/IR/QKernel.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"

namespace qwen::codegen::gpu {
#define GEN_PASS_DEF_GPULOWERKERNELSPASS
#include "passes/Codegen/GPU/Passes.h.inc"
} // namespace qwen::codegen::gpu

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen::gpu;

namespace {
/// Static shared memory of one block; more needs dynamic shared memory and
/// cuFuncSetAttribute, which the launch contract does not have.
constexpr int64_t kMaxStaticSharedBytes = 48 * 1024;

using EmitFn = FailureOr<KernelGeometry> (*)(GpuKernelEmitter &);

EmitFn emitterForKind(StringRef kind) {
  return llvm::StringSwitch<EmitFn>(kind)
      .Case("attention", emitAttentionKernel)
      .Case("rows", emitRowsKernel)
      .Case("kv_write", emitKVWriteKernel)
      .Case("embedding", emitEmbeddingKernel)
      .Case("elementwise", emitElementwiseKernel)
      .Case("conv", emitConvKernel)
      .Case("delta_rule", emitDeltaRuleKernel)
      .Case("gated_norm", emitGatedNormKernel)
      .Case("router", emitRouterKernel)
      .Case("experts", emitExpertsKernel)
      .Default(nullptr);
}

struct GpuLowerKernelsPass final
    : qwen::codegen::gpu::impl::GpuLowerKernelsPassBase<GpuLowerKernelsPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp top = getOperation();
    MLIRContext *ctx = &getContext();
    ModuleOp kernels;
    for (auto nested : top.getOps<ModuleOp>())
      if (nested.getSymName() == qkernel::kKernelModuleName)
        kernels = nested;
    if (!kernels)
      return;
    GpuCodegenOptions options;
    options.convertGemmInputs = convertGemmInputs;

    SmallVector<func::FuncOp> sources;
    for (auto func : kernels.getOps<func::FuncOp>())
      if (func->hasAttr(qkernel::kKernelAttrName) && !func.isDeclaration())
        sources.push_back(func);
    if (sources.empty())
      return;

    // gpu-module-to-binary serializes with this target; O3 as the CPU side.
    OpBuilder builder = OpBuilder::atBlockEnd(top.getBody());
    auto gpuModule = top.lookupSymbol<mlir::gpu::GPUModuleOp>(kGpuModuleName);
    if (!gpuModule) {
      auto target = NVVM::NVVMTargetAttr::get(ctx, /*optLevel=*/3, "nvptx64-nvidia-cuda",
                                              chip, features);
      gpuModule = mlir::gpu::GPUModuleOp::create(builder, kernels.getLoc(), kGpuModuleName,
                                                 builder.getArrayAttr({target}));
    }
    top->setAttr(mlir::gpu::GPUDialect::getContainerModuleAttrName(), builder.getUnitAttr());
    // Record argument symbols first: lowering a kernel removes the tensor
    // signature later kernels would otherwise trace their sizes through.
    for (func::FuncOp source : sources)
      for (BlockArgument arg : source.getArguments()) {
        std::string symbol = getLeadingSymbol(arg);
        if (!symbol.empty())
          source.setArgAttr(arg.getArgNumber(), "qkernel.symbol", StringAttr::get(ctx, symbol));
      }

    // The sampler reads @step's output logits [rows, vocab] f32; its row
    // symbol is traced now, while the producing kernel is still a body.
    // An artifact returning hidden states has nothing to sample.
    auto step = top.lookupSymbol<func::FuncOp>("step");
    RankedTensorType logitsType;
    std::string logitsSymbol;
    auto outputKind = step ? step.getResultAttrOfType<StringAttr>(0, "qtf.output") : StringAttr();
    bool hiddenStates = outputKind && outputKind.getValue() == "hidden_states";
    if (step && !step.isDeclaration() && step.getNumResults() > 0 && !hiddenStates) {
      Value logits = step.getBody().front().getTerminator()->getOperand(0);
      auto type = dyn_cast<RankedTensorType>(logits.getType());
      if (type && type.getRank() == 2 && type.getElementType().isF32() &&
          !ShapedType::isDynamic(type.getDimSize(1))) {
        logitsType = type;
        logitsSymbol = getLeadingSymbol(logits);
      }
    }

    for (func::FuncOp source : sources) {
      FailureOr<qkernel::ScheduleAttr> schedule =
          qkernel::requireSchedule(source, qkernel::ScheduleTarget::Cuda);
      if (failed(schedule))
        return signalPassFailure();
      options.schedule = *schedule;
      options.maxThreads = schedule->getThreads();
      auto kind = source->getAttrOfType<StringAttr>("qkernel.kind");
      if (kind && kind.getValue() == "matmul") {
        if (failed(lowerMatmulToCublasLt(top, gpuModule, source, options)))
          return signalPassFailure();
        continue;
      }
      EmitFn emit = kind ? emitterForKind(kind.getValue()) : nullptr;
      if (!emit) {
        source.emitOpError("has no GPU codegen for kernel kind ") << kind;
        return signalPassFailure();
      }
      GpuKernelEmitter emitter(gpuModule, source, options);
      FailureOr<KernelGeometry> geometry = emit(emitter);
      if (failed(geometry))
        return signalPassFailure();
      if (geometry->sharedBytes > kMaxStaticSharedBytes) {
        source.emitOpError("needs ")
            << geometry->sharedBytes
            << " bytes of shared memory, more than a block gets statically ("
            << kMaxStaticSharedBytes << ")";
        return signalPassFailure();
      }
      if (!geometry->decode.kernel.empty() &&
          geometry->decode.sharedBytes > kMaxStaticSharedBytes) {
        source.emitOpError("decode variant needs ")
            << geometry->decode.sharedBytes
            << " bytes of shared memory, more than a block gets statically ("
            << kMaxStaticSharedBytes << ")";
        return signalPassFailure();
      }
      for (Attribute factor : geometry->grid)
        if (auto symbol = dyn_cast<StringAttr>(factor); symbol && symbol.empty()) {
          source.emitOpError("cannot tell the size of its grid: a dynamic "
                             "dimension does not trace back to a step input");
          return signalPassFailure();
        }
      top.walk([&](qkernel::LaunchOp launch) {
        if (launch.getKernel().getRootReference() == qkernel::kKernelModuleName &&
            launch.getKernel().getLeafReference() == source.getSymName())
          setLaunchGeometry(launch, *geometry);
      });
      // The code is in @qwen_kernels now; the launch names a declaration.
      SmallVector<std::string> resultSymbols;
      for (Value result : source.getBody().front().getTerminator()->getOperands())
        resultSymbols.push_back(getLeadingSymbol(result));
      OpBuilder declarations(source);
      declareKernel(declarations, source.getLoc(), source.getSymName(), source.getFunctionType(),
                    kind.getValue(),
                    {declarations.getNamedAttr("qkernel.gpu_module",
                                               declarations.getStringAttr(kGpuModuleName))},
                    resultSymbols);
      source.erase();
    }
    kernels->setAttr("qkernel.target", builder.getStringAttr("gpu"));
    if (logitsType && !logitsSymbol.empty() &&
        failed(addSampler(step, gpuModule, logitsType, logitsSymbol)))
      return signalPassFailure();
  }

  /// Sampling on the device: `qk_argmax` (greedy) and `qk_topk` (the
  /// candidates of top-k sampling) in the gpu.module, and their launch
  /// geometry on @step as `qkernel.sampler = {argmax = {kernel, grid, block,
  /// shared_bytes}, topk = {..., count}}` (the manifest's "sampler" field).
  LogicalResult addSampler(func::FuncOp step, mlir::gpu::GPUModuleOp gpuModule,
                           RankedTensorType logitsType, StringRef symbol) {
    const int64_t vocab = logitsType.getDimSize(1);
    Builder builder(step.getContext());
    auto describe = [&](StringRef name, const KernelGeometry &geometry,
                        std::optional<int64_t> count) {
      SmallVector<NamedAttribute> fields{
          builder.getNamedAttr("kernel", builder.getStringAttr(name)),
          builder.getNamedAttr("grid", builder.getArrayAttr(geometry.grid)),
          builder.getNamedAttr("block", builder.getI64IntegerAttr(geometry.blockSize)),
          builder.getNamedAttr("shared_bytes", builder.getI64IntegerAttr(geometry.sharedBytes))};
      if (count)
        fields.push_back(builder.getNamedAttr("count", builder.getI64IntegerAttr(*count)));
      return builder.getDictionaryAttr(fields);
    };
    constexpr StringLiteral argmaxName = "qk_argmax", topkName = "qk_topk";
    for (StringRef name : {StringRef(argmaxName), StringRef(topkName)})
      if (gpuModule.lookupSymbol(name))
        return step.emitOpError("the GPU module already has a kernel named ") << name;
    FailureOr<KernelGeometry> argmax =
        emitArgmaxKernel(gpuModule, step.getLoc(), vocab, symbol);
    if (failed(argmax))
      return failure();
    FailureOr<KernelGeometry> topk = emitTopKKernel(gpuModule, step.getLoc(), vocab, symbol);
    if (failed(topk))
      return failure();
    step->setAttr("qkernel.sampler",
                  builder.getDictionaryAttr(
                      {builder.getNamedAttr("argmax", describe(argmaxName, *argmax, {})),
                       builder.getNamedAttr("topk",
                                            describe(topkName, *topk, kTopCandidates))}));
    return success();
  }
};
} // namespace
