//===- DeltaRuleMath.cpp - Gate math of the CPU and GPU delta rule --------===//
#include "qwen/Passes/Codegen/Common/DeltaRuleMath.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"

using namespace mlir;

static Value f32(ImplicitLocOpBuilder &b, float value) {
  return arith::ConstantOp::create(b, b.getF32FloatAttr(value));
}

Value qwen::codegen::deltaRuleDecayRate(ImplicitLocOpBuilder &b, Value aLog) {
  return arith::NegFOp::create(b, math::ExpOp::create(b, aLog));
}

Value qwen::codegen::deltaRuleBeta(ImplicitLocOpBuilder &b, Value raw) {
  Value one = f32(b, 1.0f);
  Value denominator =
      arith::AddFOp::create(b, one, math::ExpOp::create(b, arith::NegFOp::create(b, raw)));
  return arith::DivFOp::create(b, one, denominator);
}

Value qwen::codegen::deltaRuleLogDecay(ImplicitLocOpBuilder &b, Value negA, Value a, Value dtBias) {
  Value shifted = arith::AddFOp::create(b, a, dtBias);
  Value linear = arith::CmpFOp::create(b, arith::CmpFPredicate::OGT, shifted, f32(b, 20.0f));
  Value smooth = math::Log1pOp::create(b, math::ExpOp::create(b, shifted));
  Value softplus = arith::SelectOp::create(b, linear, shifted, smooth);
  return arith::MulFOp::create(b, negA, softplus);
}

Value qwen::codegen::l2NormFactor(ImplicitLocOpBuilder &b, Value sumOfSquares, float factor,
                                  llvm::function_ref<Value(Value)> rsqrt) {
  Value inverse = rsqrt(arith::AddFOp::create(b, sumOfSquares, f32(b, 1e-6f)));
  return arith::MulFOp::create(b, inverse, f32(b, factor));
}
