//===- SelectionMath.cpp - The top-k ordering of router and sampler -------===//
#include "qwen/Passes/Codegen/Common/SelectionMath.h"

#include "mlir/Dialect/Arith/IR/Arith.h"

using namespace mlir;
using qwen::codegen::Candidate;

Value qwen::codegen::candidateBefore(ImplicitLocOpBuilder &b, Candidate a, Candidate best) {
  Value greater = arith::CmpFOp::create(b, arith::CmpFPredicate::OGT, a.value, best.value);
  Value equal = arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, a.value, best.value);
  Value lowerId =
      a.id.getType().isF32()
          ? Value(arith::CmpFOp::create(b, arith::CmpFPredicate::OLT, a.id, best.id))
          : Value(arith::CmpIOp::create(b, arith::CmpIPredicate::ult, a.id, best.id));
  return arith::OrIOp::create(b, greater, arith::AndIOp::create(b, equal, lowerId));
}

Candidate qwen::codegen::scanCandidate(ImplicitLocOpBuilder &b, Candidate best, Value value,
                                       Value id) {
  Value better = arith::CmpFOp::create(b, arith::CmpFPredicate::OGT, value, best.value);
  Value nextValue = arith::SelectOp::create(b, better, value, best.value);
  return {nextValue, arith::SelectOp::create(b, better, id, best.id)};
}

Candidate qwen::codegen::mergeCandidates(ImplicitLocOpBuilder &b, Candidate best, Candidate other) {
  Value better = candidateBefore(b, other, best);
  Value nextValue = arith::SelectOp::create(b, better, other.value, best.value);
  return {nextValue, arith::SelectOp::create(b, better, other.id, best.id)};
}
