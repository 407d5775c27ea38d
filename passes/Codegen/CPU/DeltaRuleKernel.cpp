//===- DeltaRuleKernel.cpp - CPU codegen for the gated delta rule ---------===//
//
// delta_rule: the gated delta rule, one work item per (request, value head)
// on the f32 state held in the request's slot: the chunked WY form of
// qwen-models.md section 1.8 step 6 in chunks of the schedule's tile of
// tokens (one, chosen in CpuSchedules.cpp: the recurrent step). Every
// request's tokens are contiguous and in order in a ragged step.
//
// Phases (KernelPhase names, in order; test/Codegen/CPU/delta-rule-phases.mlir):
//   delta_rule.find_run       the request's rows [start, end)
//   delta_rule.chunk_loop     per chunk of `chunk` tokens (the schedule's tile):
//     delta_rule.load_qk        q (scaled), k L2-normalized -> qs, ks; v -> us
//       delta_rule.gates          beta -> betas, gamma = cumsum(g) -> gammas
//     delta_rule.wy_transform   (I + L)[U | W] = [diag(beta) V | diag(beta e^gamma) K]
//     delta_rule.state_read     Vn = U - W S (in us), O = diag(e^gamma) Q S (in os)
//     delta_rule.output         O += intra-chunk attention; O stored
//     delta_rule.state_update   S = e^gamma_last S + sum_i (e^(gamma_last - gamma_i) k_i) Vn_i^T
// The operands, gates and q / k normalization are Common/DeltaRule's, shared
// with the GPU; the phases over S are the CPU's schedule (DeltaRule.h).
//
//===----------------------------------------------------------------------===//
#include "passes/Codegen/CPU/KernelEmitter.h"
#include "qwen/Passes/Codegen/Common/DeltaRule.h"
#include "qwen/Passes/Codegen/Common/KernelPhase.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen::cpu;
using qwen::codegen::KernelPhase;


namespace {

/// The emitter of one delta-rule work item, one method per phase.
class CpuDeltaRule {
public:
  CpuDeltaRule(KernelEmitter &e, qtf::GatedDeltaRuleOp rule, unsigned output)
      : e(e), b(e.builder()), dr(e, rule, output) {
    dk = dr.sizes.keyDim;
    dv = dr.sizes.valueDim;
    chunk = e.schedule().tileSize(0);
    kWidth = e.rowWidth(dk);
    vWidth = e.rowWidth(dv);
    kVec = VectorType::get({kWidth}, b.getF32Type());
    vVec = VectorType::get({vWidth}, b.getF32Type());
  }

  void emit(Value item) {
    setUp(item);
    std::tie(start, end) = dr.findRun();
    KernelPhase phase(b, "delta_rule.chunk_loop");
    e.forLoop(start, end, chunk, [&](Value chunkStart) {
      Value n = arith::MinUIOp::create(b, e.index(chunk), arith::SubIOp::create(b, end, chunkStart));
      loadChunk(chunkStart, n);
      transformWY(n);
      readState(n);
      storeOutput(chunkStart, n);
      updateState(n);
    });
  }

private:
  Value load(Value memref, Value at) { return memref::LoadOp::create(b, memref, ValueRange{at}); }
  Value exp(Value x) { return math::ExpOp::create(b, x); }
  Value mulf(Value x, Value y) { return arith::MulFOp::create(b, x, y); }
  Value splatV(Value x) { return vector::BroadcastOp::create(b, vVec, x); }
  Value dotK(Value x, Value xBase, Value y, Value yBase);
  void axpy(Value row, Value rowBase, Value factor, Value from, Value fromBase, int64_t length,
            VectorType type);
  void setUp(Value item);
  void loadChunk(Value chunkStart, Value n);
  void transformWY(Value n);
  void readState(Value n);
  void storeOutput(Value chunkStart, Value n);
  void updateState(Value n);

  KernelEmitter &e;
  ImplicitLocOpBuilder &b;
  codegen::DeltaRuleItem dr;
  int64_t dk, dv, chunk, kWidth, vWidth;
  VectorType kVec, vVec;
  // Chunk scratch: rows i of Q, K (then the decayed K), W; U (then Vn) and O.
  Value qs, ks, ws, us, os, betas, gammas;
  Value stateBase, zeroK, zeroV, start, end;
};

} // namespace

/// dot(x[xBase : xBase + dk], y[yBase : yBase + dk]) over scratch rows.
Value CpuDeltaRule::dotK(Value x, Value xBase, Value y, Value yBase) {
  Value sum = e.forLoop(e.index(0), e.index(dk), kWidth, ValueRange{zeroK},
                        [&](Value d, ValueRange acc) -> SmallVector<Value> {
    Value xv = vector::LoadOp::create(b, kVec, x, ValueRange{e.addIndex(xBase, d)});
    Value yv = vector::LoadOp::create(b, kVec, y, ValueRange{e.addIndex(yBase, d)});
    return {vector::FMAOp::create(b, xv, yv, acc[0])};
  })[0];
  return vector::ReductionOp::create(b, vector::CombiningKind::ADD, sum);
}

/// row[rowBase + j] += factor * from[fromBase + j] for j < length, in
/// vectors of `type` (vVec for dv, kVec for dk).
void CpuDeltaRule::axpy(Value row, Value rowBase, Value factor, Value from, Value fromBase,
                        int64_t length, VectorType type) {
  Value f = vector::BroadcastOp::create(b, type, factor);
  const int64_t width = type.getNumElements();
  e.forLoop(e.index(0), e.index(length), width, [&](Value j) {
    Value at = e.addIndex(rowBase, j);
    Value x = vector::LoadOp::create(b, type, from, ValueRange{e.addIndex(fromBase, j)});
    Value y = vector::LoadOp::create(b, type, row, ValueRange{at});
    vector::StoreOp::create(b, vector::FMAOp::create(b, f, x, y), row, ValueRange{at});
  });
}

/// Operands, chunk scratch, and of this (request, head): its state slot's
/// S [key_dim][value_dim] f32 at `stateBase`, `negA` = -exp(A_log), `bias`.
void CpuDeltaRule::setUp(Value item) {
  qs = e.scratchRow(chunk * dk), ks = e.scratchRow(chunk * dk), ws = e.scratchRow(chunk * dk),
  us = e.scratchRow(chunk * dv), os = e.scratchRow(chunk * dv), betas = e.scratchRow(chunk),
  gammas = e.scratchRow(chunk);

  dr.locate(item);
  stateBase = dr.stateOffset();
  dr.loadDecay();
  zeroK = arith::ConstantOp::create(b, DenseElementsAttr::get(kVec, 0.0f));
  zeroV = arith::ConstantOp::create(b, DenseElementsAttr::get(vVec, 0.0f));
}

/// 1. Normalized q (scaled) and k into qs / ks, raw v into us, beta into
/// betas and the cumulative log decay gamma into gammas.
void CpuDeltaRule::loadChunk(Value chunkStart, Value n) {
  KernelPhase phase(b, "delta_rule.load_qk");
  e.forLoop(e.index(0), n, 1, ValueRange{e.f32(0.0f)},
            [&](Value i, ValueRange acc) -> SmallVector<Value> {
    Value t = e.addIndex(chunkStart, i);
    dr.normalizeRow(dr.query, t, qs, e.mulIndex(i, dk), dr.sizes.scale, kWidth);
    dr.normalizeRow(dr.key, t, ks, e.mulIndex(i, dk), 1.0f, kWidth);
    Value valueBase = e.address(dr.value, t, dr.head, Value());
    e.forLoop(e.index(0), e.index(dv), vWidth, [&](Value j) {
      vector::StoreOp::create(b, e.loadVectorF32(dr.value, e.addIndex(valueBase, j), vWidth), us,
                              ValueRange{e.addIndex(e.mulIndex(i, dv), j)});
    });
    KernelPhase gates(b, "delta_rule.gates");
    codegen::TokenGates g = dr.gates(t);
    Value gamma = arith::AddFOp::create(b, acc[0], g.logDecay);
    memref::StoreOp::create(b, g.beta, betas, ValueRange{i});
    memref::StoreOp::create(b, gamma, gammas, ValueRange{i});
    return {gamma};
  });
}

/// 2. WY transform by forward substitution, (I + L) [U | W] = [diag(beta) V |
/// diag(beta e^gamma) K] with L_ij = beta_i (k_i . k_j) e^(gamma_i - gamma_j)
/// for j < i: U in us, W in ws.
void CpuDeltaRule::transformWY(Value n) {
  KernelPhase phase(b, "delta_rule.wy_transform");
  e.forLoop(e.index(0), n, 1, [&](Value i) {
    Value bi = load(betas, i), gi = load(gammas, i);
    Value ui = e.mulIndex(i, dv), ki = e.mulIndex(i, dk);
    Value bv = splatV(bi);
    e.forLoop(e.index(0), e.index(dv), vWidth, [&](Value j) {
      Value at = e.addIndex(ui, j);
      vector::StoreOp::create(b, mulf(bv, vector::LoadOp::create(b, vVec, us, ValueRange{at})), us,
                              ValueRange{at});
    });
    Value bk = vector::BroadcastOp::create(b, kVec, mulf(bi, exp(gi)));
    e.forLoop(e.index(0), e.index(dk), kWidth, [&](Value d) {
      Value at = e.addIndex(ki, d);
      vector::StoreOp::create(b, mulf(bk, vector::LoadOp::create(b, kVec, ks, ValueRange{at})), ws,
                              ValueRange{at});
    });
    e.forLoop(e.index(0), i, 1, [&](Value j) {
      Value kj = e.mulIndex(j, dk);
      Value lij =
          mulf(mulf(bi, dotK(ks, ki, ks, kj)), exp(arith::SubFOp::create(b, gi, load(gammas, j))));
      Value minus = arith::NegFOp::create(b, lij);
      axpy(us, ui, minus, us, e.mulIndex(j, dv), dv, vVec);
      axpy(ws, ki, minus, ws, kj, dk, kVec);
    });
  });
}

/// 3. One read of S: Vn = U - W S (in place in us), O = diag(e^gamma) Q S in os.
void CpuDeltaRule::readState(Value n) {
  KernelPhase phase(b, "delta_rule.state_read");
  e.forLoop(e.index(0), e.mulIndex(n, dv), vWidth, [&](Value j) {
    vector::StoreOp::create(b, zeroV, os, ValueRange{j});
  });
  e.forLoop(e.index(0), e.index(dk), 1, [&](Value r) {
    Value rowBase = e.addIndex(stateBase, e.mulIndex(r, dv));
    e.forLoop(e.index(0), n, 1, [&](Value i) {
      Value w = splatV(arith::NegFOp::create(b, load(ws, e.addIndex(e.mulIndex(i, dk), r))));
      Value q = splatV(mulf(load(qs, e.addIndex(e.mulIndex(i, dk), r)), exp(load(gammas, i))));
      Value ui = e.mulIndex(i, dv);
      e.forLoop(e.index(0), e.index(dv), vWidth, [&](Value j) {
        Value sv = e.loadVectorF32(dr.recurrent, e.addIndex(rowBase, j), vWidth);
        Value at = e.addIndex(ui, j);
        Value u = vector::LoadOp::create(b, vVec, us, ValueRange{at});
        vector::StoreOp::create(b, vector::FMAOp::create(b, w, sv, u), us, ValueRange{at});
        Value o = vector::LoadOp::create(b, vVec, os, ValueRange{at});
        vector::StoreOp::create(b, vector::FMAOp::create(b, q, sv, o), os, ValueRange{at});
      });
    });
  });
}

/// 4. Intra-chunk: O_i += sum_{j <= i} (q_i . k_j) e^(gamma_i - gamma_j) Vn_j;
/// O stored to the output rows.
void CpuDeltaRule::storeOutput(Value chunkStart, Value n) {
  KernelPhase phase(b, "delta_rule.output");
  e.forLoop(e.index(0), n, 1, [&](Value i) {
    Value qi = e.mulIndex(i, dk), oi = e.mulIndex(i, dv), gi = load(gammas, i);
    e.forLoop(e.index(0), e.addIndex(i, e.index(1)), 1, [&](Value j) {
      Value c = mulf(dotK(qs, qi, ks, e.mulIndex(j, dk)),
                     exp(arith::SubFOp::create(b, gi, load(gammas, j))));
      axpy(os, oi, c, us, e.mulIndex(j, dv), dv, vVec);
    });
    Value outBase = e.address(dr.out, e.addIndex(chunkStart, i), dr.head, Value());
    e.forLoop(e.index(0), e.index(dv), vWidth, [&](Value j) {
      e.storeVectorF32(dr.out, e.addIndex(outBase, j),
                       vector::LoadOp::create(b, vVec, os, ValueRange{e.addIndex(oi, j)}));
    });
  });
}

/// 5. S = e^gamma_last S + sum_i (e^(gamma_last - gamma_i) k_i) Vn_i^T, in
/// the state slot (ks decayed in place first).
void CpuDeltaRule::updateState(Value n) {
  KernelPhase phase(b, "delta_rule.state_update");
  Value last = load(gammas, arith::SubIOp::create(b, n, e.index(1)));
  e.forLoop(e.index(0), n, 1, [&](Value i) {
    Value f = vector::BroadcastOp::create(b, kVec, exp(arith::SubFOp::create(b, last, load(gammas, i))));
    Value ki = e.mulIndex(i, dk);
    e.forLoop(e.index(0), e.index(dk), kWidth, [&](Value d) {
      Value at = e.addIndex(ki, d);
      vector::StoreOp::create(b, mulf(f, vector::LoadOp::create(b, kVec, ks, ValueRange{at})), ks,
                              ValueRange{at});
    });
  });
  Value decay = splatV(exp(last));
  e.forLoop(e.index(0), e.index(dk), 1, [&](Value r) {
    Value rowBase = e.addIndex(stateBase, e.mulIndex(r, dv));
    e.forLoop(e.index(0), e.index(dv), vWidth, [&](Value j) {
      Value at = e.addIndex(rowBase, j);
      Value init = mulf(decay, e.loadVectorF32(dr.recurrent, at, vWidth));
      Value sum = e.forLoop(e.index(0), n, 1, ValueRange{init},
                            [&](Value i, ValueRange acc) -> SmallVector<Value> {
        Value k = splatV(load(ks, e.addIndex(e.mulIndex(i, dk), r)));
        Value u = vector::LoadOp::create(b, vVec, us, ValueRange{e.addIndex(e.mulIndex(i, dv), j)});
        return {vector::FMAOp::create(b, k, u, acc[0])};
      })[0];
      e.storeVectorF32(dr.recurrent, at, sum);
    });
  });
}

FailureOr<SmallVector<Attribute>>
qwen::codegen::cpu::emitDeltaRuleKernel(KernelEmitter &e) {
  func::FuncOp source = e.source();
  auto matched = codegen::matchSingleOpKernel<qtf::GatedDeltaRuleOp>(source, "delta_rule");
  if (failed(matched))
    return failure();
  qtf::GatedDeltaRuleOp rule = matched->first;
  const unsigned output = matched->second;
  if (e.schedule().tileSize(0) < 1)
    return source.emitOpError("delta_rule needs a schedule with tile = [tokens per chunk]"),
           failure();
  e.createFunction([&](Value item) { CpuDeltaRule(e, rule, output).emit(item); });
  Builder builder(source.getContext());
  return SmallVector<Attribute>{builder.getStringAttr("B"),
                                builder.getI64IntegerAttr(codegen::getDeltaRuleSizes(rule).heads)};
}

void qwen::codegen::cpu::populateDeltaRulePatterns(RewritePatternSet &patterns,
                                                   CpuKernelLowering &lowering) {
  patterns.add<CpuKernelPattern>(patterns.getContext(), qkernel::KernelKind::DeltaRule,
                                 emitDeltaRuleKernel, lowering);
}
