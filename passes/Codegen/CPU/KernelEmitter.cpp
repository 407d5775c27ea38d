//===- KernelEmitter.cpp - Shared CPU kernel emission helpers -------------===//
#include "passes/Codegen/CPU/KernelEmitter.h"
#include "passes/Codegen/CPU/DotProduct.h"
#include "qwen/Passes/Codegen/Common/KernelABI.h"
#include "qwen/Passes/Common/ShapeSymbols.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

#include <cmath>

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen::cpu;
using qwen::codegen::storageType;

KernelEmitter::KernelEmitter(ModuleOp kernels, func::FuncOp source,
                             const CpuCodegenOptions &options, RewriterBase &rewriter)
    : KernelTarget(source, options.schedule), kernels(kernels), rewriter(rewriter),
      opts(options) {}

void KernelEmitter::createFunction(llvm::function_ref<void(Value)> body, RangeBody range) {
  MLIRContext *ctx = kernels.getContext();
  OpBuilder outer = OpBuilder::atBlockEnd(kernels.getBody(), rewriter.getListener());
  auto ptrType = LLVM::LLVMPointerType::get(ctx);
  auto i64 = outer.getI64Type();
  auto type = outer.getFunctionType({ptrType, ptrType, i64, i64}, {});
  auto func = func::FuncOp::create(outer, sourceFunc.getLoc(),
                                   (sourceFunc.getSymName() + ".abi").str(), type);
  beginKernel(func.addEntryBlock());
  b->setListener(rewriter.getListener());

  Value argsPtr = entryBlock->getArgument(0);
  dimsMemref = memrefFromPointer(entryBlock->getArgument(1), b->getI64Type());
  unsigned slot = 0;
  SmallVector<BlockArgument> args(sourceFunc.getArguments());
  bindSlots(args, sourceFunc.getResultTypes(), [&]() -> Value {
    Value address = LLVM::GEPOp::create(*b, ptrType, ptrType, argsPtr,
                                        ArrayRef<LLVM::GEPArg>{int32_t(slot++)});
    return LLVM::LoadOp::create(*b, ptrType, address);
  });

  Value begin = arith::IndexCastOp::create(*b, b->getIndexType(), entryBlock->getArgument(2));
  Value end = arith::IndexCastOp::create(*b, b->getIndexType(), entryBlock->getArgument(3));
  auto itemLoop = [&] { forLoop(begin, end, 1, body); };
  if (range)
    range(begin, end, itemLoop);
  else
    itemLoop();
  func::ReturnOp::create(*b);
}

void KernelEmitter::buildKernel(int64_t, llvm::function_ref<void(Value)> body) {
  createFunction(body);
}

Value KernelEmitter::dim(StringRef symbol) {
  int position = stepSymbolIndex(symbol);
  assert(position >= 0 && "unknown step symbol");
  OpBuilder::InsertionGuard guard(*b);
  b->setInsertionPointAfterValue(dimsMemref);
  Value raw = memref::LoadOp::create(*b, dimsMemref, ValueRange{index(position)});
  return arith::IndexCastOp::create(*b, b->getIndexType(), raw);
}

Value KernelEmitter::loadVectorF32(const RowAccess &acc, Value flatIndex, int64_t width) {
  if (width == 1)
    return vector::BroadcastOp::create(*b, VectorType::get({1}, b->getF32Type()),
                                       loadF32(acc, flatIndex));
  auto rawVector = VectorType::get({width}, storageType(acc.elementType));
  Value raw = vector::LoadOp::create(*b, rawVector, acc.memref, ValueRange{flatIndex});
  return codegen::widenToF32(*b, b->getLoc(), raw, acc.elementType);
}

void KernelEmitter::storeF32(const RowAccess &acc, Value flatIndex, Value value) {
  Value stored = codegen::narrowFromF32(*b, b->getLoc(), value, acc.elementType);
  memref::StoreOp::create(*b, stored, acc.memref, ValueRange{flatIndex});
}

void KernelEmitter::storeVectorF32(const RowAccess &acc, Value flatIndex, Value value) {
  Value stored = codegen::narrowFromF32(*b, b->getLoc(), value, acc.elementType);
  vector::StoreOp::create(*b, stored, acc.memref, ValueRange{flatIndex});
}

void KernelEmitter::store(const RowAccess &acc, Value flatIndex, Value value) {
  if (isa<VectorType>(value.getType()))
    storeVectorF32(acc, flatIndex, value);
  else
    storeF32(acc, flatIndex, value);
}

void KernelEmitter::storeIndexAsI32(const RowAccess &acc, Value flatIndex, Value value) {
  Value narrow = arith::IndexCastOp::create(*b, b->getI32Type(), value);
  memref::StoreOp::create(*b, narrow, acc.memref, ValueRange{flatIndex});
}

Value KernelEmitter::scratchRow(int64_t length) { return scratch(length, b->getF32Type()); }

Value KernelEmitter::scratch(int64_t length, Type type) {
  OpBuilder::InsertionGuard guard(*b);
  b->setInsertionPointToStart(entryBlock);
  return memref::AllocaOp::create(*b, MemRefType::get({length}, type));
}

Value KernelEmitter::loadScratch(Value row, Value col, int64_t width) {
  return vector::LoadOp::create(*b, VectorType::get({width}, b->getF32Type()), row,
                                ValueRange{col});
}

void KernelEmitter::storeScratch(Value row, Value col, Value value) {
  vector::StoreOp::create(*b, value, row, ValueRange{col});
}

Value KernelEmitter::rsqrt(Value x) { return math::RsqrtOp::create(*b, x); }

SmallVector<Value> KernelEmitter::emitDotTile(const RowAccess &x, ArrayRef<Value> xBases,
                                              const RowAccess &w, ArrayRef<Value> wBases,
                                              int64_t k) {
  if (qkernel::DotKind kind = opts.schedule.dotFor(xBases.size());
      kind != qkernel::DotKind::Fma)
    return emitBf16DotTile(*this, kind, x, xBases, w, wBases, k);
  const int64_t mc = xBases.size(), nc = wBases.size();
  const int64_t width = rowWidth(k);
  const int64_t kVector = k - k % width;
  auto vecType = VectorType::get({width}, b->getF32Type());
  Value zero = arith::ConstantOp::create(*b, DenseElementsAttr::get(vecType, 0.0f));
  SmallVector<Value> init(mc * nc, zero);
  SmallVector<Value> acc(forLoop(
      index(0), index(kVector), width, init,
      [&](Value kk, ValueRange carried) -> SmallVector<Value> {
        SmallVector<Value> wv, xv, next;
        for (int64_t j = 0; j < nc; ++j)
          wv.push_back(loadVectorF32(w, addIndex(wBases[j], kk), width));
        for (int64_t i = 0; i < mc; ++i)
          xv.push_back(loadVectorF32(x, addIndex(xBases[i], kk), width));
        for (int64_t i = 0; i < mc; ++i)
          for (int64_t j = 0; j < nc; ++j)
            next.push_back(vector::FMAOp::create(*b, xv[i], wv[j], carried[i * nc + j]));
        return next;
      }));
  SmallVector<Value> sums;
  for (Value a : acc)
    sums.push_back(vector::ReductionOp::create(*b, vector::CombiningKind::ADD, a));
  if (kVector == k)
    return sums;
  return SmallVector<Value>(forLoop(
      index(kVector), index(k), 1, sums, [&](Value kk, ValueRange carried) -> SmallVector<Value> {
        SmallVector<Value> next;
        for (int64_t i = 0; i < mc; ++i)
          for (int64_t j = 0; j < nc; ++j) {
            Value xs = loadF32(x, addIndex(xBases[i], kk));
            Value ws = loadF32(w, addIndex(wBases[j], kk));
            next.push_back(math::FmaOp::create(*b, xs, ws, carried[i * nc + j]));
          }
        return next;
      }));
}

void KernelEmitter::forLanes(int64_t length, int64_t width,
                             llvm::function_ref<void(Value)> body) {
  forLoop(index(0), index(length), width, body);
}

Value KernelEmitter::forLanes(int64_t length, int64_t width, Value init,
                              llvm::function_ref<Value(Value, Value)> body) {
  return forLoop(index(0), index(length), width, ValueRange{init},
                 [&](Value col, ValueRange acc) -> SmallVector<Value> {
                   return {body(col, acc[0])};
                 })[0];
}

codegen::ColumnPlan KernelEmitter::planColumns(int64_t columns) const {
  return codegen::ColumnPlan{rowWidth(columns), 1, 1};
}

codegen::ColumnPlan KernelEmitter::planLanes(int64_t columns) const {
  int64_t width = rowWidth(columns);
  return codegen::ColumnPlan{width, 1, columns / width};
}

void KernelEmitter::forColumns(const codegen::ColumnPlan &plan, int64_t columns, Value item,
                               llvm::function_ref<void(Value, Value)> body) {
  if (plan.chunks == 1)
    return forLoop(index(0), index(columns), plan.width, [&](Value col) { body(item, col); });
  // Chunks of one vector each (planLanes).
  assert(plan.chunks * plan.width == columns && "CPU chunks are single vectors");
  body(divIndex(item, plan.chunks), mulIndex(remIndex(item, plan.chunks), plan.width));
}
