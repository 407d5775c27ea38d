//===- GemvKernel.cpp - Decode-sized matmuls as a generated GEMV ----------===//
//
// Y[m, n] = X[m, k] * W[n, k]^T (+ bias[n]) (+ R[m, n]) for few rows m (a
// decode step): a warp per output column n streams the weight row once per
// pass of `rowsAtOnce` rows (again from L1 for the next pass), each lane a
// 16-byte vector per step widened to f32 in registers, dotted with the
// activation rows at the same columns, accumulated in f32, then summed by
// an xor-shuffle reduction; lane 0 applies the epilogue the cuBLASLt entry
// computes (bias, then residual) and stores in the output dtype.
//
// One loop for every weight dtype: bf16 / f16 / f32 weights add each
// vector's partial sum; block-wise FP8 (f8E4M3FN codes, weight_scale per
// [br, bc] block) multiplies it by its block's scale first. The FP8 matmul's
// generated kernel and the decode variants of cuBLASLt GEMMs
// (MatmulLaunch.cpp) are this kernel.
//
//===----------------------------------------------------------------------===//
#include "passes/Codegen/GPU/GemvKernel.h"

#include "qwen/Passes/Codegen/Common/KernelABI.h"
#include "qwen/Passes/Codegen/Common/KernelPhase.h"
#include "qwen/Passes/Common/ShapeSymbols.h"

#include "qwen/Dialect/QTF/IR/QTF.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

#include <numeric>

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen::gpu;
using qwen::codegen::KernelPhase;

namespace {
/// Elements per lane and step: 16 bytes of weight, narrowed until it divides
/// K, the FP8 block columns and the weight and activation rows' offsets and
/// strides (aligned vector loads).
int64_t gemvWidth(qtf::LinearOp linear, Value x, int64_t k) {
  Type weight = linear.getWeight().getType().getElementType();
  const int64_t bytes = std::max<int64_t>(1, weight.getIntOrFloatBitWidth() / 8);
  int64_t g = k;
  if (std::optional<ArrayRef<int64_t>> block = linear.getWeightBlock())
    g = std::gcd(g, (*block)[1]);
  for (Value operand : {x, Value(linear.getWeight())}) {
    RowAccess view = GpuKernelEmitter::viewGeometry(operand);
    g = std::gcd(std::gcd(g, view.rowStride), view.offset);
  }
  int64_t width = 16 / bytes;
  while (width > 1 && g % width)
    width /= 2;
  return width;
}
} // namespace

namespace {

/// The GEMV of one launch (a warp per output column n), one method per
/// phase: gemv.rows picks a pass's activation rows, gemv.dot streams the
/// weight row against them, gemv.epilogue sums across the warp and stores.
class GpuGemv {
public:
  GpuGemv(GpuKernelEmitter &e, codegen::MatmulPattern plan, Value xValue, int64_t warps,
          int64_t rowsPerPass, int64_t width)
      : e(e), b(e.builder()), plan(plan), linear(plan.linear), xValue(xValue), warps(warps),
        rowsPerPass(rowsPerPass), width(width),
        N(linear.getWeight().getType().getDimSize(0)),
        K(linear.getWeight().getType().getDimSize(1)), scaled(linear.isBlockQuantized()),
        br(scaled ? (*linear.getWeightBlock())[0] : 1),
        bc(scaled ? (*linear.getWeightBlock())[1] : 1) {}

  /// The kernel body: `rows` output rows (an index value).
  void emit(Value rowCount);

private:
  SmallVector<Value> passRows(Value t0);
  ValueRange dotRows(Value weightRow, Value scaleRow, ArrayRef<Value> xRows);
  void storeRows(Value t0, ValueRange sums);

  GpuKernelEmitter &e;
  ImplicitLocOpBuilder &b;
  codegen::MatmulPattern plan;
  qtf::LinearOp linear;
  Value xValue;
  const int64_t warps, rowsPerPass, width, N, K;
  const bool scaled;
  const int64_t br, bc;
  RowAccess x, w, y;
  std::optional<RowAccess> s, bias, residual, gathered;
  Value rows, lastRow, lane, n;
};

} // namespace

/// The pass's activation rows from row t0: rows past the end read the last
/// row again (no branch in the loop) and are not stored.
SmallVector<Value> GpuGemv::passRows(Value t0) {
  KernelPhase phase(b, "gemv.rows");
  SmallVector<Value> starts;
  for (int64_t r = 0; r < rowsPerPass; ++r) {
    Value t = arith::MinUIOp::create(b, e.addIndex(t0, e.index(r)), lastRow);
    starts.push_back(e.address(x, gathered ? e.loadIndex(*gathered, t) : t, Value(), Value()));
  }
  return starts;
}

/// The dot products: one weight vector per step, widened once and reused
/// by every row; FP8 scales each partial by its block's scale.
ValueRange GpuGemv::dotRows(Value weightRow, Value scaleRow, ArrayRef<Value> xRows) {
  KernelPhase phase(b, "gemv.dot");
  SmallVector<Value> zeros(rowsPerPass, e.f32(0.0f));
  return e.forLoop(e.mulIndex(lane, width), e.index(K), kWarpSize * width, zeros,
                   [&](Value k0, ValueRange acc) -> SmallVector<Value> {
    Value weights = e.loadVectorF32(w, e.addIndex(weightRow, k0), width);
    Value scale = scaled ? e.loadF32(*s, e.addIndex(scaleRow, e.divIndex(k0, bc))) : Value();
    SmallVector<Value> next;
    for (int64_t r = 0; r < rowsPerPass; ++r) {
      Value xs = e.loadVectorF32(x, e.addIndex(xRows[r], k0), width);
      Value part = vector::ReductionOp::create(b, vector::CombiningKind::ADD,
                                               arith::MulFOp::create(b, xs, weights));
      if (scale)
        part = arith::MulFOp::create(b, part, scale);
      next.push_back(arith::AddFOp::create(b, acc[r], part));
    }
    return next;
  });
}

/// The epilogue on lane 0 after the warp sums: bias, residual, the store in
/// the output dtype, for the rows that exist.
void GpuGemv::storeRows(Value t0, ValueRange sums) {
  KernelPhase phase(b, "gemv.epilogue");
  SmallVector<Value> totals;
  for (Value sum : sums)
    totals.push_back(e.laneSum(sum, kWarpSize));
  Value first = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, lane, e.index(0));
  e.ifThen(first, [&] {
    for (int64_t r = 0; r < rowsPerPass; ++r) {
      Value t = e.addIndex(t0, e.index(r));
      e.ifThen(arith::CmpIOp::create(b, arith::CmpIPredicate::ult, t, rows), [&] {
        Value value = totals[r];
        if (bias)
          value = arith::AddFOp::create(
              b, value, e.loadF32(*bias, e.address(*bias, e.index(0), Value(), n)));
        if (residual)
          value = arith::AddFOp::create(
              b, value, e.loadF32(*residual, e.address(*residual, t, Value(), n)));
        e.store(y, e.address(y, t, Value(), n), value);
      });
    }
  });
}

void GpuGemv::emit(Value rowCount) {
  x = e.access(xValue), w = e.access(linear.getWeight()), y = e.result(0);
  if (plan.gather)
    gathered = e.access(plan.gather.getRows());
  if (scaled)
    s = e.access(linear.getWeightScale());
  if (linear.getBias())
    bias = e.access(linear.getBias());
  if (plan.residual)
    residual = e.access(plan.residual);
  rows = rowCount;
  lastRow = arith::SubIOp::create(b, rows, e.index(1));
  lane = e.remIndex(e.threadId(), kWarpSize);
  n = e.addIndex(e.mulIndex(e.blockId(), warps), e.divIndex(e.threadId(), kWarpSize));
  e.ifThen(arith::CmpIOp::create(b, arith::CmpIPredicate::ult, n, e.index(N)), [&] {
    Value weightRow = e.address(w, n, Value(), Value());
    Value scaleRow = scaled ? e.address(*s, e.divIndex(n, br), Value(), Value()) : Value();
    e.forLoop(e.index(0), rows, rowsPerPass, [&](Value t0) {
      SmallVector<Value> xRows = passRows(t0);
      storeRows(t0, dotRows(weightRow, scaleRow, xRows));
    });
  });
}

FailureOr<KernelGeometry> qwen::codegen::gpu::emitGemvKernel(GpuKernelEmitter &e, StringRef name,
                                                            const codegen::MatmulPattern &plan, int64_t threads,
                                                            int64_t rowsAtOnce) {
  func::FuncOp source = plan.linear->getParentOfType<func::FuncOp>();
  qtf::LinearOp linear = plan.linear;
  qtf::GatherRowsOp gather = plan.gather;
  // Gathered rows (the logits rows): row t of the product reads row rows[t].
  Value xValue = gather ? gather.getInput() : linear.getInput();
  const int64_t N = linear.getWeight().getType().getDimSize(0);
  const int64_t K = linear.getWeight().getType().getDimSize(1);
  auto outputType = cast<RankedTensorType>(plan.output.getType());
  std::string mSymbol = getLeadingSymbol(plan.output);
  if (outputType.isDynamicDim(0) && mSymbol.empty())
    return source.emitOpError("cannot size the matmul rows"), failure();
  const int64_t warps = std::max<int64_t>(1, threads / kWarpSize);
  const int64_t rowsPerPass = std::max<int64_t>(1, rowsAtOnce);
  const int64_t width = gemvWidth(linear, xValue, K);

  SmallVector<BlockArgument> args(source.getArguments());
  e.createKernel(name, args, source.getResultTypes(), warps * kWarpSize, [&] {
    Value rows = outputType.isDynamicDim(0) ? e.dim(mSymbol) : e.index(outputType.getDimSize(0));
    GpuGemv(e, plan, xValue, warps, rowsPerPass, width).emit(rows);
  });

  KernelGeometry geometry;
  geometry.grid.push_back(IntegerAttr::get(IntegerType::get(source.getContext(), 64), (N + warps - 1) / warps));
  geometry.blockSize = warps * kWarpSize;
  geometry.sharedBytes = e.sharedBytes();
  return geometry;
}
