//===- LowerKernels.cpp - Kernels to gpu.func and cuBLASLt calls ----------===//
#include "passes/Codegen/GPU/GpuKernelEmitter.h"
#include "qwen/Passes/Codegen/Common/RowFamilies.h"
#include "qwen/Passes/Codegen/GPU/Passes.h"
#include "qwen/Passes/Common/ShapeSymbols.h"

#include "qwen/Dialect/QKernel/IR/QKernel.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"

namespace qwen::codegen::gpu {
#define GEN_PASS_DEF_GPULOWERKERNELSPASS
#include "qwen/Passes/Codegen/GPU/Passes.h.inc"
} // namespace qwen::codegen::gpu

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen::gpu;

namespace {
using EmitFn = FailureOr<KernelGeometry> (*)(GpuKernelEmitter &);

/// The launch geometry of the kernel a family written once (`grid`, from
/// codegen::getFamilyLowering) just built through `e`: the block and shared
/// memory it used.
FailureOr<KernelGeometry> withLaunchOf(GpuKernelEmitter &e, FailureOr<codegen::Grid> grid) {
  if (failed(grid))
    return failure();
  return KernelGeometry{std::move(*grid), e.blockSize(), e.sharedBytes()};
}

/// The GPU's own emitter of a generated kernel; the families written once
/// for every target come from codegen::getFamilyLowering, matmuls are
/// cuBLASLt calls (lowerMatmulToCublasLt) and a GEMM's pack kernel is made
/// with it.
EmitFn emitterForKind(qkernel::KernelKind kind) {
  using qkernel::KernelKind;
  switch (kind) {
  case KernelKind::Attention:
    return emitAttentionKernel;
  case KernelKind::DeltaRule:
    return emitDeltaRuleKernel;
  case KernelKind::Router:
    return emitRouterKernel;
  case KernelKind::Experts:
    return emitExpertsKernel;
  default:
    return nullptr;
  }
}

/// Grid factors as the attribute spells them: step symbols, i64 integers.
ArrayAttr gridAttr(MLIRContext *ctx, ArrayRef<Attribute> grid) {
  Builder builder(ctx);
  SmallVector<Attribute> factors;
  for (Attribute factor : grid) {
    if (auto integer = dyn_cast<IntegerAttr>(factor))
      factors.push_back(builder.getI64IntegerAttr(integer.getInt()));
    else
      factors.push_back(factor);
  }
  return builder.getArrayAttr(factors);
}

qkernel::KernelVariantAttr variantAttr(MLIRContext *ctx, const VariantGeometry &variant,
                                       function_ref<InFlightDiagnostic()> emitError) {
  if (variant.kernel.empty())
    return {};
  return qkernel::KernelVariantAttr::getChecked(emitError, ctx, StringAttr::get(ctx, variant.kernel),
                                                gridAttr(ctx, variant.grid), variant.blockSize,
                                                variant.sharedBytes);
}
} // namespace

FailureOr<qkernel::LaunchAttr>
qwen::codegen::gpu::getLaunchAttr(MLIRContext *ctx, const KernelGeometry &geometry,
                                  function_ref<InFlightDiagnostic()> emitError) {
  qkernel::KernelVariantAttr decode = variantAttr(ctx, geometry.decode, emitError);
  qkernel::KernelVariantAttr combine = variantAttr(ctx, geometry.combine, emitError);
  if ((!geometry.decode.kernel.empty() && !decode) ||
      (!geometry.combine.kernel.empty() && !combine))
    return failure();
  bool hasDecode = static_cast<bool>(decode);
  auto launch = qkernel::LaunchAttr::getChecked(
      emitError, ctx, gridAttr(ctx, geometry.grid), geometry.blockSize, geometry.sharedBytes,
      decode, hasDecode ? geometry.decodeMaxSplits : 0,
      hasDecode ? geometry.decodePartialFloats : 0, hasDecode ? combine : nullptr,
      /*programmatic=*/false, hasDecode ? geometry.decodeSplitKeys : 0);
  if (!launch)
    return failure();
  return launch;
}

LogicalResult qwen::codegen::gpu::setLaunchGeometry(qkernel::LaunchOp launch,
                                                    const KernelGeometry &geometry) {
  FailureOr<qkernel::LaunchAttr> attr = getLaunchAttr(
      launch->getContext(), geometry, [&] { return launch.emitOpError("invalid launch: "); });
  if (failed(attr))
    return failure();
  launch.setLaunchAttr(*attr);
  return success();
}

namespace {
struct GpuLowerKernelsPass final
    : qwen::codegen::gpu::impl::GpuLowerKernelsPassBase<GpuLowerKernelsPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp top = getOperation();
    MLIRContext *ctx = &getContext();
    ModuleOp kernels = qkernel::getKernelModule(top);
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
    RankedTensorType logitsType = codegen::getSampledLogitsType(step);
    std::string logitsSymbol =
        logitsType ? getLeadingSymbol(step.getBody().front().getTerminator()->getOperand(0))
                   : std::string();

    for (func::FuncOp source : sources) {
      FailureOr<qkernel::ScheduleAttr> schedule =
          qkernel::requireSchedule(source, qkernel::ScheduleTarget::Cuda);
      if (failed(schedule))
        return signalPassFailure();
      options.schedule = *schedule;
      options.maxThreads = schedule->getThreads();
      auto kind = source->getAttrOfType<qkernel::KernelKindAttr>(qkernel::kKindAttrName);
      if (kind && kind.getValue() == qkernel::KernelKind::Matmul) {
        if (failed(lowerMatmulToCublasLt(top, gpuModule, source, options)))
          return signalPassFailure();
        continue;
      }
      codegen::FamilyLowering lower = kind ? codegen::getFamilyLowering(kind.getValue()) : nullptr;
      EmitFn emit = kind ? emitterForKind(kind.getValue()) : nullptr;
      if (!lower && !emit) {
        source.emitOpError("has no GPU codegen for kernel kind ") << kind;
        return signalPassFailure();
      }
      GpuKernelEmitter emitter(gpuModule, source, options);
      FailureOr<KernelGeometry> geometry =
          lower ? withLaunchOf(emitter, lower(emitter)) : emit(emitter);
      if (failed(geometry))
        return signalPassFailure();
      for (Attribute factor : geometry->grid)
        if (auto symbol = dyn_cast<StringAttr>(factor); symbol && symbol.empty()) {
          source.emitOpError("cannot tell the size of its grid: a dynamic "
                             "dimension does not trace back to a step input");
          return signalPassFailure();
        }
      // The attribute's verifier holds the limits (block threads, static
      // shared memory, decode / combine consistency).
      FailureOr<qkernel::LaunchAttr> launchAttr =
          getLaunchAttr(ctx, *geometry, [&] { return source.emitOpError(); });
      if (failed(launchAttr))
        return signalPassFailure();
      top.walk([&](qkernel::LaunchOp launch) {
        if (launch.getKernel().getRootReference() == qkernel::kKernelModuleName &&
            launch.getKernel().getLeafReference() == source.getSymName())
          launch.setLaunchAttr(*launchAttr);
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
  /// geometry on @step as `qkernel.sampler = {argmax = #qkernel.variant<...>,
  /// topk = #qkernel.variant<...>, topk_count = C}` (the manifest's
  /// "sampler" field).
  LogicalResult addSampler(func::FuncOp step, mlir::gpu::GPUModuleOp gpuModule,
                           RankedTensorType logitsType, StringRef symbol) {
    const int64_t vocab = logitsType.getDimSize(1);
    MLIRContext *ctx = step.getContext();
    Builder builder(ctx);
    auto describe = [&](StringRef name, const KernelGeometry &geometry) {
      return variantAttr(ctx, {name.str(), geometry.grid, geometry.blockSize, geometry.sharedBytes},
                         [&] { return step.emitOpError("sampler ") << name << ": "; });
    };
    constexpr StringLiteral argmaxName = "qk_argmax", topkName = "qk_topk";
    for (StringRef name : {StringRef(argmaxName), StringRef(topkName)})
      if (gpuModule.lookupSymbol(name))
        return step.emitOpError("the GPU module already has a kernel named ") << name;
    auto schedules = step->getAttrOfType<DictionaryAttr>(qkernel::kSamplerScheduleAttrName);
    auto argmaxSchedule =
        schedules ? schedules.getAs<qkernel::ScheduleAttr>("argmax") : qkernel::ScheduleAttr();
    auto topkSchedule =
        schedules ? schedules.getAs<qkernel::ScheduleAttr>("topk") : qkernel::ScheduleAttr();
    if (!argmaxSchedule || !topkSchedule)
      return step.emitOpError("has no ") << qkernel::kSamplerScheduleAttrName
                                         << " {argmax, topk}: run qwen-select-schedule first";
    FailureOr<KernelGeometry> argmax =
        emitArgmaxKernel(gpuModule, step.getLoc(), vocab, symbol, argmaxSchedule);
    if (failed(argmax))
      return failure();
    FailureOr<KernelGeometry> topk =
        emitTopKKernel(gpuModule, step.getLoc(), vocab, symbol, topkSchedule);
    if (failed(topk))
      return failure();
    qkernel::KernelVariantAttr argmaxAttr = describe(argmaxName, *argmax);
    qkernel::KernelVariantAttr topkAttr = describe(topkName, *topk);
    if (!argmaxAttr || !topkAttr)
      return failure();
    step->setAttr(qkernel::kSamplerAttrName,
                  builder.getDictionaryAttr(
                      {builder.getNamedAttr("argmax", argmaxAttr),
                       builder.getNamedAttr("topk", topkAttr),
                       builder.getNamedAttr("topk_count", builder.getI64IntegerAttr(kTopCandidates))}));
    return success();
  }
};
} // namespace
