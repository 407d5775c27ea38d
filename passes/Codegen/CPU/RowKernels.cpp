//===- RowKernels.cpp - CPU codegen for row-wise regions ------------------===//
//
// rows:        norm / rope chains, one work item per (token, head)
// kv_write:    key / value rows stored into their cache page, one item per token
// embedding:   table rows gathered by token id, one item per token
// elementwise: silu_mul, add and the expert combine, one item per row
//
//===----------------------------------------------------------------------===//
#include "passes/Codegen/CPU/KernelEmitter.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen::cpu;

static Value singleResult(func::FuncOp source) {
  auto ret = cast<func::ReturnOp>(source.getBody().front().getTerminator());
  return ret.getNumOperands() == 1 ? ret.getOperand(0) : Value();
}

FailureOr<SmallVector<Attribute>>
qwen::codegen::cpu::emitRowsKernel(KernelEmitter &emitter) {
  func::FuncOp source = emitter.source();
  Value output = singleResult(source);
  if (!output)
    return source.emitOpError("rows kernel must have one result"), failure();
  auto type = cast<RankedTensorType>(output.getType());
  const int64_t units = type.getRank() == 3 ? type.getDimSize(1) : 1;
  const int64_t length = type.getShape().back();
  std::string symbol = emitter.leadingSymbol(output);

  emitter.createFunction([&](Value item) {
    ImplicitLocOpBuilder &b = emitter.builder();
    Value row = emitter.scratchRow(length);
    Value token = arith::DivUIOp::create(b, item, emitter.index(units));
    Value unit = arith::RemUIOp::create(b, item, emitter.index(units));
    emitter.emitRowChain(output, token, unit, row);
    RowAccess out = emitter.result(0);
    int64_t width = emitter.vectorWidthFor(length);
    auto vecType = VectorType::get({width}, b.getF32Type());
    Value base = emitter.mulIndex(item, length);
    emitter.forLoop(emitter.index(0), emitter.index(length), width, [&](Value c) {
      Value v = vector::LoadOp::create(b, vecType, row, ValueRange{c});
      emitter.storeVectorF32(out, emitter.addIndex(base, c), v);
    });
  });
  Builder builder(source.getContext());
  return SmallVector<Attribute>{builder.getStringAttr(symbol),
                                builder.getI64IntegerAttr(units)};
}

FailureOr<SmallVector<Attribute>>
qwen::codegen::cpu::emitKVWriteKernel(KernelEmitter &emitter) {
  func::FuncOp source = emitter.source();
  qtf::KVCacheWriteOp write;
  source.walk([&](qtf::KVCacheWriteOp op) { write = op; });
  if (!write)
    return source.emitOpError("kv_write kernel has no kv_cache_write"), failure();
  qtf::KVCacheType cache = write.getCache().getType();
  const int64_t kvHeads = cache.getKvHeads(), headDim = cache.getHeadDim();
  const int64_t layer = write.getLayer();
  std::string symbol = emitter.leadingSymbol(write.getPositions());

  emitter.createFunction([&](Value token) {
    ImplicitLocOpBuilder &b = emitter.builder();
    Value row = emitter.scratchRow(headDim);
    auto [keys, values] = emitter.kvArrays(write.getCache());
    RowAccess keyAccess = keys, valueAccess = values;
    RowAccess positions = emitter.access(write.getPositions());
    RowAccess tokenSeq = emitter.access(write.getTokenSeq());
    RowAccess blockTable = emitter.access(write.getBlockTable());
    Value P = emitter.dim("P");
    Value sequence = emitter.loadIndex(tokenSeq, token);
    Value position = emitter.loadIndex(positions, token);
    Value base = emitter.kvOffset(cache, layer, blockTable, emitter.mulIndex(sequence, P), position);
    int64_t width = emitter.vectorWidthFor(headDim);
    auto vecType = VectorType::get({width}, b.getF32Type());
    emitter.forLoop(emitter.index(0), emitter.index(kvHeads), 1, [&](Value head) {
      Value headBase = emitter.addIndex(base, emitter.mulIndex(head, headDim));
      using Store = std::pair<Value, RowAccess>;
      for (const Store &store : {Store{write.getKeys(), keyAccess},
                                 Store{write.getValues(), valueAccess}}) {
        const RowAccess &target = store.second;
        emitter.emitRowChain(store.first, token, head, row);
        emitter.forLoop(emitter.index(0), emitter.index(headDim), width, [&](Value d) {
          Value v = vector::LoadOp::create(b, vecType, row, ValueRange{d});
          emitter.storeVectorF32(target, emitter.addIndex(headBase, d), v);
        });
      }
    });
  });
  Builder builder(source.getContext());
  return SmallVector<Attribute>{builder.getStringAttr(symbol)};
}

FailureOr<SmallVector<Attribute>>
qwen::codegen::cpu::emitEmbeddingKernel(KernelEmitter &emitter) {
  func::FuncOp source = emitter.source();
  Value output = singleResult(source);
  auto embedding = output ? output.getDefiningOp<qtf::EmbeddingOp>() : nullptr;
  if (!embedding)
    return source.emitOpError("embedding kernel must return one embedding"), failure();
  const int64_t width = embedding.getTable().getType().getDimSize(1);
  std::string symbol = emitter.leadingSymbol(output);

  emitter.createFunction([&](Value token) {
    RowAccess table = emitter.access(embedding.getTable());
    RowAccess ids = emitter.access(embedding.getIds());
    RowAccess out = emitter.result(0);
    Value id = emitter.loadIndex(ids, token);
    Value from = emitter.mulIndex(id, width);
    Value to = emitter.mulIndex(token, width);
    int64_t lanes = emitter.vectorWidthFor(width);
    emitter.forLoop(emitter.index(0), emitter.index(width), lanes, [&](Value c) {
      if (lanes > 1)
        emitter.storeVectorF32(out, emitter.addIndex(to, c),
                               emitter.loadVectorF32(table, emitter.addIndex(from, c), lanes));
      else
        emitter.storeF32(out, emitter.addIndex(to, c),
                         emitter.loadF32(table, emitter.addIndex(from, c)));
    });
  });
  Builder builder(source.getContext());
  return SmallVector<Attribute>{builder.getStringAttr(symbol)};
}

FailureOr<SmallVector<Attribute>>
qwen::codegen::cpu::emitElementwiseKernel(KernelEmitter &emitter) {
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

  emitter.createFunction([&](Value row) {
    ImplicitLocOpBuilder &b = emitter.builder();
    RowAccess out = emitter.result(0);
    int64_t width = emitter.vectorWidthFor(columns);
    auto vecType = VectorType::get({width}, b.getF32Type());
    Value outBase = emitter.mulIndex(row, columns);
    if (combine) {
      RowAccess slots = emitter.access(combine.getSlots());
      std::optional<RowAccess> rest;
      if (residual)
        rest = emitter.access(residual);
      emitter.forLoop(emitter.index(0), emitter.index(columns), width, [&](Value c) {
        Value sum = rest ? emitter.loadVectorF32(*rest, emitter.address(*rest, row, Value(), c),
                                                 width)
                         : arith::ConstantOp::create(b, DenseElementsAttr::get(vecType, 0.0f));
        // Choices in order, so the sum is the same whatever the thread split.
        for (int64_t j = 0; j < choices; ++j)
          sum = arith::AddFOp::create(
              b, sum,
              emitter.loadVectorF32(slots, emitter.address(slots, row, emitter.index(j), c),
                                    width));
        emitter.storeVectorF32(out, emitter.addIndex(outBase, c), sum);
      });
      return;
    }
    RowAccess lhs = emitter.access(op->getOperand(0));
    RowAccess rhs = emitter.access(op->getOperand(1));
    Value lhsBase = emitter.address(lhs, row, Value(), Value());
    Value rhsBase = emitter.address(rhs, row, Value(), Value());
    Value one = arith::ConstantOp::create(b, DenseElementsAttr::get(vecType, 1.0f));
    Value rowGate;
    if (broadcastGate)
      rowGate = vector::BroadcastOp::create(b, vecType, emitter.loadF32(rhs, rhsBase));
    emitter.forLoop(emitter.index(0), emitter.index(columns), width, [&](Value c) {
      Value a = emitter.loadVectorF32(lhs, emitter.addIndex(lhsBase, c), width);
      Value v = rowGate ? rowGate : emitter.loadVectorF32(rhs, emitter.addIndex(rhsBase, c), width);
      Value result;
      if (isSigmoidMul) {
        // a * sigmoid(v) = a / (1 + exp(-v))
        Value denominator =
            arith::AddFOp::create(b, one, math::ExpOp::create(b, arith::NegFOp::create(b, v)));
        result = arith::DivFOp::create(b, a, denominator);
      } else if (isSiluMul) {
        // silu(a) * v = a / (1 + exp(-a)) * v
        Value negative = arith::NegFOp::create(b, a);
        Value denominator = arith::AddFOp::create(b, one, math::ExpOp::create(b, negative));
        result = arith::MulFOp::create(b, arith::DivFOp::create(b, a, denominator), v);
      } else {
        result = arith::AddFOp::create(b, a, v);
      }
      emitter.storeVectorF32(out, emitter.addIndex(outBase, c), result);
    });
  });
  Builder builder(source.getContext());
  return SmallVector<Attribute>{builder.getStringAttr(symbol)};
}
