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
// Phases (KernelPhase names, in order; test/Codegen/GPU/attention-phases.mlir):
//   NAME:         attention.role (per-token walk, tile leader or done),
//                 attention.load_q (the query rows through the shared row),
//                 per-token walk: attention.key_loop { attention.scores,
//                 attention.online_softmax, attention.accumulate_v },
//                 attention.merge_groups, attention.finalize;
//                 query tile: attention.key_loop { attention.stage_kv,
//                 attention.scores, attention.online_softmax,
//                 attention.accumulate_v }, attention.finalize
//   NAME_decode:  attention.split_range, then per chunk of query heads
//                 attention.load_q, attention.key_loop { attention.scores,
//                 attention.online_softmax, attention.accumulate_v },
//                 attention.merge_groups, attention.finalize and
//                 attention.split_partial_write
//   NAME_decode_combine: attention.combine
// The online-softmax math is Common/AttentionMath's, shared with the CPU.
//
// With a `tensor_cores` schedule (bf16 / f16 caches, qwen-select-schedule
// gpu-attention=mma) a tile leader runs AttentionMma.cpp's tile instead
// (mma.sync, Q = 16 rows per warp); the other paths are unchanged.
//
//===----------------------------------------------------------------------===//
#include "passes/Codegen/GPU/AttentionMma.h"
#include "passes/Codegen/GPU/GpuKernelEmitter.h"
#include "qwen/Passes/Codegen/Common/AttentionMath.h"
#include "qwen/Passes/Codegen/Common/KernelPhase.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

#include <algorithm>
#include <limits>

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen::gpu;
using qwen::codegen::KernelPhase;

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

/// The merge, for output column `column`, of `states` online-softmax states
/// kept in shared memory: state g has its max at maxes[index(g)], its sum at
/// sums[index(g)] and its accumulator row at partials[index(g) * headDim].
/// Each state weighs e^(max_g - globalMax): 0 for a state that saw no key
/// (max -inf, sum and acc 0); with `allMayBeEmpty` through
/// softmaxMergeFactor, for a split whose states may all be empty. Returns
/// {globalMax, sum, acc}.
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
                           ? codegen::softmaxMergeFactor(b, max, globalMax)
                           : Value(math::ExpOp::create(b, arith::SubFOp::create(b, max, globalMax)));
        Value sum = memref::LoadOp::create(b, sums, ValueRange{at});
        Value part =
            memref::LoadOp::create(b, partials, ValueRange{e.addIndex(e.mulIndex(at, headDim), column)});
        return {math::FmaOp::create(b, sum, factor, carried[0]),
                math::FmaOp::create(b, part, factor, carried[1])};
      });
  return {globalMax, merged[0], merged[1]};
}

/// Flat index, in the key or value array, of position `position` of kv head
/// `kvHead` for the request whose block-table row starts at `tableRow`:
/// ((page * layers + layer) * pageSize + slot) * kvHeads * headDim + kvHead * headDim.
static Value kvRowOffset(GpuKernelEmitter &e, qtf::KVCacheType cache, int64_t layer, const RowAccess &blockTable,
                         Value tableRow, Value position, Value kvHead) {
  const int64_t pageSize = cache.getPageSize(), headDim = cache.getHeadDim();
  Value page = e.loadIndex(blockTable, e.addIndex(tableRow, e.divIndex(position, pageSize)));
  Value slot = e.remIndex(position, pageSize);
  Value base = e.addIndex(e.mulIndex(page, cache.getLayers()), e.index(layer));
  base = e.addIndex(e.mulIndex(base, pageSize), slot);
  return e.addIndex(e.mulIndex(base, cache.getKvHeads() * headDim), e.mulIndex(kvHead, headDim));
}

/// Phases attention.scores: (q . k) * scale of one key, q and k as `count`
/// vector slices of this lane (k(c) emits or returns slice c), the partial
/// dot products summed over `lanes` consecutive lanes.
static Value laneScore(GpuKernelEmitter &e, ArrayRef<Value> q, int64_t count, Value zero,
                       llvm::function_ref<Value(int64_t)> k, int64_t lanes, float scale) {
  ImplicitLocOpBuilder &b = e.builder();
  KernelPhase phase(b, "attention.scores");
  Value dotVector = zero;
  for (int64_t c = 0; c < count; ++c)
    dotVector = vector::FMAOp::create(b, q[c], k(c), dotVector);
  Value partial = vector::ReductionOp::create(b, vector::CombiningKind::ADD, dotVector);
  return arith::MulFOp::create(b, e.laneSum(partial, lanes), e.f32(scale));
}

/// Phases attention.online_softmax and attention.accumulate_v: one key of
/// the online softmax (Common/AttentionMath) on the register state
/// `state` = (m, l, acc vectors...); appends the new state to `next`, or the
/// old one where `valid` is false. `value(c)` is the key's c-th value vector.
static void appendOnlineSoftmaxStep(ImplicitLocOpBuilder &b, VectorType vecType, Value score, Value valid,
                                    ValueRange state, llvm::function_ref<Value(int64_t)> value,
                                    SmallVectorImpl<Value> &next) {
  codegen::OnlineSoftmaxStep step = [&] {
    KernelPhase phase(b, "attention.online_softmax");
    codegen::OnlineSoftmaxStep s = codegen::onlineSoftmaxStep(b, vecType, state[0], state[1], score);
    next.push_back(arith::SelectOp::create(b, valid, s.max, state[0]));
    next.push_back(arith::SelectOp::create(b, valid, s.sum, state[1]));
    return s;
  }();
  KernelPhase phase(b, "attention.accumulate_v");
  for (size_t c = 2; c < state.size(); ++c) {
    Value v = value(int64_t(c - 2));
    next.push_back(arith::SelectOp::create(b, valid, codegen::accumulateValue(b, step, state[c], v),
                                           state[c]));
  }
}

namespace {

/// The attention kernels of one paged_attention, one method per phase. The
/// plan (lanes, groups, tiles) is derived from head_dim and the block size
/// in the constructor; members set by a phase are read by the later ones.
class GpuAttention {
public:
  GpuAttention(GpuKernelEmitter &e, qtf::PagedAttentionOp attention);
  LogicalResult checkSchedule();
  void emitKernel();
  void emitDecodeKernel(StringRef name);
  void emitCombineKernel(StringRef name);

  // The plan, also recorded in the launch geometry.
  int64_t heads, headDim, kvHeads, group, threads;
  int64_t decodeThreads, partialStride, combineThreads;

private:
  Value cmp(arith::CmpIPredicate predicate, Value x, Value y) {
    return arith::CmpIOp::create(b(), predicate, x, y);
  }
  Value land(Value x, Value y) { return arith::AndIOp::create(b(), x, y); }
  ImplicitLocOpBuilder &b() { return e.builder(); }
  /// Flat index of (position jc, kv head) in the cache of request row tableRow.
  Value cacheBase(Value tableRow, Value jc) {
    return kvRowOffset(e, cache, layer, paged.blockTable, tableRow, jc, kvHead);
  }
  void setUp();
  void findRole();
  void loadTileQueries();
  void emitPerTokenWalk();
  void emitTile(Value first, Value n);
  SmallVector<Value> stageAndWalkTile(Value start, ValueRange carried, Value tableRow,
                                      Value lastPosition, Value myPosition, Value keyTile,
                                      Value valueTile);
  void setUpDecode();
  SmallVector<Value> loadDecodeQueries(Value firstHead, int64_t n);
  SmallVector<Value> walkDecodeKeys(ArrayRef<Value> q, int64_t n);
  void mergeDecodeGroups(ArrayRef<Value> finals, Value firstHead, int64_t n);

  GpuKernelEmitter &e;
  qtf::PagedAttentionOp attention;
  qtf::KVCacheType cache;
  int64_t layer;
  float scale;
  int64_t width, vectors, lanes, perLane, groups;
  int64_t tileLanes, tilePerLane, tileQueries, tileKeys;
  int64_t decodeLanes, decodePerLane, decodeGroups, chunkHeads;
  bool tensorCores; ///< query tiles on tensor cores (AttentionMma.cpp)
  VectorType vecType;
  PagedView paged;
  // NAME: setUp / findRole / loadTileQueries.
  Value item, token, head, kvHead, query, minusInf, zero, trueValue, one;
  Value sequence, position, count, perToken, tiled;
  Value tileGroupId, mine;
  SmallVector<Value> tileColumns, tileQ;
  // NAME_decode: setUpDecode.
  Value partialsOut, splits, split, tableRow, begin, end, single, groupId, lane;
  Value maxes, sums, partials, isFirstLane;
  SmallVector<Value> columns;
};

} // namespace

GpuAttention::GpuAttention(GpuKernelEmitter &e, qtf::PagedAttentionOp attention)
    : e(e), attention(attention), cache(attention.getCache().getType()),
      layer(attention.getLayer()),
      scale(static_cast<float>(attention.getScale().convertToDouble())) {
  RankedTensorType queryType = attention.getQuery().getType();
  heads = queryType.getDimSize(1);
  headDim = queryType.getDimSize(2);
  kvHeads = cache.getKvHeads();
  group = heads / kvHeads;
  // The block shapes are the kernel's #qkernel.schedule (passes/Schedule/
  // GpuSchedules.cpp says how they are chosen): `threads`, L = `lanes`
  // sharing one key, the head's `vector_width`; prefill tiles of Q =
  // tile[0] queries (L' = `tile_lanes` per query) over K = tile[1] keys;
  // decode blocks of `decode_threads` with L_d = `decode_lanes` per key and
  // H = decode_tile[0] query heads per pass; `combine_threads`.
  const qkernel::ScheduleAttr schedule = e.options().schedule;
  threads = schedule.getThreads();
  width = schedule.getVectorWidth();
  lanes = std::max<int64_t>(schedule.getLanes(), 1);
  tileLanes = std::max<int64_t>(schedule.getTileLanes(), 1);
  tileQueries = schedule.tileSize(0);
  tileKeys = schedule.tileSize(1);
  decodeLanes = std::max<int64_t>(schedule.getDecodeLanes(), 1);
  decodeThreads = schedule.getDecodeThreads();
  chunkHeads = std::min(group, schedule.decodeTileSize(0));
  combineThreads = schedule.getCombineThreads();
  tensorCores = schedule.getTensorCores();
  vectors = headDim / width;
  perLane = vectors / lanes;
  groups = threads / lanes;
  tilePerLane = vectors / tileLanes;
  // A partial record: [max, sum, -, -, acc x headDim] (acc 16-byte aligned).
  partialStride = headDim + 4;
  decodePerLane = vectors / decodeLanes;
  decodeGroups = decodeThreads / std::max<int64_t>(decodeLanes, 1);
}

LogicalResult GpuAttention::checkSchedule() {
  const qkernel::ScheduleAttr schedule = e.options().schedule;
  if (headDim % width || vectors % lanes || vectors % tileLanes || vectors % decodeLanes ||
      tileQueries < 1 || tileKeys < 1 || decodeThreads < 1 || chunkHeads < 1 ||
      combineThreads < 1 || schedule.getSplits() < 1)
    return e.source().emitOpError("attention schedule does not fit head_dim ") << headDim;
  return tensorCores ? checkMmaAttentionSchedule(e, attention) : success();
}

//===----------------------------------------------------------------------===//
// NAME: per-token walk and query tiles
//===----------------------------------------------------------------------===//

/// The block's (token, head, kv head), the shared query row and constants.
void GpuAttention::setUp() {
  vecType = VectorType::get({width}, b().getF32Type());
  paged = pagedView(e, attention);
  item = e.blockId();
  token = e.divIndex(item, heads);
  head = e.remIndex(item, heads);
  kvHead = e.divIndex(head, group);
  query = e.sharedRow(headDim);
  minusInf = e.f32(-std::numeric_limits<float>::infinity());
  zero = arith::ConstantOp::create(b(), DenseElementsAttr::get(vecType, 0.0f));
  trueValue = arith::ConstantOp::create(b(), b().getBoolAttr(true));
}

/// Block-uniform role of this block: `perToken` (walk alone), `tiled` (lead
/// a query tile of `count` tokens) or neither (done). Scalar loads, no barrier.
void GpuAttention::findRole() {
  ImplicitLocOpBuilder &b = this->b();
  KernelPhase phase(b, "attention.role");
  Value T = e.dim("T");
  sequence = e.loadIndex(paged.tokenSeq, token);
  position = e.loadIndex(paged.positions, token);
  one = e.index(1);
  Value hasPrevious = cmp(arith::CmpIPredicate::ugt, token, e.index(0));
  Value previous =
      arith::SelectOp::create(b, hasPrevious, arith::SubIOp::create(b, token, one), token);
  Value continues = land(hasPrevious, cmp(arith::CmpIPredicate::eq,
                                          e.loadIndex(paged.tokenSeq, previous), sequence));
  Value offset = e.remIndex(position, tileQueries);
  Value leads = arith::OrIOp::create(b, arith::XOrIOp::create(b, continues, trueValue),
                                     cmp(arith::CmpIPredicate::eq, offset, e.index(0)));
  // n: tokens t .. t+n-1 of the run, n <= Q - positions[t] % Q.
  Value limit = arith::MinUIOp::create(b, arith::SubIOp::create(b, e.index(tileQueries), offset),
                                       arith::SubIOp::create(b, T, token));
  Value scanEnd = arith::SelectOp::create(b, leads, limit, one);
  count = e.forLoop(one, scanEnd, 1, ValueRange{one, trueValue},
                    [&](Value i, ValueRange carried) -> SmallVector<Value> {
                      Value same = cmp(arith::CmpIPredicate::eq,
                                       e.loadIndex(paged.tokenSeq, e.addIndex(token, i)), sequence);
                      Value open = land(carried[1], same);
                      Value grown =
                          arith::SelectOp::create(b, open, e.addIndex(carried[0], one), carried[0]);
                      return {grown, open};
                    })[0];
  Value single = cmp(arith::CmpIPredicate::eq, count, one);
  perToken = land(leads, single);
  tiled = land(leads, arith::XOrIOp::create(b, single, trueValue));
}

/// The query rows, through the shared row `query` one at a time (the row
/// chain is block-cooperative; one copy serves both paths): the tile's n
/// rows, tile group g keeping the slice of query `mine` in `tileQ`, or the
/// per-token walk's single row, which stays in `query`.
void GpuAttention::loadTileQueries() {
  ImplicitLocOpBuilder &b = this->b();
  KernelPhase phase(b, "attention.load_q");
  tileGroupId = e.divIndex(e.threadId(), tileLanes);
  Value tileLane = e.remIndex(e.threadId(), tileLanes);
  for (int64_t c = 0; c < tilePerLane; ++c)
    tileColumns.push_back(e.mulIndex(e.addIndex(tileLane, e.index(c * tileLanes)), width));
  // Group g owns query g of the tile (groups >= n keep a copy of the last
  // one: they compute like the others and store nothing).
  mine = arith::MinUIOp::create(b, tileGroupId, arith::SubIOp::create(b, count, one));
  // (Tensor-core tiles load their own rows.)
  Value rows = arith::SelectOp::create(b, tiled, tensorCores ? e.index(0) : count,
                                       arith::SelectOp::create(b, perToken, one, e.index(0)));
  SmallVector<Value> qInit(tilePerLane, zero);
  tileQ = llvm::to_vector(e.forLoop(
      e.index(0), rows, 1, qInit, [&](Value i, ValueRange carried) -> SmallVector<Value> {
        e.emitRowChain(attention.getQuery(), e.addIndex(token, i), head, query);
        Value take = cmp(arith::CmpIPredicate::eq, mine, i);
        SmallVector<Value> next;
        for (int64_t c = 0; c < tilePerLane; ++c)
          next.push_back(
              arith::SelectOp::create(b, take, e.loadShared(query, tileColumns[c], width), carried[c]));
        e.barrier(); // the row is rewritten by the next query
        return next;
      }));
}

void GpuAttention::emitKernel() {
  e.createKernel(threads, [&] {
    setUp();
    findRole();
    loadTileQueries();
    e.ifThen(perToken, [&] { emitPerTokenWalk(); });
    e.ifThen(tiled, [&] {
      if (tensorCores)
        emitMmaAttentionTile(e, attention, {token, count, head, kvHead, sequence, query});
      else
        emitTile(token, count);
    });
  });
}

/// Per-token walk: lane group g walks positions g, g + G, ... with its own
/// online softmax in registers, the G states merged through shared memory
/// into the output row `item`.
void GpuAttention::emitPerTokenWalk() {
  ImplicitLocOpBuilder &b = this->b();
  Value groupId = e.divIndex(e.threadId(), lanes);
  Value lane = e.remIndex(e.threadId(), lanes);
  // Columns of this lane: vectors lane, lane + L, ... (coalesced per key).
  SmallVector<Value> columns, q;
  for (int64_t j = 0; j < perLane; ++j) {
    columns.push_back(e.mulIndex(e.addIndex(lane, e.index(j * lanes)), width));
    q.push_back(e.loadShared(query, columns.back(), width));
  }
  Value tableRow = e.mulIndex(sequence, paged.tableWidth);
  Value contextEnd = e.addIndex(position, e.index(1));
  Value lastPosition = position;

  SmallVector<Value> init{minusInf, e.f32(0.0f)};
  init.append(perLane, zero);
  SmallVector<Value> finals;
  {
    KernelPhase phase(b, "attention.key_loop");
    finals = llvm::to_vector(e.forLoop(
        e.index(0), contextEnd, groups, init, [&](Value start, ValueRange carried) -> SmallVector<Value> {
          Value j = e.addIndex(start, groupId);
          Value valid = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, j, contextEnd);
          Value jc = arith::MinUIOp::create(b, j, lastPosition);
          Value base = cacheBase(tableRow, jc);
          Value score = laneScore(e, q, perLane, zero, [&](int64_t c) {
            return e.loadVectorF32(paged.keys, e.addIndex(base, columns[c]), width);
          }, lanes, scale);
          SmallVector<Value> next;
          appendOnlineSoftmaxStep(b, vecType, score, valid, carried.take_front(2 + perLane), [&](int64_t c) {
            return e.loadVectorF32(paged.values, e.addIndex(base, columns[c]), width);
          }, next);
          return next;
        }));
  }

  Value maxes, sums, partials;
  {
    KernelPhase phase(b, "attention.merge_groups");
    maxes = e.sharedRow(groups);
    sums = e.sharedRow(groups);
    partials = e.sharedRow(groups * headDim);
    Value isFirstLane = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, lane, e.index(0));
    e.ifThen(isFirstLane, [&] {
      memref::StoreOp::create(b, finals[0], maxes, ValueRange{groupId});
      memref::StoreOp::create(b, finals[1], sums, ValueRange{groupId});
    });
    Value groupBase = e.mulIndex(groupId, headDim);
    for (int64_t c = 0; c < perLane; ++c)
      e.storeShared(partials, e.addIndex(groupBase, columns[c]), finals[2 + c]);
    e.barrier();
  }

  KernelPhase phase(b, "attention.finalize");
  Value outBase = e.mulIndex(item, headDim);
  e.forLoop(e.threadId(), e.index(headDim), threads, [&](Value d) {
    // Groups that saw no key have max -inf, sum 0 and acc 0: factor 0.
    MergedStates merged = mergeSharedStates(e, groups, maxes, sums, partials, headDim, d,
                                            [](Value g) { return g; }, /*allMayBeEmpty=*/false);
    Value inverse = arith::DivFOp::create(b, e.f32(1.0f), merged.sum);
    e.store(paged.out, e.addIndex(outBase, d), arith::MulFOp::create(b, merged.acc, inverse));
  });
}

/// One query tile: tokens first .. first+n-1 of one request, n in [2, Q];
/// K keys and values at a time staged in shared memory, tile group g
/// walking them for query `mine`; the owners store their output rows.
void GpuAttention::emitTile(Value first, Value n) {
  ImplicitLocOpBuilder &b = this->b();
  Value myToken = e.addIndex(first, mine);
  Value myPosition = e.loadIndex(paged.positions, myToken);
  Value lastPosition =
      e.loadIndex(paged.positions, e.addIndex(first, arith::SubIOp::create(b, n, one)));
  Value tableRow = e.mulIndex(sequence, paged.tableWidth);

  Value keyTile = e.sharedRow(tileKeys * headDim);
  Value valueTile = e.sharedRow(tileKeys * headDim);
  Value contextEnd = e.addIndex(lastPosition, one);
  SmallVector<Value> init{minusInf, e.f32(0.0f)};
  init.append(tilePerLane, zero);
  SmallVector<Value> finals;
  {
    KernelPhase phase(b, "attention.key_loop");
    finals = llvm::to_vector(e.forLoop(
        e.index(0), contextEnd, tileKeys, init, [&](Value start, ValueRange carried) {
          return stageAndWalkTile(start, carried, tableRow, lastPosition, myPosition, keyTile,
                                  valueTile);
        }));
  }

  KernelPhase phase(b, "attention.finalize");
  Value owns = cmp(arith::CmpIPredicate::ult, tileGroupId, n);
  e.ifThen(owns, [&] {
    Value inverse = arith::DivFOp::create(b, e.f32(1.0f), finals[1]);
    Value inverseVector = vector::BroadcastOp::create(b, vecType, inverse);
    Value outBase = e.mulIndex(e.addIndex(e.mulIndex(myToken, heads), head), headDim);
    for (int64_t c = 0; c < tilePerLane; ++c)
      e.store(paged.out, e.addIndex(outBase, tileColumns[c]),
              arith::MulFOp::create(b, finals[2 + c], inverseVector));
  });
}

/// Keys start .. start+K-1 of a tile: staged as f32 in `keyTile` /
/// `valueTile` (clamped to the tile's last position; a vector per thread at
/// a time, coalesced), then walked in order by every tile group, masking
/// keys past its query's position. Returns the groups' new states.
SmallVector<Value> GpuAttention::stageAndWalkTile(Value start, ValueRange carried, Value tableRow,
                                                  Value lastPosition, Value myPosition,
                                                  Value keyTile, Value valueTile) {
  ImplicitLocOpBuilder &b = this->b();
  {
    KernelPhase phase(b, "attention.stage_kv");
    e.forLoop(e.threadId(), e.index(tileKeys * vectors), threads, [&](Value element) {
      Value j = e.divIndex(element, vectors);
      Value col = e.mulIndex(e.remIndex(element, vectors), width);
      Value jc = arith::MinUIOp::create(b, e.addIndex(start, j), lastPosition);
      Value at = e.addIndex(cacheBase(tableRow, jc), col);
      Value to = e.addIndex(e.mulIndex(j, headDim), col);
      e.storeShared(keyTile, to, e.loadVectorF32(paged.keys, at, width));
      e.storeShared(valueTile, to, e.loadVectorF32(paged.values, at, width));
    });
    e.barrier();
  }
  SmallVector<Value> updated = llvm::to_vector(e.forLoop(
      e.index(0), e.index(tileKeys), 1, carried, [&](Value j, ValueRange state) -> SmallVector<Value> {
        Value keyRow = e.mulIndex(j, headDim);
        Value valid = cmp(arith::CmpIPredicate::ule, e.addIndex(start, j), myPosition);
        Value score = laneScore(e, tileQ, tilePerLane, zero, [&](int64_t c) {
          return e.loadShared(keyTile, e.addIndex(keyRow, tileColumns[c]), width);
        }, tileLanes, scale);
        SmallVector<Value> next;
        appendOnlineSoftmaxStep(b, vecType, score, valid, state.take_front(2 + tilePerLane), [&](int64_t c) {
          return e.loadShared(valueTile, e.addIndex(keyRow, tileColumns[c]), width);
        }, next);
        return next;
      }));
  e.barrier(); // the tiles are restaged next
  return updated;
}

//===----------------------------------------------------------------------===//
// NAME_decode: split-K over the context, all query heads of a kv head
//===----------------------------------------------------------------------===//

/// This block's (token, kv head, split), its keys [begin, end) (ceil(context
/// / splits) rounded up to whole steps of the lane groups; trailing splits
/// may be empty), lane columns and the shared rows of the group merge.
void GpuAttention::setUpDecode() {
  ImplicitLocOpBuilder &b = this->b();
  vecType = VectorType::get({width}, b.getF32Type());
  paged = pagedView(e, attention);
  minusInf = e.f32(-std::numeric_limits<float>::infinity());
  zero = arith::ConstantOp::create(b, DenseElementsAttr::get(vecType, 0.0f));

  KernelPhase phase(b, "attention.split_range");
  partialsOut = e.extraPointer(0);
  splits = e.extraScalar(0);
  split = arith::RemUIOp::create(b, e.blockId(), splits);
  Value item = arith::DivUIOp::create(b, e.blockId(), splits);
  token = e.divIndex(item, kvHeads);
  kvHead = e.remIndex(item, kvHeads);
  sequence = e.loadIndex(paged.tokenSeq, token);
  position = e.loadIndex(paged.positions, token);
  tableRow = e.mulIndex(sequence, paged.tableWidth);
  Value contextEnd = e.addIndex(position, e.index(1));
  Value perSplit = arith::CeilDivUIOp::create(b, contextEnd, splits);
  Value chunk =
      e.mulIndex(arith::CeilDivUIOp::create(b, perSplit, e.index(decodeGroups)), decodeGroups);
  begin = e.mulIndex(split, chunk);
  end = arith::MinUIOp::create(b, e.addIndex(begin, chunk), contextEnd);
  single = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, splits, e.index(1));
  groupId = e.divIndex(e.threadId(), decodeLanes);
  lane = e.remIndex(e.threadId(), decodeLanes);
  for (int64_t c = 0; c < decodePerLane; ++c)
    columns.push_back(e.mulIndex(e.addIndex(lane, e.index(c * decodeLanes)), width));

  query = e.sharedRow(headDim);
  maxes = e.sharedRow(decodeGroups * chunkHeads);
  sums = e.sharedRow(decodeGroups * chunkHeads);
  partials = e.sharedRow(decodeGroups * chunkHeads * headDim);
  isFirstLane = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, lane, e.index(0));
}

/// The n query rows from `firstHead` through the shared row (the row chain
/// is block-cooperative), each lane keeping its slice of every row: returns
/// q[h * decodePerLane + c].
SmallVector<Value> GpuAttention::loadDecodeQueries(Value firstHead, int64_t n) {
  ImplicitLocOpBuilder &b = this->b();
  KernelPhase phase(b, "attention.load_q");
  SmallVector<Value> qInit(n * decodePerLane, zero);
  return llvm::to_vector(e.forLoop(
      e.index(0), e.index(n), 1, qInit, [&](Value i, ValueRange carried) -> SmallVector<Value> {
        e.emitRowChain(attention.getQuery(), token, e.addIndex(firstHead, i), query);
        SmallVector<Value> slice;
        for (int64_t c = 0; c < decodePerLane; ++c)
          slice.push_back(e.loadShared(query, columns[c], width));
        SmallVector<Value> next;
        for (int64_t h = 0; h < n; ++h) {
          Value take = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, i, e.index(h));
          for (int64_t c = 0; c < decodePerLane; ++c)
            next.push_back(arith::SelectOp::create(b, take, slice[c], carried[h * decodePerLane + c]));
        }
        e.barrier(); // the row is rewritten by the next head
        return next;
      }));
}

/// Lane group g walks keys begin + g, begin + g + G', ... < end, each key's
/// k and v rows read once for the n heads. Returns per head h the state
/// [max, sum, acc x decodePerLane] at h * (2 + decodePerLane).
SmallVector<Value> GpuAttention::walkDecodeKeys(ArrayRef<Value> q, int64_t n) {
  ImplicitLocOpBuilder &b = this->b();
  KernelPhase phase(b, "attention.key_loop");
  const int64_t stride = 2 + decodePerLane;
  SmallVector<Value> init;
  for (int64_t h = 0; h < n; ++h) {
    init.append({minusInf, e.f32(0.0f)});
    init.append(decodePerLane, zero);
  }
  return llvm::to_vector(e.forLoop(
      begin, end, decodeGroups, init, [&](Value start, ValueRange carried) -> SmallVector<Value> {
        Value j = e.addIndex(start, groupId);
        Value valid = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, j, end);
        Value jc = arith::MinUIOp::create(b, j, position);
        Value base = kvRowOffset(e, cache, layer, paged.blockTable, tableRow, jc, kvHead);
        SmallVector<Value> k, v;
        for (int64_t c = 0; c < decodePerLane; ++c)
          k.push_back(e.loadVectorF32(paged.keys, e.addIndex(base, columns[c]), width));
        for (int64_t c = 0; c < decodePerLane; ++c)
          v.push_back(e.loadVectorF32(paged.values, e.addIndex(base, columns[c]), width));
        SmallVector<Value> next;
        for (int64_t h = 0; h < n; ++h) {
          Value score = laneScore(e, q.slice(h * decodePerLane, decodePerLane), decodePerLane, zero,
                                  [&](int64_t c) { return k[c]; }, decodeLanes, scale);
          appendOnlineSoftmaxStep(b, vecType, score, valid, carried.slice(h * stride, stride),
                                  [&](int64_t c) { return v[c]; }, next);
        }
        return next;
      }));
}

/// The G' lane-group states of each of the n heads into `maxes`, `sums`,
/// `partials` (state (g, h) at g * chunkHeads + h); then per output column
/// their merge: with one split the output row, else the split's partial
/// record [max, sum, -, -, acc] in `partialsOut`.
void GpuAttention::mergeDecodeGroups(ArrayRef<Value> finals, Value firstHead, int64_t n) {
  ImplicitLocOpBuilder &b = this->b();
  const int64_t stride = 2 + decodePerLane;
  {
    KernelPhase phase(b, "attention.merge_groups");
    e.ifThen(isFirstLane, [&] {
      for (int64_t h = 0; h < n; ++h) {
        Value at = e.addIndex(e.mulIndex(groupId, chunkHeads), e.index(h));
        memref::StoreOp::create(b, finals[h * stride], maxes, ValueRange{at});
        memref::StoreOp::create(b, finals[h * stride + 1], sums, ValueRange{at});
      }
    });
    for (int64_t h = 0; h < n; ++h) {
      Value rowBase =
          e.mulIndex(e.addIndex(e.mulIndex(groupId, chunkHeads), e.index(h)), headDim);
      for (int64_t c = 0; c < decodePerLane; ++c)
        e.storeShared(partials, e.addIndex(rowBase, columns[c]), finals[h * stride + 2 + c]);
    }
    e.barrier();
  }
  KernelPhase phase(b, "attention.finalize");
  e.forLoop(e.threadId(), e.index(n * headDim), decodeThreads, [&](Value el) {
    Value h = e.divIndex(el, headDim);
    Value d = e.remIndex(el, headDim);
    auto stateAt = [&](Value g) { return e.addIndex(e.mulIndex(g, chunkHeads), h); };
    // Groups that saw no key weigh 0, also when the whole split is empty
    // and globalMax is -inf.
    MergedStates merged = mergeSharedStates(e, decodeGroups, maxes, sums, partials, headDim, d,
                                            stateAt, /*allMayBeEmpty=*/true);
    Value outRow = e.addIndex(e.mulIndex(token, heads), e.addIndex(firstHead, h));
    e.ifThen(single, [&] {
      Value inverse = arith::DivFOp::create(b, e.f32(1.0f), merged.sum);
      e.store(paged.out, e.addIndex(e.mulIndex(outRow, headDim), d),
              arith::MulFOp::create(b, merged.acc, inverse));
    });
    KernelPhase partialPhase(b, "attention.split_partial_write");
    e.ifThen(arith::CmpIOp::create(b, arith::CmpIPredicate::ne, splits, e.index(1)), [&] {
      Value record = e.mulIndex(e.addIndex(e.mulIndex(outRow, splits), split), partialStride);
      memref::StoreOp::create(b, merged.acc, partialsOut,
                              ValueRange{e.addIndex(record, e.addIndex(d, e.index(4)))});
      e.ifThen(arith::CmpIOp::create(b, arith::CmpIPredicate::eq, d, e.index(0)), [&] {
        memref::StoreOp::create(b, merged.max, partialsOut, ValueRange{record});
        memref::StoreOp::create(b, merged.sum, partialsOut, ValueRange{e.addIndex(record, e.index(1))});
      });
    });
  });
}

/// Decode variant NAME_decode (same ABI), for steps where every request has
/// one token (T == B): one block per (token, kv head) computing all `group`
/// query heads of the kv head, so each key / value row of the cache is read
/// once for the whole group. L_d lanes per key, each with at most 4 vectors
/// of the head (8 lanes at head_dim 128): fewer lanes than the per-token
/// walk so that G' = threads / L_d keys are in flight per block (a block
/// walking one key per warp is latency bound, as the H100 showed). The G'
/// lane groups split the context (group g walks positions g, g + G', ...),
/// each with one online softmax per query head (q and the f32 accumulators
/// in registers), merged through shared memory. At most 64 (the schedule's decode_tile)
/// accumulator floats per lane: larger groups take the heads H at a time,
/// in passes over the keys.
///
/// Split-K across blocks (flash-decoding): with `splits` > 1 (a parameter
/// the runtime picks so that short batches still fill the GPU) the grid is
/// [T, kv_heads] x splits; split s walks its own contiguous range of the
/// context and writes its merged state (max, sum, unnormalized acc) per
/// query head to `partials`, and NAME_decode_combine merges the splits.
/// With splits = 1 the block writes the output itself.
void GpuAttention::emitDecodeKernel(StringRef name) {
  func::FuncOp source = e.source();
  SmallVector<BlockArgument> sourceArgs(source.getArguments());
  e.createKernel(name, sourceArgs, source.getResultTypes(), decodeThreads, [&] {
    setUpDecode();
    for (int64_t h0 = 0; h0 < group; h0 += chunkHeads) {
      const int64_t n = std::min(chunkHeads, group - h0);
      Value firstHead = e.addIndex(e.mulIndex(kvHead, group), e.index(h0));
      SmallVector<Value> q = loadDecodeQueries(firstHead, n);
      SmallVector<Value> finals = walkDecodeKeys(q, n);
      mergeDecodeGroups(finals, firstHead, n);
      if (h0 + chunkHeads < group)
        e.barrier(); // the next heads reuse the shared rows
    }
  }, ExtraParams{/*pointers=*/1, /*scalars=*/1});
}

/// NAME_decode_combine (same parameters as NAME_decode), after a split
/// decode: block (token, query head) merges the `splits` partial states,
/// thread d one output column: out = sum_s acc_s e^(m_s - M) / sum_s l_s e^(m_s - M).
void GpuAttention::emitCombineKernel(StringRef name) {
  func::FuncOp source = e.source();
  SmallVector<BlockArgument> sourceArgs(source.getArguments());
  e.createKernel(name, sourceArgs, source.getResultTypes(), combineThreads, [&] {
    ImplicitLocOpBuilder &b = this->b();
    KernelPhase phase(b, "attention.combine");
    Value partials = e.extraPointer(0);
    Value splits = e.extraScalar(0);
    RowAccess out = e.result(0);
    Value row = e.blockId(); // token * heads + head
    Value first = e.mulIndex(row, splits);
    Value minusInf = e.f32(-std::numeric_limits<float>::infinity());
    auto load = [&](Value split, int64_t field, Value column) {
      Value at = e.addIndex(e.mulIndex(e.addIndex(first, split), partialStride), e.index(field));
      return memref::LoadOp::create(b, partials, ValueRange{column ? e.addIndex(at, column) : at})
          .getResult();
    };
    e.forLoop(e.threadId(), e.index(headDim), combineThreads, [&](Value d) {
      Value globalMax = e.forLoop(e.index(0), splits, 1, ValueRange{minusInf},
                                  [&](Value s, ValueRange carried) -> SmallVector<Value> {
                                    return {arith::MaximumFOp::create(b, carried[0], load(s, 0, Value()))};
                                  })[0];
      ValueRange merged = e.forLoop(
          e.index(0), splits, 1, ValueRange{e.f32(0.0f), e.f32(0.0f)},
          [&](Value s, ValueRange carried) -> SmallVector<Value> {
            Value factor = codegen::softmaxMergeFactor(b, load(s, 0, Value()), globalMax);
            return {math::FmaOp::create(b, load(s, 1, Value()), factor, carried[0]),
                    math::FmaOp::create(b, load(s, 4, d), factor, carried[1])};
          });
      Value inverse = arith::DivFOp::create(b, e.f32(1.0f), merged[0]);
      e.store(out, e.addIndex(e.mulIndex(row, headDim), d), arith::MulFOp::create(b, merged[1], inverse));
    });
  }, ExtraParams{/*pointers=*/1, /*scalars=*/1});
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

  GpuAttention kernels(emitter, attention);
  if (failed(kernels.checkSchedule()))
    return failure();
  std::string tokenSymbol = emitter.leadingSymbol(attention.getResult());
  Builder builder(source.getContext());
  auto grid = [&](int64_t blocks) -> SmallVector<Attribute> {
    return {builder.getStringAttr(tokenSymbol), builder.getI64IntegerAttr(blocks)};
  };

  kernels.emitKernel();
  KernelGeometry geometry{grid(kernels.heads), emitter.blockSize(), emitter.sharedBytes()};

  std::string decodeName = (source.getSymName() + "_decode").str();
  kernels.emitDecodeKernel(decodeName);
  geometry.decode = {decodeName, grid(kernels.kvHeads), kernels.decodeThreads,
                     emitter.sharedBytes()};
  geometry.decodeMaxSplits = emitter.options().schedule.getSplits();
  geometry.decodeSplitKeys = geometry.decodeMaxSplits > 1 ? emitter.options().schedule.getSplitKeys() : 0;
  geometry.decodePartialFloats = kernels.heads * kernels.partialStride;

  std::string combineName = (source.getSymName() + "_decode_combine").str();
  kernels.emitCombineKernel(combineName);
  geometry.combine = {combineName, grid(kernels.heads), kernels.combineThreads,
                      emitter.sharedBytes()};
  return geometry;
}

void qwen::codegen::gpu::populateAttentionPatterns(RewritePatternSet &patterns,
                                                   GpuKernelLowering &lowering) {
  patterns.add<GpuKernelPattern>(patterns.getContext(), qkernel::KernelKind::Attention,
                                 emitAttentionKernel, lowering);
}
