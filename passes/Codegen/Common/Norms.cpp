//===- Norms.cpp - rms_norm rows and gated_norm, for every target ---------===//
//
// rows:       rms_norm / rope / gather_rows chains, one work item per
//             (token, unit): the row is built in a scratch row (the GPU's
//             shared memory), the rms_norm sum of squares accumulated by each
//             lane over its columns and summed across lanes
// gated_norm: per-head RMSNorm times silu(gate), one item per (token, head)
//
// rms_norm: y = w * (x * rsqrt(mean(x^2) + eps)), w + 1 when zero-centered.
//
//===----------------------------------------------------------------------===//
#include "qwen/Passes/Codegen/Common/KernelPatterns.h"
#include "qwen/Passes/Codegen/Common/RowFamilies.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen;

void qwen::codegen::applyRmsNorm(KernelTarget &t, qtf::RmsNormOp norm, Value row,
                                 int64_t length) {
  ImplicitLocOpBuilder &b = t.builder();
  RowAccess weight = t.access(norm.getWeight());
  const int64_t width = t.rowWidth(length);
  auto vecType = VectorType::get({width}, b.getF32Type());
  Value zero = arith::ConstantOp::create(b, DenseElementsAttr::get(vecType, 0.0f));
  Value sumVector = t.forLanes(length, width, zero, [&](Value col, Value acc) {
    Value x = t.loadScratch(row, col, width);
    return vector::FMAOp::create(b, x, x, acc).getResult();
  });
  Value partial = vector::ReductionOp::create(b, vector::CombiningKind::ADD, sumVector);
  Value sum = t.sumAcrossLanes(partial);
  Value mean = arith::DivFOp::create(b, sum, t.f32(static_cast<float>(length)));
  Value eps = t.f32(static_cast<float>(norm.getEpsilon().convertToDouble()));
  Value scale = t.rsqrt(arith::AddFOp::create(b, mean, eps));
  Value scaleVector = vector::BroadcastOp::create(b, vecType, scale);
  const bool zeroCentered = norm.getZeroCentered();
  t.forLanes(length, width, [&](Value col) {
    Value x = t.loadScratch(row, col, width);
    Value w = t.loadVectorF32(weight, col, width);
    if (zeroCentered)
      w = arith::AddFOp::create(
          b, w, arith::ConstantOp::create(b, DenseElementsAttr::get(vecType, 1.0f)));
    Value y = arith::MulFOp::create(b, w, arith::MulFOp::create(b, x, scaleVector));
    t.storeScratch(row, col, y);
  });
}

/// Fills `row` with unit `unit` of row `token` of `value` through the chain
/// that computes it. Every phase gives a lane the same columns (vectors of
/// `width`), so only rope, which pairs column i with i + half, needs
/// barriers around it. Returns whether the last phase was such a crossing.
static bool fillRow(KernelTarget &t, Value value, Value token, Value unit, Value row,
                    int64_t length, int64_t width) {
  if (auto gather = value.getDefiningOp<qtf::GatherRowsOp>()) {
    // Row `token` of the selection is row rows[token] of the input.
    Value selected = t.loadIndex(t.access(gather.getRows()), token);
    return fillRow(t, gather.getInput(), selected, unit, row, length, width);
  }
  if (auto norm = value.getDefiningOp<qtf::RmsNormOp>()) {
    if (fillRow(t, norm.getInput(), token, unit, row, length, width))
      t.barrier();
    applyRmsNorm(t, norm, row, length);
    return false;
  }
  if (auto rope = value.getDefiningOp<qtf::RopeOp>()) {
    fillRow(t, rope.getInput(), token, unit, row, length, width);
    t.barrier();
    applyRope(t, rope, token, row);
    return true;
  }
  RowAccess source = t.access(value);
  // A view at an odd offset loads in narrower pieces of the same columns.
  const int64_t sourceWidth = t.alignedWidth(width, source);
  Value base = t.address(source, token, source.units > 1 ? unit : Value(), Value());
  t.forLanes(length, width, [&](Value col) {
    for (int64_t piece = 0; piece < width; piece += sourceWidth) {
      Value at = piece ? t.addIndex(col, t.index(piece)) : col;
      t.storeScratch(row, at, t.loadVectorF32(source, t.addIndex(base, at), sourceWidth));
    }
  });
  return false;
}

void KernelTarget::emitRowChain(Value value, Value token, Value unit, Value row) {
  const int64_t length = cast<MemRefType>(row.getType()).getDimSize(0);
  fillRow(*this, value, token, unit, row, length, rowWidth(length));
  barrier();
}

FailureOr<Grid> qwen::codegen::lowerRowsKernel(KernelTarget &t) {
  func::FuncOp source = t.source();
  Value output = singleComputedResult(source);
  if (!output)
    return source.emitOpError("rows kernel must have one result"), failure();
  auto type = cast<RankedTensorType>(output.getType());
  const int64_t units = type.getRank() == 3 ? type.getDimSize(1) : 1;
  const int64_t length = type.getShape().back();
  const int64_t width = t.rowWidth(length);

  t.buildKernel(t.itemThreads(), [&](Value item) {
    Value token = t.divIndex(item, units);
    Value unit = t.remIndex(item, units);
    Value row = t.scratchRow(length);
    t.emitRowChain(output, token, unit, row);
    RowAccess out = t.result(0);
    Value base = t.mulIndex(item, length);
    t.forLanes(length, width, [&](Value col) {
      t.store(out, t.addIndex(base, col), t.loadScratch(row, col, width));
    });
  });
  return t.gridOf(t.leadingSymbol(output), units);
}

FailureOr<Grid> qwen::codegen::lowerGatedNormKernel(KernelTarget &t) {
  func::FuncOp source = t.source();
  auto matched = matchSingleOpKernel<qtf::GatedRmsNormOp>(source, "gated_norm");
  if (failed(matched))
    return failure();
  qtf::GatedRmsNormOp norm = matched->first;
  const unsigned output = matched->second;
  auto type = cast<RankedTensorType>(norm.getResult().getType());
  if (type.getRank() != 3)
    return source.emitOpError("gated_norm kernel expects a [tokens, heads, dim] result"),
           failure();
  const int64_t heads = type.getDimSize(1), length = type.getDimSize(2);
  const float eps = static_cast<float>(norm.getEpsilon().convertToDouble());
  const int64_t width = t.rowWidth(length);

  t.buildKernel(t.itemThreads(), [&](Value item) {
    ImplicitLocOpBuilder &b = t.builder();
    auto vecType = VectorType::get({width}, b.getF32Type());
    RowAccess input = t.access(norm.getInput()), gate = t.access(norm.getGate()),
              weight = t.access(norm.getWeight());
    RowAccess out = t.result(output);
    Value token = t.divIndex(item, heads);
    Value head = t.remIndex(item, heads);
    Value inBase = t.address(input, token, head, Value());
    Value gateBase = t.address(gate, token, head, Value());
    Value outBase = t.address(out, token, head, Value());
    Value zero = arith::ConstantOp::create(b, DenseElementsAttr::get(vecType, 0.0f));
    Value squares = t.forLanes(length, width, zero, [&](Value c, Value acc) {
      Value x = t.loadVectorF32(input, t.addIndex(inBase, c), width);
      return vector::FMAOp::create(b, x, x, acc).getResult();
    });
    Value sum =
        t.sumAcrossLanes(vector::ReductionOp::create(b, vector::CombiningKind::ADD, squares));
    Value mean = arith::DivFOp::create(b, sum, t.f32(static_cast<float>(length)));
    Value scale = vector::BroadcastOp::create(
        b, vecType, t.rsqrt(arith::AddFOp::create(b, mean, t.f32(eps))));
    // y = x * scale * w * silu(gate), each lane on the columns it summed.
    t.forLanes(length, width, [&](Value c) {
      Value x = t.loadVectorF32(input, t.addIndex(inBase, c), width);
      Value w = t.loadVectorF32(weight, c, width);
      Value g = t.loadVectorF32(gate, t.addIndex(gateBase, c), width);
      Value y = arith::MulFOp::create(b, arith::MulFOp::create(b, x, scale), w);
      Value gated = arith::MulFOp::create(b, y, t.silu(g));
      t.store(out, t.addIndex(outBase, c), gated);
    });
  });
  return t.gridOf(t.leadingSymbol(norm.getResult()), heads);
}
