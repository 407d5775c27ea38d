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
//===----------------------------------------------------------------------===//
#include "passes/Codegen/GPU/GpuKernelEmitter.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

#include <limits>

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen::gpu;

FailureOr<KernelGeometry>
qwen::codegen::gpu::emitAttentionKernel(GpuKernelEmitter &emitter) {
  func::FuncOp source = emitter.source();
  auto ret = cast<func::ReturnOp>(source.getBody().front().getTerminator());
  qtf::PagedAttentionOp attention;
  source.walk([&](qtf::PagedAttentionOp op) { attention = op; });
  if (!attention || ret.getNumOperands() != 1 || ret.getOperand(0) != attention.getResult())
    return source.emitOpError("attention kernel must return one paged_attention"), failure();

  qtf::KVCacheType cache = attention.getCache().getType();
  RankedTensorType queryType = attention.getQuery().getType();
  const int64_t heads = queryType.getDimSize(1), headDim = queryType.getDimSize(2);
  const int64_t kvHeads = cache.getKvHeads(), group = heads / kvHeads;
  const int64_t layers = cache.getLayers(), pageSize = cache.getPageSize();
  const int64_t layer = attention.getLayer();
  const float scale = static_cast<float>(attention.getScale().convertToDouble());
  std::string tokenSymbol = emitter.leadingSymbol(attention.getResult());

  const int64_t threads = emitter.options().attentionThreads;
  if (threads < 32 || threads % 32 || threads > 1024)
    return source.emitOpError("attention-threads must be a multiple of 32 in [32, 1024]"),
           failure();
  const int64_t width = emitter.vectorWidthFor(headDim);
  const int64_t vectors = headDim / width;
  int64_t lanes = 1; // L: lanes sharing one key
  while (lanes < 32 && vectors % (lanes * 2) == 0)
    lanes *= 2;
  const int64_t perLane = vectors / lanes;
  const int64_t groups = threads / lanes;

  emitter.createKernel(threads, [&] {
    ImplicitLocOpBuilder &b = emitter.builder();
    auto vecType = VectorType::get({width}, b.getF32Type());
    auto [keys, values] = emitter.kvArrays(attention.getCache());
    RowAccess keyAccess{keys, cache.getElementType()};
    RowAccess valueAccess{values, cache.getElementType()};
    RowAccess positions = emitter.access(attention.getPositions());
    RowAccess tokenSeq = emitter.access(attention.getTokenSeq());
    RowAccess blockTable = emitter.access(attention.getBlockTable());
    RowAccess out = emitter.result(0);
    Value P = emitter.dim("P");

    Value item = emitter.blockId();
    Value token = emitter.divIndex(item, heads);
    Value head = emitter.remIndex(item, heads);
    Value kvHead = emitter.divIndex(head, group);
    Value query = emitter.sharedRow(headDim);
    emitter.emitRowChain(attention.getQuery(), token, head, query);

    Value groupId = emitter.divIndex(emitter.threadId(), lanes);
    Value lane = emitter.remIndex(emitter.threadId(), lanes);
    // Columns of this lane: vectors lane, lane + L, ... (coalesced per key).
    SmallVector<Value> columns, q;
    for (int64_t j = 0; j < perLane; ++j) {
      columns.push_back(emitter.mulIndex(emitter.addIndex(lane, emitter.index(j * lanes)), width));
      q.push_back(emitter.loadShared(query, columns.back(), width));
    }

    Value sequence = emitter.loadIndex(tokenSeq, token);
    Value position = emitter.loadIndex(positions, token);
    Value tableRow = emitter.mulIndex(sequence, P);
    Value contextEnd = emitter.addIndex(position, emitter.index(1));
    Value lastPosition = position;
    Value minusInf = emitter.f32(-std::numeric_limits<float>::infinity());
    Value zero = arith::ConstantOp::create(b, DenseElementsAttr::get(vecType, 0.0f));

    SmallVector<Value> init{minusInf, emitter.f32(0.0f)};
    init.append(perLane, zero);
    ValueRange finals = emitter.forLoop(
        emitter.index(0), contextEnd, groups, init,
        [&](Value start, ValueRange carried) -> SmallVector<Value> {
          Value j = emitter.addIndex(start, groupId);
          Value valid = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, j, contextEnd);
          Value jc = arith::MinUIOp::create(b, j, lastPosition);
          Value page = emitter.loadIndex(
              blockTable, emitter.addIndex(tableRow, emitter.divIndex(jc, pageSize)));
          Value slot = emitter.remIndex(jc, pageSize);
          // ((page * layers + layer) * pageSize + slot) * kvHeads * headDim
          Value base = emitter.addIndex(emitter.mulIndex(page, layers), emitter.index(layer));
          base = emitter.addIndex(emitter.mulIndex(base, pageSize), slot);
          base = emitter.addIndex(emitter.mulIndex(base, kvHeads * headDim),
                                  emitter.mulIndex(kvHead, headDim));
          Value dotVector = zero;
          for (int64_t c = 0; c < perLane; ++c) {
            Value k = emitter.loadVectorF32(keyAccess, emitter.addIndex(base, columns[c]), width);
            dotVector = vector::FMAOp::create(b, q[c], k, dotVector);
          }
          Value partial = vector::ReductionOp::create(b, vector::CombiningKind::ADD, dotVector);
          Value score = arith::MulFOp::create(b, emitter.laneSum(partial, lanes),
                                              emitter.f32(scale));
          Value runningMax = carried[0], runningSum = carried[1];
          Value newMax = arith::MaximumFOp::create(b, runningMax, score);
          Value correction = math::ExpOp::create(b, arith::SubFOp::create(b, runningMax, newMax));
          Value weight = math::ExpOp::create(b, arith::SubFOp::create(b, score, newMax));
          Value newSum =
              arith::AddFOp::create(b, arith::MulFOp::create(b, runningSum, correction), weight);
          Value correctionVector = vector::BroadcastOp::create(b, vecType, correction);
          Value weightVector = vector::BroadcastOp::create(b, vecType, weight);
          SmallVector<Value> next{arith::SelectOp::create(b, valid, newMax, runningMax),
                                  arith::SelectOp::create(b, valid, newSum, runningSum)};
          for (int64_t c = 0; c < perLane; ++c) {
            Value v = emitter.loadVectorF32(valueAccess, emitter.addIndex(base, columns[c]), width);
            Value acc = carried[2 + c];
            Value updated = vector::FMAOp::create(
                b, weightVector, v, arith::MulFOp::create(b, acc, correctionVector));
            next.push_back(arith::SelectOp::create(b, valid, updated, acc));
          }
          return next;
        });

    // Merge the G partial softmax states.
    Value maxes = emitter.sharedRow(groups);
    Value sums = emitter.sharedRow(groups);
    Value partials = emitter.sharedRow(groups * headDim);
    Value isFirstLane = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, lane, emitter.index(0));
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
      Value globalMax = emitter.forLoop(
          emitter.index(0), emitter.index(groups), 1, ValueRange{minusInf},
          [&](Value g, ValueRange carried) -> SmallVector<Value> {
            Value groupMax = memref::LoadOp::create(b, maxes, ValueRange{g});
            return {arith::MaximumFOp::create(b, carried[0], groupMax)};
          })[0];
      // Groups that saw no key have max -inf, sum 0 and acc 0: factor 0.
      ValueRange merged = emitter.forLoop(
          emitter.index(0), emitter.index(groups), 1,
          ValueRange{emitter.f32(0.0f), emitter.f32(0.0f)},
          [&](Value g, ValueRange carried) -> SmallVector<Value> {
            Value groupMax = memref::LoadOp::create(b, maxes, ValueRange{g});
            Value factor = math::ExpOp::create(b, arith::SubFOp::create(b, groupMax, globalMax));
            Value sum = memref::LoadOp::create(b, sums, ValueRange{g});
            Value part = memref::LoadOp::create(
                b, partials, ValueRange{emitter.addIndex(emitter.mulIndex(g, headDim), d)});
            return {math::FmaOp::create(b, sum, factor, carried[0]),
                    math::FmaOp::create(b, part, factor, carried[1])};
          });
      Value inverse = arith::DivFOp::create(b, emitter.f32(1.0f), merged[0]);
      emitter.store(out, emitter.addIndex(outBase, d), arith::MulFOp::create(b, merged[1], inverse));
    });
  });

  Builder builder(source.getContext());
  return KernelGeometry{{builder.getStringAttr(tokenSymbol), builder.getI64IntegerAttr(heads)},
                        emitter.blockSize(),
                        emitter.sharedBytes()};
}
