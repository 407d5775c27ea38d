//===- KernelABI.h - What every target's kernel codegen shares --*- C++ -*-===//
//
// Kernels receive raw pointers (docs/ARTIFACT.md); codegen views each as a
// flat memref, stores bf16 as i16 (widened to f32 with a shift on any
// target), and recognizes the same fused patterns the fusion pass formed.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_PASSES_CODEGEN_COMMON_KERNELABI_H
#define QWEN_PASSES_CODEGEN_COMMON_KERNELABI_H

#include "qwen/Dialect/QTF/IR/QTF.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/Builders.h"

namespace qwen::codegen {

/// Where the rows of a kernel value live: element (row, unit, col) is at
/// `row * rowStride + offset + unit * unitWidth + col` of `memref`.
struct RowAccess {
  mlir::Value memref;
  mlir::Type elementType; ///< logical element type (bf16 is stored as i16)
  int64_t rowStride = 0;
  int64_t offset = 0;
  int64_t unitWidth = 0;
  int64_t units = 1;
};

/// Row geometry of a whole tensor argument stored at `memref`.
RowAccess wholeTensorAccess(mlir::Value memref, mlir::RankedTensorType type);

/// Resolves a value of a kernel function through view ops (split, reshape)
/// down to a kernel argument, whose access `base` provides.
RowAccess resolveView(mlir::Value value,
                      llvm::function_ref<RowAccess(mlir::BlockArgument)> base);

/// The RoPE inverse frequencies `1 / theta^(2i/d)` in float32 (as HF computes
/// them) as a constant memref.global in `symbolTable` (created once), loaded
/// at the builder's insertion point.
mlir::Value getInvFreqTable(mlir::OpBuilder &builder, mlir::Location loc,
                            mlir::Operation *symbolTable, double theta, int64_t rotaryDim);

/// A constant f32 table as a memref.global `name` in `symbolTable` (created
/// once), loaded at the builder's insertion point.
mlir::Value getF32Table(mlir::OpBuilder &builder, mlir::Location loc,
                        mlir::Operation *symbolTable, llvm::StringRef name,
                        llvm::ArrayRef<float> table);

/// The inverse-frequency table of `rope` (qtf::ropeInverseFrequencies), or
/// with `longContext` longrope's long table.
mlir::Value getRopeTable(mlir::OpBuilder &builder, mlir::Location loc,
                         mlir::Operation *symbolTable, qtf::RopeOp rope, bool longContext);

/// The element type kernels address memory with: i16 for bf16, else itself.
mlir::Type storageType(mlir::Type elementType);

/// Widens a scalar or vector loaded as storageType(elementType) to f32 (bf16
/// through a 16-bit shift, f16 by extension; f32 unchanged).
mlir::Value widenToF32(mlir::OpBuilder &builder, mlir::Location loc, mlir::Value raw,
                       mlir::Type elementType);

/// Narrows an f32 scalar or vector to storageType(elementType), rounding to
/// nearest even: bf16 by integer arithmetic on the f32 bits (NaN stays a
/// quiet NaN; no libcall, so CPU kernels need no compiler-rt), f16 by
/// arith.truncf; f32 unchanged. The inverse of widenToF32.
mlir::Value narrowFromF32(mlir::OpBuilder &builder, mlir::Location loc, mlir::Value value,
                          mlir::Type elementType);

/// A 1-D dynamic memref over `pointer` (an !llvm.ptr), built as an LLVM
/// memref descriptor behind an unrealized cast that the LLVM lowering folds.
mlir::Value memrefFromPointer(mlir::OpBuilder &builder, mlir::Location loc,
                              mlir::Value pointer, mlir::Type elementType);

/// The parts of a `matmul` kernel: a linear with an optional row-gather
/// prologue and an optional residual-add epilogue.
struct MatmulPattern {
  qtf::LinearOp linear;
  qtf::GatherRowsOp gather; ///< null when the input is read directly
  mlir::Value residual;     ///< null without a residual epilogue
  mlir::Value output;       ///< the kernel's result
};

/// Recognizes a matmul kernel function; emits an error on `source` if it is not one.
mlir::FailureOr<MatmulPattern> matchMatmulKernel(mlir::func::FuncOp source);

/// The parts of an `elementwise` kernel: silu_mul(a, b), sigmoid_mul(a,
/// gate) with a full or one-column gate, add(a, b), moe_combine(slots), or
/// add(residual, moe_combine(slots)).
struct ElementwisePattern {
  mlir::Operation *op = nullptr;   ///< the op producing the kernel's result
  qtf::MoeCombineOp combine;       ///< null unless the kernel sums expert slots
  mlir::Value residual;            ///< added to the combine; null without
  mlir::Value output;              ///< the kernel's result
  int64_t columns = 0;             ///< elements per row of the result
  int64_t choices = 0;             ///< expert slots per token (combine only)
  bool broadcastGate = false;      ///< sigmoid_mul with a one-column gate
};

/// Recognizes an elementwise kernel function; emits an error on `source` if
/// it is not one.
mlir::FailureOr<ElementwisePattern> matchElementwiseKernel(mlir::func::FuncOp source);

/// The value a kernel result computes: `result` itself, or the f32 value an
/// arith.truncf at the end of the kernel narrows for storage (the GPU
/// pipeline's qwen-gpu-narrow-gemm-inputs stores GEMM activations in the
/// weight dtype; the kernel computes in f32 and rounds when it stores).
mlir::Value computedValue(mlir::Value result);

/// The logits [rows, vocab] f32 (vocab static) that @step returns first and
/// the on-device sampler reads; null when `step` returns none (a body-less
/// step, hidden states, another type).
mlir::RankedTensorType getSampledLogitsType(mlir::func::FuncOp step);

/// Position of `value` among the results of kernel function `source`.
std::optional<unsigned> resultIndexOf(mlir::func::FuncOp source, mlir::Value value);

/// The op of a kernel built around one op (conv, delta_rule, gated_norm) and
/// the index of the function result it computes; emits "<kind> kernel must
/// return ..." on `source` when the function does not have that shape.
template <typename OpT>
mlir::FailureOr<std::pair<OpT, unsigned>> matchSingleOpKernel(mlir::func::FuncOp source,
                                                              llvm::StringRef kind) {
  OpT found;
  source.walk([&](OpT op) { found = op; });
  std::optional<unsigned> index = found ? resultIndexOf(source, found->getResult(0)) : std::nullopt;
  if (!index)
    return source.emitOpError() << kind << " kernel must return the result of one "
                                << OpT::getOperationName(),
           mlir::failure();
  return std::make_pair(found, *index);
}

/// The sizes a gated_delta_rule kernel is generated for.
struct DeltaRuleSizes {
  int64_t heads = 0, keyHeads = 0, group = 0; ///< value heads, key heads, heads per key head
  int64_t keyDim = 0, valueDim = 0;
  int64_t layer = 0;             ///< this op's linear-attention layer
  float scale = 1.0f;            ///< applied to the normalized queries
};
DeltaRuleSizes getDeltaRuleSizes(qtf::GatedDeltaRuleOp rule);

/// Flat offset of channel 0 of the first window row of layer `layer` in the
/// conv array of a linear state: [slot][layer][conv_window][channels].
template <typename Emitter>
mlir::Value convWindowOffset(Emitter &e, qtf::LinearStateType state, int64_t layer,
                             mlir::Value slot) {
  return e.mulIndex(e.addIndex(e.mulIndex(slot, state.getLayers()), e.index(layer)),
                    state.getConvWindow() * state.getConvChannels());
}

/// Flat offset of the [key_dim][value_dim] state of `head` of layer `layer`
/// in the recurrent array: [slot][layer][heads][key_dim][value_dim].
template <typename Emitter>
mlir::Value recurrentStateOffset(Emitter &e, qtf::LinearStateType state, int64_t layer,
                                 mlir::Value slot, mlir::Value head) {
  mlir::Value slotLayer = e.addIndex(e.mulIndex(slot, state.getLayers()), e.index(layer));
  return e.mulIndex(e.addIndex(e.mulIndex(slotLayer, state.getHeads()), head),
                    state.getKeyDim() * state.getValueDim());
}

// Emitter-generic helpers: `Emitter` is the CPU KernelEmitter or the
// GpuKernelEmitter, which share these builder shorthands.

/// Whether row `t` starts (`before`) or ends its request's run of rows in a
/// ragged step: the neighbouring row is outside [0, T) or belongs to another
/// request (a request's rows are contiguous and in order).
template <typename Emitter>
mlir::Value isRunBoundary(Emitter &e, const RowAccess &tokenSeq, mlir::Value t, mlir::Value T,
                          mlir::Value sequence, bool before) {
  namespace arith = mlir::arith;
  auto &b = e.builder();
  mlir::Value one = e.index(1);
  mlir::Value edge =
      before ? arith::CmpIOp::create(b, arith::CmpIPredicate::eq, t, e.index(0)).getResult()
             : arith::CmpIOp::create(b, arith::CmpIPredicate::eq, e.addIndex(t, one), T)
                   .getResult();
  // Clamp so the neighbour load stays in bounds; `edge` decides then.
  mlir::Value neighbour =
      before ? arith::SubIOp::create(b, arith::MaxUIOp::create(b, t, one), one).getResult()
             : arith::MinUIOp::create(b, e.addIndex(t, one), arith::SubIOp::create(b, T, one))
                   .getResult();
  mlir::Value other = arith::CmpIOp::create(b, arith::CmpIPredicate::ne,
                                            e.loadIndex(tokenSeq, neighbour), sequence);
  return arith::OrIOp::create(b, edge, other);
}

/// The f32 RoPE positions of `token`: one, or with interleaved MRoPE
/// (`section`) the temporal, height and width positions of a [tokens, 3] input.
template <typename Emitter>
llvm::SmallVector<mlir::Value> loadRopePositions(Emitter &e, const RowAccess &positions,
                                                 mlir::Value token, bool mrope) {
  auto &b = e.builder();
  llvm::SmallVector<mlir::Value> result;
  for (int64_t axis = 0, axes = mrope ? 3 : 1; axis < axes; ++axis) {
    mlir::Value at = mrope ? e.addIndex(e.mulIndex(token, 3), e.index(axis)) : token;
    mlir::Value position = mlir::arith::IndexCastOp::create(b, b.getI64Type(), e.loadIndex(positions, at));
    result.push_back(mlir::arith::SIToFPOp::create(b, b.getF32Type(), position));
  }
  return result;
}

/// The position frequency `i` rotates by: with interleaved MRoPE sections
/// [t, h, w], the height position if i % 3 == 1 and i < 3h, the width one if
/// i % 3 == 2 and i < 3w, else the temporal one (qwen-models.md §1.4).
template <typename Emitter>
mlir::Value ropePositionFor(Emitter &e, mlir::Value i, llvm::ArrayRef<mlir::Value> positions,
                            std::optional<llvm::ArrayRef<int64_t>> section) {
  namespace arith = mlir::arith;
  if (!section)
    return positions[0];
  auto &b = e.builder();
  mlir::Value phase = arith::RemUIOp::create(b, i, e.index(3));
  auto takes = [&](int64_t residue, int64_t limit) -> mlir::Value {
    mlir::Value matches = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, phase, e.index(residue));
    mlir::Value inside = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, i, e.index(3 * limit));
    return arith::AndIOp::create(b, matches, inside);
  };
  mlir::Value takesHeight = takes(1, (*section)[1]);
  mlir::Value takesWidth = takes(2, (*section)[2]);
  mlir::Value widthOrTemporal = arith::SelectOp::create(b, takesWidth, positions[2], positions[0]);
  return arith::SelectOp::create(b, takesHeight, positions[1], widthOrTemporal);
}

/// The RoPE sequence length of `token` as f32: one past the position of the
/// last row of its request in this step (HF's max(position_ids) + 1 of the
/// forward that computes the row; with MRoPE the largest of its three
/// positions). A request's rows are contiguous, so rows of the same request
/// follow `token` up to one boundary: binary lifting finds the last in 31
/// steps (T < 2^31).
template <typename Emitter>
mlir::Value ropeSequenceLength(Emitter &e, const RowAccess &positions, const RowAccess &tokenSeq,
                               mlir::Value token, bool mrope) {
  namespace arith = mlir::arith;
  auto &b = e.builder();
  mlir::Value T = e.dim("T");
  mlir::Value sequence = e.loadIndex(tokenSeq, token);
  auto loop = mlir::scf::ForOp::create(b, e.index(0), e.index(31), e.index(1),
                                       mlir::ValueRange{token});
  {
    mlir::OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(loop.getBody());
    mlir::Value k = loop.getInductionVar(), last = loop.getRegionIterArgs()[0];
    mlir::Value step = arith::ShRUIOp::create(b, e.index(int64_t(1) << 30), k);
    mlir::Value candidate = e.addIndex(last, step);
    mlir::Value inRange = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, candidate, T);
    mlir::Value safe = arith::SelectOp::create(b, inRange, candidate, last);
    mlir::Value same = arith::CmpIOp::create(b, arith::CmpIPredicate::eq,
                                             e.loadIndex(tokenSeq, safe), sequence);
    mlir::Value advance = arith::AndIOp::create(b, inRange, same);
    mlir::scf::YieldOp::create(b, mlir::ValueRange{
                                      arith::SelectOp::create(b, advance, candidate, last)});
  }
  mlir::Value last = loop.getResult(0);
  mlir::Value position;
  for (int64_t axis = 0, axes = mrope ? 3 : 1; axis < axes; ++axis) {
    mlir::Value at = mrope ? e.addIndex(e.mulIndex(last, 3), e.index(axis)) : last;
    mlir::Value p = e.loadIndex(positions, at);
    position = position ? arith::MaxSIOp::create(b, position, p).getResult() : p;
  }
  mlir::Value length = arith::IndexCastOp::create(b, b.getI64Type(), e.addIndex(position, e.index(1)));
  return arith::SIToFPOp::create(b, b.getF32Type(), length);
}

/// The inverse frequencies and attention factor a rope op rotates `token`
/// with: the compile-time table of its scaling, and for dynamic / longrope
/// the choice (or, for dynamic, the NTK base) that the request's length in
/// this step makes, in the float32 arithmetic of HF.
template <typename Emitter>
class RopeFrequencies {
public:
  RopeFrequencies(Emitter &e, qtf::RopeOp rope, mlir::Operation *symbolTable, mlir::Value token)
      : e(e), rope(rope) {
    namespace arith = mlir::arith;
    auto &b = e.builder();
    table = getRopeTable(b, b.getLoc(), symbolTable, rope, /*longContext=*/false);
    qtf::RopeScalingAttr scaling = rope.getScalingAttr();
    if (!scaling)
      return;
    if (scaling.attentionFactor() != 1.0)
      attentionScale = e.f32(static_cast<float>(scaling.attentionFactor()));
    if (!scaling.dependsOnLength())
      return;
    mlir::Value length = ropeSequenceLength(e, e.access(rope.getPositions()),
                                            e.access(rope.getTokenSeq()), token,
                                            rope.getMropeSection().has_value());
    float original = static_cast<float>(scaling.getOriginalMaxPositions());
    beyondOriginal = arith::CmpFOp::create(b, arith::CmpFPredicate::OGT, length, e.f32(original));
    if (scaling.getKind() == qtf::RopeScalingKind::LongRope) {
      longTable = getRopeTable(b, b.getLoc(), symbolTable, rope, /*longContext=*/true);
      return;
    }
    // HF: base * (factor * L / max - (factor - 1)) ** (d / (d - 2)), in f32.
    double factor = scaling.factor();
    int64_t d = static_cast<int64_t>(rope.getRotaryDim());
    mlir::Value ratio = arith::DivFOp::create(
        b, arith::MulFOp::create(b, e.f32(static_cast<float>(factor)), length), e.f32(original));
    mlir::Value stretch = arith::SubFOp::create(b, ratio, e.f32(static_cast<float>(factor - 1.0)));
    mlir::Value power = mlir::math::PowFOp::create(
        b, stretch, e.f32(static_cast<float>(static_cast<double>(d) / static_cast<double>(d - 2))));
    dynamicBase = arith::MulFOp::create(
        b, e.f32(static_cast<float>(rope.getTheta().convertToDouble())), power);
  }

  /// The inverse frequency of pair `i` (an index) as f32.
  mlir::Value at(mlir::Value i) {
    namespace arith = mlir::arith;
    auto &b = e.builder();
    mlir::Value value = mlir::memref::LoadOp::create(b, table, mlir::ValueRange{i});
    if (longTable)
      return arith::SelectOp::create(
          b, beyondOriginal, mlir::memref::LoadOp::create(b, longTable, mlir::ValueRange{i}), value);
    if (!dynamicBase)
      return value;
    // 1 / base ** (2i / d), as HF's arange(0, d, 2).float() / d.
    mlir::Value twoI = arith::IndexCastOp::create(b, b.getI64Type(), e.addIndex(i, i));
    mlir::Value exponent =
        arith::DivFOp::create(b, arith::SIToFPOp::create(b, b.getF32Type(), twoI),
                              e.f32(static_cast<float>(rope.getRotaryDim())));
    mlir::Value scaled = arith::DivFOp::create(
        b, e.f32(1.0f), mlir::math::PowFOp::create(b, dynamicBase, exponent));
    return arith::SelectOp::create(b, beyondOriginal, scaled, value);
  }

  /// HF's attention_scaling as f32; null when it is 1 (nothing to multiply).
  mlir::Value attentionScale;

private:
  Emitter &e;
  qtf::RopeOp rope;
  mlir::Value table, longTable, beyondOriginal, dynamicBase;
};

} // namespace qwen::codegen

#endif // QWEN_PASSES_CODEGEN_COMMON_KERNELABI_H
