//===- RowKernels.cpp - GPU codegen for row-wise regions ------------------===//
//
// rows:        norm / rope chains, one block per (token, head); the row is
//              staged in shared memory, the rms_norm sum reduced with warp
//              shuffles (+ shared memory across warps)
// kv_write:    one block per (token, kv head): the key chain and the value
//              row are stored into their cache page
// embedding:   table rows gathered by token id, blocks of (token, chunk)
// elementwise: silu_mul and add over views, blocks of (row, chunk)
//
// Numerics are those of passes/Codegen/CPU/RowKernels.cpp: f32 math, bf16
// widened by a shift, silu(a) * v = a / (1 + exp(-a)) * v.
//
//===----------------------------------------------------------------------===//
#include "passes/Codegen/GPU/GpuKernelEmitter.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen::gpu;

static Value singleResult(func::FuncOp source) {
  auto ret = cast<func::ReturnOp>(source.getBody().front().getTerminator());
  return ret.getNumOperands() == 1 ? ret.getOperand(0) : Value();
}

/// Grid factors [symbol, n] with a factor n of 1 left out.
static SmallVector<Attribute> gridOf(MLIRContext *ctx, StringRef symbol, int64_t n) {
  Builder builder(ctx);
  SmallVector<Attribute> grid{builder.getStringAttr(symbol)};
  if (n > 1)
    grid.push_back(builder.getI64IntegerAttr(n));
  return grid;
}

FailureOr<KernelGeometry> qwen::codegen::gpu::emitRowsKernel(GpuKernelEmitter &emitter) {
  func::FuncOp source = emitter.source();
  Value output = singleResult(source);
  if (!output)
    return source.emitOpError("rows kernel must have one result"), failure();
  auto type = cast<RankedTensorType>(output.getType());
  const int64_t units = type.getRank() == 3 ? type.getDimSize(1) : 1;
  const int64_t length = type.getShape().back();
  const int64_t width = emitter.vectorWidthFor(length);
  std::string symbol = emitter.leadingSymbol(output);

  emitter.createKernel(emitter.blockSizeFor(length / width), [&] {
    Value item = emitter.blockId();
    Value token = emitter.divIndex(item, units);
    Value unit = emitter.remIndex(item, units);
    Value row = emitter.sharedRow(length);
    emitter.emitRowChain(output, token, unit, row);
    RowAccess out = emitter.result(0);
    Value base = emitter.mulIndex(item, length);
    emitter.forThreadColumns(length, width, [&](Value col) {
      emitter.store(out, emitter.addIndex(base, col), emitter.loadShared(row, col, width));
    });
  });
  return KernelGeometry{gridOf(source.getContext(), symbol, units), emitter.blockSize(),
                        emitter.sharedBytes()};
}

FailureOr<KernelGeometry> qwen::codegen::gpu::emitKVWriteKernel(GpuKernelEmitter &emitter) {
  func::FuncOp source = emitter.source();
  qtf::KVCacheWriteOp write;
  source.walk([&](qtf::KVCacheWriteOp op) { write = op; });
  if (!write)
    return source.emitOpError("kv_write kernel has no kv_cache_write"), failure();
  qtf::KVCacheType cache = write.getCache().getType();
  const int64_t kvHeads = cache.getKvHeads(), headDim = cache.getHeadDim();
  const int64_t layers = cache.getLayers(), pageSize = cache.getPageSize();
  const int64_t layer = write.getLayer();
  const int64_t width = emitter.vectorWidthFor(headDim);
  std::string symbol = emitter.leadingSymbol(write.getPositions());

  emitter.createKernel(emitter.blockSizeFor(headDim / width), [&] {
    Value item = emitter.blockId();
    Value token = emitter.divIndex(item, kvHeads);
    Value head = emitter.remIndex(item, kvHeads);
    auto [keys, values] = emitter.kvArrays(write.getCache());
    RowAccess keyAccess{keys, cache.getElementType()};
    RowAccess valueAccess{values, cache.getElementType()};
    RowAccess positions = emitter.access(write.getPositions());
    RowAccess tokenSeq = emitter.access(write.getTokenSeq());
    RowAccess blockTable = emitter.access(write.getBlockTable());
    Value P = emitter.dim("P");
    Value sequence = emitter.loadIndex(tokenSeq, token);
    Value position = emitter.loadIndex(positions, token);
    Value page = emitter.loadIndex(
        blockTable, emitter.addIndex(emitter.mulIndex(sequence, P),
                                     emitter.divIndex(position, pageSize)));
    Value slot = emitter.remIndex(position, pageSize);
    // ((page * layers + layer) * pageSize + slot) * kvHeads * headDim
    Value base = emitter.addIndex(emitter.mulIndex(page, layers), emitter.index(layer));
    base = emitter.addIndex(emitter.mulIndex(base, pageSize), slot);
    base = emitter.mulIndex(base, kvHeads * headDim);
    Value headBase = emitter.addIndex(base, emitter.mulIndex(head, headDim));
    Value row = emitter.sharedRow(headDim);
    for (const auto &entry : {std::pair{write.getKeys(), keyAccess},
                              std::pair{write.getValues(), valueAccess}}) {
      emitter.emitRowChain(entry.first, token, head, row);
      emitter.forThreadColumns(headDim, width, [&](Value col) {
        emitter.store(entry.second, emitter.addIndex(headBase, col),
                      emitter.loadShared(row, col, width));
      });
    }
  });
  return KernelGeometry{gridOf(source.getContext(), symbol, kvHeads), emitter.blockSize(),
                        emitter.sharedBytes()};
}

FailureOr<KernelGeometry>
qwen::codegen::gpu::emitEmbeddingKernel(GpuKernelEmitter &emitter) {
  func::FuncOp source = emitter.source();
  Value output = singleResult(source);
  auto embedding = output ? output.getDefiningOp<qtf::EmbeddingOp>() : nullptr;
  if (!embedding)
    return source.emitOpError("embedding kernel must return one embedding"), failure();
  const int64_t columns = embedding.getTable().getType().getDimSize(1);
  std::string symbol = emitter.leadingSymbol(output);
  ChunkPlan plan = emitter.planChunks(columns,
                              GpuKernelEmitter::viewGeometry(embedding.getTable()));

  emitter.createKernel(plan.threads, [&] {
    RowAccess table = emitter.access(embedding.getTable());
    RowAccess ids = emitter.access(embedding.getIds());
    RowAccess out = emitter.result(0);
    emitter.forChunkColumn(plan, columns, [&](Value token, Value col) {
      Value id = emitter.loadIndex(ids, token);
      Value from = emitter.addIndex(emitter.mulIndex(id, columns), col);
      Value to = emitter.addIndex(emitter.mulIndex(token, columns), col);
      emitter.store(out, to, emitter.loadVectorF32(table, from, plan.width));
    });
  });
  return KernelGeometry{gridOf(source.getContext(), symbol, plan.chunks),
                        emitter.blockSize(), emitter.sharedBytes()};
}

FailureOr<KernelGeometry>
qwen::codegen::gpu::emitElementwiseKernel(GpuKernelEmitter &emitter) {
  func::FuncOp source = emitter.source();
  Value output = singleResult(source);
  Operation *op = output ? output.getDefiningOp() : nullptr;
  if (!isa_and_nonnull<qtf::SiluMulOp, qtf::AddOp>(op))
    return source.emitOpError("elementwise kernel must return one silu_mul or add"),
           failure();
  auto type = cast<RankedTensorType>(output.getType());
  int64_t columns = 1;
  for (int64_t d : type.getShape().drop_front())
    columns *= d;
  std::string symbol = emitter.leadingSymbol(output);
  bool isSiluMul = isa<qtf::SiluMulOp>(op);

  ChunkPlan plan = emitter.planChunks(columns,
                                      {GpuKernelEmitter::viewGeometry(op->getOperand(0)),
                                       GpuKernelEmitter::viewGeometry(op->getOperand(1))});

  emitter.createKernel(plan.threads, [&] {
    ImplicitLocOpBuilder &b = emitter.builder();
    RowAccess lhs = emitter.access(op->getOperand(0));
    RowAccess rhs = emitter.access(op->getOperand(1));
    RowAccess out = emitter.result(0);
    auto vecType = VectorType::get({plan.width}, b.getF32Type());
    emitter.forChunkColumn(plan, columns, [&](Value row, Value col) {
      Value a = emitter.loadVectorF32(
          lhs, emitter.addIndex(emitter.address(lhs, row, Value(), Value()), col), plan.width);
      Value v = emitter.loadVectorF32(
          rhs, emitter.addIndex(emitter.address(rhs, row, Value(), Value()), col), plan.width);
      Value result;
      if (isSiluMul) {
        // silu(a) * v = a / (1 + exp(-a)) * v
        Value one = arith::ConstantOp::create(b, DenseElementsAttr::get(vecType, 1.0f));
        Value negative = arith::NegFOp::create(b, a);
        Value denominator = arith::AddFOp::create(b, one, math::ExpOp::create(b, negative));
        result = arith::MulFOp::create(b, arith::DivFOp::create(b, a, denominator), v);
      } else {
        result = arith::AddFOp::create(b, a, v);
      }
      emitter.store(out, emitter.addIndex(emitter.mulIndex(row, columns), col), result);
    });
  });
  return KernelGeometry{gridOf(source.getContext(), symbol, plan.chunks),
                        emitter.blockSize(), emitter.sharedBytes()};
}
