//===- LinearAttentionKernels.cpp - GPU codegen for Gated DeltaNet --------===//
//
// conv:       causal depthwise conv1d + SiLU, one thread per channel (blocks
//             of up to max-threads channels); each thread walks the step's
//             tokens in order, carrying its request's window in registers:
//             at the first token of a request's run it reads the saved window
//             from the request's state slot, after the last one it writes the
//             newest conv_window inputs back. Threads of a warp own adjacent
//             channels, so every load and store is coalesced.
// delta_rule: DeltaRuleKernel.cpp
// gated_norm: per-head RMSNorm times silu(gate), one block per (token, head),
//             the sum of squares reduced across the block.
//
// Every request's tokens are contiguous and in order in a ragged step, so
// "the previous token of the same request" is the previous row when its
// token_seq entry matches, and the state slot otherwise.
//
//===----------------------------------------------------------------------===//
#include "passes/Codegen/GPU/GpuKernelEmitter.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen::gpu;

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
