//===- AttentionKernel.cpp - GPU codegen for paged attention --------------===//
//
// One block per (token, query head). The query row is computed (or copied)
// into shared memory, then the block splits the token's context among lane
// groups: a group of L lanes (L a power of two <= 32 dividing the head's
// vector count) owns one key at a time, each lane a strided slice of the
// head, and the q.k dot product is reduced across the group with xor
// gpu.shuffle. Group g walks positions g, g + G, g + 2G, ... with its own
// online softmax (running max, sum and V accumulator in f32); the G partial
// states are merged through shared memory at the end (split-K inside the
// block, as flash-decoding does across blocks). The loop trip count is
// uniform across the block so every shuffle has its whole warp; positions
// past the context are clamped for the loads and masked out of the state.
//
// Per key the math is the CPU emitter's: score = (q.k) * scale,
// m' = max(m, score), l' = l * exp(m - m') + exp(score - m'),
// acc' = exp(score - m') * v + acc * exp(m - m'); out = acc / l.
//
// Prefill (query tiles). The grid stays [T, heads], but a block first looks
// at its token t (block-uniform scalar loads of token_seq / positions): a
// "run" is the contiguous tokens of one request (ragged-step contract). A
// token that is alone in its run (decode), or whose tile would hold one
// token, takes the per-token walk above. Otherwise t leads a query tile when
// it starts its run or positions[t] % Q == 0; the tile is t .. t+n-1 (same
// run, n <= Q, ending before the next multiple of Q), and the other tokens
// of the run exit at once. A tile block stages K keys and values of its kv
// head at a time in shared memory (f32) and every lane group (one query of
// the tile each, L' lanes) walks them in order with its own online softmax,
// masking keys past its query's position: each key is read from the cache
// once per tile instead of once per token, Q times fewer bytes.
//
// Decode variant NAME_decode (the runtime launches it instead for steps
// where every request has one token, T == B): grid [T, kv_heads] x splits,
// one block per (token, kv head, split of the context) computing all `group`
// query heads, so each key and value row is read once for the group; split
// partial states are merged by NAME_decode_combine (README.md, "Decode
// attention").
//
//===----------------------------------------------------------------------===//
#include "passes/Codegen/GPU/GpuKernelEmitter.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

#include <algorithm>
#include <limits>

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen::gpu;

/// Flat index, in the key or value array, of position `position` of kv head
/// `kvHead` for the request whose block-table row starts at `tableRow`:
/// ((page * layers + layer) * pageSize + slot) * kvHeads * headDim + kvHead * headDim.
/// The operands of a paged attention inside the kernel being built.
struct PagedView {
  RowAccess keys, values, positions, tokenSeq, blockTable, out;
  Value tableWidth; ///< P: block-table entries per request
};

static PagedView pagedView(GpuKernelEmitter &e, qtf::PagedAttentionOp attention) {
  auto [keys, values] = e.kvArrays(attention.getCache());
  Type element = attention.getCache().getType().getElementType();
  return {RowAccess{keys, element},
          RowAccess{values, element},
          e.access(attention.getPositions()),
          e.access(attention.getTokenSeq()),
          e.access(attention.getBlockTable()),
          e.result(0),
          e.dim("P")};
}

/// e^(max - globalMax), the weight of a partial softmax state in a merge;
/// 0 for a state that saw no key (max -inf), even when every state is empty
/// (globalMax -inf, where the exp alone would give NaN).
static Value softmaxFactor(ImplicitLocOpBuilder &b, Value max, Value globalMax) {
  Value empty = arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, max,
                                      arith::ConstantOp::create(b, b.getF32FloatAttr(
                                          -std::numeric_limits<float>::infinity())));
  Value factor = math::ExpOp::create(b, arith::SubFOp::create(b, max, globalMax));
  return arith::SelectOp::create(b, empty, arith::ConstantOp::create(b, b.getF32FloatAttr(0.0f)),
                                 factor);
}

/// The merge, for output column `column`, of `states` online-softmax states
/// kept in shared memory: state g has its max at maxes[index(g)], its sum at
/// sums[index(g)] and its accumulator row at partials[index(g) * headDim].
/// Each state weighs e^(max_g - globalMax): 0 for a state that saw no key
/// (max -inf, sum and acc 0); with `allMayBeEmpty` through softmaxFactor, for
/// a split whose states may all be empty. Returns {globalMax, sum, acc}.
struct MergedStates {
  Value max, sum, acc;
};
static MergedStates mergeSharedStates(GpuKernelEmitter &e, int64_t states, Value maxes, Value sums,
                                      Value partials, int64_t headDim, Value column,
                                      llvm::function_ref<Value(Value)> index, bool allMayBeEmpty) {
  ImplicitLocOpBuilder &b = e.builder();
  Value minusInf = e.f32(-std::numeric_limits<float>::infinity());
  Value globalMax = e.forLoop(e.index(0), e.index(states), 1, ValueRange{minusInf},
                              [&](Value g, ValueRange carried) -> SmallVector<Value> {
                                Value max = memref::LoadOp::create(b, maxes, ValueRange{index(g)});
                                return {arith::MaximumFOp::create(b, carried[0], max)};
                              })[0];
  ValueRange merged = e.forLoop(
      e.index(0), e.index(states), 1, ValueRange{e.f32(0.0f), e.f32(0.0f)},
      [&](Value g, ValueRange carried) -> SmallVector<Value> {
        Value at = index(g);
        Value max = memref::LoadOp::create(b, maxes, ValueRange{at});
        Value factor = allMayBeEmpty
                           ? softmaxFactor(b, max, globalMax)
                           : Value(math::ExpOp::create(b, arith::SubFOp::create(b, max, globalMax)));
        Value sum = memref::LoadOp::create(b, sums, ValueRange{at});
        Value part =
            memref::LoadOp::create(b, partials, ValueRange{e.addIndex(e.mulIndex(at, headDim), column)});
        return {math::FmaOp::create(b, sum, factor, carried[0]),
                math::FmaOp::create(b, part, factor, carried[1])};
      });
  return {globalMax, merged[0], merged[1]};
}

static Value kvRowOffset(GpuKernelEmitter &e, qtf::KVCacheType cache, int64_t layer, const RowAccess &blockTable,
                         Value tableRow, Value position, Value kvHead) {
  const int64_t pageSize = cache.getPageSize(), headDim = cache.getHeadDim();
  Value page = e.loadIndex(blockTable, e.addIndex(tableRow, e.divIndex(position, pageSize)));
  Value slot = e.remIndex(position, pageSize);
  Value base = e.addIndex(e.mulIndex(page, cache.getLayers()), e.index(layer));
  base = e.addIndex(e.mulIndex(base, pageSize), slot);
  return e.addIndex(e.mulIndex(base, cache.getKvHeads() * headDim), e.mulIndex(kvHead, headDim));
}

/// One key of the online softmax, in the CPU emitter's order: m' = max(m, s),
/// l' = l e^(m - m') + e^(s - m'), acc' = e^(s - m') v + acc e^(m - m').
/// `state` is (m, l, acc vectors...); appends the new state to `next`, or the
/// old one where `valid` is false. `value(c)` is the key's c-th value vector.
static void appendOnlineSoftmaxStep(ImplicitLocOpBuilder &b, VectorType vecType, Value score, Value valid,
                                    ValueRange state, llvm::function_ref<Value(int64_t)> value,
                                    SmallVectorImpl<Value> &next) {
  Value runningMax = state[0], runningSum = state[1];
  Value newMax = arith::MaximumFOp::create(b, runningMax, score);
  Value correction = math::ExpOp::create(b, arith::SubFOp::create(b, runningMax, newMax));
  Value weight = math::ExpOp::create(b, arith::SubFOp::create(b, score, newMax));
  Value newSum = arith::AddFOp::create(b, arith::MulFOp::create(b, runningSum, correction), weight);
  Value correctionVector = vector::BroadcastOp::create(b, vecType, correction);
  Value weightVector = vector::BroadcastOp::create(b, vecType, weight);
  next.push_back(arith::SelectOp::create(b, valid, newMax, runningMax));
  next.push_back(arith::SelectOp::create(b, valid, newSum, runningSum));
  for (size_t c = 2; c < state.size(); ++c) {
    Value acc = state[c];
    Value updated = vector::FMAOp::create(b, weightVector, value(int64_t(c - 2)),
                                          arith::MulFOp::create(b, acc, correctionVector));
    next.push_back(arith::SelectOp::create(b, valid, updated, acc));
  }
}

FailureOr<KernelGeometry>
qwen::codegen::gpu::emitAttentionKernel(GpuKernelEmitter &emitter) {
  func::FuncOp source = emitter.source();
  auto ret = cast<func::ReturnOp>(source.getBody().front().getTerminator());
  qtf::PagedAttentionOp attention;
  source.walk([&](qtf::PagedAttentionOp op) { attention = op; });
  if (!attention || ret.getNumOperands() != 1 ||
      codegen::computedValue(ret.getOperand(0)) != attention.getResult())
    return source.emitOpError("attention kernel must return one paged_attention"), failure();

  qtf::KVCacheType cache = attention.getCache().getType();
  RankedTensorType queryType = attention.getQuery().getType();
  const int64_t heads = queryType.getDimSize(1), headDim = queryType.getDimSize(2);
  const int64_t kvHeads = cache.getKvHeads(), group = heads / kvHeads;
  const int64_t layer = attention.getLayer();
  const float scale = static_cast<float>(attention.getScale().convertToDouble());
  std::string tokenSymbol = emitter.leadingSymbol(attention.getResult());

  // The block shapes are the kernel's #qkernel.schedule (passes/Schedule/
  // GpuSchedules.cpp says how they are chosen): `threads`, L = `lanes`
  // sharing one key, the head's `vector_width`; prefill tiles of Q =
  // tile[0] queries (L' = `tile_lanes` per query) over K = tile[1] keys.
  const qkernel::ScheduleAttr schedule = emitter.options().schedule;
  const int64_t threads = schedule.getThreads();
  const int64_t width = schedule.getVectorWidth();
  const int64_t lanes = schedule.getLanes(), tileLanes = schedule.getTileLanes();
  const int64_t tileQueries = schedule.tileSize(0), tileKeys = schedule.tileSize(1);
  if (headDim % width || lanes < 1 || tileLanes < 1 || tileQueries < 1 || tileKeys < 1 ||
      (headDim / width) % lanes || (headDim / width) % tileLanes ||
      schedule.getDecodeLanes() < 1 || schedule.decodeTileSize(0) < 1 ||
      schedule.getSplits() < 1 || schedule.getCombineThreads() < 1)
    return source.emitOpError("attention schedule does not fit head_dim ") << headDim, failure();
  const int64_t vectors = headDim / width;
  const int64_t perLane = vectors / lanes;
  const int64_t groups = threads / lanes;
  const int64_t tilePerLane = vectors / tileLanes;

  emitter.createKernel(threads, [&] {
    ImplicitLocOpBuilder &b = emitter.builder();
    auto vecType = VectorType::get({width}, b.getF32Type());
    PagedView paged = pagedView(emitter, attention);

    Value item = emitter.blockId();
    Value token = emitter.divIndex(item, heads);
    Value head = emitter.remIndex(item, heads);
    Value kvHead = emitter.divIndex(head, group);
    Value T = emitter.dim("T");
    Value query = emitter.sharedRow(headDim);
    Value minusInf = emitter.f32(-std::numeric_limits<float>::infinity());
    Value zero = arith::ConstantOp::create(b, DenseElementsAttr::get(vecType, 0.0f));
    auto cmp = [&](arith::CmpIPredicate predicate, Value x, Value y) -> Value {
      return arith::CmpIOp::create(b, predicate, x, y);
    };
    Value trueValue = arith::ConstantOp::create(b, b.getBoolAttr(true));
    auto land = [&](Value x, Value y) -> Value { return arith::AndIOp::create(b, x, y); };
    // Flat index of (position jc, kv head) in the cache of request row tableRow.
    auto cacheBase = [&](Value tableRow, Value jc) -> Value {
      return kvRowOffset(emitter, cache, layer, paged.blockTable, tableRow, jc, kvHead);
    };

    // Block-uniform role of this block: per-token walk, tile leader, or done.
    Value sequence = emitter.loadIndex(paged.tokenSeq, token);
    Value position = emitter.loadIndex(paged.positions, token);
    Value one = emitter.index(1);
    Value hasPrevious = cmp(arith::CmpIPredicate::ugt, token, emitter.index(0));
    Value previous =
        arith::SelectOp::create(b, hasPrevious, arith::SubIOp::create(b, token, one), token);
    Value continues = land(hasPrevious, cmp(arith::CmpIPredicate::eq,
                                            emitter.loadIndex(paged.tokenSeq, previous), sequence));
    Value offset = emitter.remIndex(position, tileQueries);
    Value leads = arith::OrIOp::create(b, arith::XOrIOp::create(b, continues, trueValue),
                                       cmp(arith::CmpIPredicate::eq, offset, emitter.index(0)));
    // n: tokens t .. t+n-1 of the run, n <= Q - positions[t] % Q.
    Value limit =
        arith::MinUIOp::create(b, arith::SubIOp::create(b, emitter.index(tileQueries), offset),
                               arith::SubIOp::create(b, T, token));
    Value scanEnd = arith::SelectOp::create(b, leads, limit, one);
    Value count = emitter.forLoop(
        one, scanEnd, 1, ValueRange{one, trueValue},
        [&](Value i, ValueRange carried) -> SmallVector<Value> {
          Value same = cmp(arith::CmpIPredicate::eq,
                           emitter.loadIndex(paged.tokenSeq, emitter.addIndex(token, i)), sequence);
          Value open = land(carried[1], same);
          Value grown =
              arith::SelectOp::create(b, open, emitter.addIndex(carried[0], one), carried[0]);
          return {grown, open};
        })[0];
    Value single = cmp(arith::CmpIPredicate::eq, count, one);
    Value perToken = land(leads, single);
    Value tiled = land(leads, arith::XOrIOp::create(b, single, trueValue));

    // The query rows, through the shared row one at a time (the row chain
    // is block-cooperative; one copy of it serves both paths): the tile's n
    // rows, each group keeping the slice of its own query in registers, or
    // the per-token walk's single row, which it reads after the loop.
    Value tileGroupId = emitter.divIndex(emitter.threadId(), tileLanes);
    Value tileLane = emitter.remIndex(emitter.threadId(), tileLanes);
    SmallVector<Value> tileColumns;
    for (int64_t c = 0; c < tilePerLane; ++c)
      tileColumns.push_back(
          emitter.mulIndex(emitter.addIndex(tileLane, emitter.index(c * tileLanes)), width));
    // Group g owns query g of the tile (groups >= n keep a copy of the last
    // one: they compute like the others and store nothing).
    Value mine = arith::MinUIOp::create(b, tileGroupId, arith::SubIOp::create(b, count, one));
    Value rows = arith::SelectOp::create(
        b, tiled, count, arith::SelectOp::create(b, perToken, one, emitter.index(0)));
    SmallVector<Value> qInit(tilePerLane, zero);
    SmallVector<Value> tileQ = llvm::to_vector(emitter.forLoop(
        emitter.index(0), rows, 1, qInit, [&](Value i, ValueRange carried) -> SmallVector<Value> {
          emitter.emitRowChain(attention.getQuery(), emitter.addIndex(token, i), head, query);
          Value take = cmp(arith::CmpIPredicate::eq, mine, i);
          SmallVector<Value> next;
          for (int64_t c = 0; c < tilePerLane; ++c)
            next.push_back(arith::SelectOp::create(
                b, take, emitter.loadShared(query, tileColumns[c], width), carried[c]));
          emitter.barrier(); // the row is rewritten by the next query
          return next;
        }));

    // One query tile: tokens token .. token+n-1 of one request, n in [2, Q].
    auto emitTile = [&](Value first, Value n) {
      Value groupId = tileGroupId;
      ArrayRef<Value> columns = tileColumns;
      ArrayRef<Value> q = tileQ;
      Value myToken = emitter.addIndex(first, mine);
      Value myPosition = emitter.loadIndex(paged.positions, myToken);
      Value lastPosition =
          emitter.loadIndex(paged.positions, emitter.addIndex(first, arith::SubIOp::create(b, n, one)));
      Value tableRow = emitter.mulIndex(sequence, paged.tableWidth);

      Value keyTile = emitter.sharedRow(tileKeys * headDim);
      Value valueTile = emitter.sharedRow(tileKeys * headDim);
      Value contextEnd = emitter.addIndex(lastPosition, one);
      SmallVector<Value> init{minusInf, emitter.f32(0.0f)};
      init.append(tilePerLane, zero);
      ValueRange finals = emitter.forLoop(
          emitter.index(0), contextEnd, tileKeys, init,
          [&](Value start, ValueRange carried) -> SmallVector<Value> {
            // Stage keys start .. start+K-1 (clamped to the tile's last
            // position) as f32, a vector per thread at a time, coalesced.
            emitter.forLoop(
                emitter.threadId(), emitter.index(tileKeys * vectors), threads, [&](Value element) {
                  Value j = emitter.divIndex(element, vectors);
                  Value col = emitter.mulIndex(emitter.remIndex(element, vectors), width);
                  Value jc = arith::MinUIOp::create(b, emitter.addIndex(start, j), lastPosition);
                  Value at = emitter.addIndex(cacheBase(tableRow, jc), col);
                  Value to = emitter.addIndex(emitter.mulIndex(j, headDim), col);
                  emitter.storeShared(keyTile, to, emitter.loadVectorF32(paged.keys, at, width));
                  emitter.storeShared(valueTile, to, emitter.loadVectorF32(paged.values, at, width));
                });
            emitter.barrier();
            SmallVector<Value> updated = llvm::to_vector(emitter.forLoop(
                emitter.index(0), emitter.index(tileKeys), 1, carried,
                [&](Value j, ValueRange state) -> SmallVector<Value> {
                  Value keyRow = emitter.mulIndex(j, headDim);
                  Value valid =
                      cmp(arith::CmpIPredicate::ule, emitter.addIndex(start, j), myPosition);
                  Value dotVector = zero;
                  for (int64_t c = 0; c < tilePerLane; ++c) {
                    Value k =
                        emitter.loadShared(keyTile, emitter.addIndex(keyRow, columns[c]), width);
                    dotVector = vector::FMAOp::create(b, q[c], k, dotVector);
                  }
                  Value partial =
                      vector::ReductionOp::create(b, vector::CombiningKind::ADD, dotVector);
                  Value score = arith::MulFOp::create(b, emitter.laneSum(partial, tileLanes),
                                                      emitter.f32(scale));
                  SmallVector<Value> next;
                  appendOnlineSoftmaxStep(
                      b, vecType, score, valid, state.take_front(2 + tilePerLane),
                      [&](int64_t c) {
                        return emitter.loadShared(valueTile, emitter.addIndex(keyRow, columns[c]), width);
                      },
                      next);
                  return next;
                }));
            emitter.barrier(); // the tiles are restaged next
            return updated;
          });

      Value owns = cmp(arith::CmpIPredicate::ult, groupId, n);
      emitter.ifThen(owns, [&] {
        Value inverse = arith::DivFOp::create(b, emitter.f32(1.0f), finals[1]);
        Value inverseVector = vector::BroadcastOp::create(b, vecType, inverse);
        Value outBase =
            emitter.mulIndex(emitter.addIndex(emitter.mulIndex(myToken, heads), head), headDim);
        for (int64_t c = 0; c < tilePerLane; ++c)
          emitter.store(paged.out, emitter.addIndex(outBase, columns[c]),
                        arith::MulFOp::create(b, finals[2 + c], inverseVector));
      });
    };

    emitter.ifThen(perToken, [&] {
      Value groupId = emitter.divIndex(emitter.threadId(), lanes);
      Value lane = emitter.remIndex(emitter.threadId(), lanes);
      // Columns of this lane: vectors lane, lane + L, ... (coalesced per key).
      SmallVector<Value> columns, q;
      for (int64_t j = 0; j < perLane; ++j) {
        columns.push_back(
            emitter.mulIndex(emitter.addIndex(lane, emitter.index(j * lanes)), width));
        q.push_back(emitter.loadShared(query, columns.back(), width));
      }

      Value tableRow = emitter.mulIndex(sequence, paged.tableWidth);
      Value contextEnd = emitter.addIndex(position, emitter.index(1));
      Value lastPosition = position;

      SmallVector<Value> init{minusInf, emitter.f32(0.0f)};
      init.append(perLane, zero);
      ValueRange finals = emitter.forLoop(
          emitter.index(0), contextEnd, groups, init,
          [&](Value start, ValueRange carried) -> SmallVector<Value> {
            Value j = emitter.addIndex(start, groupId);
            Value valid = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, j, contextEnd);
            Value jc = arith::MinUIOp::create(b, j, lastPosition);
            Value base = cacheBase(tableRow, jc);
            Value dotVector = zero;
            for (int64_t c = 0; c < perLane; ++c) {
              Value k = emitter.loadVectorF32(paged.keys, emitter.addIndex(base, columns[c]), width);
              dotVector = vector::FMAOp::create(b, q[c], k, dotVector);
            }
            Value partial = vector::ReductionOp::create(b, vector::CombiningKind::ADD, dotVector);
            Value score =
                arith::MulFOp::create(b, emitter.laneSum(partial, lanes), emitter.f32(scale));
            SmallVector<Value> next;
            appendOnlineSoftmaxStep(
                b, vecType, score, valid, carried.take_front(2 + perLane),
                [&](int64_t c) {
                  return emitter.loadVectorF32(paged.values, emitter.addIndex(base, columns[c]), width);
                },
                next);
            return next;
          });

      // Merge the G partial softmax states.
      Value maxes = emitter.sharedRow(groups);
      Value sums = emitter.sharedRow(groups);
      Value partials = emitter.sharedRow(groups * headDim);
      Value isFirstLane =
          arith::CmpIOp::create(b, arith::CmpIPredicate::eq, lane, emitter.index(0));
      emitter.ifThen(isFirstLane, [&] {
        memref::StoreOp::create(b, finals[0], maxes, ValueRange{groupId});
        memref::StoreOp::create(b, finals[1], sums, ValueRange{groupId});
      });
      Value groupBase = emitter.mulIndex(groupId, headDim);
      for (int64_t c = 0; c < perLane; ++c)
        emitter.storeShared(partials, emitter.addIndex(groupBase, columns[c]), finals[2 + c]);
      emitter.barrier();

      Value outBase = emitter.mulIndex(item, headDim);
      emitter.forLoop(emitter.threadId(), emitter.index(headDim), threads, [&](Value d) {
        // Groups that saw no key have max -inf, sum 0 and acc 0: factor 0.
        MergedStates merged = mergeSharedStates(emitter, groups, maxes, sums, partials, headDim, d,
                                                [](Value g) { return g; }, /*allMayBeEmpty=*/false);
        Value inverse = arith::DivFOp::create(b, emitter.f32(1.0f), merged.sum);
        emitter.store(paged.out, emitter.addIndex(outBase, d),
                      arith::MulFOp::create(b, merged.acc, inverse));
      });
    });

    emitter.ifThen(tiled, [&] { emitTile(token, count); });
  });

  Builder builder(source.getContext());
  KernelGeometry geometry{{builder.getStringAttr(tokenSymbol), builder.getI64IntegerAttr(heads)},
                          emitter.blockSize(),
                          emitter.sharedBytes()};

  // Decode variant NAME_decode (same ABI), for steps where every request has
  // one token (T == B): one block per (token, kv head) computing all `group`
  // query heads of the kv head, so each key / value row of the cache is read
  // once for the whole group. L_d lanes per key, each with at most 4 vectors
  // of the head (8 lanes at head_dim 128): fewer lanes than the per-token
  // walk so that G' = threads / L_d keys are in flight per block (a block
  // walking one key per warp is latency bound, as the H100 showed). The G'
  // lane groups split the context (group g walks positions g, g + G', ...),
  // each with one online softmax per query head (q and the f32 accumulators
  // in registers), merged through shared memory. At most 64 (the schedule's decode_tile)
  // accumulator floats per lane: larger groups take the heads H at a time,
  // in passes over the keys.
  //
  // Split-K across blocks (flash-decoding): with `splits` > 1 (a parameter
  // the runtime picks so that short batches still fill the GPU) the grid is
  // [T, kv_heads] x splits; split s walks its own contiguous range of the
  // context and writes its merged state (max, sum, unnormalized acc) per
  // query head to `partials`, and NAME_decode_combine merges the splits.
  // With splits = 1 the block writes the output itself.
  // Decode shapes from the schedule: decode_threads, L_d = decode_lanes,
  // H = decode_tile[0] query heads per pass, up to `splits` splits.
  // A partial record: [max, sum, -, -, acc x headDim] (acc 16-byte aligned).
  const int64_t partialStride = headDim + 4;
  const int64_t decodeLanes = schedule.getDecodeLanes();
  const int64_t decodePerLane = vectors / decodeLanes;
  const int64_t decodeThreads = schedule.getDecodeThreads();
  const int64_t decodeGroups = decodeThreads / decodeLanes;
  const int64_t chunkHeads = std::min(group, schedule.decodeTileSize(0));
  std::string decodeName = (source.getSymName() + "_decode").str();
  SmallVector<BlockArgument> sourceArgs(source.getArguments());
  emitter.createKernel(decodeName, sourceArgs, source.getResultTypes(), decodeThreads, [&] {
    ImplicitLocOpBuilder &b = emitter.builder();
    auto vecType = VectorType::get({width}, b.getF32Type());
    PagedView paged = pagedView(emitter, attention);
    Value minusInf = emitter.f32(-std::numeric_limits<float>::infinity());
    Value zero = arith::ConstantOp::create(b, DenseElementsAttr::get(vecType, 0.0f));

    Value partialsOut = emitter.extraPointer(0);
    Value splits = emitter.extraScalar(0);
    Value split = arith::RemUIOp::create(b, emitter.blockId(), splits);
    Value item = arith::DivUIOp::create(b, emitter.blockId(), splits);
    Value token = emitter.divIndex(item, kvHeads);
    Value kvHead = emitter.remIndex(item, kvHeads);
    Value sequence = emitter.loadIndex(paged.tokenSeq, token);
    Value position = emitter.loadIndex(paged.positions, token);
    Value tableRow = emitter.mulIndex(sequence, paged.tableWidth);
    Value contextEnd = emitter.addIndex(position, emitter.index(1));
    // This split's keys [begin, end): ceil(context / splits) rounded up to
    // whole steps of the lane groups; trailing splits may be empty.
    Value perSplit = arith::CeilDivUIOp::create(b, contextEnd, splits);
    Value chunk = emitter.mulIndex(
        arith::CeilDivUIOp::create(b, perSplit, emitter.index(decodeGroups)), decodeGroups);
    Value begin = emitter.mulIndex(split, chunk);
    Value end = arith::MinUIOp::create(b, emitter.addIndex(begin, chunk), contextEnd);
    Value single = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, splits, emitter.index(1));
    Value groupId = emitter.divIndex(emitter.threadId(), decodeLanes);
    Value lane = emitter.remIndex(emitter.threadId(), decodeLanes);
    SmallVector<Value> columns;
    for (int64_t c = 0; c < decodePerLane; ++c)
      columns.push_back(emitter.mulIndex(emitter.addIndex(lane, emitter.index(c * decodeLanes)), width));

    Value query = emitter.sharedRow(headDim);
    Value maxes = emitter.sharedRow(decodeGroups * chunkHeads);
    Value sums = emitter.sharedRow(decodeGroups * chunkHeads);
    Value partials = emitter.sharedRow(decodeGroups * chunkHeads * headDim);
    Value isFirstLane = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, lane, emitter.index(0));

    for (int64_t h0 = 0; h0 < group; h0 += chunkHeads) {
      const int64_t n = std::min(chunkHeads, group - h0);
      Value firstHead = emitter.addIndex(emitter.mulIndex(kvHead, group), emitter.index(h0));
      // The n query rows through the shared row (the row chain is
      // block-cooperative), each lane keeping its slice of every row.
      SmallVector<Value> qInit(n * decodePerLane, zero);
      SmallVector<Value> q = llvm::to_vector(emitter.forLoop(
          emitter.index(0), emitter.index(n), 1, qInit,
          [&](Value i, ValueRange carried) -> SmallVector<Value> {
            emitter.emitRowChain(attention.getQuery(), token, emitter.addIndex(firstHead, i),
                                 query);
            SmallVector<Value> slice;
            for (int64_t c = 0; c < decodePerLane; ++c)
              slice.push_back(emitter.loadShared(query, columns[c], width));
            SmallVector<Value> next;
            for (int64_t h = 0; h < n; ++h) {
              Value take =
                  arith::CmpIOp::create(b, arith::CmpIPredicate::eq, i, emitter.index(h));
              for (int64_t c = 0; c < decodePerLane; ++c)
                next.push_back(
                    arith::SelectOp::create(b, take, slice[c], carried[h * decodePerLane + c]));
            }
            emitter.barrier(); // the row is rewritten by the next head
            return next;
          }));

      // State of head h: [max, sum, acc x decodePerLane] at h * (2 + decodePerLane).
      const int64_t stride = 2 + decodePerLane;
      SmallVector<Value> init;
      for (int64_t h = 0; h < n; ++h) {
        init.append({minusInf, emitter.f32(0.0f)});
        init.append(decodePerLane, zero);
      }
      SmallVector<Value> finals = llvm::to_vector(emitter.forLoop(
          begin, end, decodeGroups, init,
          [&](Value start, ValueRange carried) -> SmallVector<Value> {
            Value j = emitter.addIndex(start, groupId);
            Value valid = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, j, end);
            Value jc = arith::MinUIOp::create(b, j, position);
            Value base = kvRowOffset(emitter, cache, layer, paged.blockTable, tableRow, jc, kvHead);
            SmallVector<Value> k, v;
            for (int64_t c = 0; c < decodePerLane; ++c)
              k.push_back(
                  emitter.loadVectorF32(paged.keys, emitter.addIndex(base, columns[c]), width));
            for (int64_t c = 0; c < decodePerLane; ++c)
              v.push_back(
                  emitter.loadVectorF32(paged.values, emitter.addIndex(base, columns[c]), width));
            SmallVector<Value> next;
            for (int64_t h = 0; h < n; ++h) {
              Value dotVector = zero;
              for (int64_t c = 0; c < decodePerLane; ++c)
                dotVector = vector::FMAOp::create(b, q[h * decodePerLane + c], k[c], dotVector);
              Value partial = vector::ReductionOp::create(b, vector::CombiningKind::ADD, dotVector);
              Value score =
                  arith::MulFOp::create(b, emitter.laneSum(partial, decodeLanes), emitter.f32(scale));
              appendOnlineSoftmaxStep(b, vecType, score, valid, carried.slice(h * stride, 2 + decodePerLane),
                                      [&](int64_t c) { return v[c]; }, next);
            }
            return next;
          }));

      // Merge the G' partial states of each head.
      emitter.ifThen(isFirstLane, [&] {
        for (int64_t h = 0; h < n; ++h) {
          Value at = emitter.addIndex(emitter.mulIndex(groupId, chunkHeads), emitter.index(h));
          memref::StoreOp::create(b, finals[h * stride], maxes, ValueRange{at});
          memref::StoreOp::create(b, finals[h * stride + 1], sums, ValueRange{at});
        }
      });
      for (int64_t h = 0; h < n; ++h) {
        Value rowBase = emitter.mulIndex(
            emitter.addIndex(emitter.mulIndex(groupId, chunkHeads), emitter.index(h)), headDim);
        for (int64_t c = 0; c < decodePerLane; ++c)
          emitter.storeShared(partials, emitter.addIndex(rowBase, columns[c]),
                              finals[h * stride + 2 + c]);
      }
      emitter.barrier();

      emitter.forLoop(emitter.threadId(), emitter.index(n * headDim), decodeThreads, [&](Value e) {
        Value h = emitter.divIndex(e, headDim);
        Value d = emitter.remIndex(e, headDim);
        auto stateAt = [&](Value g) {
          return emitter.addIndex(emitter.mulIndex(g, chunkHeads), h);
        };
        // Groups that saw no key weigh 0, also when the whole split is empty
        // and globalMax is -inf.
        MergedStates merged = mergeSharedStates(emitter, decodeGroups, maxes, sums, partials, headDim, d,
                                                stateAt, /*allMayBeEmpty=*/true);
        Value outRow =
            emitter.addIndex(emitter.mulIndex(token, heads), emitter.addIndex(firstHead, h));
        emitter.ifThen(single, [&] {
          Value inverse = arith::DivFOp::create(b, emitter.f32(1.0f), merged.sum);
          emitter.store(paged.out, emitter.addIndex(emitter.mulIndex(outRow, headDim), d),
                        arith::MulFOp::create(b, merged.acc, inverse));
        });
        emitter.ifThen(arith::CmpIOp::create(b, arith::CmpIPredicate::ne, splits, emitter.index(1)), [&] {
          Value record = emitter.mulIndex(
              emitter.addIndex(emitter.mulIndex(outRow, splits), split), partialStride);
          memref::StoreOp::create(b, merged.acc, partialsOut,
                                  ValueRange{emitter.addIndex(record, emitter.addIndex(d, emitter.index(4)))});
          emitter.ifThen(arith::CmpIOp::create(b, arith::CmpIPredicate::eq, d, emitter.index(0)), [&] {
            memref::StoreOp::create(b, merged.max, partialsOut, ValueRange{record});
            memref::StoreOp::create(b, merged.sum, partialsOut,
                                    ValueRange{emitter.addIndex(record, emitter.index(1))});
          });
        });
      });
      if (h0 + chunkHeads < group)
        emitter.barrier(); // the next heads reuse the shared rows
    }
  }, ExtraParams{/*pointers=*/1, /*scalars=*/1});
  geometry.decode = {decodeName,
                     {builder.getStringAttr(tokenSymbol), builder.getI64IntegerAttr(kvHeads)},
                     decodeThreads,
                     emitter.sharedBytes()};
  geometry.decodeMaxSplits = schedule.getSplits();
  geometry.decodePartialFloats = heads * partialStride;

  // NAME_decode_combine (same parameters as NAME_decode), after a split
  // decode: block (token, query head) merges the `splits` partial states,
  // thread d one output column: out = sum_s acc_s e^(m_s - M) / sum_s l_s e^(m_s - M).
  const int64_t combineThreads = schedule.getCombineThreads();
  std::string combineName = (source.getSymName() + "_decode_combine").str();
  emitter.createKernel(combineName, sourceArgs, source.getResultTypes(), combineThreads, [&] {
    ImplicitLocOpBuilder &b = emitter.builder();
    Value partials = emitter.extraPointer(0);
    Value splits = emitter.extraScalar(0);
    RowAccess out = emitter.result(0);
    Value row = emitter.blockId(); // token * heads + head
    Value first = emitter.mulIndex(row, splits);
    Value minusInf = emitter.f32(-std::numeric_limits<float>::infinity());
    auto load = [&](Value split, int64_t field, Value column) {
      Value at = emitter.addIndex(emitter.mulIndex(emitter.addIndex(first, split), partialStride),
                                  emitter.index(field));
      return memref::LoadOp::create(b, partials, ValueRange{column ? emitter.addIndex(at, column) : at})
          .getResult();
    };
    emitter.forLoop(emitter.threadId(), emitter.index(headDim), combineThreads, [&](Value d) {
      Value globalMax =
          emitter.forLoop(emitter.index(0), splits, 1, ValueRange{minusInf},
                          [&](Value s, ValueRange carried) -> SmallVector<Value> {
                            return {arith::MaximumFOp::create(b, carried[0], load(s, 0, Value()))};
                          })[0];
      ValueRange merged = emitter.forLoop(
          emitter.index(0), splits, 1, ValueRange{emitter.f32(0.0f), emitter.f32(0.0f)},
          [&](Value s, ValueRange carried) -> SmallVector<Value> {
            Value factor = softmaxFactor(b, load(s, 0, Value()), globalMax);
            return {math::FmaOp::create(b, load(s, 1, Value()), factor, carried[0]),
                    math::FmaOp::create(b, load(s, 4, d), factor, carried[1])};
          });
      Value inverse = arith::DivFOp::create(b, emitter.f32(1.0f), merged[0]);
      emitter.store(out, emitter.addIndex(emitter.mulIndex(row, headDim), d),
                    arith::MulFOp::create(b, merged[1], inverse));
    });
  }, ExtraParams{/*pointers=*/1, /*scalars=*/1});
  geometry.combine = {combineName,
                      {builder.getStringAttr(tokenSymbol), builder.getI64IntegerAttr(heads)},
                      combineThreads,
                      emitter.sharedBytes()};
  return geometry;
}
