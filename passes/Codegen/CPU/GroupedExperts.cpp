//===- GroupedExperts.cpp - Cache-blocked CPU experts for prefill ---------===//
//
// The decode path of the experts kernel (MoeKernels.cpp) runs an expert's
// SwiGLU on blocks of 4 gathered slots, streaming the expert's weights once
// per block. A Qwen3-30B-A3B expert is 3 x 2048 x 768 bf16 = 9.4 MB, far
// more than a Zen 4 core's 1 MiB L2, so in a 512-token prefill (about 32
// slots per expert) every expert was read from memory 8 times. Here an
// expert's slots are gathered in groups of up to `tile[1]` and its weights
// are walked in panels that stay in L2: `panel` gate / up row pairs
// (256 KiB of bf16) and `tile[2]` down rows, each panel applied to the
// whole group in register tiles of `prefill_tile` = [slots, weight rows]
// before the next panel is read. The group's activation rows (and SwiGLU
// rows) are rounded to bf16 once per group when the tiles round them anyway.
//
// Each (slot, weight row) dot keeps the decode path's order (one vdpbf16ps /
// FMA accumulator walked over k, its lanes summed in lane order, orderedSums
// being vector.reduction's sum bit for bit), so a slot's output does not
// depend on which other slots share its group, tile or step
// (test/E2E/ragged-batch.test, prefix-cache.test). orderedSums and the
// rounded bf16 tile are the dense prefill GEMM's (BlockedMatmul.h).
//
//===----------------------------------------------------------------------===//
#include "passes/Codegen/CPU/GroupedExperts.h"
#include "passes/Codegen/CPU/BlockedMatmul.h"
#include "passes/Codegen/CPU/DotProduct.h"
#include "qwen/Passes/Codegen/Common/KernelPhase.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Dialect/X86Vector/X86VectorDialect.h"

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen;
using namespace qwen::codegen::cpu;
using qwen::codegen::KernelPhase;

SmallVector<Value> qwen::codegen::cpu::emitExpertDotTile(
    KernelEmitter &emitter, const ExpertOperands &ops, const RowAccess &x,
    ArrayRef<Value> xBases, const RowAccess &w, ArrayRef<Value> wBases,
    const std::optional<RowAccess> &scale, ArrayRef<Value> scaleRows, int64_t k) {
  if (scale) {
    // emitFp8DotTile reads the scale row of weight row r as r / block rows:
    // hand it a row of the wanted block row.
    SmallVector<Value> rowsInBlock;
    for (Value scaleRow : scaleRows)
      rowsInBlock.push_back(emitter.mulIndex(scaleRow, ops.block[0]));
    return emitFp8DotTile(emitter, x, xBases, w, wBases,
                          Fp8Weights{*scale, rowsInBlock, ops.block}, k);
  }
  // Tiles of at least 4 sums take them 16 at a time (orderedSums); smaller
  // ones keep one reduction per sum, the same bits either way.
  if (xBases.size() * wBases.size() >= 4 &&
      emitter.options().schedule.dotFor(xBases.size()) == qkernel::DotKind::Avx512Bf16Round)
    return emitBf16RoundTile(emitter, x, xBases, w, wBases, k);
  return emitter.emitDotTile(x, xBases, w, wBases, k);
}

namespace {

/// The grouped SwiGLU of one expert: experts.gather fills `matched` with up
/// to `group` slots, experts.group_rows fetches (and rounds) their input
/// rows, experts.gate_up and experts.down walk the weight panels.
class GroupedExperts {
public:
  GroupedExperts(KernelEmitter &emitter, ExpertOperands &ops);
  void emit(Value expert, Value slotCount);

private:
  void processGroup(Value count);
  void loadRows(Value count);
  void gateUp(Value count);
  void down(Value count);
  /// Rounds `rows` rows of `from` (f32, `length` columns from each of
  /// fromBase(i)) into the bf16 rows i * length of `to`.
  void roundRows(Value rows, const RowAccess &from, function_ref<Value(Value)> fromBase,
                 Value to, int64_t length);
  /// body(m, mc) over the group's slots [0, count): tiles of mr, then ones.
  void forSlotTiles(Value count, function_ref<void(Value, int64_t)> body);
  /// body(n, nc) over rows [n0, n1): tiles of `step`, then ones.
  void forRowTiles(Value n0, Value n1, int64_t step, function_ref<void(Value, int64_t)> body);
  Value load(Value memref, Value at) { return memref::LoadOp::create(b, memref, ValueRange{at}); }

  KernelEmitter &emitter;
  ImplicitLocOpBuilder &b;
  ExpertOperands &ops;
  int64_t group, panel, downPanel, mr, nr;
  bool roundX = false, roundH = false;
  /// The group's input rows (x, or its rounded copy) and SwiGLU rows (f32,
  /// and their rounded copy that the down tiles read).
  RowAccess xs, hs, hRead;
  /// Per group position: its slot and the start of its input row in xs.
  Value matched, xRows;
};

} // namespace

GroupedExperts::GroupedExperts(KernelEmitter &emitter, ExpertOperands &ops)
    : emitter(emitter), b(emitter.builder()), ops(ops) {
  qkernel::ScheduleAttr schedule = emitter.options().schedule;
  group = schedule.tileSize(1);
  downPanel = schedule.tileSize(2);
  panel = schedule.getPanel();
  mr = schedule.prefillTileSize(0);
  nr = schedule.prefillTileSize(1);
  // Rounding once per group gives the tiles' bits only when every tile
  // (whole and leftover slots) rounds.
  const int64_t width = emitter.options().vectorWidth;
  const bool rounds = !ops.gateUpScale &&
                      schedule.dotFor(mr) == qkernel::DotKind::Avx512Bf16Round &&
                      schedule.dotFor(1) == qkernel::DotKind::Avx512Bf16Round;
  roundX = rounds && ops.x.elementType.isF32() && bf16DotLanes(width, ops.hidden) > 0;
  roundH = rounds && bf16DotLanes(width, ops.inter) > 0;
  matched = emitter.scratch(group, b.getIndexType());
  xRows = emitter.scratch(group, b.getIndexType());
  xs = ops.x;
  if (roundX)
    xs = RowAccess{emitter.scratch(group * ops.hidden, b.getI16Type()), b.getBF16Type(),
                   ops.hidden};
  hs = RowAccess{emitter.scratchRow(group * ops.inter), b.getF32Type(), ops.inter};
  hRead = hs;
  if (roundH)
    hRead = RowAccess{emitter.scratch(group * ops.inter, b.getI16Type()), b.getBF16Type(),
                      ops.inter};
}

void GroupedExperts::forSlotTiles(Value count, function_ref<void(Value, int64_t)> body) {
  Value whole = emitter.mulIndex(emitter.divIndex(count, mr), mr);
  emitter.forLoop(emitter.index(0), whole, mr, [&](Value m) { body(m, mr); });
  emitter.forLoop(whole, count, 1, [&](Value m) { body(m, 1); });
}

void GroupedExperts::forRowTiles(Value n0, Value n1, int64_t step,
                                 function_ref<void(Value, int64_t)> body) {
  Value count = arith::SubIOp::create(b, n1, n0);
  Value wholeEnd = emitter.addIndex(n0, emitter.mulIndex(emitter.divIndex(count, step), step));
  emitter.forLoop(n0, wholeEnd, step, [&](Value n) { body(n, step); });
  emitter.forLoop(wholeEnd, n1, 1, [&](Value n) { body(n, 1); });
}

void GroupedExperts::roundRows(Value rows, const RowAccess &from,
                               function_ref<Value(Value)> fromBase, Value to, int64_t length) {
  const int64_t pairs = 2 * bf16DotLanes(emitter.options().vectorWidth, length);
  auto f32Type = VectorType::get({pairs}, b.getF32Type());
  auto bf16Type = VectorType::get({pairs}, b.getBF16Type());
  auto i16Type = VectorType::get({pairs}, b.getI16Type());
  emitter.forLoop(emitter.index(0), rows, 1, [&](Value i) {
    Value source = fromBase(i), target = emitter.mulIndex(i, length);
    emitter.forLoop(emitter.index(0), emitter.index(length), pairs, [&](Value k) {
      Value wide = vector::LoadOp::create(b, f32Type, from.memref,
                                          ValueRange{emitter.addIndex(source, k)});
      Value bits =
          arith::BitcastOp::create(b, i16Type, arith::TruncFOp::create(b, bf16Type, wide));
      vector::StoreOp::create(b, bits, to, ValueRange{emitter.addIndex(target, k)});
    });
  });
}

void GroupedExperts::loadRows(Value count) {
  KernelPhase phase(b, "experts.group_rows");
  auto inputRow = [&](Value i) {
    Value token = arith::DivUIOp::create(b, load(matched, i), emitter.index(ops.topK));
    return emitter.address(ops.x, token, Value(), Value());
  };
  if (roundX)
    roundRows(count, ops.x, inputRow, xs.memref, ops.hidden);
  emitter.forLoop(emitter.index(0), count, 1, [&](Value i) {
    Value start = roundX ? emitter.mulIndex(i, ops.hidden) : inputRow(i);
    memref::StoreOp::create(b, start, xRows, ValueRange{i});
  });
}

void GroupedExperts::gateUp(Value count) {
  KernelPhase phase(b, "experts.gate_up");
  const int64_t inter = ops.inter, pairStep = std::max<int64_t>(1, nr / 2);
  emitter.forLoop(emitter.index(0), emitter.index(inter), panel, [&](Value p0) {
    Value p1 = arith::MinSIOp::create(b, emitter.addIndex(p0, emitter.index(panel)),
                                      emitter.index(inter));
    forSlotTiles(count, [&](Value m, int64_t mc) {
      SmallVector<Value> xBases;
      for (int64_t i = 0; i < mc; ++i)
        xBases.push_back(load(xRows, emitter.addIndex(m, emitter.index(i))));
      forRowTiles(p0, p1, pairStep, [&](Value n, int64_t nc) {
        // Gate rows n..n+nc, then their up rows.
        SmallVector<Value> wBases, scaleRows;
        for (int64_t half = 0; half < 2; ++half)
          for (int64_t j = 0; j < nc; ++j) {
            Value row = emitter.addIndex(n, emitter.index(j));
            Value flat = emitter.addIndex(ops.gateBase, row);
            if (half)
              flat = emitter.addIndex(flat, emitter.index(inter));
            wBases.push_back(emitter.mulIndex(flat, ops.hidden));
            if (ops.gateUpScale)
              scaleRows.push_back(
                  ops.scaleRowOf(half ? ops.upScaleBase : ops.gateScaleBase, row));
          }
        SmallVector<Value> sums = emitExpertDotTile(emitter, ops, xs, xBases, ops.gateUp, wBases,
                                                    ops.gateUpScale, scaleRows, ops.hidden);
        KernelPhase siluMul(b, "experts.silu_mul");
        for (int64_t i = 0; i < mc; ++i)
          for (int64_t j = 0; j < nc; ++j) {
            Value at = emitter.addIndex(
                emitter.mulIndex(emitter.addIndex(m, emitter.index(i)), inter),
                emitter.addIndex(n, emitter.index(j)));
            Value h = swiglu(b, sums[i * 2 * nc + j], sums[i * 2 * nc + nc + j]);
            memref::StoreOp::create(b, h, hs.memref, ValueRange{at});
          }
      });
    });
  });
}

void GroupedExperts::down(Value count) {
  KernelPhase phase(b, "experts.down");
  const int64_t hidden = ops.hidden, inter = ops.inter;
  emitter.forLoop(emitter.index(0), emitter.index(hidden), downPanel, [&](Value p0) {
    Value p1 = arith::MinSIOp::create(b, emitter.addIndex(p0, emitter.index(downPanel)),
                                      emitter.index(hidden));
    forSlotTiles(count, [&](Value m, int64_t mc) {
      SmallVector<Value> hBases, slots, scales;
      for (int64_t i = 0; i < mc; ++i) {
        Value position = emitter.addIndex(m, emitter.index(i));
        hBases.push_back(emitter.mulIndex(position, inter));
        slots.push_back(load(matched, position));
        scales.push_back(emitter.loadF32(ops.routeWeights, slots.back()));
      }
      forRowTiles(p0, p1, nr, [&](Value n, int64_t nc) {
        SmallVector<Value> wBases, scaleRows;
        for (int64_t j = 0; j < nc; ++j) {
          Value row = emitter.addIndex(n, emitter.index(j));
          wBases.push_back(emitter.mulIndex(emitter.addIndex(ops.downBase, row), inter));
          if (ops.downScale)
            scaleRows.push_back(ops.scaleRowOf(ops.downScaleBase, row));
        }
        SmallVector<Value> sums = emitExpertDotTile(emitter, ops, hRead, hBases, ops.down, wBases,
                                                    ops.downScale, scaleRows, inter);
        KernelPhase scatter(b, "experts.scatter");
        for (int64_t i = 0; i < mc; ++i)
          for (int64_t j = 0; j < nc; ++j)
            emitter.storeF32(ops.out,
                             emitter.addIndex(emitter.mulIndex(slots[i], hidden),
                                              emitter.addIndex(n, emitter.index(j))),
                             arith::MulFOp::create(b, sums[i * nc + j], scales[i]));
      });
    });
  });
}

void GroupedExperts::processGroup(Value count) {
  loadRows(count);
  gateUp(count);
  if (roundH) {
    KernelPhase phase(b, "experts.group_rows");
    roundRows(
        count, hs, [&](Value i) { return emitter.mulIndex(i, ops.inter); }, hRead.memref,
        ops.inter);
  }
  down(count);
}

Value qwen::codegen::cpu::gatherRoutedSlots(KernelEmitter &emitter, const ExpertOperands &ops,
                                           Value expert, Value slotCount, Value matched,
                                           int64_t block, function_ref<void()> onFull) {
  ImplicitLocOpBuilder &b = emitter.builder();
  KernelPhase phase(b, "experts.gather");
  return emitter.forLoop(
      emitter.index(0), slotCount, 1, ValueRange{emitter.index(0)},
      [&](Value slot, ValueRange carried) -> SmallVector<Value> {
        Value routed = arith::CmpIOp::create(b, arith::CmpIPredicate::eq,
                                             emitter.loadIndex(ops.ids, slot), expert);
        auto ifRouted = scf::IfOp::create(b, TypeRange{b.getIndexType()}, routed, true);
        OpBuilder::InsertionGuard guard(b);
        b.setInsertionPointToStart(ifRouted.thenBlock());
        memref::StoreOp::create(b, slot, matched, ValueRange{carried[0]});
        Value count = emitter.addIndex(carried[0], emitter.index(1));
        Value full = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, count, emitter.index(block));
        auto ifFull = scf::IfOp::create(b, TypeRange{b.getIndexType()}, full, true);
        {
          OpBuilder::InsertionGuard inner(b);
          b.setInsertionPointToStart(ifFull.thenBlock());
          onFull();
          scf::YieldOp::create(b, emitter.index(0));
          b.setInsertionPointToStart(ifFull.elseBlock());
          scf::YieldOp::create(b, count);
        }
        scf::YieldOp::create(b, ifFull.getResult(0));
        b.setInsertionPointToStart(ifRouted.elseBlock());
        scf::YieldOp::create(b, carried[0]);
        return {ifRouted.getResult(0)};
      })[0];
}

void GroupedExperts::emit(Value expert, Value slotCount) {
  Value pending = gatherRoutedSlots(emitter, ops, expert, slotCount, matched, group,
                                    [&] { processGroup(emitter.index(group)); });
  // The last, partial group.
  Value any = arith::CmpIOp::create(b, arith::CmpIPredicate::ne, pending, emitter.index(0));
  auto ifAny = scf::IfOp::create(b, any, /*withElseRegion=*/false);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPoint(ifAny.thenBlock()->getTerminator());
  processGroup(pending);
}

void qwen::codegen::cpu::emitGroupedExperts(KernelEmitter &emitter, ExpertOperands &ops,
                                            Value expert, Value slotCount) {
  GroupedExperts(emitter, ops).emit(expert, slotCount);
}
