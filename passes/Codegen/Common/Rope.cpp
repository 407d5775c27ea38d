//===- Rope.cpp - RoPE on a scratch row, for every target -----------------===//
//
// y1 = x1 cos - x2 sin, y2 = x2 cos + x1 sin on the pairs (i, i + rotary/2),
// with the frequencies and attention factor of the rope's scaling
// (codegen::RopeFrequencies); columns past the rotary part pass through.
//
//===----------------------------------------------------------------------===//
#include "qwen/Passes/Codegen/Common/RowFamilies.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen;

void qwen::codegen::applyRope(KernelTarget &t, qtf::RopeOp rope, Value token, Value row) {
  ImplicitLocOpBuilder &b = t.builder();
  const int64_t half = rope.getRotaryDim() / 2;
  RopeFrequencies<KernelTarget> frequencies(t, rope, t.symbolTable(), token);
  std::optional<ArrayRef<int64_t>> section = rope.getMropeSection();
  SmallVector<Value> positions =
      loadRopePositions(t, t.access(rope.getPositions()), token, section.has_value());
  // One pair (i, i + half) per lane and step.
  t.forLanes(half, 1, [&](Value i) {
    Value invFreq = frequencies.at(i);
    Value positionF32 = ropePositionFor(t, i, positions, section);
    Value angle = arith::MulFOp::create(b, positionF32, invFreq);
    Value cos = math::CosOp::create(b, angle);
    Value sin = math::SinOp::create(b, angle);
    if (Value scale = frequencies.attentionScale) { // HF: cos() * attention_scaling
      cos = arith::MulFOp::create(b, cos, scale);
      sin = arith::MulFOp::create(b, sin, scale);
    }
    Value j = t.addIndex(i, t.index(half));
    Value x1 = memref::LoadOp::create(b, row, ValueRange{i});
    Value x2 = memref::LoadOp::create(b, row, ValueRange{j});
    Value y1 = arith::SubFOp::create(b, arith::MulFOp::create(b, x1, cos),
                                     arith::MulFOp::create(b, x2, sin));
    Value y2 = arith::AddFOp::create(b, arith::MulFOp::create(b, x2, cos),
                                     arith::MulFOp::create(b, x1, sin));
    memref::StoreOp::create(b, y1, row, ValueRange{i});
    memref::StoreOp::create(b, y2, row, ValueRange{j});
  });
}
