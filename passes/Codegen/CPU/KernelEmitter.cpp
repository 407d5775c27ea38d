//===- KernelEmitter.cpp - Shared CPU kernel emission helpers -------------===//
#include "passes/Codegen/CPU/KernelEmitter.h"
#include "passes/Codegen/CPU/DotProduct.h"
#include "passes/Codegen/Common/KernelABI.h"
#include "passes/Common/ShapeSymbols.h"

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
                             const CpuCodegenOptions &options)
    : kernels(kernels), sourceFunc(source), opts(options) {}

std::string KernelEmitter::leadingSymbol(Value value) {
  return getLeadingSymbol(value);
}

Value KernelEmitter::memrefFromPointer(Value pointer, Type elementType) {
  return codegen::memrefFromPointer(*b, b->getLoc(), pointer, elementType);
}

void KernelEmitter::createFunction(llvm::function_ref<void(Value)> body) {
  MLIRContext *ctx = kernels.getContext();
  OpBuilder outer = OpBuilder::atBlockEnd(kernels.getBody());
  auto ptrType = LLVM::LLVMPointerType::get(ctx);
  auto i64 = outer.getI64Type();
  auto type = outer.getFunctionType({ptrType, ptrType, i64, i64}, {});
  auto func = func::FuncOp::create(outer, sourceFunc.getLoc(),
                                   (sourceFunc.getSymName() + ".abi").str(), type);
  entryBlock = func.addEntryBlock();
  b = std::make_unique<ImplicitLocOpBuilder>(sourceFunc.getLoc(), ctx);
  b->setInsertionPointToStart(entryBlock);

  Value argsPtr = entryBlock->getArgument(0);
  dimsMemref = memrefFromPointer(entryBlock->getArgument(1), b->getI64Type());
  unsigned slot = 0;
  auto nextPointer = [&]() -> Value {
    Value address = LLVM::GEPOp::create(*b, ptrType, ptrType, argsPtr,
                                        ArrayRef<LLVM::GEPArg>{int32_t(slot++)});
    return LLVM::LoadOp::create(*b, ptrType, address);
  };
  for (BlockArgument arg : sourceFunc.getArguments()) {
    if (auto cache = dyn_cast<qtf::KVCacheType>(arg.getType())) {
      Value keys = memrefFromPointer(nextPointer(), cache.getElementType());
      Value values = memrefFromPointer(nextPointer(), cache.getElementType());
      kvAccess[arg] = {keys, values};
      continue;
    }
    if (auto state = dyn_cast<qtf::LinearStateType>(arg.getType())) {
      Value conv = memrefFromPointer(nextPointer(), state.getElementType());
      Value recurrent = memrefFromPointer(nextPointer(), b->getF32Type());
      stateAccess[arg] = {conv, recurrent};
      continue;
    }
    auto tensor = cast<RankedTensorType>(arg.getType());
    argAccess[arg] = codegen::wholeTensorAccess(
        memrefFromPointer(nextPointer(), tensor.getElementType()), tensor);
  }
  for (Type resultType : sourceFunc.getResultTypes()) {
    auto tensor = dyn_cast<RankedTensorType>(resultType);
    if (!tensor) { // the cache is written in place, no slot
      resultAccess.push_back({});
      continue;
    }
    resultAccess.push_back(codegen::wholeTensorAccess(
        memrefFromPointer(nextPointer(), tensor.getElementType()), tensor));
  }

  Value begin = arith::IndexCastOp::create(*b, b->getIndexType(), entryBlock->getArgument(2));
  Value end = arith::IndexCastOp::create(*b, b->getIndexType(), entryBlock->getArgument(3));
  forLoop(begin, end, 1, body);
  func::ReturnOp::create(*b);
}

Value KernelEmitter::dim(StringRef symbol) {
  int position = stepSymbolIndex(symbol);
  assert(position >= 0 && "unknown step symbol");
  OpBuilder::InsertionGuard guard(*b);
  b->setInsertionPointAfterValue(dimsMemref);
  Value raw = memref::LoadOp::create(*b, dimsMemref, ValueRange{index(position)});
  return arith::IndexCastOp::create(*b, b->getIndexType(), raw);
}

RowAccess KernelEmitter::access(Value value) {
  return codegen::resolveView(value, [&](BlockArgument arg) {
    assert(argAccess.count(arg) && "argument has no slot in this kernel");
    return argAccess.lookup(arg);
  });
}

RowAccess KernelEmitter::result(unsigned position) { return resultAccess[position]; }

std::pair<RowAccess, RowAccess> KernelEmitter::kvArrays(Value cache) {
  Type element = cast<qtf::KVCacheType>(cache.getType()).getElementType();
  auto [keys, values] = kvAccess.lookup(cache);
  return {RowAccess{keys, element}, RowAccess{values, element}};
}

std::pair<RowAccess, RowAccess> KernelEmitter::stateArrays(Value state) {
  Type element = cast<qtf::LinearStateType>(state.getType()).getElementType();
  auto [conv, recurrent] = stateAccess.lookup(state);
  return {RowAccess{conv, element}, RowAccess{recurrent, b->getF32Type()}};
}

Value KernelEmitter::kvOffset(qtf::KVCacheType cache, int64_t layer,
                              const RowAccess &blockTable, Value tableRow, Value position) {
  int64_t pageSize = cache.getPageSize();
  Value page = loadIndex(blockTable,
                         addIndex(tableRow, arith::DivUIOp::create(*b, position, index(pageSize))));
  Value slot = arith::RemUIOp::create(*b, position, index(pageSize));
  Value offset = addIndex(mulIndex(page, cache.getLayers()), index(layer));
  offset = addIndex(mulIndex(offset, pageSize), slot);
  return mulIndex(offset, cache.getKvHeads() * cache.getHeadDim());
}

Value KernelEmitter::index(int64_t value) {
  return arith::ConstantIndexOp::create(*b, value);
}
Value KernelEmitter::f32(float value) {
  return arith::ConstantOp::create(*b, b->getF32FloatAttr(value));
}
Value KernelEmitter::addIndex(Value a, Value c) { return arith::AddIOp::create(*b, a, c); }
Value KernelEmitter::mulIndex(Value a, int64_t c) {
  if (c == 1)
    return a;
  return arith::MulIOp::create(*b, a, index(c));
}
Value KernelEmitter::mulIndex(Value a, Value c) { return arith::MulIOp::create(*b, a, c); }

Value KernelEmitter::address(const RowAccess &acc, Value row, Value unit, Value col) {
  Value flat = mulIndex(row, acc.rowStride);
  if (acc.offset)
    flat = addIndex(flat, index(acc.offset));
  if (unit)
    flat = addIndex(flat, mulIndex(unit, acc.unitWidth));
  return col ? addIndex(flat, col) : flat;
}

Value KernelEmitter::loadF32(const RowAccess &acc, Value flatIndex) {
  Value raw = memref::LoadOp::create(*b, acc.memref, ValueRange{flatIndex});
  return codegen::widenToF32(*b, b->getLoc(), raw, acc.elementType);
}

Value KernelEmitter::loadVectorF32(const RowAccess &acc, Value flatIndex, int64_t width) {
  auto rawVector = VectorType::get({width}, storageType(acc.elementType));
  Value raw = vector::LoadOp::create(*b, rawVector, acc.memref, ValueRange{flatIndex});
  return codegen::widenToF32(*b, b->getLoc(), raw, acc.elementType);
}

Value KernelEmitter::loadIndex(const RowAccess &acc, Value flatIndex) {
  Value raw = memref::LoadOp::create(*b, acc.memref, ValueRange{flatIndex});
  return arith::IndexCastOp::create(*b, b->getIndexType(), raw);
}

void KernelEmitter::storeF32(const RowAccess &acc, Value flatIndex, Value value) {
  Value stored = codegen::narrowFromF32(*b, b->getLoc(), value, acc.elementType);
  memref::StoreOp::create(*b, stored, acc.memref, ValueRange{flatIndex});
}

void KernelEmitter::storeVectorF32(const RowAccess &acc, Value flatIndex, Value value) {
  Value stored = codegen::narrowFromF32(*b, b->getLoc(), value, acc.elementType);
  vector::StoreOp::create(*b, stored, acc.memref, ValueRange{flatIndex});
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

SmallVector<Value> KernelEmitter::emitDotTile(const RowAccess &x, ArrayRef<Value> xBases,
                                              const RowAccess &w, ArrayRef<Value> wBases,
                                              int64_t k) {
  if (qkernel::DotKind kind = opts.schedule.dotFor(xBases.size());
      kind != qkernel::DotKind::Fma)
    return emitBf16DotTile(*this, kind, x, xBases, w, wBases, k);
  const int64_t mc = xBases.size(), nc = wBases.size();
  const int64_t width = vectorWidthFor(k);
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

int64_t KernelEmitter::vectorWidthFor(int64_t length) const {
  int64_t width = opts.vectorWidth;
  while (width > 1 && length % width != 0)
    width /= 2;
  return width;
}

void KernelEmitter::forLoop(Value lb, Value ub, int64_t step,
                            llvm::function_ref<void(Value)> body) {
  auto loop = scf::ForOp::create(*b, lb, ub, index(step));
  OpBuilder::InsertionGuard guard(*b);
  b->setInsertionPointToStart(loop.getBody());
  body(loop.getInductionVar());
}

ValueRange KernelEmitter::forLoop(
    Value lb, Value ub, int64_t step, ValueRange init,
    llvm::function_ref<SmallVector<Value>(Value, ValueRange)> body) {
  auto loop = scf::ForOp::create(*b, lb, ub, index(step), init);
  {
    OpBuilder::InsertionGuard guard(*b);
    b->setInsertionPointToStart(loop.getBody());
    SmallVector<Value> next = body(loop.getInductionVar(), loop.getRegionIterArgs());
    scf::YieldOp::create(*b, next);
  }
  return loop.getResults();
}

//===----------------------------------------------------------------------===//
// Row chains: rms_norm and rope applied to one unit (head) of one token
//===----------------------------------------------------------------------===//

void KernelEmitter::emitRowChain(Value value, Value token, Value unit, Value row) {
  if (auto norm = value.getDefiningOp<qtf::RmsNormOp>()) {
    emitRowChain(norm.getInput(), token, unit, row);
    applyRmsNorm(norm, row, cast<MemRefType>(row.getType()).getDimSize(0));
    return;
  }
  if (auto rope = value.getDefiningOp<qtf::RopeOp>()) {
    emitRowChain(rope.getInput(), token, unit, row);
    applyRope(rope, token, row);
    return;
  }
  if (auto gather = value.getDefiningOp<qtf::GatherRowsOp>()) {
    // Row `token` of the selection is row rows[token] of the input.
    emitRowChain(gather.getInput(), loadIndex(access(gather.getRows()), token), unit, row);
    return;
  }
  RowAccess source = access(value);
  int64_t length = source.unitWidth;
  int64_t width = vectorWidthFor(length);
  Value base = address(source, token, source.units > 1 ? unit : Value(), Value());
  forLoop(index(0), index(length), width, [&](Value col) {
    Value at = addIndex(base, col);
    if (width > 1)
      vector::StoreOp::create(*b, loadVectorF32(source, at, width), row, ValueRange{col});
    else
      memref::StoreOp::create(*b, loadF32(source, at), row, ValueRange{col});
  });
}

void KernelEmitter::applyRmsNorm(qtf::RmsNormOp norm, Value row, int64_t length) {
  RowAccess weight = access(norm.getWeight());
  int64_t width = vectorWidthFor(length);
  auto vecType = VectorType::get({width}, b->getF32Type());
  Value zero = arith::ConstantOp::create(*b, DenseElementsAttr::get(vecType, 0.0f));
  Value sumVector = forLoop(index(0), index(length), width, ValueRange{zero},
                            [&](Value col, ValueRange acc) -> SmallVector<Value> {
    Value x = vector::LoadOp::create(*b, vecType, row, ValueRange{col});
    return {vector::FMAOp::create(*b, x, x, acc[0])};
  })[0];
  Value sum = vector::ReductionOp::create(*b, vector::CombiningKind::ADD, sumVector);
  Value mean = arith::DivFOp::create(*b, sum, f32(static_cast<float>(length)));
  Value eps = f32(static_cast<float>(norm.getEpsilon().convertToDouble()));
  Value scale = math::RsqrtOp::create(*b, arith::AddFOp::create(*b, mean, eps));
  Value scaleVector = vector::BroadcastOp::create(*b, vecType, scale);
  bool zeroCentered = norm.getZeroCentered();
  forLoop(index(0), index(length), width, [&](Value col) {
    Value x = vector::LoadOp::create(*b, vecType, row, ValueRange{col});
    Value w = width > 1 ? loadVectorF32(weight, col, width)
                        : vector::BroadcastOp::create(*b, vecType, loadF32(weight, col));
    if (zeroCentered)
      w = arith::AddFOp::create(
          *b, w, arith::ConstantOp::create(*b, DenseElementsAttr::get(vecType, 1.0f)));
    Value y = arith::MulFOp::create(*b, w, arith::MulFOp::create(*b, x, scaleVector));
    vector::StoreOp::create(*b, y, row, ValueRange{col});
  });
}

void KernelEmitter::applyRope(qtf::RopeOp rope, Value token, Value row) {
  int64_t rotary = rope.getRotaryDim();
  int64_t half = rotary / 2;
  codegen::RopeFrequencies<KernelEmitter> frequencies(*this, rope, kernels, token);
  std::optional<ArrayRef<int64_t>> section = rope.getMropeSection();
  SmallVector<Value> positions =
      codegen::loadRopePositions(*this, access(rope.getPositions()), token, section.has_value());
  forLoop(index(0), index(half), 1, [&](Value i) {
    Value invFreq = frequencies.at(i);
    Value positionF32 = codegen::ropePositionFor(*this, i, positions, section);
    Value angle = arith::MulFOp::create(*b, positionF32, invFreq);
    Value cos = math::CosOp::create(*b, angle);
    Value sin = math::SinOp::create(*b, angle);
    if (Value scale = frequencies.attentionScale) { // HF: cos() * attention_scaling
      cos = arith::MulFOp::create(*b, cos, scale);
      sin = arith::MulFOp::create(*b, sin, scale);
    }
    Value j = addIndex(i, index(half));
    Value x1 = memref::LoadOp::create(*b, row, ValueRange{i});
    Value x2 = memref::LoadOp::create(*b, row, ValueRange{j});
    Value y1 = arith::SubFOp::create(*b, arith::MulFOp::create(*b, x1, cos),
                                     arith::MulFOp::create(*b, x2, sin));
    Value y2 = arith::AddFOp::create(*b, arith::MulFOp::create(*b, x2, cos),
                                     arith::MulFOp::create(*b, x1, sin));
    memref::StoreOp::create(*b, y1, row, ValueRange{i});
    memref::StoreOp::create(*b, y2, row, ValueRange{j});
  });
}
