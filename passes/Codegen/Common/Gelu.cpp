//===- Gelu.cpp - gelu rows, for every target -----------------------------===//
//
//   erf:  x / 2 * (1 + erf(x / sqrt(2)))                       (nn.GELU())
//   tanh: x / 2 * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 x^3)))  (gelu_pytorch_tanh)
//
// erf and tanh are built from exp (VisionFamilies.h), so both targets lower
// them without a math library.
//
//===----------------------------------------------------------------------===//
#include "qwen/Passes/Codegen/Common/KernelPatterns.h"
#include "qwen/Passes/Codegen/Common/VisionFamilies.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen;

/// A constant shaped as `like` (scalar or vector).
static Value splat(ImplicitLocOpBuilder &b, Value like, float value) {
  if (auto vecType = dyn_cast<VectorType>(like.getType()))
    return arith::ConstantOp::create(b, DenseElementsAttr::get(vecType, value));
  return arith::ConstantOp::create(b, b.getF32FloatAttr(value));
}

Value qwen::codegen::tanhApprox(KernelTarget &t, Value x) {
  ImplicitLocOpBuilder &b = t.builder();
  // exp(2x) overflows to inf for large x, which gives 1 - 0 = 1.
  Value e = math::ExpOp::create(b, arith::MulFOp::create(b, x, splat(b, x, 2.0f)));
  Value denominator = arith::AddFOp::create(b, e, splat(b, x, 1.0f));
  Value ratio = arith::DivFOp::create(b, splat(b, x, 2.0f), denominator);
  return arith::SubFOp::create(b, splat(b, x, 1.0f), ratio);
}

Value qwen::codegen::erfApprox(KernelTarget &t, Value x) {
  ImplicitLocOpBuilder &b = t.builder();
  Value a = math::AbsFOp::create(b, x);
  Value tt = arith::DivFOp::create(
      b, splat(b, x, 1.0f),
      arith::AddFOp::create(b, splat(b, x, 1.0f), arith::MulFOp::create(b, a, splat(b, x, 0.3275911f))));
  const float coefficients[] = {1.061405429f, -1.453152027f, 1.421413741f, -0.284496736f,
                                0.254829592f};
  Value poly = splat(b, x, coefficients[0]);
  for (int i = 1; i < 5; ++i)
    poly = arith::AddFOp::create(b, arith::MulFOp::create(b, poly, tt), splat(b, x, coefficients[i]));
  poly = arith::MulFOp::create(b, poly, tt);
  Value gauss = math::ExpOp::create(b, arith::NegFOp::create(b, arith::MulFOp::create(b, a, a)));
  Value magnitude = arith::SubFOp::create(b, splat(b, x, 1.0f), arith::MulFOp::create(b, poly, gauss));
  return math::CopySignOp::create(b, magnitude, x);
}

FailureOr<Grid> qwen::codegen::lowerGeluKernel(KernelTarget &t) {
  func::FuncOp source = t.source();
  auto matched = matchSingleOpKernel<qtf::GeluOp>(source, "gelu");
  if (failed(matched))
    return failure();
  qtf::GeluOp gelu = matched->first;
  const unsigned output = matched->second;
  auto type = cast<RankedTensorType>(gelu.getResult().getType());
  if (type.getRank() != 2)
    return source.emitOpError("gelu kernel expects [rows, width]"), failure();
  const int64_t columns = type.getDimSize(1);
  const bool tanh = gelu.getApproximation() == qtf::GeluApproximation::Tanh;
  const ColumnPlan plan = t.planColumns(columns);

  t.buildKernel(plan.threads, [&](Value item) {
    ImplicitLocOpBuilder &b = t.builder();
    RowAccess input = t.access(gelu.getInput()), out = t.result(output);
    t.forColumns(plan, columns, item, [&](Value row, Value col) {
      Value x = t.loadVectorF32(input, t.address(input, row, Value(), col), plan.width);
      Value cdf; // 1 + erf(...) or 1 + tanh(...)
      if (tanh) {
        Value cube = arith::MulFOp::create(b, arith::MulFOp::create(b, x, x), x);
        Value inner = arith::AddFOp::create(b, x, arith::MulFOp::create(b, cube, splat(b, x, 0.044715f)));
        Value scaled = arith::MulFOp::create(b, inner, splat(b, x, 0.7978845608028654f));
        cdf = arith::AddFOp::create(b, splat(b, x, 1.0f), tanhApprox(t, scaled));
      } else {
        Value scaled = arith::MulFOp::create(b, x, splat(b, x, 0.7071067811865476f));
        cdf = arith::AddFOp::create(b, splat(b, x, 1.0f), erfApprox(t, scaled));
      }
      Value y = arith::MulFOp::create(b, arith::MulFOp::create(b, x, splat(b, x, 0.5f)), cdf);
      t.store(out, t.addIndex(t.mulIndex(row, columns), col), y);
    });
  });
  return t.gridOf(t.leadingSymbol(gelu.getResult()), plan.chunks);
}
