//===- Conv.cpp - causal depthwise conv1d + SiLU, for every target --------===//
//
// Every lane of the grid owns one vector of channels (the CPU: a work item
// per vector of the schedule's width; the GPU: a thread per channel) and walks
// the step's tokens in order, carrying its request's window in registers:
// at the first token of a request's run it reads the saved window from the
// request's state slot, after the last one it writes the newest conv_window
// inputs back. y_t = silu(w_K x_t + sum_j w_j h_j), fused multiply-adds in
// increasing j.
//
// Every request's tokens are contiguous and in order in a ragged step, so
// "the previous token of the same request" is the previous row when its
// token_seq entry matches, and the state slot otherwise.
//
//===----------------------------------------------------------------------===//
#include "qwen/Passes/Codegen/Common/KernelPatterns.h"
#include "qwen/Passes/Codegen/Common/RowFamilies.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen;

FailureOr<Grid> qwen::codegen::lowerConvKernel(KernelTarget &t) {
  func::FuncOp source = t.source();
  auto matched = matchSingleOpKernel<qtf::CausalConv1dOp>(source, "conv");
  if (failed(matched))
    return failure();
  qtf::CausalConv1dOp conv = matched->first;
  const unsigned output = matched->second;
  qtf::LinearStateType stateType = conv.getState().getType();
  const int64_t channels = stateType.getConvChannels(), window = stateType.getConvWindow();
  const int64_t layer = conv.getLayer();
  const int64_t kernelSize = window + 1;
  const ColumnPlan plan = t.planLanes(channels);
  const int64_t width = plan.width;

  t.buildKernel(plan.threads, [&](Value item) {
    ImplicitLocOpBuilder &b = t.builder();
    // A lane's channels are one f32 (width 1) or one vector.
    Type laneType = width == 1 ? Type(b.getF32Type())
                               : Type(VectorType::get({width}, b.getF32Type()));
    auto load = [&](const RowAccess &access, Value at) -> Value {
      return width == 1 ? t.loadF32(access, at) : t.loadVectorF32(access, at, width);
    };
    auto fma = [&](Value x, Value y, Value acc) -> Value {
      if (width == 1)
        return math::FmaOp::create(b, x, y, acc);
      return vector::FMAOp::create(b, x, y, acc);
    };
    RowAccess input = t.access(conv.getInput()), weight = t.access(conv.getWeight());
    RowAccess tokenSeq = t.access(conv.getTokenSeq()), slots = t.access(conv.getStateSlots());
    RowAccess convState = t.stateArrays(conv.getState()).first;
    RowAccess out = t.result(output);
    t.forColumns(plan, channels, item, [&](Value, Value first) {
      // Tap j of the lane's channels (weight is [channels, K]).
      SmallVector<Value> taps;
      for (int64_t j = 0; j < kernelSize; ++j) {
        SmallVector<Value> lanes;
        for (int64_t lane = 0; lane < width; ++lane) {
          Value channel = lane ? t.addIndex(first, t.index(lane)) : first;
          lanes.push_back(
              t.loadF32(weight, t.addIndex(t.mulIndex(channel, kernelSize), t.index(j))));
        }
        taps.push_back(width == 1 ? lanes[0]
                                  : vector::FromElementsOp::create(
                                        b, cast<VectorType>(laneType), lanes)
                                        .getResult());
      }
      Value T = t.dim("T");
      Value zero = width == 1 ? t.f32(0.0f)
                              : arith::ConstantOp::create(
                                    b, DenseElementsAttr::get(cast<VectorType>(laneType), 0.0f))
                                    .getResult();
      SmallVector<Value> initial(window, zero);
      t.forLoop(t.index(0), T, 1, initial,
                [&](Value token, ValueRange carried) -> SmallVector<Value> {
        Value sequence = t.loadIndex(tokenSeq, token);
        Value slot = t.loadIndex(slots, sequence);
        // Row j of this layer's window in the slot: [slot][layer][j][channel].
        Value slotBase = t.addIndex(convWindowOffset(t, stateType, layer, slot), first);
        // A request's first row in this step starts from its saved window.
        Value starts = isRunBoundary(t, tokenSeq, token, T, sequence, /*before=*/true);
        SmallVector<Type> types(window, laneType);
        auto ifStarts = scf::IfOp::create(b, types, starts, /*withElseRegion=*/true);
        {
          OpBuilder::InsertionGuard guard(b);
          b.setInsertionPointToStart(ifStarts.thenBlock());
          SmallVector<Value> saved;
          for (int64_t j = 0; j < window; ++j)
            saved.push_back(load(convState, t.addIndex(slotBase, t.index(j * channels))));
          scf::YieldOp::create(b, saved);
          b.setInsertionPointToStart(ifStarts.elseBlock());
          scf::YieldOp::create(b, carried);
        }
        ValueRange history = ifStarts.getResults();
        Value x = load(input, t.address(input, token, Value(), first));
        Value sum = arith::MulFOp::create(b, taps[window], x);
        for (int64_t j = 0; j < window; ++j)
          sum = fma(taps[j], history[j], sum);
        t.store(out, t.address(out, token, Value(), first), t.silu(sum));
        SmallVector<Value> next(history.begin() + 1, history.end());
        next.push_back(x);
        // After the request's last row, its slot keeps the newest inputs.
        Value ends = isRunBoundary(t, tokenSeq, token, T, sequence, /*before=*/false);
        t.ifThen(ends, [&] {
          for (int64_t j = 0; j < window; ++j)
            t.store(convState, t.addIndex(slotBase, t.index(j * channels)), next[j]);
        });
        return next;
      });
    });
  });
  return Grid{Builder(source.getContext()).getI64IntegerAttr(plan.chunks)};
}
