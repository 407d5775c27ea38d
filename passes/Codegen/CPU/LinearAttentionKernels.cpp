//===- LinearAttentionKernels.cpp - CPU codegen for Gated DeltaNet --------===//
//
// conv:       causal depthwise conv1d + SiLU, one work item per vector of
//             channels walking the step's tokens in order, so each request's
//             window is carried in registers and written back to its state
//             slot after the request's last token
// delta_rule: DeltaRuleKernel.cpp
// gated_norm: per-head RMSNorm times silu(gate), one item per (token, head)
//
// Every request's tokens are contiguous and in order in a ragged step, so
// "the previous token of the same request" is the previous row when its
// token_seq entry matches, and the state slot otherwise.
//
//===----------------------------------------------------------------------===//
#include "passes/Codegen/CPU/KernelEmitter.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen::cpu;

/// x * sigmoid(x) on a vector or scalar f32.
static Value silu(ImplicitLocOpBuilder &b, Value x) {
  Value one = isa<VectorType>(x.getType())
                  ? arith::ConstantOp::create(b, DenseElementsAttr::get(
                                                     cast<ShapedType>(x.getType()), 1.0f))
                        .getResult()
                  : arith::ConstantOp::create(b, b.getF32FloatAttr(1.0f)).getResult();
  Value denominator = arith::AddFOp::create(b, one, math::ExpOp::create(b, arith::NegFOp::create(b, x)));
  return arith::DivFOp::create(b, x, denominator);
}

FailureOr<SmallVector<Attribute>>
qwen::codegen::cpu::emitConvKernel(KernelEmitter &e) {
  func::FuncOp source = e.source();
  auto matched = codegen::matchSingleOpKernel<qtf::CausalConv1dOp>(source, "conv");
  if (failed(matched))
    return failure();
  qtf::CausalConv1dOp conv = matched->first;
  unsigned output = matched->second;
  qtf::LinearStateType stateType = conv.getState().getType();
  const int64_t channels = stateType.getConvChannels(), window = stateType.getConvWindow();
  const int64_t layer = conv.getLayer();
  const int64_t kernelSize = window + 1;
  const int64_t width = e.vectorWidthFor(channels);

  e.createFunction([&](Value item) {
    ImplicitLocOpBuilder &b = e.builder();
    auto vecType = VectorType::get({width}, b.getF32Type());
    RowAccess input = e.access(conv.getInput()), weight = e.access(conv.getWeight());
    RowAccess tokenSeq = e.access(conv.getTokenSeq()), slots = e.access(conv.getStateSlots());
    RowAccess convState = e.stateArrays(conv.getState()).first;
    RowAccess out = e.result(output);
    Value first = e.mulIndex(item, width);
    // Tap j of every channel of this item (weight is [channels, K]).
    SmallVector<Value> taps;
    for (int64_t j = 0; j < kernelSize; ++j) {
      SmallVector<Value> lanes;
      for (int64_t lane = 0; lane < width; ++lane)
        lanes.push_back(e.loadF32(
            weight, e.addIndex(e.mulIndex(e.addIndex(first, e.index(lane)), kernelSize),
                               e.index(j))));
      taps.push_back(vector::FromElementsOp::create(b, vecType, lanes));
    }
    Value T = e.dim("T");
    Value zero = arith::ConstantOp::create(b, DenseElementsAttr::get(vecType, 0.0f));
    SmallVector<Value> initial(window, zero);
    e.forLoop(e.index(0), T, 1, initial, [&](Value t, ValueRange carried) -> SmallVector<Value> {
      Value sequence = e.loadIndex(tokenSeq, t);
      Value slot = e.loadIndex(slots, sequence);
      // Row j of this layer's window in the slot: [slot][layer][j][channel].
      Value slotBase = e.addIndex(codegen::convWindowOffset(e, stateType, layer, slot), first);
      // A request's first row in this step starts from its saved window.
      Value starts = codegen::isRunBoundary(e, tokenSeq, t, T, sequence, /*before=*/true);
      SmallVector<Value> history;
      for (int64_t j = 0; j < window; ++j) {
        Value saved = e.loadVectorF32(convState, e.addIndex(slotBase, e.index(j * channels)),
                                      width);
        history.push_back(arith::SelectOp::create(b, starts, saved, carried[j]));
      }
      Value x = e.loadVectorF32(input, e.address(input, t, Value(), first), width);
      Value sum = arith::MulFOp::create(b, taps[window], x);
      for (int64_t j = 0; j < window; ++j)
        sum = vector::FMAOp::create(b, taps[j], history[j], sum);
      e.storeVectorF32(out, e.address(out, t, Value(), first), silu(b, sum));
      SmallVector<Value> next(history.begin() + 1, history.end());
      next.push_back(x);
      // After the request's last row, its slot keeps the newest inputs.
      Value ends = codegen::isRunBoundary(e, tokenSeq, t, T, sequence, /*before=*/false);
      auto ifEnds = scf::IfOp::create(b, TypeRange{}, ends, false);
      {
        OpBuilder::InsertionGuard guard(b);
        b.setInsertionPointToStart(ifEnds.thenBlock());
        for (int64_t j = 0; j < window; ++j)
          e.storeVectorF32(convState, e.addIndex(slotBase, e.index(j * channels)), next[j]);
      }
      return next;
    });
  });
  Builder builder(source.getContext());
  return SmallVector<Attribute>{builder.getI64IntegerAttr(channels / width)};
}

FailureOr<SmallVector<Attribute>>
qwen::codegen::cpu::emitGatedNormKernel(KernelEmitter &e) {
  func::FuncOp source = e.source();
  auto matched = codegen::matchSingleOpKernel<qtf::GatedRmsNormOp>(source, "gated_norm");
  if (failed(matched))
    return failure();
  qtf::GatedRmsNormOp norm = matched->first;
  unsigned output = matched->second;
  auto type = cast<RankedTensorType>(norm.getResult().getType());
  const int64_t heads = type.getDimSize(1), length = type.getDimSize(2);
  const float eps = static_cast<float>(norm.getEpsilon().convertToDouble());
  std::string symbol = e.leadingSymbol(norm.getResult());

  e.createFunction([&](Value item) {
    ImplicitLocOpBuilder &b = e.builder();
    const int64_t width = e.vectorWidthFor(length);
    auto vecType = VectorType::get({width}, b.getF32Type());
    RowAccess input = e.access(norm.getInput()), gate = e.access(norm.getGate()),
              weight = e.access(norm.getWeight());
    RowAccess out = e.result(output);
    Value token = arith::DivUIOp::create(b, item, e.index(heads));
    Value head = arith::RemUIOp::create(b, item, e.index(heads));
    Value inBase = e.address(input, token, head, Value());
    Value gateBase = e.address(gate, token, head, Value());
    Value outBase = e.address(out, token, head, Value());
    Value zero = arith::ConstantOp::create(b, DenseElementsAttr::get(vecType, 0.0f));
    Value squares = e.forLoop(e.index(0), e.index(length), width, ValueRange{zero},
                              [&](Value c, ValueRange acc) -> SmallVector<Value> {
      Value x = e.loadVectorF32(input, e.addIndex(inBase, c), width);
      return {vector::FMAOp::create(b, x, x, acc[0])};
    })[0];
    Value mean = arith::DivFOp::create(
        b, vector::ReductionOp::create(b, vector::CombiningKind::ADD, squares),
        e.f32(static_cast<float>(length)));
    Value scale = vector::BroadcastOp::create(
        b, vecType, math::RsqrtOp::create(b, arith::AddFOp::create(b, mean, e.f32(eps))));
    e.forLoop(e.index(0), e.index(length), width, [&](Value c) {
      Value x = e.loadVectorF32(input, e.addIndex(inBase, c), width);
      Value w = e.loadVectorF32(weight, c, width);
      Value g = e.loadVectorF32(gate, e.addIndex(gateBase, c), width);
      Value y = arith::MulFOp::create(b, arith::MulFOp::create(b, x, scale), w);
      e.storeVectorF32(out, e.addIndex(outBase, c), arith::MulFOp::create(b, y, silu(b, g)));
    });
  });
  Builder builder(source.getContext());
  return SmallVector<Attribute>{builder.getStringAttr(symbol), builder.getI64IntegerAttr(heads)};
}
