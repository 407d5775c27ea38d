//===- MoeMath.cpp - Router and SwiGLU math of CPU and GPU MoE ------------===//
#include "passes/Codegen/Common/MoeMath.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"

using namespace mlir;
using qwen::codegen::RouterCandidate;

Value qwen::codegen::routerProbability(ImplicitLocOpBuilder &b, Value logit, Value maxLogit) {
  return math::ExpOp::create(b, arith::SubFOp::create(b, logit, maxLogit));
}

Value qwen::codegen::reciprocal(ImplicitLocOpBuilder &b, Value x) {
  return arith::DivFOp::create(b, arith::ConstantOp::create(b, b.getF32FloatAttr(1.0f)), x);
}

RouterCandidate qwen::codegen::scanCandidate(ImplicitLocOpBuilder &b, RouterCandidate best,
                                             Value value, Value id) {
  Value better = arith::CmpFOp::create(b, arith::CmpFPredicate::OGT, value, best.value);
  Value nextValue = arith::SelectOp::create(b, better, value, best.value);
  return {nextValue, arith::SelectOp::create(b, better, id, best.id)};
}

RouterCandidate qwen::codegen::mergeCandidates(ImplicitLocOpBuilder &b, RouterCandidate best,
                                               RouterCandidate other) {
  Value greater = arith::CmpFOp::create(b, arith::CmpFPredicate::OGT, other.value, best.value);
  Value equal = arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, other.value, best.value);
  Value lowerId = arith::CmpFOp::create(b, arith::CmpFPredicate::OLT, other.id, best.id);
  Value better = arith::OrIOp::create(b, greater, arith::AndIOp::create(b, equal, lowerId));
  Value nextValue = arith::SelectOp::create(b, better, other.value, best.value);
  return {nextValue, arith::SelectOp::create(b, better, other.id, best.id)};
}

Value qwen::codegen::swiglu(ImplicitLocOpBuilder &b, Value gate, Value up) {
  Value one = arith::ConstantOp::create(b, b.getF32FloatAttr(1.0f));
  Value denominator =
      arith::AddFOp::create(b, one, math::ExpOp::create(b, arith::NegFOp::create(b, gate)));
  return arith::MulFOp::create(b, arith::DivFOp::create(b, gate, denominator), up);
}
