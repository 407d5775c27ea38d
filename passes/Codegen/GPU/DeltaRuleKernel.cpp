//===- DeltaRuleKernel.cpp - GPU codegen for the gated delta rule ---------===//
//
// The gated delta rule, one block per (request, value head) (grid ["B", heads]);
// every request's tokens are contiguous and in order in a ragged step.
// Column j of the request's f32 state S [key_dim][value_dim] belongs to
// `split` consecutive lanes, lane p of them holding rows p, p + split, ... in
// registers for the whole step (read from the slot once, written back once);
// split is the smallest power of two that leaves each thread at most 32 rows
// (1 for key_dim <= 32, 4 for 128); a column's partial dot products are
// summed with xor shuffles. A run of one token (decode) takes the recurrent
// step: m = S^T k; d = beta (v - alpha m); S = alpha S + k d^T; o = S^T q
// (with the updated S). A longer run (prefill) takes the chunked WY form of
// the CPU codegen (qwen-models.md 1.8 step 6) in chunks of C tokens, S in the
// same registers: C is the largest of 64 / 32 / 16 / 8 whose shared chunk
// buffer (Q, K, W [C][key_dim] (Q, K rows padded), U [C][value_dim], L, A
// [C][C], beta, gamma) fits the 48 KiB of static shared memory (16 for
// key_dim = value_dim = 128, 34 KiB; 32 for key_dim 64), with 6 barriers per
// chunk. Each thread accumulates in the CPU's order (fused multiply-adds
// over increasing i, and with split = 1 over increasing key rows); the dot
// products of step 2 sum in another order. A state too large for registers
// (more than 32 rows per thread, or a block over 512 threads) stays in the
// slot: one thread per column, read and written there per token.
//
// Phases (KernelPhase names; test/Codegen/GPU/delta-rule-phases.mlir):
//   delta_rule.find_run        the request's run [start, end)
//   chunked (prefill), per chunk in delta_rule.chunk_loop:
//     delta_rule.load_qk         1. q, k, v, beta, g of the chunk's tokens
//       delta_rule.gates           beta and g per token; gamma = cumsum(g)
//     delta_rule.chunk_products  2. L and A from the chunk's k.k and q.k
//     delta_rule.wy_transform    3. U and W by forward substitution
//     delta_rule.output          4. Vn = U - W S, o = inter-chunk + intra-chunk
//     delta_rule.state_update    5. S = e^gamma_last S + K^T Vn
//   recurrent (decode), per token in delta_rule.token_loop:
//     delta_rule.load_qk, delta_rule.gates, delta_rule.state_update (m, d,
//     S and o = S^T q), delta_rule.output
//   delta_rule.store_state      S back to the slot
// The operands, gates, q / k normalization and the recurrent step over S
// (DeltaRuleItem::recurrentStep on this thread's ColumnBlock) are
// Common/DeltaRule's, shared with the CPU; the chunked phases are the GPU's.
//
//===----------------------------------------------------------------------===//
#include "passes/Codegen/GPU/GpuKernelEmitter.h"
#include "qwen/Passes/Schedule/Schedules.h"
#include "qwen/Passes/Codegen/Common/DeltaRule.h"
#include "qwen/Passes/Codegen/Common/KernelPhase.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

#include <algorithm>

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen::gpu;
using qwen::codegen::KernelPhase;

namespace {
/// How a delta_rule block splits S (the kernel's #qkernel.schedule, chosen in
/// passes/Schedule/GpuSchedules.cpp): `split` threads (consecutive lanes)
/// per value column, each holding key rows p, p + split, ... in registers;
/// schedule lanes = 0 when the state stays in global memory.
struct DeltaRulePlan {
  int64_t split = 1;
  int64_t threads = 32;
  bool inRegisters = true;
};

DeltaRulePlan planOf(qkernel::ScheduleAttr schedule) {
  return {std::max<int64_t>(schedule.getLanes(), 1), schedule.getThreads(),
          schedule.getLanes() > 0};
}
} // namespace

using schedule::deltarule::chunkBufferFloats;
using schedule::deltarule::pairLanes;
using schedule::deltarule::qkStride;

namespace {

/// The delta-rule kernel of one gated_delta_rule, one method per phase.
/// Members set by a phase are read by the later ones.
class GpuDeltaRule {
public:
  /// Binds the rule's operands: call inside the kernel being created.
  GpuDeltaRule(GpuKernelEmitter &e, qtf::GatedDeltaRuleOp rule, unsigned output)
      : e(e), dr(e, rule, output), sizes(dr.sizes), plan(planOf(e.options().schedule)) {
    dk = sizes.keyDim;
    dv = sizes.valueDim;
    split = plan.split;
    threads = plan.threads;
    rowsPerThread = dk / split;
    // tile = [C]: chunked prefill in chunks of C tokens.
    chunk = plan.inRegisters ? e.options().schedule.tileSize(0) : 0;
  }
  void emitBody();

private:
  ImplicitLocOpBuilder &b() { return e.builder(); }
  Value ult(Value x, Value y) { return arith::CmpIOp::create(b(), arith::CmpIPredicate::ult, x, y); }
  Value andi(Value x, Value y) { return arith::AndIOp::create(b(), x, y); }
  Value mulf(Value x, Value y) { return arith::MulFOp::create(b(), x, y); }
  Value fma(Value x, Value y, Value z) { return math::FmaOp::create(b(), x, y, z); }
  Value exp(Value x) { return math::ExpOp::create(b(), x); }
  Value isZero(Value x) { return arith::CmpIOp::create(b(), arith::CmpIPredicate::eq, x, e.index(0)); }
  /// Key row of this thread's r-th register.
  Value rowOf(int64_t r) { return e.addIndex(part, e.index(r * split)); }
  /// Sums the partial dot products of a column's `split` threads (xor
  /// butterfly: every one of them gets the same sum).
  Value columnSum(Value partial) { return split > 1 ? e.laneSum(partial, split) : partial; }
  Value ld(Value at) { return memref::LoadOp::create(b(), chunkBuffer, ValueRange{at}); }
  void st(Value x, Value at) { memref::StoreOp::create(b(), x, chunkBuffer, ValueRange{at}); }
  /// Flat index of element (row, col) of the [C][width] chunk tile at `offset`.
  Value tile(int64_t offset, Value row, int64_t width, Value col) {
    return e.addIndex(e.addIndex(e.index(offset), e.mulIndex(row, width)), col);
  }

  void setUp();
  codegen::StepScalars prepare(Value t);
  SmallVector<Value> recurrentRun(ValueRange rowsIn);
  SmallVector<Value> chunkedRun(ValueRange rowsIn);
  void chunkLoadTokens(Value chunkStart, Value n, Value nLast);
  void chunkNormalizeInto(const RowAccess &from, Value t, Value i, Value valid, int64_t offset,
                          float factor);
  void chunkProducts(Value n);
  Value chunkTransformWY(Value n, Value nLast);
  void chunkOutput(Value chunkStart, Value n, ValueRange s);
  SmallVector<Value> chunkUpdateState(Value n, Value gammaLast, ValueRange s);
  void memoryRun();

  GpuKernelEmitter &e;
  codegen::DeltaRuleItem dr;
  const codegen::DeltaRuleSizes &sizes;
  DeltaRulePlan plan;
  int64_t dk, dv, split, threads, rowsPerThread, chunk;
  // The chunk buffer's layout (chunkedRun): C tokens, `lanesPerPair` lanes per
  // (i, j) pair, tiles at these float offsets.
  int64_t C = 0, warps = 0, lanesPerPair = 0, ldqk = 0;
  int64_t qOff = 0, kOff = 0, wOff = 0, uOff = 0, lOff = 0, aOff = 0, betaOff = 0, gammaOff = 0;
  Value q, k, chunkBuffer;
  Value thread, part, active, column, stateBase;
  /// This thread's column block of S: in registers (set per run) or memory.
  codegen::ColumnBlock block;
  Value start, end, zero;
  Value lane, warp, firstOfColumn, writer;
};

} // namespace

/// Operands, shared rows, and this thread's place: thread (j, p) = (thread /
/// split, thread % split) owns column j, key rows p, p + split, ...;
/// threads past the last column read column dv - 1 and never store.
void GpuDeltaRule::setUp() {
  ImplicitLocOpBuilder &b = this->b();
  q = e.sharedRow(dk), k = e.sharedRow(dk);
  chunkBuffer = chunk ? e.sharedRow(chunkBufferFloats(chunk, dk, dv, threads)) : Value();

  dr.locate(e.blockId());
  thread = e.threadId();
  part = e.remIndex(thread, split);
  active = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, thread, e.index(dv * split));
  column = arith::MinUIOp::create(b, e.divIndex(thread, split), e.index(dv - 1));
  // S of this (slot, layer, head): [key_dim][value_dim] f32.
  stateBase = e.addIndex(dr.stateOffset(), column);
  block.column = column, block.rows = dk, block.split = split, block.part = part;
  block.memory = dr.recurrent, block.base = stateBase, block.stride = dv;
  firstOfColumn = split > 1 ? isZero(part) : Value();
  writer = split > 1 ? andi(active, firstOfColumn) : active;
}

/// One token of the recurrent step: q and k normalized into the shared rows
/// `q`, `k`; alpha = e^g, beta and v of this thread's column.
codegen::StepScalars GpuDeltaRule::prepare(Value t) {
  codegen::StepScalars scalars = dr.prepareToken(t, q, k, 1);
  scalars.v = dr.valueColumns(block, t);
  return scalars;
}

/// The recurrent step per token (decode) on this thread's rows of S in
/// registers. Returns the rows after the run.
SmallVector<Value> GpuDeltaRule::recurrentRun(ValueRange rowsIn) {
  KernelPhase phase(b(), "delta_rule.token_loop");
  ValueRange rows = e.forLoop(start, end, 1, rowsIn, [&](Value t, ValueRange s) -> SmallVector<Value> {
    codegen::StepScalars scalars = prepare(t);
    codegen::ColumnBlock step = block;
    step.registers.assign(s.begin(), s.end());
    dr.recurrentStep(step, scalars, {q, Value()}, {k, Value()}, t, writer);
    e.barrier(); // the next token overwrites q and k
    return step.registers;
  });
  return SmallVector<Value>(rows.begin(), rows.end());
}

/// The chunked (WY) form over the request's run, `chunk` tokens at a time, S
/// in registers as in the recurrent step: the CPU codegen's math
/// (qwen-models.md section 1.8 step 6), its loops spread over the block.
/// Every loop holding a shuffle has a block-uniform trip count.
SmallVector<Value> GpuDeltaRule::chunkedRun(ValueRange rowsIn) {
  ImplicitLocOpBuilder &b = this->b();
  C = chunk, warps = threads / 32, lanesPerPair = pairLanes(C, threads);
  ldqk = qkStride(C, dk, threads);
  qOff = 0, kOff = C * ldqk, wOff = 2 * C * ldqk, uOff = wOff + C * dk;
  lOff = uOff + C * dv, aOff = lOff + C * C, betaOff = aOff + C * C, gammaOff = betaOff + C;
  lane = e.remIndex(thread, 32), warp = e.divIndex(thread, 32);

  KernelPhase phase(b, "delta_rule.chunk_loop");
  ValueRange rowsOut =
      e.forLoop(start, end, C, rowsIn, [&](Value chunkStart, ValueRange s) -> SmallVector<Value> {
        Value n = arith::MinUIOp::create(b, e.index(C), arith::SubIOp::create(b, end, chunkStart));
        Value nLast = arith::SubIOp::create(b, n, e.index(1));
        chunkLoadTokens(chunkStart, n, nLast);
        chunkProducts(n);
        Value gammaLast = chunkTransformWY(n, nLast);
        chunkOutput(chunkStart, n, s);
        return chunkUpdateState(n, gammaLast, s);
      });
  return SmallVector<Value>(rowsOut.begin(), rowsOut.end());
}

/// Step 1: warp w loads tokens w, w + warps, ...: q (scaled) and k
/// L2-normalized (a warp sum) into the Q and K tiles, v into U, beta and g =
/// -exp(A_log) softplus(a + dt_bias); then gamma = cumsum(g) in place (one
/// thread, in order). Rows past n are left alone.
void GpuDeltaRule::chunkLoadTokens(Value chunkStart, Value n, Value nLast) {
  ImplicitLocOpBuilder &b = this->b();
  KernelPhase phase(b, "delta_rule.load_qk");
  e.forLoop(e.index(0), e.index(C), warps, [&](Value i0) {
    Value i = e.addIndex(i0, warp);
    Value valid = ult(i, n);
    Value t = e.addIndex(chunkStart, arith::MinUIOp::create(b, i, nLast));
    chunkNormalizeInto(dr.query, t, i, valid, qOff, sizes.scale);
    chunkNormalizeInto(dr.key, t, i, valid, kOff, 1.0f);
    e.ifThen(valid, [&] {
      Value valueBase = e.address(dr.value, t, dr.head, Value());
      e.forLoop(lane, e.index(dv), 32, [&](Value c) {
        st(e.loadF32(dr.value, e.addIndex(valueBase, c)), tile(uOff, i, dv, c));
      });
      e.ifThen(isZero(lane), [&] {
        KernelPhase gates(b, "delta_rule.gates");
        codegen::TokenGates g = dr.gates(t);
        st(g.beta, e.addIndex(e.index(betaOff), i));
        st(g.logDecay, e.addIndex(e.index(gammaOff), i));
      });
    });
  });
  e.barrier();
  KernelPhase gates(b, "delta_rule.gates");
  e.ifThen(isZero(thread), [&] {
    e.forLoop(e.index(1), n, 1, ValueRange{ld(e.index(gammaOff))},
              [&](Value i, ValueRange acc) -> SmallVector<Value> {
      Value at = e.addIndex(e.index(gammaOff), i);
      Value gamma = arith::AddFOp::create(b, acc[0], ld(at));
      st(gamma, at);
      return {gamma};
    });
  });
  e.barrier();
}

/// Row i of the chunk's Q or K tile (at `offset`) from token t: a warp's
/// lanes load the row, sum its squares with shuffles and store it scaled by
/// l2NormFactor where `valid`.
void GpuDeltaRule::chunkNormalizeInto(const RowAccess &from, Value t, Value i, Value valid,
                                      int64_t offset, float factor) {
  ImplicitLocOpBuilder &b = this->b();
  Value base = e.address(from, t, dr.keyHead, Value());
  SmallVector<Value> xs, ds;
  Value squares = zero;
  for (int64_t m = 0; m < (dk + 31) / 32; ++m) {
    Value d = e.addIndex(lane, e.index(32 * m));
    Value x;
    if ((m + 1) * 32 <= dk) {
      x = e.loadF32(from, e.addIndex(base, d));
    } else {
      Value clamped = arith::MinUIOp::create(b, d, e.index(dk - 1));
      x = arith::SelectOp::create(b, ult(d, e.index(dk)), e.loadF32(from, e.addIndex(base, clamped)),
                                  zero);
    }
    squares = fma(x, x, squares);
    xs.push_back(x);
    ds.push_back(d);
  }
  Value rowFactor = codegen::l2NormFactor(b, e.laneSum(squares, 32), factor,
                                          [&](Value x) { return e.rsqrt(x); });
  e.ifThen(valid, [&] {
    for (int64_t m = 0; m < (int64_t)xs.size(); ++m) {
      auto store = [&] { st(mulf(xs[m], rowFactor), tile(offset, i, ldqk, ds[m])); };
      if ((m + 1) * 32 <= dk)
        store();
      else
        e.ifThen(ult(ds[m], e.index(dk)), store);
    }
  });
}

/// Step 2: k_i . k_j and q_i . k_j for every (i, j) of the chunk, `lanesPerPair`
/// consecutive lanes per pair, into L_ij = beta_i (k_i . k_j)
/// e^(gamma_i - gamma_j) (j < i) and A_ij = (q_i . k_j) e^(gamma_i - gamma_j)
/// (j <= i).
void GpuDeltaRule::chunkProducts(Value n) {
  ImplicitLocOpBuilder &b = this->b();
  KernelPhase phase(b, "delta_rule.chunk_products");
  const int64_t lanes = lanesPerPair, count = C * C;
  const int64_t perPass = threads / lanes;
  const int64_t passes = (count + perPass - 1) / perPass;
  Value sub = e.remIndex(thread, lanes), pairOfThread = e.divIndex(thread, lanes);
  e.forLoop(e.index(0), e.index(passes), 1, [&](Value pass) {
    Value pair = e.addIndex(e.mulIndex(pass, perPass), pairOfThread);
    Value inRange = ult(pair, e.index(count));
    Value clamped = arith::MinUIOp::create(b, pair, e.index(count - 1));
    Value i = e.divIndex(clamped, C), j = e.remIndex(clamped, C);
    ValueRange dots = e.forLoop(sub, e.index(dk), lanes, ValueRange{zero, zero},
                                [&](Value d, ValueRange acc) -> SmallVector<Value> {
      Value kj = ld(tile(kOff, j, ldqk, d));
      return {fma(ld(tile(kOff, i, ldqk, d)), kj, acc[0]), fma(ld(tile(qOff, i, ldqk, d)), kj, acc[1])};
    });
    Value kk = lanes > 1 ? e.laneSum(dots[0], lanes) : dots[0];
    Value qk = lanes > 1 ? e.laneSum(dots[1], lanes) : dots[1];
    Value keep = andi(andi(inRange, isZero(sub)),
                      andi(ult(i, n), arith::CmpIOp::create(b, arith::CmpIPredicate::ule, j, i)));
    e.ifThen(keep, [&] {
      Value decay = exp(arith::SubFOp::create(b, ld(e.addIndex(e.index(gammaOff), i)),
                                              ld(e.addIndex(e.index(gammaOff), j))));
      Value betaI = ld(e.addIndex(e.index(betaOff), i));
      st(mulf(mulf(betaI, kk), decay), tile(lOff, i, C, j));
      st(mulf(qk, decay), tile(aOff, i, C, j));
    });
  });
  e.barrier();
}

/// Step 3: (I + L) [U | W] = [diag(beta) V | diag(beta e^gamma) K] by forward
/// substitution, one thread per column of U or W (in the CPU's order); the
/// thread on column d of W also decays K[:, d] by e^(gamma_last - gamma_i)
/// in place. Q rows scaled by e^gamma_i in place. Returns gamma_last.
Value GpuDeltaRule::chunkTransformWY(Value n, Value nLast) {
  ImplicitLocOpBuilder &b = this->b();
  KernelPhase phase(b, "delta_rule.wy_transform");
  Value gammaLast = ld(e.addIndex(e.index(gammaOff), nLast));
  e.forLoop(thread, e.index(dv + dk), threads, [&](Value c) {
    auto solve = [&](int64_t offset, int64_t width, Value col, llvm::function_ref<Value(Value i)> rhs) {
      e.forLoop(e.index(0), n, 1, [&](Value i) {
        Value x = e.forLoop(e.index(0), i, 1, ValueRange{rhs(i)},
                            [&](Value j, ValueRange acc) -> SmallVector<Value> {
          Value minus = arith::NegFOp::create(b, ld(tile(lOff, i, C, j)));
          return {fma(minus, ld(tile(offset, j, width, col)), acc[0])};
        })[0];
        st(x, tile(offset, i, width, col));
      });
    };
    auto ifU = scf::IfOp::create(b, ult(c, e.index(dv)), /*withElseRegion=*/true);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(ifU.thenBlock());
    solve(uOff, dv, c, [&](Value i) {
      return mulf(ld(e.addIndex(e.index(betaOff), i)), ld(tile(uOff, i, dv, c)));
    });
    b.setInsertionPointToStart(ifU.elseBlock());
    Value d = arith::SubIOp::create(b, c, e.index(dv));
    solve(wOff, dk, d, [&](Value i) {
      Value gammaI = ld(e.addIndex(e.index(gammaOff), i));
      Value at = tile(kOff, i, ldqk, d);
      Value kid = ld(at);
      st(mulf(exp(arith::SubFOp::create(b, gammaLast, gammaI)), kid), at);
      return mulf(mulf(ld(e.addIndex(e.index(betaOff), i)), exp(gammaI)), kid);
    });
  });
  e.forLoop(thread, e.mulIndex(n, dk), threads, [&](Value flat) {
    Value i = e.divIndex(flat, dk);
    Value at = tile(qOff, i, ldqk, e.remIndex(flat, dk));
    Value gammaI = ld(e.addIndex(e.index(gammaOff), i));
    st(mulf(ld(at), exp(gammaI)), at);
  });
  e.barrier();
  return gammaLast;
}

/// Step 4 (inter-chunk state and output): per token i, Vn_i = U_i - W_i S
/// and (Q_i e^gamma_i) S over this thread's rows `s`, summed over the
/// column's lanes; the column's first lane keeps Vn_i in U, adds
/// sum_{j <= i} A_ij Vn_j and stores o_i.
void GpuDeltaRule::chunkOutput(Value chunkStart, Value n, ValueRange s) {
  ImplicitLocOpBuilder &b = this->b();
  KernelPhase phase(b, "delta_rule.output");
  e.forLoop(e.index(0), n, 1, [&](Value i) {
    Value uInit = ld(tile(uOff, i, dv, column));
    Value pw = split > 1 ? arith::SelectOp::create(b, firstOfColumn, uInit, zero) : uInit;
    Value pq = zero;
    for (int64_t r = 0; r < rowsPerThread; ++r) {
      Value w = ld(tile(wOff, i, dk, rowOf(r)));
      pw = fma(arith::NegFOp::create(b, w), s[r], pw);
      pq = fma(ld(tile(qOff, i, ldqk, rowOf(r))), s[r], pq);
    }
    Value vn = columnSum(pw), inter = columnSum(pq);
    e.ifThen(writer, [&] {
      st(vn, tile(uOff, i, dv, column));
      Value o = e.forLoop(e.index(0), i, 1, ValueRange{inter},
                          [&](Value j, ValueRange acc) -> SmallVector<Value> {
        return {fma(ld(tile(aOff, i, C, j)), ld(tile(uOff, j, dv, column)), acc[0])};
      })[0];
      o = fma(ld(tile(aOff, i, C, i)), vn, o);
      Value t = e.addIndex(chunkStart, i);
      e.store(dr.out, e.addIndex(e.address(dr.out, t, dr.head, Value()), column), o);
    });
  });
  e.barrier();
}

/// Step 5: S = e^gamma_last S + sum_i (e^(gamma_last - gamma_i) k_i) Vn_i^T
/// on this thread's rows; returns them.
SmallVector<Value> GpuDeltaRule::chunkUpdateState(Value n, Value gammaLast, ValueRange s) {
  ImplicitLocOpBuilder &b = this->b();
  KernelPhase phase(b, "delta_rule.state_update");
  Value decay = exp(gammaLast);
  SmallVector<Value> decayed;
  for (int64_t r = 0; r < rowsPerThread; ++r)
    decayed.push_back(mulf(decay, s[r]));
  ValueRange updated = e.forLoop(e.index(0), n, 1, decayed,
                                 [&](Value i, ValueRange acc) -> SmallVector<Value> {
    Value u = ld(tile(uOff, i, dv, column));
    SmallVector<Value> next;
    for (int64_t r = 0; r < rowsPerThread; ++r)
      next.push_back(fma(ld(tile(kOff, i, ldqk, rowOf(r))), u, acc[r]));
    return next;
  });
  SmallVector<Value> result(updated.begin(), updated.end());
  e.barrier(); // the next chunk overwrites the buffer
  return result;
}

/// A state too large for registers stays in the state slot (split = 1),
/// read twice and written once per token; each thread only touches its own
/// column.
void GpuDeltaRule::memoryRun() {
  KernelPhase phase(b(), "delta_rule.token_loop");
  e.forLoop(start, end, 1, [&](Value t) {
    codegen::StepScalars scalars = prepare(t);
    e.ifThen(active, [&] { dr.recurrentStep(block, scalars, {q, Value()}, {k, Value()}, t, Value()); });
    e.barrier(); // the next token overwrites q and k
  });
}

void GpuDeltaRule::emitBody() {
  ImplicitLocOpBuilder &b = this->b();
  setUp();
  std::tie(start, end) = dr.findRun();
  dr.loadDecay();
  zero = e.f32(0.0f);
  if (!plan.inRegisters)
    return memoryRun();

  // This thread's rows of the column S[:, j], in registers for the step.
  SmallVector<Value> rows0;
  for (int64_t r = 0; r < rowsPerThread; ++r)
    rows0.push_back(e.loadF32(dr.recurrent, e.addIndex(stateBase, e.mulIndex(rowOf(r), dv))));
  SmallVector<Value> finalRows;
  if (!chunkBuffer) {
    finalRows = recurrentRun(rows0);
  } else {
    // Runs of more than one token (prefill) take the chunked form, a run of
    // one token (decode) the recurrent step; the branch is uniform over the
    // block.
    Value multi = arith::CmpIOp::create(b, arith::CmpIPredicate::ugt,
                                        arith::SubIOp::create(b, end, start), e.index(1));
    SmallVector<Type> types(rowsPerThread, b.getF32Type());
    auto ifMulti = scf::IfOp::create(b, types, multi, /*withElseRegion=*/true);
    {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(ifMulti.thenBlock());
      scf::YieldOp::create(b, chunkedRun(rows0));
      b.setInsertionPointToStart(ifMulti.elseBlock());
      scf::YieldOp::create(b, recurrentRun(rows0));
    }
    finalRows.assign(ifMulti.getResults().begin(), ifMulti.getResults().end());
  }
  KernelPhase phase(b, "delta_rule.store_state");
  e.ifThen(active, [&] {
    for (int64_t r = 0; r < rowsPerThread; ++r)
      e.store(dr.recurrent, e.addIndex(stateBase, e.mulIndex(rowOf(r), dv)), finalRows[r]);
  });
}

FailureOr<KernelGeometry> qwen::codegen::gpu::emitDeltaRuleKernel(GpuKernelEmitter &e) {
  func::FuncOp source = e.source();
  auto matched = codegen::matchSingleOpKernel<qtf::GatedDeltaRuleOp>(source, "delta_rule");
  if (failed(matched))
    return failure();
  qtf::GatedDeltaRuleOp rule = matched->first;
  const unsigned output = matched->second;
  const codegen::DeltaRuleSizes sizes = codegen::getDeltaRuleSizes(rule);
  const DeltaRulePlan plan = planOf(e.options().schedule);
  if (sizes.keyDim % plan.split ||
      plan.threads < (plan.inRegisters ? sizes.valueDim * plan.split : sizes.valueDim))
    return source.emitOpError("delta_rule schedule does not fit key_dim ")
               << sizes.keyDim << " x value_dim " << sizes.valueDim,
           failure();
  e.createKernel(plan.threads, [&] { GpuDeltaRule(e, rule, output).emitBody(); });
  Builder builder(source.getContext());
  return KernelGeometry{
      {builder.getStringAttr("B"), builder.getI64IntegerAttr(sizes.heads)},
      e.blockSize(), e.sharedBytes()};
}

void qwen::codegen::gpu::populateDeltaRulePatterns(RewritePatternSet &patterns,
                                                   GpuKernelLowering &lowering) {
  patterns.add<GpuKernelPattern>(patterns.getContext(), qkernel::KernelKind::DeltaRule,
                                 emitDeltaRuleKernel, lowering);
}
