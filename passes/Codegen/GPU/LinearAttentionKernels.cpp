//===- LinearAttentionKernels.cpp - GPU codegen for Gated DeltaNet --------===//
//
// conv:       causal depthwise conv1d + SiLU, one thread per channel (blocks
//             of up to max-threads channels); each thread walks the step's
//             tokens in order, carrying its request's window in registers:
//             at the first token of a request's run it reads the saved window
//             from the request's state slot, after the last one it writes the
//             newest conv_window inputs back. Threads of a warp own adjacent
//             channels, so every load and store is coalesced.
// delta_rule: the gated delta rule, one block per (request, value head)
//             (grid ["B", heads]). Column j of the request's f32 state
//             S [key_dim][value_dim] belongs to `split` consecutive lanes,
//             lane p of them holding rows p, p + split, ... in registers for
//             the whole step (read from the state slot once, written back
//             once); split is the smallest power of two that leaves each
//             thread at most 32 rows (1 for key_dim <= 32, 4 for 128). The
//             block finds the request's run of tokens, then per token
//             L2-normalizes q and k cooperatively (block reductions, rows in
//             shared memory), and each thread updates its rows:
//               m = S^T k; d = beta (v - alpha m); S = alpha S + k d^T;
//               o = S^T q (with the updated S),
//             the partial dot products of a column summed with xor shuffles.
//             Each thread accumulates in the CPU's order (fused
//             multiply-adds over increasing i), so with split = 1 the
//             recurrence is the CPU's up to the normalization sum and the
//             libm / libdevice functions. That per-token step serves runs
//             of one token (decode); a longer run (prefill) takes the
//             chunked WY form of the CPU codegen (qwen-models.md 1.8 step
//             6) in chunks of C tokens, S staying in the same registers:
//             C is the largest of 64 / 32 / 16 / 8 whose shared chunk
//             buffer (Q, K, W [C][key_dim] (Q, K rows padded), U
//             [C][value_dim], L, A [C][C], beta, gamma) fits the 48 KiB of
//             static shared memory: 16 for key_dim = value_dim = 128 (34
//             KiB), 32 for key_dim 64. Per
//             chunk, 6 barriers:
//               1. warps load tokens (warp w: w, w + warps, ...): q / k
//                  L2-normalized with a warp sum, v, beta, g; one thread
//                  takes gamma = cumsum(g);
//               2. k_i.k_j and q_i.k_j for all pairs (lanes per pair so
//                  that the block is covered): L_ij = beta_i (k_i.k_j)
//                  e^(gamma_i - gamma_j) (j < i), A_ij = (q_i.k_j)
//                  e^(gamma_i - gamma_j) (j <= i);
//               3. (I + L)[U | W] = [diag(beta) V | diag(beta e^gamma) K]
//                  by forward substitution, a thread per column of U and
//                  of W (the W thread also decays its column of K by
//                  e^(gamma_last - gamma_i)); Q scaled by e^gamma;
//               4. per token i, the column's lanes as in the recurrent
//                  step: Vn_i = U_i - W_i S, (e^gamma_i Q_i) S, summed with
//                  shuffles; the column's first lane keeps Vn_i and adds
//                  sum_{j <= i} A_ij Vn_j to form o_i;
//               5. S = e^gamma_last S + sum_i (e^(gamma_last - gamma_i)
//                  k_i) Vn_i^T on the thread's rows.
//             The loops are the CPU's in its order (the forward
//             substitution, the S reads and update over increasing i, and
//             with split = 1 over increasing key rows); the GPU chunks are
//             shorter than the CPU's 64 and the dot products of step 2 sum
//             in another order. A state too large for registers
//             (more than 32 rows per thread, or a block over 512 threads)
//             stays in the slot: one thread per column, read and written
//             there per token (no chunked form).
// gated_norm: per-head RMSNorm times silu(gate), one block per (token, head),
//             the sum of squares reduced across the block.
//
// Every request's tokens are contiguous and in order in a ragged step, so
// "the previous token of the same request" is the previous row when its
// token_seq entry matches, and the state slot otherwise.
//
//===----------------------------------------------------------------------===//
#include "passes/Codegen/GPU/GpuKernelEmitter.h"
#include "passes/Schedule/Schedules.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen::gpu;

namespace {
/// How a delta_rule block splits S (the kernel's #qkernel.schedule, chosen in
/// passes/Schedule/GpuSchedules.cpp): `split` threads (consecutive lanes)
/// per value column, each holding key rows p, p + split, ... in registers.
struct DeltaRulePlan {
  int64_t split = 1;
  int64_t threads = 32;
  bool inRegisters = true;
};
} // namespace

using schedule::deltarule::chunkBufferFloats;
using schedule::deltarule::pairLanes;
using schedule::deltarule::qkStride;

/// Index of the ABI result slot of result `index`: results without a slot
/// (caches, states) before it do not count.
static unsigned resultSlotOf(func::FuncOp source, unsigned index) {
  unsigned slot = 0;
  for (unsigned i = 0; i < index; ++i)
    if (isa<RankedTensorType>(source.getResultTypes()[i]))
      ++slot;
  return slot;
}

/// Grid of plain block counts (no step symbol).
static SmallVector<Attribute> fixedGrid(MLIRContext *ctx, int64_t blocks) {
  return {Builder(ctx).getI64IntegerAttr(blocks)};
}

//===----------------------------------------------------------------------===//
// conv
//===----------------------------------------------------------------------===//

FailureOr<KernelGeometry> qwen::codegen::gpu::emitConvKernel(GpuKernelEmitter &e) {
  func::FuncOp source = e.source();
  auto matched = codegen::matchSingleOpKernel<qtf::CausalConv1dOp>(source, "conv");
  if (failed(matched))
    return failure();
  qtf::CausalConv1dOp conv = matched->first;
  const unsigned output = matched->second;
  qtf::LinearStateType stateType = conv.getState().getType();
  const int64_t channels = stateType.getConvChannels(), window = stateType.getConvWindow();
  const int64_t layer = conv.getLayer();
  const int64_t kernelSize = window + 1;
  const int64_t threads = e.blockSizeFor(channels);
  const int64_t chunks = (channels + threads - 1) / threads;
  const unsigned outSlot = resultSlotOf(source, output);

  e.createKernel(threads, [&] {
    ImplicitLocOpBuilder &b = e.builder();
    RowAccess input = e.access(conv.getInput()), weight = e.access(conv.getWeight());
    RowAccess tokenSeq = e.access(conv.getTokenSeq()), slots = e.access(conv.getStateSlots());
    RowAccess convState = e.stateArrays(conv.getState()).first;
    RowAccess out = e.result(outSlot);
    Value channel = e.addIndex(e.mulIndex(e.blockId(), threads), e.threadId());
    auto body = [&] {
      // The taps of this channel (weight is [channels, K]).
      SmallVector<Value> taps;
      Value tapBase = e.mulIndex(channel, kernelSize);
      for (int64_t j = 0; j < kernelSize; ++j)
        taps.push_back(e.loadF32(weight, e.addIndex(tapBase, e.index(j))));
      Value T = e.dim("T");
      Value zero = e.f32(0.0f);
      SmallVector<Value> initial(window, zero);
      e.forLoop(e.index(0), T, 1, initial,
                [&](Value t, ValueRange carried) -> SmallVector<Value> {
        Value sequence = e.loadIndex(tokenSeq, t);
        Value slot = e.loadIndex(slots, sequence);
        // Row j of this layer's window in the slot: [slot][layer][j][channel].
        Value slotBase =
            e.addIndex(codegen::convWindowOffset(e, stateType, layer, slot), channel);
        // A request's first row in this step starts from its saved window.
        Value starts = codegen::isRunBoundary(e, tokenSeq, t, T, sequence, /*before=*/true);
        SmallVector<Type> types(window, b.getF32Type());
        auto ifStarts = scf::IfOp::create(b, types, starts, /*withElseRegion=*/true);
        {
          OpBuilder::InsertionGuard guard(b);
          b.setInsertionPointToStart(ifStarts.thenBlock());
          SmallVector<Value> saved;
          for (int64_t j = 0; j < window; ++j)
            saved.push_back(
                e.loadF32(convState, e.addIndex(slotBase, e.index(j * channels))));
          scf::YieldOp::create(b, saved);
          b.setInsertionPointToStart(ifStarts.elseBlock());
          scf::YieldOp::create(b, carried);
        }
        ValueRange history = ifStarts.getResults();
        Value x = e.loadF32(input, e.address(input, t, Value(), channel));
        Value sum = arith::MulFOp::create(b, taps[window], x);
        for (int64_t j = 0; j < window; ++j)
          sum = math::FmaOp::create(b, taps[j], history[j], sum);
        Value y = e.silu(sum);
        e.store(out, e.address(out, t, Value(), channel), y);
        SmallVector<Value> next(history.begin() + 1, history.end());
        next.push_back(x);
        // After the request's last row, its slot keeps the newest inputs.
        Value ends = codegen::isRunBoundary(e, tokenSeq, t, T, sequence, /*before=*/false);
        e.ifThen(ends, [&] {
          for (int64_t j = 0; j < window; ++j)
            e.store(convState, e.addIndex(slotBase, e.index(j * channels)), next[j]);
        });
        return next;
      });
    };
    // No barrier in this kernel: threads past the last channel just leave.
    if (chunks * threads == channels)
      body();
    else
      e.ifThen(arith::CmpIOp::create(b, arith::CmpIPredicate::ult, channel,
                                     e.index(channels)),
               body);
  });
  return KernelGeometry{fixedGrid(source.getContext(), chunks), e.blockSize(),
                        e.sharedBytes()};
}

//===----------------------------------------------------------------------===//
// delta_rule
//===----------------------------------------------------------------------===//

FailureOr<KernelGeometry> qwen::codegen::gpu::emitDeltaRuleKernel(GpuKernelEmitter &e) {
  func::FuncOp source = e.source();
  auto matched = codegen::matchSingleOpKernel<qtf::GatedDeltaRuleOp>(source, "delta_rule");
  if (failed(matched))
    return failure();
  qtf::GatedDeltaRuleOp rule = matched->first;
  const unsigned output = matched->second;
  const codegen::DeltaRuleSizes sizes = codegen::getDeltaRuleSizes(rule);
  const int64_t heads = sizes.heads, dk = sizes.keyDim, dv = sizes.valueDim,
                layer = sizes.layer, group = sizes.group;
  const float scale = sizes.scale;
  // lanes = 0: the state stays in global memory; tile = [C]: chunked prefill.
  const qkernel::ScheduleAttr schedule = e.options().schedule;
  const DeltaRulePlan plan{std::max<int64_t>(schedule.getLanes(), 1), schedule.getThreads(),
                           schedule.getLanes() > 0};
  const int64_t split = plan.split, threads = plan.threads;
  if (dk % split || threads < (plan.inRegisters ? dv * split : dv))
    return source.emitOpError("delta_rule schedule does not fit key_dim ")
               << dk << " x value_dim " << dv,
           failure();
  const int64_t rowsPerThread = dk / split;
  const int64_t chunk = plan.inRegisters ? schedule.tileSize(0) : 0;
  const unsigned outSlot = resultSlotOf(source, output);

  e.createKernel(threads, [&] {
    ImplicitLocOpBuilder &b = e.builder();
    Type f32 = b.getF32Type();
    RowAccess query = e.access(rule.getQuery()), key = e.access(rule.getKey()),
              value = e.access(rule.getValue()), a = e.access(rule.getA()),
              beta = e.access(rule.getB()), aLog = e.access(rule.getALog()),
              dtBias = e.access(rule.getDtBias()), tokenSeq = e.access(rule.getTokenSeq()),
              slots = e.access(rule.getStateSlots());
    RowAccess recurrent = e.stateArrays(rule.getState()).second;
    RowAccess out = e.result(outSlot);
    Value q = e.sharedRow(dk), k = e.sharedRow(dk);
    Value chunkBuffer = chunk ? e.sharedRow(chunkBufferFloats(chunk, dk, dv, threads)) : Value();

    Value item = e.blockId();
    Value sequence = e.divIndex(item, heads);
    Value head = e.remIndex(item, heads);
    Value keyHead = e.divIndex(head, group);
    Value thread = e.threadId();
    // Thread (j, p) = (thread / split, thread % split): column j, key rows
    // p, p + split, ... Threads past the last column read column dv - 1 and
    // never store.
    Value part = e.remIndex(thread, split);
    Value active =
        arith::CmpIOp::create(b, arith::CmpIPredicate::ult, thread, e.index(dv * split));
    Value column = arith::MinUIOp::create(b, e.divIndex(thread, split), e.index(dv - 1));
    Value slot = e.loadIndex(slots, sequence);
    // S of this (slot, layer, head): [key_dim][value_dim] f32.
    Value stateBase = e.addIndex(
        codegen::recurrentStateOffset(e, rule.getState().getType(), layer, slot, head), column);
    auto stateAt = [&](Value i) { return e.addIndex(stateBase, e.mulIndex(i, dv)); };
    /// Key row of this thread's r-th register.
    auto rowOf = [&](int64_t r) { return e.addIndex(part, e.index(r * split)); };

    // The request's tokens: a contiguous run [start, start + count), found by
    // a strided scan of token_seq and block min / sum reductions (token
    // indices travel as f32: exact below 2^24 tokens per step).
    Value T = e.dim("T");
    auto indexToF32 = [&](Value x) -> Value {
      return arith::UIToFPOp::create(b, f32, arith::IndexCastOp::create(b, b.getI64Type(), x));
    };
    ValueRange local = e.forLoop(
        thread, T, threads, ValueRange{indexToF32(T), e.f32(0.0f)},
        [&](Value t, ValueRange acc) -> SmallVector<Value> {
          Value mine = arith::CmpIOp::create(b, arith::CmpIPredicate::eq,
                                             e.loadIndex(tokenSeq, t), sequence);
          return {arith::SelectOp::create(
                      b, mine, arith::MinimumFOp::create(b, acc[0], indexToF32(t)), acc[0]),
                  arith::SelectOp::create(
                      b, mine, arith::AddFOp::create(b, acc[1], e.f32(1.0f)), acc[1])};
        });
    auto toIndex = [&](Value x) -> Value {
      return arith::IndexCastOp::create(
          b, b.getIndexType(), arith::FPToUIOp::create(b, b.getI64Type(), x));
    };
    Value start = toIndex(e.blockMin(local[0]));
    Value end = e.addIndex(start, toIndex(e.blockSum(local[1])));

    // Decay rate -exp(A_log), f32 as HF computes it.
    Value negA = arith::NegFOp::create(b, math::ExpOp::create(b, e.loadF32(aLog, head)));
    Value bias = e.loadF32(dtBias, head);
    Value zero = e.f32(0.0f);

    /// Copies the [dk] row of token t into `row`, L2-normalized (eps 1e-6 on
    /// the sum of squares) and scaled; each thread rescales what it loaded.
    auto loadNormalized = [&](const RowAccess &from, Value t, Value row, float factor) {
      Value base = e.address(from, t, keyHead, Value());
      Value partial = e.forLoop(thread, e.index(dk), threads, ValueRange{zero},
                                [&](Value d, ValueRange acc) -> SmallVector<Value> {
        Value x = e.loadF32(from, e.addIndex(base, d));
        memref::StoreOp::create(b, x, row, ValueRange{d});
        return {math::FmaOp::create(b, x, x, acc[0])};
      })[0];
      Value sum = e.blockSum(partial);
      Value inverse = e.rsqrt(arith::AddFOp::create(b, sum, e.f32(1e-6f)));
      Value rowFactor = arith::MulFOp::create(b, inverse, e.f32(factor));
      e.forLoop(thread, e.index(dk), threads, [&](Value d) {
        Value x = memref::LoadOp::create(b, row, ValueRange{d});
        memref::StoreOp::create(b, arith::MulFOp::create(b, x, rowFactor), row, ValueRange{d});
      });
    };

    struct TokenScalars {
      Value alpha, beta, v;
    };
    /// One token: normalizes q and k into shared memory and returns alpha,
    /// beta and v of this thread's column.
    auto prepare = [&](Value t) -> TokenScalars {
      loadNormalized(query, t, q, scale);
      loadNormalized(key, t, k, 1.0f);
      e.barrier(); // q and k complete for every thread
      // beta = sigmoid(b); alpha = exp(g), g = -exp(A_log) * softplus(a + dt_bias)
      // (softplus(x) = x above 20, as torch).
      Value betaT = e.sigmoid(e.loadF32(beta, e.address(beta, t, Value(), head)));
      Value shifted =
          arith::AddFOp::create(b, e.loadF32(a, e.address(a, t, Value(), head)), bias);
      Value linear = arith::CmpFOp::create(b, arith::CmpFPredicate::OGT, shifted, e.f32(20.0f));
      Value smooth = math::Log1pOp::create(b, math::ExpOp::create(b, shifted));
      Value softplus = arith::SelectOp::create(b, linear, shifted, smooth);
      Value alpha = math::ExpOp::create(b, arith::MulFOp::create(b, negA, softplus));
      Value v = e.loadF32(value, e.addIndex(e.address(value, t, head, Value()), column));
      return TokenScalars{alpha, betaT, v};
    };
    /// d = beta * (v - alpha * m)
    auto deltaOf = [&](const TokenScalars &scalars, Value m) -> Value {
      return arith::MulFOp::create(
          b, scalars.beta,
          arith::SubFOp::create(b, scalars.v, arith::MulFOp::create(b, scalars.alpha, m)));
    };
    /// Sums the partial dot products of a column's `split` threads (xor
    /// butterfly: every one of them gets the same sum).
    auto columnSum = [&](Value partial) { return split > 1 ? e.laneSum(partial, split) : partial; };
    auto storeOutput = [&](Value t, Value o) {
      Value first = split > 1 ? arith::AndIOp::create(
                                    b, active,
                                    arith::CmpIOp::create(b, arith::CmpIPredicate::eq, part,
                                                          e.index(0)))
                              : active;
      e.ifThen(first, [&] {
        e.store(out, e.addIndex(e.address(out, t, head, Value()), column), o);
      });
    };

    /// The chunked (WY) form over the request's run, `chunk` tokens at a
    /// time, S in registers as in the recurrent step: the CPU codegen's
    /// math (qwen-models.md section 1.8 step 6), its loops spread over the
    /// block. Every loop holding a shuffle has a block-uniform trip count.
    auto chunkedRun = [&](ValueRange rowsIn) -> SmallVector<Value> {
      const int64_t C = chunk, warps = threads / 32, lanes = pairLanes(C, threads);
      const int64_t ldqk = qkStride(C, dk, threads);
      const int64_t qOff = 0, kOff = C * ldqk, wOff = 2 * C * ldqk, uOff = wOff + C * dk;
      const int64_t lOff = uOff + C * dv, aOff = lOff + C * C, betaOff = aOff + C * C,
                    gammaOff = betaOff + C;
      auto ld = [&](Value at) -> Value {
        return memref::LoadOp::create(b, chunkBuffer, ValueRange{at});
      };
      auto st = [&](Value x, Value at) { memref::StoreOp::create(b, x, chunkBuffer, ValueRange{at}); };
      /// Flat index of element (row, col) of the [C][width] tile at `offset`.
      auto tile = [&](int64_t offset, Value row, int64_t width, Value col) -> Value {
        return e.addIndex(e.addIndex(e.index(offset), e.mulIndex(row, width)), col);
      };
      auto ult = [&](Value x, Value y) -> Value {
        return arith::CmpIOp::create(b, arith::CmpIPredicate::ult, x, y);
      };
      auto andi = [&](Value x, Value y) -> Value { return arith::AndIOp::create(b, x, y); };
      auto mulf = [&](Value x, Value y) -> Value { return arith::MulFOp::create(b, x, y); };
      auto fma = [&](Value x, Value y, Value z) -> Value { return math::FmaOp::create(b, x, y, z); };
      auto exp = [&](Value x) -> Value { return math::ExpOp::create(b, x); };
      auto isZero = [&](Value x) -> Value {
        return arith::CmpIOp::create(b, arith::CmpIPredicate::eq, x, e.index(0));
      };
      Value lane = e.remIndex(thread, 32), warp = e.divIndex(thread, 32);
      Value firstOfColumn = split > 1 ? isZero(part) : Value();
      Value writer = split > 1 ? andi(active, firstOfColumn) : active;

      ValueRange rowsOut = e.forLoop(
          start, end, C, rowsIn, [&](Value chunkStart, ValueRange s) -> SmallVector<Value> {
        Value n = arith::MinUIOp::create(b, e.index(C),
                                         arith::SubIOp::create(b, end, chunkStart));
        Value nLast = arith::SubIOp::create(b, n, e.index(1));

        // 1. Warp w loads tokens w, w + warps, ...: q (scaled) and k
        //    L2-normalized (a warp sum), v, beta and g = -exp(A_log)
        //    softplus(a + dt_bias). Rows past n are left alone.
        e.forLoop(e.index(0), e.index(C), warps, [&](Value i0) {
          Value i = e.addIndex(i0, warp);
          Value valid = ult(i, n);
          Value t = e.addIndex(chunkStart, arith::MinUIOp::create(b, i, nLast));
          auto normalizeInto = [&](const RowAccess &from, int64_t offset, float factor) {
            Value base = e.address(from, t, keyHead, Value());
            SmallVector<Value> xs, ds;
            Value squares = zero;
            for (int64_t m = 0; m < (dk + 31) / 32; ++m) {
              Value d = e.addIndex(lane, e.index(32 * m));
              Value x;
              if ((m + 1) * 32 <= dk) {
                x = e.loadF32(from, e.addIndex(base, d));
              } else {
                Value clamped = arith::MinUIOp::create(b, d, e.index(dk - 1));
                x = arith::SelectOp::create(b, ult(d, e.index(dk)),
                                            e.loadF32(from, e.addIndex(base, clamped)), zero);
              }
              squares = fma(x, x, squares);
              xs.push_back(x);
              ds.push_back(d);
            }
            Value sum = e.laneSum(squares, 32);
            Value inverse = e.rsqrt(arith::AddFOp::create(b, sum, e.f32(1e-6f)));
            Value rowFactor = mulf(inverse, e.f32(factor));
            e.ifThen(valid, [&] {
              for (int64_t m = 0; m < (int64_t)xs.size(); ++m) {
                auto store = [&] { st(mulf(xs[m], rowFactor), tile(offset, i, ldqk, ds[m])); };
                if ((m + 1) * 32 <= dk)
                  store();
                else
                  e.ifThen(ult(ds[m], e.index(dk)), store);
              }
            });
          };
          normalizeInto(query, qOff, scale);
          normalizeInto(key, kOff, 1.0f);
          e.ifThen(valid, [&] {
            Value valueBase = e.address(value, t, head, Value());
            e.forLoop(lane, e.index(dv), 32, [&](Value c) {
              st(e.loadF32(value, e.addIndex(valueBase, c)), tile(uOff, i, dv, c));
            });
            e.ifThen(isZero(lane), [&] {
              Value betaT = e.sigmoid(e.loadF32(beta, e.address(beta, t, Value(), head)));
              Value shifted =
                  arith::AddFOp::create(b, e.loadF32(a, e.address(a, t, Value(), head)), bias);
              Value linear =
                  arith::CmpFOp::create(b, arith::CmpFPredicate::OGT, shifted, e.f32(20.0f));
              Value smooth = math::Log1pOp::create(b, exp(shifted));
              Value softplus = arith::SelectOp::create(b, linear, shifted, smooth);
              st(betaT, e.addIndex(e.index(betaOff), i));
              st(mulf(negA, softplus), e.addIndex(e.index(gammaOff), i));
            });
          });
        });
        e.barrier();
        // gamma = cumsum(g) within the chunk, in order (one thread).
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

        // 2. k_i . k_j and q_i . k_j for every (i, j) of the chunk, `lanes`
        //    consecutive lanes per pair; L_ij = beta_i (k_i . k_j)
        //    e^(gamma_i - gamma_j) (j < i), A_ij = (q_i . k_j)
        //    e^(gamma_i - gamma_j) (j <= i).
        {
          const int64_t pairs = C * C;
          const int64_t perPass = threads / lanes;
          const int64_t passes = (pairs + perPass - 1) / perPass;
          Value sub = e.remIndex(thread, lanes), pairOfThread = e.divIndex(thread, lanes);
          e.forLoop(e.index(0), e.index(passes), 1, [&](Value pass) {
            Value pair = e.addIndex(e.mulIndex(pass, perPass), pairOfThread);
            Value inRange = ult(pair, e.index(pairs));
            Value clamped = arith::MinUIOp::create(b, pair, e.index(pairs - 1));
            Value i = e.divIndex(clamped, C), j = e.remIndex(clamped, C);
            ValueRange dots = e.forLoop(sub, e.index(dk), lanes, ValueRange{zero, zero},
                                        [&](Value d, ValueRange acc) -> SmallVector<Value> {
              Value kj = ld(tile(kOff, j, ldqk, d));
              return {fma(ld(tile(kOff, i, ldqk, d)), kj, acc[0]),
                      fma(ld(tile(qOff, i, ldqk, d)), kj, acc[1])};
            });
            Value kk = lanes > 1 ? e.laneSum(dots[0], lanes) : dots[0];
            Value qk = lanes > 1 ? e.laneSum(dots[1], lanes) : dots[1];
            Value keep = andi(andi(inRange, isZero(sub)),
                              andi(ult(i, n), arith::CmpIOp::create(
                                                  b, arith::CmpIPredicate::ule, j, i)));
            e.ifThen(keep, [&] {
              Value decay = exp(arith::SubFOp::create(
                  b, ld(e.addIndex(e.index(gammaOff), i)), ld(e.addIndex(e.index(gammaOff), j))));
              Value betaI = ld(e.addIndex(e.index(betaOff), i));
              st(mulf(mulf(betaI, kk), decay), tile(lOff, i, C, j));
              st(mulf(qk, decay), tile(aOff, i, C, j));
            });
          });
        }
        e.barrier();

        // 3. (I + L) [U | W] = [diag(beta) V | diag(beta e^gamma) K] by
        //    forward substitution, one thread per column of U or W (in the
        //    CPU's order); the thread on column d of W also decays K[:, d]
        //    by e^(gamma_last - gamma_i) in place. Q rows scaled by
        //    e^gamma_i in place.
        Value gammaLast = ld(e.addIndex(e.index(gammaOff), nLast));
        e.forLoop(thread, e.index(dv + dk), threads, [&](Value c) {
          auto solve = [&](int64_t offset, int64_t width, Value col,
                           llvm::function_ref<Value(Value i)> rhs) {
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

        // 4. Per token i: Vn_i = U_i - W_i S and (Q_i e^gamma_i) S over this
        //    thread's rows, summed over the column's lanes; the column's
        //    first lane keeps Vn_i in U, adds sum_{j <= i} A_ij Vn_j and
        //    stores o_i.
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
            e.store(out, e.addIndex(e.address(out, t, head, Value()), column), o);
          });
        });
        e.barrier();

        // 5. S = e^gamma_last S + sum_i (e^(gamma_last - gamma_i) k_i) Vn_i^T.
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
      });
      return SmallVector<Value>(rowsOut.begin(), rowsOut.end());
    };

    if (plan.inRegisters) {
      // This thread's rows of the column S[:, j], in registers for the step.
      SmallVector<Value> rows0;
      for (int64_t r = 0; r < rowsPerThread; ++r)
        rows0.push_back(e.loadF32(recurrent, stateAt(rowOf(r))));
      /// The recurrent step per token (decode).
      auto recurrentRun = [&](ValueRange rowsIn) -> SmallVector<Value> {
        ValueRange rows = e.forLoop(
            start, end, 1, rowsIn, [&](Value t, ValueRange s) -> SmallVector<Value> {
              TokenScalars scalars = prepare(t);
              // m = S^T k (for split = 1 in the CPU's order over i).
              Value m = zero;
              for (int64_t r = 0; r < rowsPerThread; ++r) {
                Value ki = memref::LoadOp::create(b, k, ValueRange{rowOf(r)});
                m = math::FmaOp::create(b, ki, s[r], m);
              }
              Value d = deltaOf(scalars, columnSum(m));
              // S = alpha S + k d^T; o = S^T q with the updated S.
              SmallVector<Value> updated;
              Value o = zero;
              for (int64_t r = 0; r < rowsPerThread; ++r) {
                Value ki = memref::LoadOp::create(b, k, ValueRange{rowOf(r)});
                Value qi = memref::LoadOp::create(b, q, ValueRange{rowOf(r)});
                Value si = math::FmaOp::create(b, ki, d,
                                               arith::MulFOp::create(b, scalars.alpha, s[r]));
                updated.push_back(si);
                o = math::FmaOp::create(b, qi, si, o);
              }
              storeOutput(t, columnSum(o));
              e.barrier(); // the next token overwrites q and k
              return updated;
            });
        return SmallVector<Value>(rows.begin(), rows.end());
      };
      SmallVector<Value> finalRows;
      if (!chunkBuffer) {
        finalRows = recurrentRun(rows0);
      } else {
        // Runs of more than one token (prefill) take the chunked form, a
        // run of one token (decode) the recurrent step; the branch is
        // uniform over the block.
        Value multi = arith::CmpIOp::create(b, arith::CmpIPredicate::ugt,
                                            arith::SubIOp::create(b, end, start), e.index(1));
        SmallVector<Type> types(rowsPerThread, f32);
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
      e.ifThen(active, [&] {
        for (int64_t r = 0; r < rowsPerThread; ++r)
          e.store(recurrent, stateAt(rowOf(r)), finalRows[r]);
      });
      return;
    }

    // Otherwise S stays in the state slot (split = 1), read twice and written
    // once per token; each thread only touches its own column.
    e.forLoop(start, end, 1, [&](Value t) {
      TokenScalars scalars = prepare(t);
      e.ifThen(active, [&] {
        Value m = e.forLoop(e.index(0), e.index(dk), 1, ValueRange{zero},
                            [&](Value i, ValueRange acc) -> SmallVector<Value> {
          Value ki = memref::LoadOp::create(b, k, ValueRange{i});
          return {math::FmaOp::create(b, ki, e.loadF32(recurrent, stateAt(i)), acc[0])};
        })[0];
        Value d = deltaOf(scalars, m);
        Value o = e.forLoop(e.index(0), e.index(dk), 1, ValueRange{zero},
                            [&](Value i, ValueRange acc) -> SmallVector<Value> {
          Value ki = memref::LoadOp::create(b, k, ValueRange{i});
          Value qi = memref::LoadOp::create(b, q, ValueRange{i});
          Value at = stateAt(i);
          Value si = math::FmaOp::create(
              b, ki, d, arith::MulFOp::create(b, scalars.alpha, e.loadF32(recurrent, at)));
          e.store(recurrent, at, si);
          return {math::FmaOp::create(b, qi, si, acc[0])};
        })[0];
        e.store(out, e.addIndex(e.address(out, t, head, Value()), column), o);
      });
      e.barrier(); // the next token overwrites q and k
    });
  });
  Builder builder(source.getContext());
  return KernelGeometry{{builder.getStringAttr("B"), builder.getI64IntegerAttr(heads)},
                        e.blockSize(), e.sharedBytes()};
}

//===----------------------------------------------------------------------===//
// gated_norm
//===----------------------------------------------------------------------===//

FailureOr<KernelGeometry> qwen::codegen::gpu::emitGatedNormKernel(GpuKernelEmitter &e) {
  func::FuncOp source = e.source();
  auto matched = codegen::matchSingleOpKernel<qtf::GatedRmsNormOp>(source, "gated_norm");
  if (failed(matched))
    return failure();
  qtf::GatedRmsNormOp norm = matched->first;
  const unsigned output = matched->second;
  auto type = cast<RankedTensorType>(norm.getResult().getType());
  if (type.getRank() != 3)
    return source.emitOpError("gated_norm kernel expects a [tokens, heads, dim] result"),
           failure();
  const int64_t heads = type.getDimSize(1), length = type.getDimSize(2);
  const float eps = static_cast<float>(norm.getEpsilon().convertToDouble());
  std::string symbol = e.leadingSymbol(norm.getResult());
  const int64_t width = e.vectorWidthFor(
      length, {GpuKernelEmitter::viewGeometry(norm.getInput()),
               GpuKernelEmitter::viewGeometry(norm.getGate())});
  const unsigned outSlot = resultSlotOf(source, output);

  e.createKernel(e.blockSizeFor(length / width), [&] {
    ImplicitLocOpBuilder &b = e.builder();
    auto vecType = VectorType::get({width}, b.getF32Type());
    RowAccess input = e.access(norm.getInput()), gate = e.access(norm.getGate()),
              weight = e.access(norm.getWeight());
    RowAccess out = e.result(outSlot);
    Value item = e.blockId();
    Value token = e.divIndex(item, heads);
    Value head = e.remIndex(item, heads);
    Value inBase = e.address(input, token, head, Value());
    Value gateBase = e.address(gate, token, head, Value());
    Value outBase = e.address(out, token, head, Value());
    Value zero = arith::ConstantOp::create(b, DenseElementsAttr::get(vecType, 0.0f));
    Value squares = e.forThreadColumns(length, width, zero, [&](Value c, Value acc) {
      Value x = e.loadVectorF32(input, e.addIndex(inBase, c), width);
      return vector::FMAOp::create(b, x, x, acc).getResult();
    });
    Value sum = e.blockSum(vector::ReductionOp::create(b, vector::CombiningKind::ADD, squares));
    Value mean = arith::DivFOp::create(b, sum, e.f32(static_cast<float>(length)));
    Value scale = vector::BroadcastOp::create(
        b, vecType, e.rsqrt(arith::AddFOp::create(b, mean, e.f32(eps))));
    // y = x * scale * w * silu(gate), each thread on the columns it summed.
    e.forThreadColumns(length, width, [&](Value c) {
      Value x = e.loadVectorF32(input, e.addIndex(inBase, c), width);
      Value w = e.loadVectorF32(weight, c, width);
      Value g = e.loadVectorF32(gate, e.addIndex(gateBase, c), width);
      Value y = arith::MulFOp::create(b, arith::MulFOp::create(b, x, scale), w);
      Value gated = arith::MulFOp::create(b, y, e.silu(g));
      e.store(out, e.addIndex(outBase, c), gated);
    });
  });
  Builder builder(source.getContext());
  SmallVector<Attribute> grid{builder.getStringAttr(symbol)};
  if (heads > 1)
    grid.push_back(builder.getI64IntegerAttr(heads));
  return KernelGeometry{grid, e.blockSize(), e.sharedBytes()};
}
