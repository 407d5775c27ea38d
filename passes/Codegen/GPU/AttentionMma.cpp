//===- AttentionMma.cpp - Tensor-core prefill tiles of paged attention ----===//
//
// The query-tile path of the attention kernel (AttentionKernel.cpp) on
// tensor cores, flash-attention style, for bf16 / f16 KV caches when the
// schedule has `tensor_cores` (qwen-select-schedule gpu-attention=mma). The
// role phase, the per-token walk (decode tokens, tiles of one) and the
// decode variants are the CUDA-core kernel's; only a tile leader's work
// changes. A tile is Q = 16 x warps query rows of one query head (rows past
// its n tokens are zero and store nothing); warp w owns rows 16w .. 16w+15:
//
//   attention.load_q       the n query rows through the shared f32 row (the
//                          rms_norm -> rope chain is block-cooperative),
//                          rounded to the cache dtype into the staging
//                          buffer, then ldmatrix x4 into the warp's A
//                          fragments (head_dim / 16 of them, 4 .b32 each).
//   attention.key_loop     keys 0 .. last position of the tile, K at a time:
//     attention.stage_kv     K keys and K values of the kv head copied raw
//                            (16-byte vectors, positions clamped to the
//                            tile's last) from the paged cache into the
//                            staging buffer (rows 0..K-1 keys, K..2K-1
//                            values, each row padded by 8 elements).
//     attention.scores       S = Q K^T: per 8 keys, head_dim / 16
//                            mma.sync m16n8k16 (K^T fragments of two
//                            k-steps per ldmatrix x4 of the key rows), f32
//                            accumulators.
//     attention.online_softmax  scale, the causal mask (keys past a row's
//                            position are -inf), the row max over the quad
//                            of lanes that share a row (two xor shuffles),
//                            p = e^(s - m'), l' = l e^(m - m') + sum p
//                            (per lane; the quad sums at the end), the
//                            output accumulators scaled by e^(m - m').
//     attention.accumulate_v O += P V: P rounded to the cache dtype is the A
//                            operand straight from the S accumulators (the
//                            m16n8 C layout is the m16k16 A layout), V^T
//                            fragments of two n-tiles per ldmatrix x4
//                            .trans.
//   attention.finalize     l summed over the quad, out = O / l for rows < n.
//
// Every tile sees key 0 in its first step, so each row's max is finite
// after it and e^(m - m') never meets -inf - -inf. Numerics: q and p are
// rounded to the cache dtype for the products (k and v already are), sums
// and the softmax stay f32; simt-numerics-attention-mma.test bounds the
// difference from the CPU's f32 walk.
//
// mma.sync is nvvm.mma.sync on the fragments' .b32 registers:
// convert-nvgpu-to-nvvm lowers nvgpu.ldmatrix but not a bf16
// nvgpu.mma.sync (lower-to-ptx-mma.mlir), and one form serves both dtypes.
//
//===----------------------------------------------------------------------===//
#include "passes/Codegen/GPU/AttentionMma.h"
#include "qwen/Passes/Codegen/Common/KernelABI.h"
#include "qwen/Passes/Codegen/Common/KernelPhase.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

#include <limits>

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen::gpu;
using qwen::codegen::KernelPhase;

namespace {

constexpr int64_t kLanes = 32;
/// Padding of a staged row, in elements: rows stay 16-byte aligned (ldmatrix)
/// and successive rows start 4 banks apart.
constexpr int64_t kRowPad = 8;

/// One tensor-core query tile, one method per phase.
class MmaTile {
public:
  MmaTile(GpuKernelEmitter &e, qtf::PagedAttentionOp attention, const MmaTileOperands &tile);
  void emit();

private:
  ImplicitLocOpBuilder &b() { return e.builder(); }
  Value cmp(arith::CmpIPredicate predicate, Value x, Value y) {
    return arith::CmpIOp::create(b(), predicate, x, y);
  }
  void setUp();
  void loadQueryFragments();
  SmallVector<Value> step(Value start, ValueRange state);
  void stageKeysValues(Value start);
  SmallVector<Value> scores();
  SmallVector<Value> onlineSoftmax(Value start, ArrayRef<Value> s, ValueRange state);
  SmallVector<Value> accumulateValues(ArrayRef<Value> p, ArrayRef<Value> acc);
  void finalize(ValueRange state);

  // Warp-level helpers.
  SmallVector<Value> ldmatrix(Value row, Value col, int64_t tiles, bool transpose);
  SmallVector<Value> mma(ArrayRef<Value> a, ArrayRef<Value> bRegs, ArrayRef<Value> c);
  Value packPair(Value lo, Value hi);
  Value quadReduce(Value value, bool max);

  GpuKernelEmitter &e;
  qtf::PagedAttentionOp attention;
  MmaTileOperands tile;
  qtf::KVCacheType cache;
  Type element; ///< the cache dtype: bf16 or f16
  int64_t heads, headDim, threads, warps, queries, keys;
  float scale;
  RowAccess keysAccess, valuesAccess, positions, blockTable, out;
  // setUp.
  Value staging, warp, lane, quadRow, quadCol, rowBase, tableRow, lastPosition;
  Value rowPosition[2];
  SmallVector<Value> qFragments; ///< headDim / 16 x 4 .b32 registers
};

} // namespace

MmaTile::MmaTile(GpuKernelEmitter &e, qtf::PagedAttentionOp attention, const MmaTileOperands &tile)
    : e(e), attention(attention), tile(tile), cache(attention.getCache().getType()),
      element(cache.getElementType()),
      scale(static_cast<float>(attention.getScale().convertToDouble())) {
  RankedTensorType queryType = attention.getQuery().getType();
  heads = queryType.getDimSize(1);
  headDim = queryType.getDimSize(2);
  const qkernel::ScheduleAttr schedule = e.options().schedule;
  threads = schedule.getThreads();
  warps = threads / kLanes;
  queries = schedule.tileSize(0);
  keys = schedule.tileSize(1);
}

/// Lane coordinates, the staging buffer and the positions of this lane's
/// two rows (g and g + 8 of its warp's 16; rows past n take the last's).
void MmaTile::setUp() {
  auto [k, v] = e.kvArrays(attention.getCache());
  keysAccess = RowAccess{k, element};
  valuesAccess = RowAccess{v, element};
  positions = e.access(attention.getPositions());
  blockTable = e.access(attention.getBlockTable());
  out = e.result(0);
  staging = e.sharedBuffer({2 * keys, headDim + kRowPad}, element);
  warp = e.divIndex(e.threadId(), kLanes);
  lane = e.remIndex(e.threadId(), kLanes);
  quadRow = e.divIndex(lane, 4);                  // g
  quadCol = e.mulIndex(e.remIndex(lane, 4), 2);   // 2t
  rowBase = e.mulIndex(warp, 16);
  tableRow = e.mulIndex(tile.sequence, e.dim("P"));
  Value one = e.index(1);
  Value lastRow = arith::SubIOp::create(b(), tile.count, one);
  lastPosition = e.loadIndex(positions, e.addIndex(tile.first, lastRow));
  for (int64_t half = 0; half < 2; ++half) {
    Value row = e.addIndex(e.addIndex(rowBase, quadRow), e.index(8 * half));
    Value clamped = arith::MinUIOp::create(b(), row, lastRow);
    rowPosition[half] = e.loadIndex(positions, e.addIndex(tile.first, clamped));
  }
}

/// ldmatrix m8n8 x`tiles` of the staging buffer, this lane giving the
/// address of (row, col); the fragments as .b32 registers.
SmallVector<Value> MmaTile::ldmatrix(Value row, Value col, int64_t tiles, bool transpose) {
  ImplicitLocOpBuilder &b = this->b();
  auto type = VectorType::get({tiles, 2}, element);
  Value fragments = nvgpu::LdMatrixOp::create(b, type, staging, ValueRange{row, col}, transpose,
                                              static_cast<uint32_t>(tiles));
  auto word = VectorType::get({1}, b.getI32Type());
  SmallVector<Value> registers;
  for (int64_t r = 0; r < tiles; ++r) {
    Value pair = vector::ExtractOp::create(b, fragments, ArrayRef<int64_t>{r});
    Value bits = vector::BitCastOp::create(b, word, pair);
    registers.push_back(vector::ExtractOp::create(b, bits, ArrayRef<int64_t>{0}));
  }
  return registers;
}

/// D = A B + C, m16n8k16 (A row-major, B column-major) on .b32 fragments.
SmallVector<Value> MmaTile::mma(ArrayRef<Value> a, ArrayRef<Value> bRegs, ArrayRef<Value> c) {
  ImplicitLocOpBuilder &b = this->b();
  Type f32 = b.getF32Type();
  auto result = LLVM::LLVMStructType::getLiteral(b.getContext(), {f32, f32, f32, f32});
  NVVM::MMATypes type = element.isBF16() ? NVVM::MMATypes::bf16 : NVVM::MMATypes::f16;
  // nvvm.mma.sync takes f16 fragments as vector<2xf16>, bf16 ones as .b32.
  auto operands = [&](ArrayRef<Value> registers) {
    SmallVector<Value> values(registers.begin(), registers.end());
    if (element.isF16())
      for (Value &value : values)
        value = vector::BitCastOp::create(
            b, VectorType::get({2}, element),
            vector::BroadcastOp::create(b, VectorType::get({1}, b.getI32Type()), value));
    return values;
  };
  Value d = NVVM::MmaOp::create(b, result, operands(a), operands(bRegs), c, ArrayRef<int64_t>{16, 8, 16},
                                /*b1Op=*/std::nullopt, /*intOverflow=*/std::nullopt,
                                std::array<NVVM::MMATypes, 2>{type, type},
                                std::array<NVVM::MMALayout, 2>{NVVM::MMALayout::row,
                                                               NVVM::MMALayout::col});
  SmallVector<Value> values;
  for (int64_t i = 0; i < 4; ++i)
    values.push_back(LLVM::ExtractValueOp::create(b, d, ArrayRef<int64_t>{i}));
  return values;
}

/// Two f32 rounded to the cache dtype, as one .b32 register (lo first).
Value MmaTile::packPair(Value lo, Value hi) {
  ImplicitLocOpBuilder &b = this->b();
  Value pair = vector::FromElementsOp::create(b, VectorType::get({2}, b.getF32Type()),
                                              ValueRange{lo, hi});
  Value narrow = arith::TruncFOp::create(b, VectorType::get({2}, element), pair);
  Value bits = vector::BitCastOp::create(b, VectorType::get({1}, b.getI32Type()), narrow);
  return vector::ExtractOp::create(b, bits, ArrayRef<int64_t>{0});
}

/// Max or sum over the four lanes of a quad (the lanes that hold one row of
/// an accumulator fragment).
Value MmaTile::quadReduce(Value value, bool max) {
  ImplicitLocOpBuilder &b = this->b();
  for (int64_t offset : {1, 2}) {
    Value other = e.shuffleXor(value, offset);
    value = max ? Value(arith::MaximumFOp::create(b, value, other))
                : Value(arith::AddFOp::create(b, value, other));
  }
  return value;
}

/// Phase attention.load_q: the n query rows through `queryRow` into staging
/// rows 0..n-1 (rounded), rows n..Q-1 zero, then this warp's A fragments.
void MmaTile::loadQueryFragments() {
  ImplicitLocOpBuilder &b = this->b();
  KernelPhase phase(b, "attention.load_q");
  constexpr int64_t width = 4;
  const int64_t vectors = headDim / width;
  auto narrowType = VectorType::get({width}, element);
  Value zeros = arith::ConstantOp::create(
      b, DenseElementsAttr::get(narrowType, b.getFloatAttr(element, 0.0)));
  e.forLoop(e.addIndex(e.mulIndex(tile.count, vectors), e.threadId()),
            e.index(queries * vectors), threads, [&](Value i) {
              Value row = e.divIndex(i, vectors), col = e.mulIndex(e.remIndex(i, vectors), width);
              vector::StoreOp::create(b, zeros, staging, ValueRange{row, col});
            });
  e.forLoop(e.index(0), tile.count, 1, [&](Value i) {
    e.emitRowChain(attention.getQuery(), e.addIndex(tile.first, i), tile.head, tile.queryRow);
    e.forLoop(e.threadId(), e.index(vectors), threads, [&](Value v) {
      Value col = e.mulIndex(v, width);
      Value q = e.loadShared(tile.queryRow, col, width);
      vector::StoreOp::create(b, arith::TruncFOp::create(b, narrowType, q), staging,
                              ValueRange{i, col});
    });
    e.barrier(); // the shared row is rewritten by the next query
  });
  // A x4: lanes 0-15 address rows 0-15 at k0, lanes 16-31 the same at k0 + 8.
  Value row = e.addIndex(rowBase, e.remIndex(lane, 16));
  Value half = e.mulIndex(e.divIndex(lane, 16), 8);
  for (int64_t k0 = 0; k0 < headDim; k0 += 16)
    qFragments.append(ldmatrix(row, e.addIndex(half, e.index(k0)), 4, /*transpose=*/false));
  e.barrier(); // the staging buffer takes the keys next
}

/// Phase attention.stage_kv: keys and values start .. start+K-1 (clamped to
/// the tile's last position) into staging rows 0..K-1 and K..2K-1.
void MmaTile::stageKeysValues(Value start) {
  ImplicitLocOpBuilder &b = this->b();
  KernelPhase phase(b, "attention.stage_kv");
  constexpr int64_t width = 8; // 16 bytes
  const int64_t vectors = headDim / width;
  Type storage = codegen::storageType(element);
  auto rawType = VectorType::get({width}, storage);
  auto narrowType = VectorType::get({width}, element);
  e.forLoop(e.threadId(), e.index(keys * vectors), threads, [&](Value i) {
    Value j = e.divIndex(i, vectors), col = e.mulIndex(e.remIndex(i, vectors), width);
    Value position = arith::MinUIOp::create(b, e.addIndex(start, j), lastPosition);
    Value at = e.addIndex(e.kvOffset(cache, attention.getLayer(), blockTable, tableRow, position),
                          e.addIndex(e.mulIndex(tile.kvHead, headDim), col));
    const std::pair<Value, Value> copies[] = {{keysAccess.memref, j},
                                              {valuesAccess.memref, e.addIndex(j, e.index(keys))}};
    for (const auto &[memref, row] : copies) {
      Value raw = vector::LoadOp::create(b, rawType, memref, ValueRange{at},
                                         /*nontemporal=*/false, llvm::Align(16));
      if (storage != element)
        raw = arith::BitcastOp::create(b, narrowType, raw);
      vector::StoreOp::create(b, raw, staging, ValueRange{row, col}, /*nontemporal=*/false,
                              llvm::Align(16));
    }
  });
  e.barrier();
}

/// Phase attention.scores: S = Q K^T of this warp's 16 rows and the K
/// staged keys, K / 8 accumulator fragments of 4 f32 (c0 c1 at row g, c2 c3
/// at row g + 8; keys 8j + 2t, +1).
SmallVector<Value> MmaTile::scores() {
  KernelPhase phase(b(), "attention.scores");
  // K^T x4, the fragments of two k-steps: lanes 8i..8i+7 address keys
  // n0..n0+7 at column k0 + 8i.
  Value keyRow = e.remIndex(lane, 8);
  Value eighth = e.mulIndex(e.divIndex(lane, 8), 8);
  Value zero = e.f32(0.0f);
  SmallVector<Value> s;
  for (int64_t n0 = 0; n0 < keys; n0 += 8) {
    SmallVector<Value> acc(4, zero);
    Value row = e.addIndex(keyRow, e.index(n0));
    for (int64_t k0 = 0; k0 < headDim; k0 += 32) {
      SmallVector<Value> bRegs = ldmatrix(row, e.addIndex(eighth, e.index(k0)), 4, false);
      acc = mma(ArrayRef<Value>(qFragments).slice(k0 / 4, 4), ArrayRef<Value>(bRegs).take_front(2), acc);
      acc = mma(ArrayRef<Value>(qFragments).slice(k0 / 4 + 4, 4), ArrayRef<Value>(bRegs).drop_front(2),
                acc);
    }
    s.append(acc);
  }
  return s;
}

/// Phase attention.online_softmax: the state [m0, m1, l0, l1, acc...] of
/// rows g and g + 8 updated by the scores `s` of keys start.. (masked past
/// each row's position). Returns p (same layout as s), then the new m0, m1,
/// l0, l1 and the rescaled accumulators.
SmallVector<Value> MmaTile::onlineSoftmax(Value start, ArrayRef<Value> s, ValueRange state) {
  ImplicitLocOpBuilder &b = this->b();
  KernelPhase phase(b, "attention.online_softmax");
  Value minusInf = e.f32(-std::numeric_limits<float>::infinity());
  Value scaleValue = e.f32(scale);
  Value keyBase = e.addIndex(start, quadCol);
  SmallVector<Value> masked(s.size());
  Value rowMax[2] = {minusInf, minusInf};
  for (size_t i = 0; i < s.size(); ++i) {
    const int64_t n0 = 8 * int64_t(i / 4), half = int64_t(i % 4) / 2, pair = int64_t(i % 2);
    Value key = e.addIndex(keyBase, e.index(n0 + pair));
    Value valid = cmp(arith::CmpIPredicate::ule, key, rowPosition[half]);
    masked[i] = arith::SelectOp::create(b, valid, arith::MulFOp::create(b, s[i], scaleValue),
                                        minusInf);
    rowMax[half] = arith::MaximumFOp::create(b, rowMax[half], masked[i]);
  }
  Value factor[2], newMax[2], rowSum[2];
  for (int64_t half = 0; half < 2; ++half) {
    newMax[half] = arith::MaximumFOp::create(b, state[half], quadReduce(rowMax[half], true));
    factor[half] = math::ExpOp::create(b, arith::SubFOp::create(b, state[half], newMax[half]));
    rowSum[half] = e.f32(0.0f);
  }
  SmallVector<Value> result;
  for (size_t i = 0; i < s.size(); ++i) {
    const int64_t half = int64_t(i % 4) / 2;
    Value p = math::ExpOp::create(b, arith::SubFOp::create(b, masked[i], newMax[half]));
    rowSum[half] = arith::AddFOp::create(b, rowSum[half], p);
    result.push_back(p);
  }
  result.append({newMax[0], newMax[1]});
  for (int64_t half = 0; half < 2; ++half)
    result.push_back(math::FmaOp::create(b, state[2 + half], factor[half], rowSum[half]));
  for (size_t i = 4; i < state.size(); ++i)
    result.push_back(arith::MulFOp::create(b, state[i], factor[int64_t(i % 4) / 2]));
  return result;
}

/// Phase attention.accumulate_v: acc += P V over the K staged values; P's
/// accumulator fragments of keys 16k0'.. are the A fragment of that k-step.
SmallVector<Value> MmaTile::accumulateValues(ArrayRef<Value> p, ArrayRef<Value> acc) {
  KernelPhase phase(b(), "attention.accumulate_v");
  // V^T x4 .trans, the fragments of two n-tiles: lanes 0-15 address value
  // rows k0..k0+15 at column n0, lanes 16-31 at column n0 + 8.
  Value valueRow = e.addIndex(e.remIndex(lane, 16), e.index(keys));
  Value half = e.mulIndex(e.divIndex(lane, 16), 8);
  SmallVector<Value> updated(acc.begin(), acc.end());
  for (int64_t k0 = 0; k0 < keys; k0 += 16) {
    ArrayRef<Value> lo = p.slice(k0 / 2, 4), hi = p.slice(k0 / 2 + 4, 4);
    SmallVector<Value> a{packPair(lo[0], lo[1]), packPair(lo[2], lo[3]), packPair(hi[0], hi[1]),
                         packPair(hi[2], hi[3])};
    Value row = e.addIndex(valueRow, e.index(k0));
    for (int64_t n0 = 0; n0 < headDim; n0 += 16) {
      SmallVector<Value> bRegs = ldmatrix(row, e.addIndex(half, e.index(n0)), 4, /*transpose=*/true);
      for (int64_t t = 0; t < 2; ++t) {
        const int64_t at = (n0 + 8 * t) / 2;
        SmallVector<Value> d = mma(a, ArrayRef<Value>(bRegs).slice(2 * t, 2),
                                   ArrayRef<Value>(updated).slice(at, 4));
        std::copy(d.begin(), d.end(), updated.begin() + at);
      }
    }
  }
  return updated;
}

/// One key step: stage, scores, softmax, P V; the barrier lets the next
/// step restage.
SmallVector<Value> MmaTile::step(Value start, ValueRange state) {
  stageKeysValues(start);
  SmallVector<Value> s = scores();
  SmallVector<Value> softmax = onlineSoftmax(start, s, state);
  ArrayRef<Value> p = ArrayRef<Value>(softmax).take_front(s.size());
  ArrayRef<Value> next = ArrayRef<Value>(softmax).drop_front(s.size());
  SmallVector<Value> result(next.take_front(4));
  result.append(accumulateValues(p, next.drop_front(4)));
  e.barrier();
  return result;
}

/// Phase attention.finalize: out = acc / l for this lane's rows below n.
void MmaTile::finalize(ValueRange state) {
  ImplicitLocOpBuilder &b = this->b();
  KernelPhase phase(b, "attention.finalize");
  for (int64_t half = 0; half < 2; ++half) {
    Value inverse = arith::DivFOp::create(b, e.f32(1.0f), quadReduce(state[2 + half], false));
    Value row = e.addIndex(e.addIndex(rowBase, quadRow), e.index(8 * half));
    e.ifThen(cmp(arith::CmpIPredicate::ult, row, tile.count), [&] {
      Value outRow = e.addIndex(e.mulIndex(e.addIndex(tile.first, row), heads), tile.head);
      Value base = e.addIndex(e.mulIndex(outRow, headDim), quadCol);
      for (int64_t n0 = 0; n0 < headDim; n0 += 8)
        for (int64_t c = 0; c < 2; ++c)
          e.store(out, e.addIndex(base, e.index(n0 + c)),
                  arith::MulFOp::create(b, state[4 + n0 / 2 + 2 * half + c], inverse));
    });
  }
}

void MmaTile::emit() {
  setUp();
  loadQueryFragments();
  SmallVector<Value> init{e.f32(-std::numeric_limits<float>::infinity()),
                          e.f32(-std::numeric_limits<float>::infinity()), e.f32(0.0f), e.f32(0.0f)};
  init.append(headDim / 2, e.f32(0.0f));
  SmallVector<Value> finals;
  {
    KernelPhase phase(b(), "attention.key_loop");
    finals = llvm::to_vector(e.forLoop(e.index(0), e.addIndex(lastPosition, e.index(1)), keys, init,
                                       [&](Value start, ValueRange state) { return step(start, state); }));
  }
  finalize(finals);
}

LogicalResult qwen::codegen::gpu::checkMmaAttentionSchedule(GpuKernelEmitter &e,
                                                            qtf::PagedAttentionOp attention) {
  const qkernel::ScheduleAttr schedule = e.options().schedule;
  Type element = attention.getCache().getType().getElementType();
  const int64_t headDim = attention.getQuery().getType().getDimSize(2);
  const int64_t queries = schedule.tileSize(0), keys = schedule.tileSize(1);
  if (!element.isBF16() && !element.isF16())
    return e.source().emitOpError("tensor-core attention needs a bf16 or f16 KV cache");
  if (headDim % 32 || keys % 16 || keys < 16 || queries != 16 * (schedule.getThreads() / kLanes) ||
      schedule.getThreads() % kLanes || 2 * keys < queries)
    return e.source().emitOpError("tensor-core attention schedule does not fit head_dim ") << headDim;
  return success();
}

void qwen::codegen::gpu::emitMmaAttentionTile(GpuKernelEmitter &e, qtf::PagedAttentionOp attention,
                                              const MmaTileOperands &tile) {
  MmaTile(e, attention, tile).emit();
}
