//===- RowKernels.cpp - GPU codegen for row-wise regions ------------------===//
//
// rows:        norm / rope chains, one block per (token, head); the row is
//              staged in shared memory, the rms_norm sum reduced with warp
//              shuffles (+ shared memory across warps)
// kv_write:    one block per (token, kv head): the key chain and the value
//              row are stored into their cache page
// embedding:   table rows gathered by token id, blocks of (token, chunk)
// elementwise: silu_mul, sigmoid_mul (gate of the row's shape or one column
//              broadcast over the row), add, and moe_combine (+ residual)
//              over views, blocks of (row, chunk)
//
// Numerics are those of passes/Codegen/CPU/RowKernels.cpp: f32 math, bf16
// widened by a shift, silu(a) * v = a / (1 + exp(-a)) * v,
// a * sigmoid(g) = a / (1 + exp(-g)), slots of a token summed in order.
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
  return ret.getNumOperands() == 1 ? codegen::computedValue(ret.getOperand(0)) : Value();
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
  FailureOr<codegen::ElementwisePattern> pattern = codegen::matchElementwiseKernel(source);
  if (failed(pattern))
    return failure();
  Value output = pattern->output;
  Operation *op = pattern->op;
  qtf::MoeCombineOp combine = pattern->combine;
  Value residual = pattern->residual;
  const int64_t columns = pattern->columns, choices = pattern->choices;
  // A one-column gate scales the whole row (the shared-expert gate).
  const bool broadcastGate = pattern->broadcastGate;
  std::string symbol = emitter.leadingSymbol(output);
  bool isSiluMul = isa<qtf::SiluMulOp>(op);
  bool isSigmoidMul = isa<qtf::SigmoidMulOp>(op);

  // Every vector access must stay aligned: the operands read per column.
  SmallVector<Value> columnOperands;
  if (combine) {
    columnOperands.push_back(combine.getSlots());
    if (residual)
      columnOperands.push_back(residual);
  } else {
    columnOperands.push_back(op->getOperand(0));
    if (!broadcastGate)
      columnOperands.push_back(op->getOperand(1));
  }
  SmallVector<RowAccess> geometries;
  for (Value operand : columnOperands)
    geometries.push_back(GpuKernelEmitter::viewGeometry(operand));
  ChunkPlan plan = emitter.planChunks(columns, geometries);

  emitter.createKernel(plan.threads, [&] {
    ImplicitLocOpBuilder &b = emitter.builder();
    RowAccess out = emitter.result(0);
    auto vecType = VectorType::get({plan.width}, b.getF32Type());
    emitter.forChunkColumn(plan, columns, [&](Value row, Value col) {
      Value outAt = emitter.addIndex(emitter.mulIndex(row, columns), col);
      if (combine) {
        RowAccess slots = emitter.access(combine.getSlots());
        Value sum;
        if (residual) {
          RowAccess rest = emitter.access(residual);
          sum = emitter.loadVectorF32(rest, emitter.address(rest, row, Value(), col), plan.width);
        } else {
          sum = arith::ConstantOp::create(b, DenseElementsAttr::get(vecType, 0.0f));
        }
        // Choices in order, as the CPU sums them.
        for (int64_t j = 0; j < choices; ++j)
          sum = arith::AddFOp::create(
              b, sum,
              emitter.loadVectorF32(slots, emitter.address(slots, row, emitter.index(j), col),
                                    plan.width));
        emitter.store(out, outAt, sum);
        return;
      }
      RowAccess lhs = emitter.access(op->getOperand(0));
      RowAccess rhs = emitter.access(op->getOperand(1));
      Value a = emitter.loadVectorF32(
          lhs, emitter.addIndex(emitter.address(lhs, row, Value(), Value()), col), plan.width);
      Value v = broadcastGate
                    ? vector::BroadcastOp::create(
                          b, vecType,
                          emitter.loadF32(rhs, emitter.address(rhs, row, Value(), Value())))
                          .getResult()
                    : emitter.loadVectorF32(
                          rhs, emitter.addIndex(emitter.address(rhs, row, Value(), Value()), col),
                          plan.width);
      Value result;
      if (isSigmoidMul) {
        // a * sigmoid(v) = a / (1 + exp(-v))
        Value one = arith::ConstantOp::create(b, DenseElementsAttr::get(vecType, 1.0f));
        Value denominator =
            arith::AddFOp::create(b, one, math::ExpOp::create(b, arith::NegFOp::create(b, v)));
        result = arith::DivFOp::create(b, a, denominator);
      } else if (isSiluMul) {
        // silu(a) * v = a / (1 + exp(-a)) * v
        result = arith::MulFOp::create(b, emitter.silu(a), v);
      } else {
        result = arith::AddFOp::create(b, a, v);
      }
      emitter.store(out, outAt, result);
    });
  });
  return KernelGeometry{gridOf(source.getContext(), symbol, plan.chunks),
                        emitter.blockSize(), emitter.sharedBytes()};
}
