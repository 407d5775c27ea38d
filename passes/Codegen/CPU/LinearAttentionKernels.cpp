//===- LinearAttentionKernels.cpp - CPU codegen for Gated DeltaNet --------===//
//
// conv:       Common/Conv.cpp (one work item per vector of channels)
// delta_rule: the gated delta rule, one work item per (request, value head)
//             on the f32 state held in the request's slot, token by token
//             (the chunked WY form of qwen-models.md §1.8 step 6 with chunks
//             of one token, which is the recurrent step)
// gated_norm: Common/Norms.cpp
//
// Every request's tokens are contiguous and in order in a ragged step, so
// "the previous token of the same request" is the previous row when its
// token_seq entry matches, and the state slot otherwise.
//
//===----------------------------------------------------------------------===//
#include "passes/Codegen/CPU/KernelEmitter.h"
#include "passes/Codegen/Common/RowFamilies.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen::cpu;

/// Tokens per chunk of the chunked delta rule. One: every token takes the
/// recurrent step, so the state and output after a token depend on the tokens
/// before it alone, not on how they were cut into steps. That makes a prefix
/// cache hit, a prompt split across steps and a decode step bit-identical to
/// one prefill (docs/DESIGN.md, "Prefix caching"). On the CPU it costs no
/// prefill speed: a chunk of 64 (HF, FLA) does more arithmetic per token
/// (3 dk dv + 64 (dk + dv) FMAs against 3 dk dv), and the 64 KiB state of a
/// head stays in L2 either way.
static constexpr int64_t kChunk = 1;

FailureOr<SmallVector<Attribute>> qwen::codegen::cpu::emitConvKernel(KernelEmitter &e) {
  return codegen::lowerConvKernel(e);
}

FailureOr<SmallVector<Attribute>>
qwen::codegen::cpu::emitDeltaRuleKernel(KernelEmitter &e) {
  func::FuncOp source = e.source();
  auto matched = codegen::matchSingleOpKernel<qtf::GatedDeltaRuleOp>(source, "delta_rule");
  if (failed(matched))
    return failure();
  qtf::GatedDeltaRuleOp rule = matched->first;
  unsigned output = matched->second;
  const codegen::DeltaRuleSizes sizes = codegen::getDeltaRuleSizes(rule);
  const int64_t heads = sizes.heads, dk = sizes.keyDim, dv = sizes.valueDim,
                layer = sizes.layer, group = sizes.group;
  const float scale = sizes.scale;
  const int64_t kWidth = e.vectorWidthFor(dk), vWidth = e.vectorWidthFor(dv);

  e.createFunction([&](Value item) {
    ImplicitLocOpBuilder &b = e.builder();
    Type f32 = b.getF32Type();
    auto kVec = VectorType::get({kWidth}, f32), vVec = VectorType::get({vWidth}, f32);
    RowAccess query = e.access(rule.getQuery()), key = e.access(rule.getKey()),
              value = e.access(rule.getValue()), a = e.access(rule.getA()),
              beta = e.access(rule.getB()), aLog = e.access(rule.getALog()),
              dtBias = e.access(rule.getDtBias()), tokenSeq = e.access(rule.getTokenSeq()),
              slots = e.access(rule.getStateSlots());
    RowAccess recurrent = e.stateArrays(rule.getState()).second;
    RowAccess out = e.result(output);
    // Chunk scratch: rows i of Q, K (then the decayed K), W; U (then Vn) and O.
    Value qs = e.scratchRow(kChunk * dk), ks = e.scratchRow(kChunk * dk),
          ws = e.scratchRow(kChunk * dk), us = e.scratchRow(kChunk * dv),
          os = e.scratchRow(kChunk * dv), betas = e.scratchRow(kChunk),
          gammas = e.scratchRow(kChunk);

    Value sequence = arith::DivUIOp::create(b, item, e.index(heads));
    Value head = arith::RemUIOp::create(b, item, e.index(heads));
    Value keyHead = arith::DivUIOp::create(b, head, e.index(group));
    Value slot = e.loadIndex(slots, sequence);
    // S of this (slot, layer, head): [key_dim][value_dim] f32.
    Value stateBase = codegen::recurrentStateOffset(e, rule.getState().getType(), layer, slot, head);
    // Decay rate -exp(A_log), f32 as HF computes it.
    Value negA = arith::NegFOp::create(b, math::ExpOp::create(b, e.loadF32(aLog, head)));
    Value bias = e.loadF32(dtBias, head);
    Value zeroK = arith::ConstantOp::create(b, DenseElementsAttr::get(kVec, 0.0f));
    Value zeroV = arith::ConstantOp::create(b, DenseElementsAttr::get(vVec, 0.0f));
    Value one = e.f32(1.0f);
    auto load = [&](Value memref, Value at) -> Value {
      return memref::LoadOp::create(b, memref, ValueRange{at});
    };
    auto exp = [&](Value x) -> Value { return math::ExpOp::create(b, x); };
    auto mulf = [&](Value x, Value y) -> Value { return arith::MulFOp::create(b, x, y); };
    auto splatV = [&](Value x) -> Value { return vector::BroadcastOp::create(b, vVec, x); };
    /// dot(x[xBase : xBase + dk], y[yBase : yBase + dk]) over scratch rows.
    auto dotK = [&](Value x, Value xBase, Value y, Value yBase) -> Value {
      Value sum = e.forLoop(e.index(0), e.index(dk), kWidth, ValueRange{zeroK},
                            [&](Value d, ValueRange acc) -> SmallVector<Value> {
        Value xv = vector::LoadOp::create(b, kVec, x, ValueRange{e.addIndex(xBase, d)});
        Value yv = vector::LoadOp::create(b, kVec, y, ValueRange{e.addIndex(yBase, d)});
        return {vector::FMAOp::create(b, xv, yv, acc[0])};
      })[0];
      return vector::ReductionOp::create(b, vector::CombiningKind::ADD, sum);
    };
    /// row[rowBase + j] += factor * from[fromBase + j] for j < dv.
    auto axpyV = [&](Value row, Value rowBase, Value factor, Value from, Value fromBase) {
      Value f = splatV(factor);
      e.forLoop(e.index(0), e.index(dv), vWidth, [&](Value j) {
        Value at = e.addIndex(rowBase, j);
        Value x = vector::LoadOp::create(b, vVec, from, ValueRange{e.addIndex(fromBase, j)});
        Value y = vector::LoadOp::create(b, vVec, row, ValueRange{at});
        vector::StoreOp::create(b, vector::FMAOp::create(b, f, x, y), row, ValueRange{at});
      });
    };
    /// Copies a [dk] row of `from` into scratch row `to[toBase:]`,
    /// L2-normalized (eps 1e-6 on the sum of squares) and times `factor`.
    auto loadNormalized = [&](const RowAccess &from, Value t, Value to, Value toBase, float factor) {
      Value base = e.address(from, t, keyHead, Value());
      Value squares = e.forLoop(e.index(0), e.index(dk), kWidth, ValueRange{zeroK},
                                [&](Value d, ValueRange acc) -> SmallVector<Value> {
        Value x = e.loadVectorF32(from, e.addIndex(base, d), kWidth);
        vector::StoreOp::create(b, x, to, ValueRange{e.addIndex(toBase, d)});
        return {vector::FMAOp::create(b, x, x, acc[0])};
      })[0];
      Value sum = vector::ReductionOp::create(b, vector::CombiningKind::ADD, squares);
      Value inv = math::RsqrtOp::create(b, arith::AddFOp::create(b, sum, e.f32(1e-6f)));
      Value factorVec = vector::BroadcastOp::create(b, kVec, mulf(inv, e.f32(factor)));
      e.forLoop(e.index(0), e.index(dk), kWidth, [&](Value d) {
        Value at = e.addIndex(toBase, d);
        Value x = vector::LoadOp::create(b, kVec, to, ValueRange{at});
        vector::StoreOp::create(b, mulf(x, factorVec), to, ValueRange{at});
      });
    };

    // This request's rows: contiguous, [start, start + count).
    Value T = e.dim("T");
    ValueRange run = e.forLoop(e.index(0), T, 1, ValueRange{e.index(0), e.index(0)},
                               [&](Value t, ValueRange acc) -> SmallVector<Value> {
      Value mine = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, e.loadIndex(tokenSeq, t),
                                         sequence);
      Value first = arith::AndIOp::create(
          b, mine, arith::CmpIOp::create(b, arith::CmpIPredicate::eq, acc[1], e.index(0)));
      return {arith::SelectOp::create(b, first, t, acc[0]),
              arith::SelectOp::create(b, mine, e.addIndex(acc[1], e.index(1)), acc[1])};
    });
    Value start = run[0], end = e.addIndex(run[0], run[1]);

    e.forLoop(start, end, kChunk, [&](Value chunkStart) {
      Value n = arith::MinUIOp::create(b, e.index(kChunk),
                                       arith::SubIOp::create(b, end, chunkStart));
      // 1. Normalized q (scaled) and k, raw v, beta and the cumulative log decay.
      e.forLoop(e.index(0), n, 1, ValueRange{e.f32(0.0f)},
                [&](Value i, ValueRange acc) -> SmallVector<Value> {
        Value t = e.addIndex(chunkStart, i);
        loadNormalized(query, t, qs, e.mulIndex(i, dk), scale);
        loadNormalized(key, t, ks, e.mulIndex(i, dk), 1.0f);
        Value valueBase = e.address(value, t, head, Value());
        e.forLoop(e.index(0), e.index(dv), vWidth, [&](Value j) {
          vector::StoreOp::create(b, e.loadVectorF32(value, e.addIndex(valueBase, j), vWidth), us,
                                  ValueRange{e.addIndex(e.mulIndex(i, dv), j)});
        });
        // beta = sigmoid(b); g = -exp(A_log) * softplus(a + dt_bias)
        // (softplus(x) = x above 20, as torch).
        Value bt = e.loadF32(beta, e.address(beta, t, Value(), head));
        Value betaT = arith::DivFOp::create(
            b, one, arith::AddFOp::create(b, one, exp(arith::NegFOp::create(b, bt))));
        Value shifted = arith::AddFOp::create(b, e.loadF32(a, e.address(a, t, Value(), head)), bias);
        Value softplus = arith::SelectOp::create(
            b, arith::CmpFOp::create(b, arith::CmpFPredicate::OGT, shifted, e.f32(20.0f)), shifted,
            math::Log1pOp::create(b, exp(shifted)));
        Value gamma = arith::AddFOp::create(b, acc[0], mulf(negA, softplus));
        memref::StoreOp::create(b, betaT, betas, ValueRange{i});
        memref::StoreOp::create(b, gamma, gammas, ValueRange{i});
        return {gamma};
      });

      // 2. WY transform by forward substitution, (I + L) [U | W] = [diag(beta) V | diag(beta e^gamma) K]
      //    with L_ij = beta_i (k_i . k_j) e^(gamma_i - gamma_j) for j < i.
      e.forLoop(e.index(0), n, 1, [&](Value i) {
        Value bi = load(betas, i), gi = load(gammas, i);
        Value ui = e.mulIndex(i, dv), ki = e.mulIndex(i, dk);
        Value bv = splatV(bi);
        e.forLoop(e.index(0), e.index(dv), vWidth, [&](Value j) {
          Value at = e.addIndex(ui, j);
          vector::StoreOp::create(b, mulf(bv, vector::LoadOp::create(b, vVec, us, ValueRange{at})),
                                  us, ValueRange{at});
        });
        Value bk = vector::BroadcastOp::create(b, kVec, mulf(bi, exp(gi)));
        e.forLoop(e.index(0), e.index(dk), kWidth, [&](Value d) {
          Value at = e.addIndex(ki, d);
          vector::StoreOp::create(b, mulf(bk, vector::LoadOp::create(b, kVec, ks, ValueRange{at})),
                                  ws, ValueRange{at});
        });
        e.forLoop(e.index(0), i, 1, [&](Value j) {
          Value kj = e.mulIndex(j, dk);
          Value lij = mulf(mulf(bi, dotK(ks, ki, ks, kj)),
                           exp(arith::SubFOp::create(b, gi, load(gammas, j))));
          Value minus = arith::NegFOp::create(b, lij);
          axpyV(us, ui, minus, us, e.mulIndex(j, dv));
          Value f = vector::BroadcastOp::create(b, kVec, minus);
          e.forLoop(e.index(0), e.index(dk), kWidth, [&](Value d) {
            Value at = e.addIndex(ki, d);
            Value x = vector::LoadOp::create(b, kVec, ws, ValueRange{e.addIndex(kj, d)});
            Value y = vector::LoadOp::create(b, kVec, ws, ValueRange{at});
            vector::StoreOp::create(b, vector::FMAOp::create(b, f, x, y), ws, ValueRange{at});
          });
        });
      });

      // 3. One read of S: Vn = U - W S (in place in U), O = diag(e^gamma) Q S.
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
            Value sv = e.loadVectorF32(recurrent, e.addIndex(rowBase, j), vWidth);
            Value at = e.addIndex(ui, j);
            Value u = vector::LoadOp::create(b, vVec, us, ValueRange{at});
            vector::StoreOp::create(b, vector::FMAOp::create(b, w, sv, u), us, ValueRange{at});
            Value o = vector::LoadOp::create(b, vVec, os, ValueRange{at});
            vector::StoreOp::create(b, vector::FMAOp::create(b, q, sv, o), os, ValueRange{at});
          });
        });
      });

      // 4. Intra-chunk: O_i += sum_{j <= i} (q_i . k_j) e^(gamma_i - gamma_j) Vn_j; store O.
      e.forLoop(e.index(0), n, 1, [&](Value i) {
        Value qi = e.mulIndex(i, dk), oi = e.mulIndex(i, dv), gi = load(gammas, i);
        e.forLoop(e.index(0), e.addIndex(i, e.index(1)), 1, [&](Value j) {
          Value c = mulf(dotK(qs, qi, ks, e.mulIndex(j, dk)),
                         exp(arith::SubFOp::create(b, gi, load(gammas, j))));
          axpyV(os, oi, c, us, e.mulIndex(j, dv));
        });
        Value outBase = e.address(out, e.addIndex(chunkStart, i), head, Value());
        e.forLoop(e.index(0), e.index(dv), vWidth, [&](Value j) {
          e.storeVectorF32(out, e.addIndex(outBase, j),
                           vector::LoadOp::create(b, vVec, os, ValueRange{e.addIndex(oi, j)}));
        });
      });

      // 5. S = e^gamma_last S + sum_i (e^(gamma_last - gamma_i) k_i) Vn_i^T.
      Value last = load(gammas, arith::SubIOp::create(b, n, e.index(1)));
      e.forLoop(e.index(0), n, 1, [&](Value i) {
        Value f = vector::BroadcastOp::create(
            b, kVec, exp(arith::SubFOp::create(b, last, load(gammas, i))));
        Value ki = e.mulIndex(i, dk);
        e.forLoop(e.index(0), e.index(dk), kWidth, [&](Value d) {
          Value at = e.addIndex(ki, d);
          vector::StoreOp::create(b, mulf(f, vector::LoadOp::create(b, kVec, ks, ValueRange{at})),
                                  ks, ValueRange{at});
        });
      });
      Value decay = splatV(exp(last));
      e.forLoop(e.index(0), e.index(dk), 1, [&](Value r) {
        Value rowBase = e.addIndex(stateBase, e.mulIndex(r, dv));
        e.forLoop(e.index(0), e.index(dv), vWidth, [&](Value j) {
          Value at = e.addIndex(rowBase, j);
          Value init = mulf(decay, e.loadVectorF32(recurrent, at, vWidth));
          Value sum = e.forLoop(e.index(0), n, 1, ValueRange{init},
                                [&](Value i, ValueRange acc) -> SmallVector<Value> {
            Value k = splatV(load(ks, e.addIndex(e.mulIndex(i, dk), r)));
            Value u = vector::LoadOp::create(b, vVec, us,
                                             ValueRange{e.addIndex(e.mulIndex(i, dv), j)});
            return {vector::FMAOp::create(b, k, u, acc[0])};
          })[0];
          e.storeVectorF32(recurrent, at, sum);
        });
      });
    });
  });
  Builder builder(source.getContext());
  return SmallVector<Attribute>{builder.getStringAttr("B"), builder.getI64IntegerAttr(heads)};
}

FailureOr<SmallVector<Attribute>>
qwen::codegen::cpu::emitGatedNormKernel(KernelEmitter &e) {
  return codegen::lowerGatedNormKernel(e);
}
