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

FailureOr<GpuCodegenOptions> GpuKernelLowering::getOptions(func::FuncOp source) const {
  FailureOr<qkernel::ScheduleAttr> schedule =
      qkernel::requireSchedule(source, qkernel::ScheduleTarget::Cuda);
  if (failed(schedule))
    return failure();
  GpuCodegenOptions options;
  options.convertGemmInputs = convertGemmInputs;
  options.schedule = *schedule;
  options.maxThreads = schedule->getThreads();
  return options;
}

LogicalResult
GpuKernelLowering::lower(func::FuncOp source, PatternRewriter &rewriter,
                         function_ref<FailureOr<KernelGeometry>(GpuKernelEmitter &)> emit) {
  FailureOr<GpuCodegenOptions> options = getOptions(source);
  if (failed(options))
    return failure();
  GpuKernelEmitter emitter(gpuModule, source, *options, rewriter);
  FailureOr<KernelGeometry> geometry = emit(emitter);
  if (failed(geometry))
    return failure();
  if (failed(codegen::verifyGridTraced(source, geometry->grid)))
    return failure();
  // The attribute's verifier holds the limits (block threads, static
  // shared memory, decode / combine consistency).
  FailureOr<qkernel::LaunchAttr> launchAttr =
      getLaunchAttr(source.getContext(), *geometry, [&] { return source.emitOpError(); });
  if (failed(launchAttr))
    return failure();
  codegen::setLaunches(top, source, *launchAttr, rewriter);
  // The code is in @qwen_kernels now; the launch names a declaration.
  SmallVector<std::string> resultSymbols;
  for (Value result : source.getBody().front().getTerminator()->getOperands())
    resultSymbols.push_back(getLeadingSymbol(result));
  rewriter.setInsertionPoint(source);
  auto kind = source->getAttrOfType<qkernel::KernelKindAttr>(qkernel::kKindAttrName);
  declareKernel(rewriter, source.getLoc(), source.getSymName(), source.getFunctionType(),
                kind.getValue(),
                {rewriter.getNamedAttr("qkernel.gpu_module",
                                       rewriter.getStringAttr(kGpuModuleName))},
                resultSymbols);
  rewriter.eraseOp(source);
  return success();
}

LogicalResult GpuKernelLowering::lowerFamily(func::FuncOp source, PatternRewriter &rewriter,
                                             codegen::FamilyLowering lower) {
  // A family written once returns its grid; the block and shared memory
  // are what it used of the emitter.
  return this->lower(source, rewriter, [&](GpuKernelEmitter &emitter) -> FailureOr<KernelGeometry> {
    FailureOr<codegen::Grid> grid = lower(emitter);
    if (failed(grid))
      return failure();
    return KernelGeometry{std::move(*grid), emitter.blockSize(), emitter.sharedBytes()};
  });
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
    if (llvm::none_of(kernels.getOps<func::FuncOp>(), codegen::isKernelSource))
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
    codegen::recordArgumentSymbols(kernels);

    // The sampler reads @step's output logits [rows, vocab] f32; its row
    // symbol is traced now, while the producing kernel is still a body.
    // An artifact returning hidden states has nothing to sample.
    auto step = top.lookupSymbol<func::FuncOp>("step");
    RankedTensorType logitsType = codegen::getSampledLogitsType(step);
    std::string logitsSymbol =
        logitsType ? getLeadingSymbol(step.getBody().front().getTerminator()->getOperand(0))
                   : std::string();

    // Each kernel kind's pattern replaces its sources, in module order.
    GpuKernelLowering lowering(top, gpuModule, convertGemmInputs);
    RewritePatternSet patterns(ctx);
    codegen::populateKernelLoweringPatterns(patterns, lowering);
    if (failed(codegen::applyKernelPatterns(kernels, std::move(patterns), lowering, "GPU",
                                                 auditRewrites)))
      return signalPassFailure();
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
