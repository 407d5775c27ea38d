//===- Fp8Matmul.cpp - Matmuls over block-wise FP8 weights on the GPU -----===//
//
// Y[m, n] = X[m, k] * W[n, k]^T (+ bias) (+ R) with W in f8E4M3FN and one f32
// factor per weight_block = [br, bc] block (qtf.linear's weight_scale,
// [ceil(N / br), ceil(K / bc)]). Two GPU forms:
//
// - cuBLASLt's block-scaled FP8 GEMM (MatmulLaunch.cpp) where it applies
//   (fp8MatmulFitsCublasLt): the pack kernel quantizes the activations to
//   e4m3 with one scale per row and 128 columns, as HF's act_quant.
// - Otherwise the generated GEMV of GemvKernel.cpp, exact against the
//   dequantized weight up to f32 rounding: a warp per output column n, each
//   lane 16 weight bytes per step widened in registers, dotted with up to 4
//   activation rows at once, each partial multiplied by its block's scale
//   and summed in f32; the weight row is read from memory once per block of
//   rows (again from L1 for the next 4 rows), so decode steps read each
//   weight byte once.
//
//===----------------------------------------------------------------------===//
#include "passes/Codegen/GPU/Fp8Matmul.h"
#include "passes/Codegen/GPU/GemvKernel.h"

#include "qwen/Passes/Codegen/Common/KernelABI.h"
#include "qwen/Passes/Codegen/GPU/Passes.h"
#include "qwen/Passes/Common/ShapeSymbols.h"

#include "qwen/Dialect/QKernel/IR/QKernel.h"
#include "qwen/Dialect/QTF/IR/QTF.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

#include <numeric>

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen::gpu;

namespace {
constexpr int64_t kWarp = 32;

/// Block sizes [br, bc] of an FP8 linear.
std::pair<int64_t, int64_t> weightBlock(qtf::LinearOp linear) {
  std::optional<ArrayRef<int64_t>> block = linear.getWeightBlock();
  return {(*block)[0], (*block)[1]};
}

} // namespace

bool qwen::codegen::gpu::fp8MatmulFitsCublasLt(const codegen::MatmulPattern &plan) {
  qtf::LinearOp linear = plan.linear;
  auto [br, bc] = weightBlock(linear);
  const int64_t k = linear.getWeight().getType().getDimSize(1);
  RowAccess x = GpuKernelEmitter::viewGeometry(linear.getInput());
  RowAccess scale = GpuKernelEmitter::viewGeometry(linear.getWeightScale());
  // No bias epilogue (Qwen3 has none; cuBLASLt's FP8 bias types differ).
  return br == 128 && bc == 128 && k % 512 == 0 && !plan.gather && !linear.getBias() &&
         x.rowStride % 4 == 0 && x.offset % 4 == 0 && scale.offset % 4 == 0 &&
         cast<RankedTensorType>(linear.getInput().getType()).getElementType().isF32();
}

FailureOr<KernelGeometry> qwen::codegen::gpu::emitFp8MatmulKernel(GpuKernelEmitter &e) {
  func::FuncOp source = e.source();
  FailureOr<codegen::MatmulPattern> analyzed = codegen::matchMatmulKernel(source);
  if (failed(analyzed))
    return failure();
  // The schedule's block (a warp per output column) and rows per pass
  // (GpuSchedules.cpp: scheduleFp8Matmul).
  qkernel::ScheduleAttr schedule = e.options().schedule;
  return emitGemvKernel(e, source.getSymName(), *analyzed, schedule.getThreads(),
                        schedule.tileSize(0, 4));
}

/// e4m3fn codes (i8, round to nearest even) of f32 values with |v| <= 448
/// plus rounding (the quantizer's x / scale): normals keep 3 mantissa bits of
/// the f32 (add half an ulp and the even bit, then rebias the exponent by
/// 127 - 7); below 2^-6 the code is the subnormal count roundeven(|v| * 2^9)
/// (8 reaches the smallest normal, whose code is also 8). As torch's
/// float -> float8_e4m3fn and PTX's cvt.rn.satfinite.e4m3x2.f32 in range.
static Value encodeE4m3(ImplicitLocOpBuilder &b, Value v) {
  auto vectorType = cast<VectorType>(v.getType());
  auto like = [&](Type element) { return VectorType::get(vectorType.getShape(), element); };
  Type i32 = like(b.getI32Type()), f32 = like(b.getF32Type());
  auto i32c = [&](int32_t c) {
    return arith::ConstantOp::create(b, DenseElementsAttr::get(cast<ShapedType>(i32), c)).getResult();
  };
  auto f32c = [&](float c) {
    return arith::ConstantOp::create(b, DenseElementsAttr::get(cast<ShapedType>(f32), c)).getResult();
  };
  Value bits = arith::BitcastOp::create(b, i32, v);
  Value sign = arith::AndIOp::create(b, arith::ShRUIOp::create(b, bits, i32c(24)), i32c(0x80));
  Value magnitudeBits = arith::AndIOp::create(b, bits, i32c(0x7fffffff));
  Value even = arith::AndIOp::create(b, arith::ShRUIOp::create(b, magnitudeBits, i32c(20)), i32c(1));
  Value rounded = arith::AddIOp::create(b, magnitudeBits, arith::AddIOp::create(b, even, i32c(0x7ffff)));
  Value normal = arith::SubIOp::create(b, arith::ShRUIOp::create(b, rounded, i32c(20)), i32c(120 << 3));
  Value magnitude = arith::BitcastOp::create(b, f32, magnitudeBits);
  Value count = math::RoundEvenOp::create(b, arith::MulFOp::create(b, magnitude, f32c(512.0f)));
  Value subnormal = arith::FPToSIOp::create(b, i32, count);
  Value small = arith::CmpFOp::create(b, arith::CmpFPredicate::OLT, magnitude, f32c(0x1p-6f));
  Value code = arith::OrIOp::create(b, arith::SelectOp::create(b, small, subnormal, normal), sign);
  return arith::TruncIOp::create(b, like(b.getI8Type()), code);
}

FailureOr<KernelGeometry> qwen::codegen::gpu::emitFp8ActivationPack(GpuKernelEmitter &emitter, StringRef name,
                                                                    BlockArgument xArg, Value xValue,
                                                                    StringRef rowSymbol,
                                                                    RankedTensorType codesType,
                                                                    RankedTensorType scalesType) {
  const int64_t K = codesType.getDimSize(1);
  RowAccess xGeometry = GpuKernelEmitter::viewGeometry(xValue);
  ChunkPlan chunks = emitter.planChunks(K, xGeometry);
  // One warp of 4-wide vectors is one 128-column block.
  if (K % 128 || chunks.width != 4)
    return emitError(xValue.getLoc(), "FP8 activation pack needs K a multiple of 128 and 16-byte rows"),
           failure();
  emitter.createKernel(name, {xArg}, TypeRange{codesType, scalesType}, chunks.threads, [&] {
    ImplicitLocOpBuilder &b = emitter.builder();
    RowAccess x = emitter.access(xValue);
    RowAccess codes = emitter.result(0), scales = emitter.result(1);
    Value rows = emitter.dim(rowSymbol);
    emitter.forChunkColumn(chunks, K, [&](Value row, Value col) {
      Value v = emitter.loadVectorF32(x, emitter.addIndex(emitter.address(x, row, Value(), Value()), col), 4);
      Value largest = vector::ReductionOp::create(b, vector::CombiningKind::MAXNUMF, math::AbsFOp::create(b, v));
      Value amax = emitter.laneMax(largest, kWarp);
      Value zero = arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, amax, emitter.f32(0.0f));
      Value scale = arith::SelectOp::create(b, zero, emitter.f32(1.0f),
                                            arith::DivFOp::create(b, amax, emitter.f32(448.0f)));
      Value scaled = arith::DivFOp::create(b, v, vector::BroadcastOp::create(b, v.getType(), scale));
      vector::StoreOp::create(b, encodeE4m3(b, scaled), codes.memref,
                              ValueRange{emitter.addIndex(emitter.mulIndex(row, K), col)},
                              /*nontemporal=*/false, llvm::Align(4));
      Value lane = emitter.remIndex(emitter.threadId(), kWarp);
      Value first = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, lane, emitter.index(0));
      emitter.ifThen(first, [&] {
        Value at = emitter.addIndex(emitter.mulIndex(emitter.divIndex(col, 128), rows), row);
        memref::StoreOp::create(b, scale, scales.memref, ValueRange{at});
      });
    });
  });
  KernelGeometry geometry;
  geometry.grid.push_back(StringAttr::get(xValue.getContext(), rowSymbol));
  if (chunks.chunks > 1)
    geometry.grid.push_back(IntegerAttr::get(IntegerType::get(xValue.getContext(), 64), chunks.chunks));
  geometry.blockSize = chunks.threads;
  geometry.sharedBytes = emitter.sharedBytes();
  return geometry;
}
