//===- MoeMath.cpp - Router, operands and SwiGLU of CPU and GPU MoE -------===//
#include "qwen/Passes/Codegen/Common/MoeMath.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen;

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

ExpertOperands::ExpertOperands(KernelTarget &target, qtf::MoeExpertFfnOp ffn)
    : inter(ffn.getIntermediateSize()), hidden(ffn.getInput().getType().getDimSize(1)),
      topK(ffn.getIds().getType().getDimSize(1)), t(target),
      blockQuantized(ffn.isBlockQuantized()) {
  x = t.access(ffn.getInput());
  ids = t.access(ffn.getIds());
  routeWeights = t.access(ffn.getWeights());
  gateUp = t.access(ffn.getGateUp());
  down = t.access(ffn.getDown());
  out = t.result(0);
  if (blockQuantized) {
    gateUpScale = t.access(ffn.getGateUpScale());
    downScale = t.access(ffn.getDownScale());
    block = {(*ffn.getWeightBlock())[0], (*ffn.getWeightBlock())[1]};
  }
}

void ExpertOperands::locate(Value expert) {
  gateBase = t.mulIndex(expert, 2 * inter);
  downBase = t.mulIndex(expert, hidden);
  if (!blockQuantized)
    return;
  const int64_t interBlocks = (inter + block[0] - 1) / block[0];
  const int64_t hiddenBlocks = (hidden + block[0] - 1) / block[0];
  gateScaleBase = t.mulIndex(expert, 2 * interBlocks);
  upScaleBase = t.addIndex(gateScaleBase, t.index(interBlocks));
  downScaleBase = t.mulIndex(expert, hiddenBlocks);
}

Value ExpertOperands::scaleRowOf(Value first, Value row) {
  return t.addIndex(first, t.divIndex(row, block[0]));
}
