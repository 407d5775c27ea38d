//===- MatmulLaunch.cpp - Matmul regions as cuBLASLt calls ----------------===//
//
// A matmul region is Y[m, n] = X[m, k] * W[n, k]^T (+ bias[n]) (+ R[m, n]),
// optionally on gathered rows X = gather_rows(X0, rows). On GPU no kernel is
// generated for it: the launch records a `cublaslt` descriptor and the
// runtime calls cublasLtMatmul (fp32 accumulation, residual as C with
// beta = 1, bias through the BIAS epilogue).
//
// cuBLASLt wants A and B of one type, and has no row gather. When the rows
// must be gathered, or the f32 activations converted to the weight dtype
// (round to nearest even), a generated `<kernel>_pack` kernel writes the
// dense A[m, k] into a new arena buffer first; it is launched just before
// the GEMM. Pack buffers of one shape are shared: each one dies at the GEMM
// right after its pack.
//
// A cuBLASLt GEMM also gets a decode variant where the schedule asks for one
// (decode_threads: FP8 GEMMs, and bf16 / f16 / f32 ones with
// --gpu-gemv=generated): the generated GEMV of GemvKernel.cpp on the
// source's operands, which the runtime launches instead of the pack and the
// GEMM on decode-only steps of at most kGemvMaxRows rows. It reads each
// weight byte once, with no pack or quantization of the activations.
//
//===----------------------------------------------------------------------===//
#include "qwen/Passes/Codegen/Common/KernelABI.h"
#include "passes/Codegen/GPU/Fp8Matmul.h"
#include "passes/Codegen/GPU/GemvKernel.h"
#include "passes/Codegen/GPU/GpuKernelEmitter.h"
#include "qwen/Passes/Codegen/GPU/Passes.h"
#include "qwen/Passes/Common/ShapeSymbols.h"

#include "qwen/Dialect/QKernel/IR/QKernel.h"

#include "mlir/Dialect/Arith/IR/Arith.h"

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen::gpu;

/// The kernel argument a value reads, through views.
static BlockArgument rootArgument(Value value) {
  while (Operation *def = value.getDefiningOp()) {
    if (!isa<qtf::SplitOp, qtf::ReshapeOp, qtf::MergeRowsOp>(def))
      return {};
    value = def->getOperand(0);
  }
  return dyn_cast<BlockArgument>(value);
}

static StringRef dtypeName(Type type) {
  if (type.isBF16())
    return "bf16";
  if (type.isF16())
    return "f16";
  if (type.isF32())
    return "f32";
  if (isa<Float8E4M3FNType>(type))
    return "f8e4m3";
  return "unsupported";
}

/// Buffer id for a pack result: a `gemm_pack` entry of the same shape in
/// the step's buffer table, else a new one.
static int64_t packBuffer(func::FuncOp step, StringRef symbol, RankedTensorType type,
                          RewriterBase &rewriter) {
  Builder builder(step.getContext());
  auto table = step->getAttrOfType<ArrayAttr>("qkernel.buffers");
  SmallVector<Attribute> entries(table.begin(), table.end());
  for (auto [id, entry] : llvm::enumerate(entries)) {
    auto dict = cast<DictionaryAttr>(entry);
    if (dict.get("gemm_pack") && dict.get("symbol") == builder.getStringAttr(symbol) &&
        dict.get("type") == TypeAttr::get(type))
      return id;
  }
  entries.push_back(builder.getDictionaryAttr(
      {builder.getNamedAttr("symbol", builder.getStringAttr(symbol)),
       builder.getNamedAttr("type", TypeAttr::get(type)),
       builder.getNamedAttr("gemm_pack", builder.getUnitAttr())}));
  rewriter.modifyOpInPlace(step,
                           [&] { step->setAttr("qkernel.buffers", builder.getArrayAttr(entries)); });
  return static_cast<int64_t>(entries.size()) - 1;
}

namespace {

/// The lowering of one matmul kernel to cuBLASLt calls, one method per step:
/// bind the operands, emit the pack prologue and the decode variant, rewrite
/// each launch into a `cublaslt` descriptor launch, declare the kernels.
/// Every change goes through `rewriter` (it runs inside the matmul pattern).
class CublasLtLowering {
public:
  CublasLtLowering(ModuleOp top, mlir::gpu::GPUModuleOp gpuModule, func::FuncOp source,
                   const GpuCodegenOptions &options, const codegen::MatmulPattern &plan,
                   RewriterBase &rewriter)
      : top(top), gpuModule(gpuModule), source(source), options(options), plan(plan),
        rewriter(rewriter), ctx(source.getContext()), builder(ctx) {}

  LogicalResult run();

private:
  LogicalResult bindOperands();
  LogicalResult emitPack();
  LogicalResult emitPlainPack();
  LogicalResult checkBias();
  LogicalResult emitDecodeVariant();
  LogicalResult rewriteLaunch(qkernel::LaunchOp launch);
  LogicalResult describeA(qkernel::LaunchOp launch);
  LogicalResult describeEpilogue(qkernel::LaunchOp launch);
  void declareKernels();

  /// Index of `value` among the GEMM launch's operands (added once).
  int64_t operand(Value value) {
    auto *it = llvm::find(gemmArgs, value);
    if (it != gemmArgs.end())
      return it - gemmArgs.begin();
    gemmArgs.push_back(value);
    return static_cast<int64_t>(gemmArgs.size()) - 1;
  }
  void field(StringRef name, Attribute value) { fields.push_back(builder.getNamedAttr(name, value)); }
  Attribute integer(int64_t v) { return builder.getI64IntegerAttr(v); }

  ModuleOp top;
  mlir::gpu::GPUModuleOp gpuModule;
  func::FuncOp source;
  const GpuCodegenOptions &options;
  codegen::MatmulPattern plan;
  RewriterBase &rewriter;
  MLIRContext *ctx;
  Builder builder;

  bool fp8 = false, convert = false, pack = false, widenBias = false;
  Value output, xValue, bias;
  int64_t N = 0, K = 0;
  Type weightElement, xElement, aElement, biasElement;
  std::string mSymbol;
  Attribute m;
  BlockArgument xArg, rowsArg, weightArg, weightScaleArg, biasArg, residualArg;
  SmallVector<Type> packResults;
  std::string packName;
  KernelGeometry packGeometry;
  qkernel::KernelVariantAttr decodeVariant;
  SmallVector<Type> gemmTypes;
  // The launch being rewritten: its operands and descriptor fields.
  SmallVector<Value> gemmArgs;
  SmallVector<NamedAttribute> fields;
};

} // namespace

/// Sizes, dtypes and the kernel arguments the operands read.
LogicalResult CublasLtLowering::bindOperands() {
  auto ret = cast<func::ReturnOp>(source.getBody().front().getTerminator());
  output = ret.getOperand(0);
  RankedTensorType weightType = plan.linear.getWeight().getType();
  N = weightType.getDimSize(0), K = weightType.getDimSize(1);
  weightElement = weightType.getElementType();
  xValue = plan.gather ? plan.gather.getInput() : plan.linear.getInput();
  xElement = cast<RankedTensorType>(xValue.getType()).getElementType();
  bias = plan.linear.getBias();

  mSymbol = getLeadingSymbol(output);
  m = builder.getStringAttr(mSymbol);
  if (!cast<RankedTensorType>(output.getType()).isDynamicDim(0))
    m = builder.getI64IntegerAttr(cast<RankedTensorType>(output.getType()).getDimSize(0));
  else if (mSymbol.empty())
    return source.emitOpError("cannot size the matmul rows"), failure();

  xArg = rootArgument(xValue);
  rowsArg = plan.gather ? rootArgument(plan.gather.getRows()) : BlockArgument();
  weightArg = rootArgument(plan.linear.getWeight());
  weightScaleArg = fp8 ? rootArgument(plan.linear.getWeightScale()) : BlockArgument();
  biasArg = bias ? rootArgument(bias) : BlockArgument();
  residualArg = plan.residual ? rootArgument(plan.residual) : BlockArgument();
  if (!xArg || !weightArg || (fp8 && !weightScaleArg) || (plan.gather && !rowsArg) || (bias && !biasArg) ||
      (plan.residual && !residualArg))
    return source.emitOpError("matmul operands must be kernel arguments or views of them"),
           failure();
  return success();
}

/// The pack prologue: gather and / or convert A into a dense [m, k] buffer.
/// FP8: the pack quantizes A (codes and one scale per row and 128 columns).
LogicalResult CublasLtLowering::emitPack() {
  convert = fp8 || (options.convertGemmInputs && xElement != weightElement);
  pack = plan.gather || convert;
  aElement = convert ? weightElement : xElement;
  auto packType = RankedTensorType::get({ShapedType::kDynamic, K}, aElement);
  auto scaleType = RankedTensorType::get({ShapedType::kDynamic, K / 128}, builder.getF32Type());
  packResults = {packType};
  if (fp8)
    packResults.push_back(scaleType);
  packName = (source.getSymName() + "_pack").str();
  if (fp8) {
    GpuKernelEmitter emitter(gpuModule, source, options, rewriter);
    FailureOr<KernelGeometry> geometry =
        emitFp8ActivationPack(emitter, packName, xArg, xValue, mSymbol, packType, scaleType);
    if (failed(geometry))
      return failure();
    packGeometry = *geometry;
    return success();
  }
  return pack ? emitPlainPack() : success();
}

/// The gather / convert pack: A's rows in the weight dtype, dense.
LogicalResult CublasLtLowering::emitPlainPack() {
  GpuKernelEmitter emitter(gpuModule, source, options, rewriter);
  RowAccess xGeometry = GpuKernelEmitter::viewGeometry(xValue);
  ChunkPlan chunks = emitter.planChunks(K, xGeometry);
  SmallVector<BlockArgument> packArgs{xArg};
  if (rowsArg)
    packArgs.push_back(rowsArg);
  emitter.createKernel(packName, packArgs, TypeRange{packResults[0]}, chunks.threads, [&] {
    RowAccess x = emitter.access(xValue);
    RowAccess out = emitter.result(0);
    std::optional<RowAccess> rows;
    if (rowsArg)
      rows = emitter.access(plan.gather.getRows());
    emitter.forChunkColumn(chunks, K, [&](Value row, Value col) {
      Value from = rows ? emitter.loadIndex(*rows, row) : row;
      Value value = emitter.loadVectorF32(
          x, emitter.addIndex(emitter.address(x, from, Value(), Value()), col), chunks.width);
      emitter.store(out, emitter.addIndex(emitter.mulIndex(row, K), col), value);
    });
  });
  packGeometry.grid.push_back(m);
  if (chunks.chunks > 1)
    packGeometry.grid.push_back(builder.getI64IntegerAttr(chunks.chunks));
  packGeometry.blockSize = chunks.threads;
  packGeometry.sharedBytes = emitter.sharedBytes();
  return success();
}

/// cuBLASLt takes the bias in D's dtype or in f32 (it refuses an f16 bias
/// with an f32 D, as seen on the H100): such a bias weight is declared f32,
/// and the runtime converts it when it loads the checkpoint.
LogicalResult CublasLtLowering::checkBias() {
  biasElement = bias ? cast<RankedTensorType>(bias.getType()).getElementType() : Type();
  widenBias = bias && !biasElement.isF32() &&
              biasElement != cast<RankedTensorType>(output.getType()).getElementType();
  if (!widenBias)
    return success();
  if (bias != biasArg)
    return source.emitOpError("a bias in neither the output dtype nor f32 must be a whole kernel "
                              "argument"),
           failure();
  biasElement = builder.getF32Type();
  return success();
}

/// Decode steps: the generated GEMV (GemvKernel.cpp) where the schedule
/// asks for one (FP8 GEMMs; others with --gpu-gemv=generated), with the
/// source function's signature (its arguments, then its result), gathered
/// rows too. Not for a bias widened for cuBLASLt (its buffer changes dtype
/// under the kernel's declared argument).
LogicalResult CublasLtLowering::emitDecodeVariant() {
  if (options.schedule.getDecodeThreads() <= 0 || widenBias)
    return success();
  GpuKernelEmitter emitter(gpuModule, source, options, rewriter);
  std::string decodeName = (source.getSymName() + "_decode").str();
  FailureOr<KernelGeometry> geometry = emitGemvKernel(
      emitter, decodeName, plan, options.schedule.getDecodeThreads(), options.schedule.decodeTileSize(0, 4));
  if (failed(geometry))
    return failure();
  decodeVariant = qkernel::KernelVariantAttr::getChecked(
      [&] { return source.emitOpError("invalid decode variant: "); }, ctx, builder.getStringAttr(decodeName),
      builder.getArrayAttr(geometry->grid), geometry->blockSize, geometry->sharedBytes);
  return success(static_cast<bool>(decodeVariant));
}

/// A's fields: the pack's result (launched just before the GEMM) or the
/// activations in place.
LogicalResult CublasLtLowering::describeA(qkernel::LaunchOp launch) {
  auto launchArg = [&](BlockArgument arg) { return launch.getArgs()[arg.getArgNumber()]; };
  if (!pack) {
    RowAccess xGeometry = GpuKernelEmitter::viewGeometry(xValue);
    field("a_arg", integer(operand(launchArg(xArg))));
    field("lda", integer(xGeometry.rowStride));
    field("a_offset", integer(xGeometry.offset));
    return success();
  }
  SmallVector<Value> packOperands{launchArg(xArg)};
  if (rowsArg)
    packOperands.push_back(launchArg(rowsArg));
  DenseI64ArrayAttr packBuffers;
  if (launch.getResultBuffers())
    if (auto step = launch->getParentOfType<func::FuncOp>();
        step && step->hasAttr("qkernel.buffers")) {
      SmallVector<int64_t> ids;
      for (Type type : packResults)
        ids.push_back(packBuffer(step, mSymbol, cast<RankedTensorType>(type), rewriter));
      packBuffers = rewriter.getDenseI64ArrayAttr(ids);
    }
  auto packLaunch = qkernel::LaunchOp::create(
      rewriter, launch.getLoc(), TypeRange(packResults),
      SymbolRefAttr::get(ctx, qkernel::kKernelModuleName, FlatSymbolRefAttr::get(ctx, packName)),
      packOperands, packBuffers, qkernel::LaunchAttr());
  if (failed(setLaunchGeometry(packLaunch, packGeometry)))
    return failure();
  field("a_arg", integer(operand(packLaunch.getResult(0))));
  field("lda", integer(K));
  field("a_offset", integer(0));
  field("prologue", packLaunch.getKernel());
  if (fp8) {
    // cuBLASLt's scales: the pack's per-(row, 128 columns) ones and the
    // weight's per-128 x 128 block ones (rows of K / 128 floats).
    field("a_scale_arg", integer(operand(packLaunch.getResult(1))));
    field("a_scale_offset", integer(0));
    field("b_scale_arg", integer(operand(launchArg(weightScaleArg))));
    field("b_scale_offset",
          integer(GpuKernelEmitter::viewGeometry(plan.linear.getWeightScale()).offset));
    field("ldb_scale", integer(K / 128));
  }
  return success();
}

/// B, the bias, the residual C, D and the decode variant's fields.
LogicalResult CublasLtLowering::describeEpilogue(qkernel::LaunchOp launch) {
  auto launchArg = [&](BlockArgument arg) { return launch.getArgs()[arg.getArgNumber()]; };
  RowAccess wGeometry = GpuKernelEmitter::viewGeometry(plan.linear.getWeight());
  field("b_arg", integer(operand(launchArg(weightArg))));
  field("b_dtype", builder.getStringAttr(dtypeName(weightElement)));
  field("ldb", integer(wGeometry.rowStride));
  field("b_offset", integer(wGeometry.offset));
  field("bias", builder.getBoolAttr(static_cast<bool>(bias)));
  if (bias) {
    if (widenBias) {
      Value weight = launchArg(biasArg);
      if (!weight.getDefiningOp<qtf::WeightOp>() || !weight.hasOneUse())
        return launch.emitOpError("widens its bias to f32 for cuBLASLt, so the bias must be a "
                                  "weight only this GEMM reads"),
               failure();
      rewriter.modifyOpInPlace(weight.getDefiningOp(), [&] {
        weight.setType(RankedTensorType::get(cast<RankedTensorType>(weight.getType()).getShape(),
                                             biasElement));
      });
    }
    field("bias_arg", integer(operand(launchArg(biasArg))));
    field("bias_dtype", builder.getStringAttr(dtypeName(biasElement)));
    field("bias_offset", integer(GpuKernelEmitter::viewGeometry(bias).offset));
  }
  field("residual", builder.getBoolAttr(static_cast<bool>(plan.residual)));
  if (plan.residual) {
    RowAccess cGeometry = GpuKernelEmitter::viewGeometry(plan.residual);
    field("c_arg", integer(operand(launchArg(residualArg))));
    field("c_dtype", builder.getStringAttr(dtypeName(
                         cast<RankedTensorType>(plan.residual.getType()).getElementType())));
    field("ldc", integer(cGeometry.rowStride));
    field("c_offset", integer(cGeometry.offset));
  }
  auto outputType = cast<RankedTensorType>(output.getType());
  field("d_dtype", builder.getStringAttr(dtypeName(outputType.getElementType())));
  field("ldd", integer(N));
  field("compute", builder.getStringAttr("f32"));
  field("gather_rows", builder.getBoolAttr(static_cast<bool>(plan.gather)));
  if (decodeVariant) {
    // The decode kernel's arguments as indices into the GEMM's (its result
    // follows the arguments); the f32 activations join them, unread by
    // cuBLASLt.
    SmallVector<int64_t> decodeArgs;
    for (BlockArgument arg : source.getArguments())
      decodeArgs.push_back(operand(launchArg(arg)));
    for (unsigned r = 0; r < source.getNumResults(); ++r)
      decodeArgs.push_back(static_cast<int64_t>(gemmArgs.size()) + r);
    field("decode", decodeVariant);
    field("decode_args", builder.getDenseI64ArrayAttr(decodeArgs));
    field("decode_max_rows", integer(kGemvMaxRows));
  }
  return success();
}

/// Replaces `launch` by the GEMM launch (and its pack launch before it).
LogicalResult CublasLtLowering::rewriteLaunch(qkernel::LaunchOp launch) {
  rewriter.setInsertionPoint(launch);
  gemmArgs.clear();
  fields.clear();
  field("m", m);
  field("n", integer(N));
  field("k", integer(K));
  if (failed(describeA(launch)))
    return failure();
  field("a_dtype", builder.getStringAttr(dtypeName(aElement)));
  if (failed(describeEpilogue(launch)))
    return failure();
  auto gemm = qkernel::LaunchOp::create(rewriter, launch.getLoc(), launch.getResultTypes(),
                                        launch.getKernel(), gemmArgs, launch.getResultBuffersAttr(),
                                        qkernel::LaunchAttr());
  gemm->setAttr("cublaslt", builder.getDictionaryAttr(fields));
  rewriter.replaceOp(launch, gemm.getResults());
  gemmTypes.assign(ValueRange(gemmArgs).getTypes().begin(), ValueRange(gemmArgs).getTypes().end());
  return success();
}

/// Launches keep naming symbols: bodiless declarations of the calls.
void CublasLtLowering::declareKernels() {
  // Launch operands have the kernel's argument types (the verifier says so).
  SmallVector<Type> packTypes{xArg.getType()};
  if (rowsArg)
    packTypes.push_back(rowsArg.getType());
  rewriter.setInsertionPoint(source);
  if (pack)
    declareKernel(rewriter, source.getLoc(), packName,
                  builder.getFunctionType(packTypes, TypeRange(packResults)), qkernel::KernelKind::GemmPack,
                  {builder.getNamedAttr("qkernel.gpu_module",
                                        builder.getStringAttr(kGpuModuleName))},
                  SmallVector<std::string>(packResults.size(), mSymbol));
  declareKernel(rewriter, source.getLoc(), source.getSymName(),
                builder.getFunctionType(gemmTypes, source.getResultTypes()), qkernel::KernelKind::Matmul,
                {builder.getNamedAttr("qkernel.library", builder.getStringAttr("cublaslt"))},
                {mSymbol});
}

LogicalResult CublasLtLowering::run() {
  fp8 = plan.linear.isBlockQuantized();
  if (failed(bindOperands()) || failed(emitPack()) || failed(checkBias()) ||
      failed(emitDecodeVariant()))
    return failure();
  SmallVector<qkernel::LaunchOp> launches;
  top.walk([&](qkernel::LaunchOp launch) {
    if (launch.getKernel().getRootReference() == qkernel::kKernelModuleName &&
        launch.getKernel().getLeafReference() == source.getSymName())
      launches.push_back(launch);
  });
  for (qkernel::LaunchOp launch : launches)
    if (failed(rewriteLaunch(launch)))
      return failure();
  if (launches.empty())
    gemmTypes.assign(source.getArgumentTypes().begin(), source.getArgumentTypes().end());
  declareKernels();
  rewriter.eraseOp(source);
  return success();
}

namespace {
/// Matmul kernels are cuBLASLt calls (with a generated pack prologue, or a
/// generated kernel for FP8 weights cuBLASLt does not take).
struct CublasMatmulPattern final : codegen::KernelSourcePattern {
  CublasMatmulPattern(MLIRContext *ctx, GpuKernelLowering &lowering)
      : KernelSourcePattern(ctx, qkernel::KernelKind::Matmul, lowering), gpu(lowering) {}

  LogicalResult lowerKernel(func::FuncOp source, PatternRewriter &rewriter) const override {
    FailureOr<GpuCodegenOptions> options = gpu.getOptions(source);
    if (failed(options))
      return failure();
    FailureOr<codegen::MatmulPattern> analyzed = codegen::matchMatmulKernel(source);
    if (failed(analyzed))
      return failure();
    // Block-wise FP8 weights: cuBLASLt's block-scaled FP8 GEMM where the
    // schedule chose it (tensor_cores) and the activation rows are 16-byte
    // aligned (the pack quantizes them), else a generated kernel
    // (Fp8Matmul.cpp).
    if (analyzed->linear.isBlockQuantized() &&
        !(options->schedule && options->schedule.getTensorCores() &&
          fp8MatmulFitsCublasLt(*analyzed)))
      return gpu.lower(source, rewriter, emitFp8MatmulKernel);
    return CublasLtLowering(gpu.getTop(), gpu.getGpuModule(), source, *options, *analyzed,
                            rewriter)
        .run();
  }

  GpuKernelLowering &gpu;
};
} // namespace

void qwen::codegen::gpu::populateMatmulPatterns(RewritePatternSet &patterns,
                                                GpuKernelLowering &lowering) {
  patterns.add<CublasMatmulPattern>(patterns.getContext(), lowering);
}
