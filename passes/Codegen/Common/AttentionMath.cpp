//===- AttentionMath.cpp - Online-softmax math of CPU and GPU attention ---===//
#include "qwen/Passes/Codegen/Common/AttentionMath.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

#include <limits>

using namespace mlir;

qwen::codegen::OnlineSoftmaxStep
qwen::codegen::onlineSoftmaxStep(ImplicitLocOpBuilder &b, VectorType vecType, Value runningMax,
                                 Value runningSum, Value score) {
  OnlineSoftmaxStep step;
  step.max = arith::MaximumFOp::create(b, runningMax, score);
  step.correction = math::ExpOp::create(b, arith::SubFOp::create(b, runningMax, step.max));
  step.weight = math::ExpOp::create(b, arith::SubFOp::create(b, score, step.max));
  step.sum = arith::AddFOp::create(b, arith::MulFOp::create(b, runningSum, step.correction),
                                   step.weight);
  step.correctionVector = vector::BroadcastOp::create(b, vecType, step.correction);
  step.weightVector = vector::BroadcastOp::create(b, vecType, step.weight);
  return step;
}

Value qwen::codegen::accumulateValue(ImplicitLocOpBuilder &b, const OnlineSoftmaxStep &step,
                                     Value acc, Value v) {
  return vector::FMAOp::create(b, step.weightVector, v,
                               arith::MulFOp::create(b, acc, step.correctionVector));
}

Value qwen::codegen::softmaxMergeFactor(ImplicitLocOpBuilder &b, Value max, Value globalMax) {
  Value empty = arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, max,
                                      arith::ConstantOp::create(b, b.getF32FloatAttr(
                                          -std::numeric_limits<float>::infinity())));
  Value factor = math::ExpOp::create(b, arith::SubFOp::create(b, max, globalMax));
  return arith::SelectOp::create(b, empty, arith::ConstantOp::create(b, b.getF32FloatAttr(0.0f)),
                                 factor);
}
