//===- MoeMath.cpp - Router and SwiGLU math of CPU and GPU MoE ------------===//
#include "qwen/Passes/Codegen/Common/MoeMath.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"

using namespace mlir;

Value qwen::codegen::routerProbability(ImplicitLocOpBuilder &b, Value logit, Value maxLogit) {
  return math::ExpOp::create(b, arith::SubFOp::create(b, logit, maxLogit));
}

Value qwen::codegen::reciprocal(ImplicitLocOpBuilder &b, Value x) {
  return arith::DivFOp::create(b, arith::ConstantOp::create(b, b.getF32FloatAttr(1.0f)), x);
}

Value qwen::codegen::swiglu(ImplicitLocOpBuilder &b, Value gate, Value up) {
  Value one = arith::ConstantOp::create(b, b.getF32FloatAttr(1.0f));
  Value denominator =
      arith::AddFOp::create(b, one, math::ExpOp::create(b, arith::NegFOp::create(b, gate)));
  return arith::MulFOp::create(b, arith::DivFOp::create(b, gate, denominator), up);
}
