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

FailureOr<SmallVector<Attribute>>
qwen::codegen::cpu::emitMatmulKernel(KernelEmitter &emitter) {
  func::FuncOp source = emitter.source();
  FailureOr<MatmulPattern> matched = matchMatmulKernel(source);
  if (failed(matched))
    return failure();
  MatmulPattern plan = *matched;
  qkernel::ScheduleAttr schedule = emitter.options().schedule;
  if (schedule.getDot() == qkernel::DotKind::None || schedule.tileSize(0) < 1 ||
      schedule.tileSize(1) < 1 || schedule.decodeTileSize(0) < 1 ||
      schedule.decodeTileSize(1) < 1)
    return source.emitOpError("matmul needs a schedule with a dot, tile = [tokens, "
                              "weight rows] and decode_tile = [tokens, weight rows]"),
           failure();
  const int64_t kRowsPerItem = schedule.getGrain();
  const int64_t kTokenTile = schedule.tileSize(0), kWeightTile = schedule.tileSize(1);
  const int64_t kDecodeTokenTile = schedule.decodeTileSize(0),
                kDecodeWeightTile = schedule.decodeTileSize(1);
  Value output = plan.output;

  RankedTensorType weightType = plan.linear.getWeight().getType();
  const int64_t N = weightType.getDimSize(0), K = weightType.getDimSize(1);
  if (failed(verifyDotKinds(source, schedule,
                            plan.linear.getInput().getType().getElementType(),
                            weightType.getElementType(), K)))
    return failure();
  // Block-wise FP8 weights widen in registers and take f32 FMAs.
  std::array<int64_t, 2> weightBlock{0, 0};
  if (plan.linear.isBlockQuantized()) {
    if (schedule.getDot() != qkernel::DotKind::Fma ||
        schedule.dotFor(1) != qkernel::DotKind::Fma)
      return source.emitOpError("block-wise fp8 weights need the fma dot kind"), failure();
    weightBlock = {(*plan.linear.getWeightBlock())[0], (*plan.linear.getWeightBlock())[1]};
  }
  std::string mSymbol = emitter.leadingSymbol(output);
  if (mSymbol.empty())
    return source.emitOpError("cannot size the matmul rows"), failure();
  Value xValue = plan.gather ? plan.gather.getInput() : plan.linear.getInput();
  Value gatherRows = plan.gather ? plan.gather.getRows() : Value();
  Value bias = plan.linear.getBias();
  Value residual = plan.residual;

  emitter.createFunction([&](Value item) {
    ImplicitLocOpBuilder &b = emitter.builder();
    RowAccess x = emitter.access(xValue);
    RowAccess w = emitter.access(plan.linear.getWeight());
    RowAccess y = emitter.result(0);
    std::optional<RowAccess> rows, biasAccess, residualAccess, scaleAccess;
    if (Value scale = plan.linear.getWeightScale())
      scaleAccess = emitter.access(scale);
    if (gatherRows)
      rows = emitter.access(gatherRows);
    if (bias)
      biasAccess = emitter.access(bias);
    if (residual)
      residualAccess = emitter.access(residual);

    Value M = emitter.dim(mSymbol);
    Value n0 = emitter.mulIndex(item, kRowsPerItem);
    Value n1 = arith::MinSIOp::create(b, emitter.addIndex(n0, emitter.index(kRowsPerItem)),
                                      emitter.index(N));

    // One register tile: tokens [m, m+mc) x weight rows [n, n+nc).
    auto tile = [&](Value m, int64_t mc, Value n, int64_t nc) {
      SmallVector<Value> xBase, wBase;
      for (int64_t i = 0; i < mc; ++i) {
        Value row = emitter.addIndex(m, emitter.index(i));
        if (rows)
          row = emitter.loadIndex(*rows, row);
        xBase.push_back(emitter.address(x, row, Value(), Value()));
      }
      SmallVector<Value> wRows;
      for (int64_t j = 0; j < nc; ++j) {
        wRows.push_back(emitter.addIndex(n, emitter.index(j)));
        wBase.push_back(emitter.mulIndex(wRows.back(), K));
      }
      SmallVector<Value> sums =
          scaleAccess ? emitFp8DotTile(emitter, x, xBase, w, wBase,
                                       Fp8Weights{*scaleAccess, wRows, weightBlock}, K)
                      : emitter.emitDotTile(x, xBase, w, wBase, K);
      for (int64_t i = 0; i < mc; ++i)
        for (int64_t j = 0; j < nc; ++j) {
          Value mi = emitter.addIndex(m, emitter.index(i));
          Value nj = emitter.addIndex(n, emitter.index(j));
          Value value = sums[i * nc + j];
          if (biasAccess)
            value = arith::AddFOp::create(b, value, emitter.loadF32(*biasAccess, nj));
          if (residualAccess)
            value = arith::AddFOp::create(
                b, value,
                emitter.loadF32(*residualAccess,
                                emitter.address(*residualAccess, mi, Value(), nj)));
          emitter.storeF32(y, emitter.address(y, mi, Value(), nj), value);
        }
    };

    // All weight rows of the item for `mc` tokens starting at m, in tiles
    // of `nc` weight rows (then single rows for the item's rest).
    auto tokenBlock = [&](Value m, int64_t mc, int64_t nc) {
      if (nc == 1)
        return emitter.forLoop(n0, n1, 1, [&](Value n) { tile(m, mc, n, 1); });
      Value count = arith::SubIOp::create(b, n1, n0);
      Value whole = arith::MulIOp::create(
          b, arith::DivSIOp::create(b, count, emitter.index(nc)), emitter.index(nc));
      Value wholeEnd = emitter.addIndex(n0, whole);
      emitter.forLoop(n0, wholeEnd, nc, [&](Value n) { tile(m, mc, n, nc); });
      emitter.forLoop(wholeEnd, n1, 1, [&](Value n) { tile(m, mc, n, 1); });
    };
    // Tokens [0, M) in blocks of `mc` x `nc` tiles; the lone tokens after the
    // last whole block take the decode tile (1 x decode rows: one
    // sequential weight stream per work item, see CpuSchedules.cpp).
    auto tokenLoop = [&](int64_t mc, int64_t nc) {
      Value mFull = arith::MulIOp::create(
          b, arith::DivSIOp::create(b, M, emitter.index(mc)), emitter.index(mc));
      emitter.forLoop(emitter.index(0), mFull, mc, [&](Value m) { tokenBlock(m, mc, nc); });
      emitter.forLoop(mFull, M, 1, [&](Value m) { tokenBlock(m, 1, kDecodeWeightTile); });
    };
    // decode_tile = [T > 1, rows]: steps of at most T tokens (batched
    // decode) take T x rows tiles, the longer ones `tile`.
    if (kDecodeTokenTile == 1)
      return tokenLoop(kTokenTile, kWeightTile);
    Value fewTokens = arith::CmpIOp::create(b, arith::CmpIPredicate::sle, M,
                                            emitter.index(kDecodeTokenTile));
    emitter.ifThen(fewTokens, [&] { tokenLoop(kDecodeTokenTile, kDecodeWeightTile); });
    Value manyTokens = arith::CmpIOp::create(b, arith::CmpIPredicate::sgt, M,
                                             emitter.index(kDecodeTokenTile));
    emitter.ifThen(manyTokens, [&] { tokenLoop(kTokenTile, kWeightTile); });
  }, [&](Value begin, Value end, llvm::function_ref<void()> itemLoop) {
    emitMatmulRange(emitter, plan, emitter.dim(mSymbol), begin, end, itemLoop);
  });

  Builder builder(source.getContext());
  int64_t items = (N + kRowsPerItem - 1) / kRowsPerItem;
  return SmallVector<Attribute>{builder.getI64IntegerAttr(items)};
}

void qwen::codegen::cpu::populateMatmulPatterns(RewritePatternSet &patterns,
                                                CpuKernelLowering &lowering) {
  patterns.add<CpuKernelPattern>(patterns.getContext(), qkernel::KernelKind::Matmul,
                                 emitMatmulKernel, lowering);
}
