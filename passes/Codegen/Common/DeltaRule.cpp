//===- DeltaRule.cpp - The gated delta rule's shared phases ---------------===//
//
// The gates and the q / k normalization of the gated delta rule
// (qwen-models.md section 1.8), written once for the CPU and GPU kernels
// (DeltaRule.h says what stays per target, and why).
//
//===----------------------------------------------------------------------===//
#include "qwen/Passes/Codegen/Common/DeltaRule.h"
#include "qwen/Passes/Codegen/Common/KernelPhase.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen;

Value qwen::codegen::l2NormFactor(ImplicitLocOpBuilder &b, Value sumOfSquares, float factor,
                                  llvm::function_ref<Value(Value)> rsqrt) {
  Value eps = arith::ConstantOp::create(b, b.getF32FloatAttr(1e-6f));
  Value inverse = rsqrt(arith::AddFOp::create(b, sumOfSquares, eps));
  return arith::MulFOp::create(b, inverse, arith::ConstantOp::create(b, b.getF32FloatAttr(factor)));
}

DeltaRuleItem::DeltaRuleItem(KernelTarget &target, qtf::GatedDeltaRuleOp rule, unsigned output)
    : sizes(getDeltaRuleSizes(rule)), stateType(rule.getState().getType()), t(target) {
  query = t.access(rule.getQuery()), key = t.access(rule.getKey()),
  value = t.access(rule.getValue()), a = t.access(rule.getA()), beta = t.access(rule.getB()),
  aLog = t.access(rule.getALog()), dtBias = t.access(rule.getDtBias()),
  tokenSeq = t.access(rule.getTokenSeq()), slots = t.access(rule.getStateSlots());
  recurrent = t.stateArrays(rule.getState()).second;
  out = t.result(output);
}

void DeltaRuleItem::locate(Value item) {
  sequence = t.divIndex(item, sizes.heads);
  head = t.remIndex(item, sizes.heads);
  keyHead = t.divIndex(head, sizes.group);
}

std::pair<Value, Value> DeltaRuleItem::findRun() {
  ImplicitLocOpBuilder &b = t.builder();
  KernelPhase phase(b, "delta_rule.find_run");
  Type f32 = b.getF32Type();
  Value T = t.dim("T");
  auto indexToF32 = [&](Value x) -> Value {
    return arith::UIToFPOp::create(b, f32, arith::IndexCastOp::create(b, b.getI64Type(), x));
  };
  ValueRange local = t.forLanesOf(
      T, ValueRange{indexToF32(T), t.f32(0.0f)}, [&](Value i, ValueRange acc) -> SmallVector<Value> {
        Value mine =
            arith::CmpIOp::create(b, arith::CmpIPredicate::eq, t.loadIndex(tokenSeq, i), sequence);
        return {arith::SelectOp::create(b, mine, arith::MinimumFOp::create(b, acc[0], indexToF32(i)),
                                        acc[0]),
                arith::SelectOp::create(b, mine, arith::AddFOp::create(b, acc[1], t.f32(1.0f)),
                                        acc[1])};
      });
  auto toIndex = [&](Value x) -> Value {
    return arith::IndexCastOp::create(b, b.getIndexType(),
                                      arith::FPToUIOp::create(b, b.getI64Type(), x));
  };
  Value start = toIndex(t.minAcrossLanes(local[0]));
  return {start, t.addIndex(start, toIndex(t.sumAcrossLanes(local[1])))};
}

Value DeltaRuleItem::stateOffset() {
  Value slot = t.loadIndex(slots, sequence);
  return recurrentStateOffset(t, stateType, sizes.layer, slot, head);
}

void DeltaRuleItem::loadDecay() {
  ImplicitLocOpBuilder &b = t.builder();
  negA = arith::NegFOp::create(b, math::ExpOp::create(b, t.loadF32(aLog, head)));
  bias = t.loadF32(dtBias, head);
}

TokenGates DeltaRuleItem::gates(Value token) {
  ImplicitLocOpBuilder &b = t.builder();
  // beta = 1 / (1 + e^-b)
  Value raw = t.loadF32(beta, t.address(beta, token, Value(), head));
  Value one = t.f32(1.0f);
  Value betaT = arith::DivFOp::create(
      b, one, arith::AddFOp::create(b, one, math::ExpOp::create(b, arith::NegFOp::create(b, raw))));
  // g = negA softplus(a + dt_bias), softplus(x) = x above 20 (as torch).
  Value shifted = arith::AddFOp::create(b, t.loadF32(a, t.address(a, token, Value(), head)), bias);
  Value linear = arith::CmpFOp::create(b, arith::CmpFPredicate::OGT, shifted, t.f32(20.0f));
  Value smooth = math::Log1pOp::create(b, math::ExpOp::create(b, shifted));
  Value softplus = arith::SelectOp::create(b, linear, shifted, smooth);
  return {betaT, arith::MulFOp::create(b, negA, softplus)};
}

void DeltaRuleItem::normalizeRow(const RowAccess &from, Value token, Value row, Value rowBase,
                                 float factor, int64_t width) {
  ImplicitLocOpBuilder &b = t.builder();
  // Width 1 works on scalars (the GPU's lanes), wider on vectors (the CPU's).
  const bool scalars = width == 1;
  auto vecType = VectorType::get({width}, b.getF32Type());
  auto at = [&](Value col) { return rowBase ? t.addIndex(rowBase, col) : col; };
  auto loadRow = [&](Value pos) -> Value {
    return scalars ? Value(memref::LoadOp::create(b, row, ValueRange{pos}))
                   : t.loadScratch(row, pos, width);
  };
  auto storeRow = [&](Value x, Value pos) {
    if (scalars)
      memref::StoreOp::create(b, x, row, ValueRange{pos});
    else
      t.storeScratch(row, pos, x);
  };
  Value base = t.address(from, token, keyHead, Value());
  Value zero = scalars ? t.f32(0.0f)
                       : Value(arith::ConstantOp::create(b, DenseElementsAttr::get(vecType, 0.0f)));
  Value squares = t.forLanes(sizes.keyDim, width, zero, [&](Value col, Value acc) -> Value {
    Value flat = t.addIndex(base, col);
    Value x = scalars ? t.loadF32(from, flat) : t.loadVectorF32(from, flat, width);
    storeRow(x, at(col));
    return scalars ? Value(math::FmaOp::create(b, x, x, acc))
                   : Value(vector::FMAOp::create(b, x, x, acc));
  });
  if (!scalars)
    squares = vector::ReductionOp::create(b, vector::CombiningKind::ADD, squares);
  Value rowFactor = l2NormFactor(b, t.sumAcrossLanes(squares), factor,
                                 [&](Value x) { return t.rsqrt(x); });
  if (!scalars)
    rowFactor = vector::BroadcastOp::create(b, vecType, rowFactor);
  t.forLanes(sizes.keyDim, width, [&](Value col) {
    Value pos = at(col);
    storeRow(arith::MulFOp::create(b, loadRow(pos), rowFactor), pos);
  });
}

StepScalars DeltaRuleItem::prepareToken(Value token, Value q, Value k, int64_t width) {
  ImplicitLocOpBuilder &b = t.builder();
  KernelPhase phase(b, "delta_rule.load_qk");
  normalizeRow(query, token, q, Value(), sizes.scale, width);
  normalizeRow(key, token, k, Value(), 1.0f, width);
  t.barrier(); // q and k complete for every lane
  KernelPhase gatesPhase(b, "delta_rule.gates");
  TokenGates g = gates(token);
  return StepScalars{math::ExpOp::create(b, g.logDecay), g.beta, Value()};
}

Value DeltaRuleItem::valueColumns(const ColumnBlock &s, Value token) {
  return t.loadColumns(s, value, t.address(value, token, head, Value()));
}

void DeltaRuleItem::recurrentStep(ColumnBlock &s, const StepScalars &scalars, RowOperand q,
                                  RowOperand k, Value token, Value writer) {
  ImplicitLocOpBuilder &b = t.builder();
  Value o;
  {
    KernelPhase phase(b, "delta_rule.state_update");
    Value zero = t.splatColumns(s, t.f32(0.0f));
    // m = S^T k
    Value m = t.readRows(s, {k}, ValueRange{zero},
                         [&](Value row, ArrayRef<Value> c, ValueRange acc) -> SmallVector<Value> {
                           return {t.fma(c[0], row, acc[0])};
                         })[0];
    m = t.sumColumn(s, m);
    Value alpha = t.splatColumns(s, scalars.alpha);
    Value beta = t.splatColumns(s, scalars.beta);
    // d = beta (v - alpha m)
    Value d = arith::MulFOp::create(
        b, beta, arith::SubFOp::create(b, scalars.v, arith::MulFOp::create(b, alpha, m)));
    // S = alpha S + k d^T, o = S^T q
    o = t.updateRows(
        s, {k, q}, ValueRange{zero},
        [&](Value row, ArrayRef<Value> c) -> Value {
          return t.fma(c[0], d, arith::MulFOp::create(b, alpha, row));
        },
        [&](Value row, ArrayRef<Value> c, ValueRange acc) -> SmallVector<Value> {
          return {t.fma(c[1], row, acc[0])};
        })[0];
    o = t.sumColumn(s, o);
  }
  KernelPhase phase(b, "delta_rule.output");
  auto store = [&] { t.storeColumns(s, out, t.address(out, token, head, Value()), o); };
  if (writer)
    t.ifThen(writer, store);
  else
    store();
}
