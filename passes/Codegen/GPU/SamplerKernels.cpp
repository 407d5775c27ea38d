//===- SamplerKernels.cpp - On-device sampling of the step's logits -------===//
//
// qk_argmax: greedy sampling on the GPU. Not outlined from the program: the
// pass adds it to gpu.module @qwen_kernels for the step's output logits
// [rows, vocab] f32, and the runtime launches it after the program on the
// same stream (the manifest's "sampler" field), so that only one int32 per
// row comes back to the host.
//
//   qk_argmax(ptr logits, ptr ids, i64 T, i64 B, i64 P, i64 R)
//
// Block b is row b (grid [rows]). Thread t scans columns t*w + k*blockDim*w
// with vectors of w (16-byte loads when vocab % 4 == 0), four strides' loads
// issued together, keeping its best (value, index); a warp combines those by
// xor shuffles, lane 0 of each warp puts its pair in shared memory, and
// thread 0 combines the warps and writes ids[b]. The result is the runtime's
// host argmax (runtime/src/sampling.cpp) exactly: the lowest index whose
// logit equals the largest non-NaN logit (-0 == +0), and 0 when every logit
// is NaN. The
// combine (larger value, or equal value and lower index; NaN never wins) is
// associative and commutative, so the order of the reduction does not
// matter. Indices travel through shuffles and shared memory as exact f32
// (vocab < 2^24).
//
//===----------------------------------------------------------------------===//
#include "passes/Codegen/GPU/GpuKernelEmitter.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

#include <algorithm>
#include <limits>

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen::gpu;

static constexpr int64_t kWarp = 32;
static constexpr int64_t kMaxArgmaxThreads = 1024;
/// Vector loads a thread issues before folding them (memory-level
/// parallelism: a row is read by one block only).
static constexpr int64_t kUnroll = 4;

FailureOr<KernelGeometry> qwen::codegen::gpu::emitArgmaxKernel(mlir::gpu::GPUModuleOp gpuModule,
                                                                Location loc, int64_t vocab,
                                                                StringRef rowSymbol) {
  MLIRContext *ctx = gpuModule.getContext();
  if (vocab <= 0 || vocab >= (int64_t(1) << 24))
    return emitError(loc) << "qk_argmax: vocab " << vocab
                          << " is out of range (1 .. 2^24 - 1: indices travel as f32)",
           failure();
  // A stand-in source with the sampler's tensor signature, so that the
  // kernel gets the common ABI (logits slot, ids slot, then T, B, P, R).
  OwningOpRef<ModuleOp> scratch = ModuleOp::create(loc);
  OpBuilder scratchBuilder = OpBuilder::atBlockEnd(scratch->getBody());
  auto logitsType = RankedTensorType::get({ShapedType::kDynamic, vocab}, Float32Type::get(ctx));
  auto idsType = RankedTensorType::get({ShapedType::kDynamic}, IntegerType::get(ctx, 32));
  auto source = func::FuncOp::create(scratchBuilder, loc, "qk_argmax",
                                     FunctionType::get(ctx, {logitsType}, {idsType}));
  source.addEntryBlock();

  GpuCodegenOptions options;
  options.maxThreads = kMaxArgmaxThreads;
  GpuKernelEmitter e(gpuModule, source, options);
  RowAccess geometry = codegen::wholeTensorAccess(Value(), logitsType);
  const int64_t width = e.vectorWidthFor(vocab, {geometry});
  const int64_t threads = e.blockSizeFor((vocab + width - 1) / width);
  const int64_t warps = threads / kWarp;

  SmallVector<BlockArgument> args(source.getArguments());
  e.createKernel("qk_argmax", args, TypeRange{idsType}, threads, [&] {
    ImplicitLocOpBuilder &b = e.builder();
    Type f32 = b.getF32Type();
    RowAccess logits = e.access(source.getArgument(0));
    RowAccess ids = e.result(0);
    Value row = e.blockId();
    Value tid = e.threadId();
    Value base = e.address(logits, row, Value(), Value());
    auto toF32 = [&](Value index) -> Value {
      return arith::UIToFPOp::create(b, f32,
                                     arith::IndexCastOp::create(b, b.getI64Type(), index));
    };
    // (value, index) beats (best, bestIndex): larger, or equal and lower.
    // NaN compares false both ways, so it never wins; the sentinel index
    // `vocab` loses every tie, so a -inf logit still beats the start.
    auto better = [&](Value value, Value index, Value best, Value bestIndex) -> Value {
      Value greater = arith::CmpFOp::create(b, arith::CmpFPredicate::OGT, value, best);
      Value equal = arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, value, best);
      Value lowerIndex =
          index.getType().isF32()
              ? Value(arith::CmpFOp::create(b, arith::CmpFPredicate::OLT, index, bestIndex))
              : Value(arith::CmpIOp::create(b, arith::CmpIPredicate::ult, index, bestIndex));
      return arith::OrIOp::create(b, greater, arith::AndIOp::create(b, equal, lowerIndex));
    };
    Value minusInf = e.f32(-std::numeric_limits<float>::infinity());
    // Folds the vector at column `col` into (best, bestIndex), in column
    // order.
    auto fold = [&](Value col, Value v, Value &best, Value &bestIndex) {
      for (int64_t k = 0; k < width; ++k) {
        Value x = vector::ExtractOp::create(b, v, ArrayRef<int64_t>{k});
        Value index = k ? e.addIndex(col, e.index(k)) : col;
        Value take = better(x, index, best, bestIndex);
        best = arith::SelectOp::create(b, take, x, best);
        bestIndex = arith::SelectOp::create(b, take, index, bestIndex);
      }
    };
    // Strides of kUnroll vectors first (their loads issued together, so a
    // thread has several in flight), then the remaining single strides.
    const int64_t stride = threads * width;
    const int64_t unroll = std::min<int64_t>(kUnroll, (vocab + stride - 1) / stride);
    Value start = e.mulIndex(tid, width);
    Value best = minusInf, bestIndex = e.index(vocab);
    if (unroll > 1) {
      ValueRange unrolled = e.forLoop(
          start, e.index(vocab - (unroll - 1) * stride), unroll * stride,
          ValueRange{best, bestIndex, start},
          [&](Value col, ValueRange carried) -> SmallVector<Value> {
            Value value = carried[0], index = carried[1];
            SmallVector<Value> cols, vectors;
            for (int64_t u = 0; u < unroll; ++u) {
              cols.push_back(u ? e.addIndex(col, e.index(u * stride)) : col);
              vectors.push_back(e.loadVectorF32(logits, e.addIndex(base, cols[u]), width));
            }
            for (int64_t u = 0; u < unroll; ++u)
              fold(cols[u], vectors[u], value, index);
            return {value, index, e.addIndex(col, e.index(unroll * stride))};
          });
      best = unrolled[0];
      bestIndex = unrolled[1];
      start = unrolled[2];
    }
    ValueRange scanned = e.forLoop(
        start, e.index(vocab), stride, ValueRange{best, bestIndex},
        [&](Value col, ValueRange carried) -> SmallVector<Value> {
          Value value = carried[0], index = carried[1];
          fold(col, e.loadVectorF32(logits, e.addIndex(base, col), width), value, index);
          return {value, index};
        });
    best = scanned[0];
    bestIndex = toF32(scanned[1]);
    for (int64_t offset = kWarp / 2; offset > 0; offset /= 2) {
      Value otherBest = e.shuffleXor(best, offset), otherIndex = e.shuffleXor(bestIndex, offset);
      Value take = better(otherBest, otherIndex, best, bestIndex);
      best = arith::SelectOp::create(b, take, otherBest, best);
      bestIndex = arith::SelectOp::create(b, take, otherIndex, bestIndex);
    }
    Value isThreadZero = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, tid, e.index(0));
    auto write = [&](Value index) {
      // The sentinel is left only when every logit is NaN: token 0, as on
      // the host.
      Value none = arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, index,
                                         e.f32(static_cast<float>(vocab)));
      Value id = arith::SelectOp::create(b, none, e.i32(0),
                                         arith::FPToSIOp::create(b, b.getI32Type(), index));
      memref::StoreOp::create(b, id, ids.memref, ValueRange{row});
    };
    if (warps == 1) {
      e.ifThen(isThreadZero, [&] { write(bestIndex); });
      return;
    }
    // Warp w's pair at [w] and [warps + w].
    Value pairs = e.sharedRow(2 * warps);
    Value lane = e.remIndex(tid, kWarp);
    Value warp = e.divIndex(tid, kWarp);
    Value isFirstLane = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, lane, e.index(0));
    e.ifThen(isFirstLane, [&] {
      memref::StoreOp::create(b, best, pairs, ValueRange{warp});
      memref::StoreOp::create(b, bestIndex, pairs, ValueRange{e.addIndex(warp, e.index(warps))});
    });
    e.barrier();
    e.ifThen(isThreadZero, [&] {
      Value total = memref::LoadOp::create(b, pairs, ValueRange{e.index(0)});
      Value totalIndex = memref::LoadOp::create(b, pairs, ValueRange{e.index(warps)});
      for (int64_t w = 1; w < warps; ++w) {
        Value value = memref::LoadOp::create(b, pairs, ValueRange{e.index(w)});
        Value index = memref::LoadOp::create(b, pairs, ValueRange{e.index(warps + w)});
        Value take = better(value, index, total, totalIndex);
        total = arith::SelectOp::create(b, take, value, total);
        totalIndex = arith::SelectOp::create(b, take, index, totalIndex);
      }
      write(totalIndex);
    });
  });
  return KernelGeometry{{Builder(ctx).getStringAttr(rowSymbol)}, threads, e.sharedBytes()};
}
