//===- Elementwise.cpp - elementwise rows, for every target ---------------===//
//
// silu_mul, sigmoid_mul (a gate of the row's shape or one column broadcast
// over the row), add, and moe_combine (+ residual) over views, one work item
// per (row, column chunk):
//   silu(a) * v   = a / (1 + exp(-a)) * v
//   a * sigmoid(g) = a / (1 + exp(-g))
//   combine       = residual + slot_0 + slot_1 + ... (choices in order, so the
//                   sum is the same however the columns are split)
//
//===----------------------------------------------------------------------===//
#include "qwen/Passes/Codegen/Common/KernelPatterns.h"
#include "qwen/Passes/Codegen/Common/RowFamilies.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen;

FailureOr<Grid> qwen::codegen::lowerElementwiseKernel(KernelTarget &t) {
  func::FuncOp source = t.source();
  FailureOr<ElementwisePattern> pattern = matchElementwiseKernel(source);
  if (failed(pattern))
    return failure();
  Operation *op = pattern->op;
  qtf::MoeCombineOp combine = pattern->combine;
  Value residual = pattern->residual;
  const int64_t columns = pattern->columns, choices = pattern->choices;
  // A one-column gate scales the whole row (the shared-expert gate).
  const bool broadcastGate = pattern->broadcastGate;
  const bool isSiluMul = isa<qtf::SiluMulOp>(op);
  const bool isSigmoidMul = isa<qtf::SigmoidMulOp>(op);

  const ColumnPlan plan = t.planColumns(columns);

  t.buildKernel(plan.threads, [&](Value item) {
    ImplicitLocOpBuilder &b = t.builder();
    RowAccess out = t.result(0);
    auto vecType = VectorType::get({plan.width}, b.getF32Type());
    // A one-column gate is loaded once per row, outside the column loop.
    Value rowGate;
    if (broadcastGate) {
      RowAccess rhs = t.access(op->getOperand(1));
      Value row = t.divIndex(item, plan.chunks);
      rowGate = vector::BroadcastOp::create(
          b, vecType, t.loadF32(rhs, t.address(rhs, row, Value(), Value())));
    }
    t.forColumns(plan, columns, item, [&](Value row, Value col) {
      Value outAt = t.addIndex(t.mulIndex(row, columns), col);
      if (combine) {
        RowAccess slots = t.access(combine.getSlots());
        Value sum;
        if (residual) {
          RowAccess rest = t.access(residual);
          sum = t.loadVectorF32(rest, t.address(rest, row, Value(), col), plan.width);
        } else {
          sum = arith::ConstantOp::create(b, DenseElementsAttr::get(vecType, 0.0f));
        }
        for (int64_t j = 0; j < choices; ++j)
          sum = arith::AddFOp::create(
              b, sum,
              t.loadVectorF32(slots, t.address(slots, row, t.index(j), col), plan.width));
        t.store(out, outAt, sum);
        return;
      }
      RowAccess lhs = t.access(op->getOperand(0));
      RowAccess rhs = t.access(op->getOperand(1));
      Value a = t.loadVectorF32(lhs, t.address(lhs, row, Value(), col), plan.width);
      Value v = rowGate ? rowGate
                        : t.loadVectorF32(rhs, t.address(rhs, row, Value(), col), plan.width);
      Value result;
      if (isSigmoidMul) {
        // a * sigmoid(v) = a / (1 + exp(-v))
        Value one = arith::ConstantOp::create(b, DenseElementsAttr::get(vecType, 1.0f));
        Value denominator =
            arith::AddFOp::create(b, one, math::ExpOp::create(b, arith::NegFOp::create(b, v)));
        result = arith::DivFOp::create(b, a, denominator);
      } else if (isSiluMul) {
        result = arith::MulFOp::create(b, t.silu(a), v);
      } else {
        result = arith::AddFOp::create(b, a, v);
      }
      t.store(out, outAt, result);
    });
  });
  return t.gridOf(t.leadingSymbol(pattern->output), plan.chunks);
}
