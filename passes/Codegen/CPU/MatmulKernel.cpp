//===- MatmulKernel.cpp - CPU codegen for matmul regions ------------------===//
//
// Y[m, n] = sum_k X[m, k] * W[n, k] (+ bias[n]) (+ residual[m, n]), with an
// optional row gather on X. A work item owns `kRowsPerItem` output columns
// (weight rows), so decode streams each weight row exactly once and threads
// never share an output. Inside, register tiles of up to 4 tokens x 2 weight
// rows accumulate vector FMAs, reusing each loaded weight vector 4 times;
// a lone token (decode) walks the rows one by one.
// These sizes are the kernel's #qkernel.schedule (passes/Schedule): grain,
// tile = [tokens, weight rows], decode_tile = [tokens, weight rows] (a lone
// token's tile has the decode weight rows; with decode tokens T > 1, steps of
// at most T tokens take T x decode-rows tiles instead of `tile`).
// Block-wise FP8 weights (a qtf.linear with a scale) are read as bytes and
// widened and scaled in registers (emitFp8DotTile).
// A step of at least `prefill_tokens` tokens takes the cache-blocked path
// instead (BlockedMatmul.cpp), where the schedule has a `panel`.
//
//===----------------------------------------------------------------------===//
#include "passes/Codegen/CPU/BlockedMatmul.h"
#include "passes/Codegen/CPU/DotProduct.h"
#include "passes/Codegen/CPU/KernelEmitter.h"
#include "qwen/Passes/Codegen/Common/KernelABI.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen;
using namespace qwen::codegen::cpu;

/// Checks that `plan`'s schedule has what the matmul codegen reads: a dot,
/// tile and decode_tile, dot kinds the operands allow (block-wise FP8: fma
/// only) and a prefill tile of at most 8 weight rows unless it is packed.
static LogicalResult verifyMatmulSchedule(func::FuncOp source, MatmulPattern plan,
                                          qkernel::ScheduleAttr schedule) {
  if (schedule.getDot() == qkernel::DotKind::None || schedule.tileSize(0) < 1 ||
      schedule.tileSize(1) < 1 || schedule.decodeTileSize(0) < 1 ||
      schedule.decodeTileSize(1) < 1)
    return source.emitOpError("matmul needs a schedule with a dot, tile = [tokens, "
                              "weight rows] and decode_tile = [tokens, weight rows]");
  RankedTensorType weightType = plan.linear.getWeight().getType();
  const int64_t K = weightType.getDimSize(1);
  if (failed(verifyDotKinds(source, schedule,
                            plan.linear.getInput().getType().getElementType(),
                            weightType.getElementType(), K)))
    return failure();
  if (plan.linear.isBlockQuantized() && (schedule.getDot() != qkernel::DotKind::Fma ||
                                         schedule.dotFor(1) != qkernel::DotKind::Fma))
    return source.emitOpError("block-wise fp8 weights need the fma dot kind");
  // Register tiles of more weight rows than that exist in the packed layout
  // only (one accumulator per 16 rows).
  if (schedule.getPanel() && schedule.prefillTileSize(1) > 8 &&
      !isPackedPrefillTile(schedule, weightType.getElementType(), K))
    return source.emitOpError("prefill_tile of more than 8 weight rows needs the packed "
                              "layout (bf16 weights, 16-lane vdpbf16ps, rows a multiple of 16)");
  return success();
}

namespace {
/// The per-item path of a matmul kernel: work item `item` owns weight rows
/// [n0, n1) (`grain` of them) and walks every token over them in register
/// tiles (`tile`, or `decode_tile` for short steps and lone tokens).
class ItemMatmul {
public:
  ItemMatmul(KernelEmitter &emitter, MatmulPattern plan, StringRef mSymbol);
  void emit(Value item);

private:
  void tile(Value m, int64_t mc, Value n, int64_t nc);
  void tokenBlock(Value m, int64_t mc, int64_t nc);
  void tokenLoop(int64_t mc, int64_t nc);

  KernelEmitter &e;
  ImplicitLocOpBuilder &b;
  MatmulPattern plan;
  StringRef mSymbol;
  qkernel::ScheduleAttr schedule;
  int64_t N, K;
  std::array<int64_t, 2> weightBlock{0, 0};
  RowAccess x, w, y;
  std::optional<RowAccess> rows, bias, residual, scale;
  Value M, n0, n1;
};
} // namespace

ItemMatmul::ItemMatmul(KernelEmitter &emitter, MatmulPattern plan, StringRef mSymbol)
    : e(emitter), b(emitter.builder()), plan(plan), mSymbol(mSymbol),
      schedule(emitter.options().schedule) {
  RankedTensorType weightType = plan.linear.getWeight().getType();
  N = weightType.getDimSize(0);
  K = weightType.getDimSize(1);
  if (plan.linear.isBlockQuantized())
    weightBlock = {(*plan.linear.getWeightBlock())[0], (*plan.linear.getWeightBlock())[1]};
}

/// One register tile: tokens [m, m+mc) x weight rows [n, n+nc), then the
/// epilogue (bias, then residual, in that order).
void ItemMatmul::tile(Value m, int64_t mc, Value n, int64_t nc) {
  SmallVector<Value> xBase, wBase, wRows;
  for (int64_t i = 0; i < mc; ++i) {
    Value row = e.addIndex(m, e.index(i));
    if (rows)
      row = e.loadIndex(*rows, row);
    xBase.push_back(e.address(x, row, Value(), Value()));
  }
  for (int64_t j = 0; j < nc; ++j) {
    wRows.push_back(e.addIndex(n, e.index(j)));
    wBase.push_back(e.mulIndex(wRows.back(), K));
  }
  SmallVector<Value> sums =
      scale ? emitFp8DotTile(e, x, xBase, w, wBase, Fp8Weights{*scale, wRows, weightBlock}, K)
            : e.emitDotTile(x, xBase, w, wBase, K);
  storeTileSums(e, y, bias, residual, m, mc, wRows, sums);
}

/// All weight rows of the item for `mc` tokens starting at m, in tiles of
/// `nc` weight rows (then single rows for the item's rest).
void ItemMatmul::tokenBlock(Value m, int64_t mc, int64_t nc) {
  if (nc == 1)
    return e.forLoop(n0, n1, 1, [&](Value n) { tile(m, mc, n, 1); });
  Value count = arith::SubIOp::create(b, n1, n0);
  Value whole = arith::MulIOp::create(b, arith::DivSIOp::create(b, count, e.index(nc)),
                                      e.index(nc));
  Value wholeEnd = e.addIndex(n0, whole);
  e.forLoop(n0, wholeEnd, nc, [&](Value n) { tile(m, mc, n, nc); });
  e.forLoop(wholeEnd, n1, 1, [&](Value n) { tile(m, mc, n, 1); });
}

/// Tokens [0, M) in blocks of `mc` x `nc` tiles; the lone tokens after the
/// last whole block take the decode tile (1 x decode rows: one sequential
/// weight stream per work item, see CpuSchedules.cpp).
void ItemMatmul::tokenLoop(int64_t mc, int64_t nc) {
  Value mFull =
      arith::MulIOp::create(b, arith::DivSIOp::create(b, M, e.index(mc)), e.index(mc));
  e.forLoop(e.index(0), mFull, mc, [&](Value m) { tokenBlock(m, mc, nc); });
  e.forLoop(mFull, M, 1, [&](Value m) { tokenBlock(m, 1, schedule.decodeTileSize(1)); });
}

void ItemMatmul::emit(Value item) {
  x = e.access(plan.gather ? plan.gather.getInput() : plan.linear.getInput());
  w = e.access(plan.linear.getWeight());
  y = e.result(0);
  if (Value value = plan.linear.getWeightScale())
    scale = e.access(value);
  if (plan.gather)
    rows = e.access(plan.gather.getRows());
  if (Value value = plan.linear.getBias())
    bias = e.access(value);
  if (plan.residual)
    residual = e.access(plan.residual);
  const int64_t grain = schedule.getGrain();
  M = e.dim(mSymbol);
  n0 = e.mulIndex(item, grain);
  n1 = arith::MinSIOp::create(b, e.addIndex(n0, e.index(grain)), e.index(N));
  // decode_tile = [T > 1, rows]: steps of at most T tokens (batched
  // decode) take T x rows tiles, the longer ones `tile`.
  const int64_t decodeTokens = schedule.decodeTileSize(0);
  if (decodeTokens == 1)
    return tokenLoop(schedule.tileSize(0), schedule.tileSize(1));
  Value fewTokens =
      arith::CmpIOp::create(b, arith::CmpIPredicate::sle, M, e.index(decodeTokens));
  e.ifThen(fewTokens, [&] { tokenLoop(decodeTokens, schedule.decodeTileSize(1)); });
  Value manyTokens =
      arith::CmpIOp::create(b, arith::CmpIPredicate::sgt, M, e.index(decodeTokens));
  e.ifThen(manyTokens, [&] { tokenLoop(schedule.tileSize(0), schedule.tileSize(1)); });
}

FailureOr<SmallVector<Attribute>>
qwen::codegen::cpu::emitMatmulKernel(KernelEmitter &emitter) {
  func::FuncOp source = emitter.source();
  FailureOr<MatmulPattern> matched = matchMatmulKernel(source);
  if (failed(matched))
    return failure();
  MatmulPattern plan = *matched;
  qkernel::ScheduleAttr schedule = emitter.options().schedule;
  if (failed(verifyMatmulSchedule(source, plan, schedule)))
    return failure();
  std::string mSymbol = emitter.leadingSymbol(plan.output);
  if (mSymbol.empty())
    return source.emitOpError("cannot size the matmul rows"), failure();

  emitter.createFunction(
      [&](Value item) { ItemMatmul(emitter, plan, mSymbol).emit(item); },
      [&](Value begin, Value end, llvm::function_ref<void()> itemLoop) {
        emitMatmulRange(emitter, plan, emitter.dim(mSymbol), begin, end, itemLoop);
      });

  Builder builder(source.getContext());
  const int64_t N = plan.linear.getWeight().getType().getDimSize(0);
  int64_t items = (N + schedule.getGrain() - 1) / schedule.getGrain();
  return SmallVector<Attribute>{builder.getI64IntegerAttr(items)};
}

void qwen::codegen::cpu::populateMatmulPatterns(RewritePatternSet &patterns,
                                                CpuKernelLowering &lowering) {
  patterns.add<CpuKernelPattern>(patterns.getContext(), qkernel::KernelKind::Matmul,
                                 emitMatmulKernel, lowering);
}
