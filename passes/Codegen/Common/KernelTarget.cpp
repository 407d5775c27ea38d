//===- KernelTarget.cpp - What both kernel targets share ------------------===//
#include "qwen/Passes/Codegen/Common/KernelTarget.h"
#include "qwen/Passes/Common/ShapeSymbols.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

#include "llvm/Support/ErrorHandling.h"

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen;

KernelTarget::~KernelTarget() = default;

int64_t KernelTarget::rowWidth(int64_t length) const {
  int64_t width = sched ? sched.widthFor(length) : 0;
  if (width < 1)
    llvm::report_fatal_error(llvm::Twine("the #qkernel.schedule of @") + func::FuncOp(sourceFunc).getSymName() +
                             " has no vector width for rows of " + llvm::Twine(length) +
                             " columns (qwen-select-schedule and codegen disagree)");
  return width;
}

std::string KernelTarget::leadingSymbol(Value value) { return getLeadingSymbol(value); }

SmallVector<Attribute> KernelTarget::gridOf(StringRef symbol, int64_t n) const {
  Builder builder(sourceFunc->getContext());
  SmallVector<Attribute> grid{builder.getStringAttr(symbol)};
  if (n > 1)
    grid.push_back(builder.getI64IntegerAttr(n));
  return grid;
}

//===----------------------------------------------------------------------===//
// Argument binding
//===----------------------------------------------------------------------===//

void KernelTarget::beginKernel(Block *block) {
  entryBlock = block;
  b = std::make_unique<ImplicitLocOpBuilder>(sourceFunc.getLoc(), sourceFunc.getContext());
  b->setInsertionPointToStart(block);
  argAccess.clear();
  kvAccess.clear();
  stateAccess.clear();
  resultAccess.clear();
}

Value KernelTarget::memrefFromPointer(Value pointer, Type elementType) {
  return codegen::memrefFromPointer(*b, b->getLoc(), pointer, elementType);
}

void KernelTarget::bindSlots(ArrayRef<BlockArgument> args, TypeRange results,
                             llvm::function_ref<Value()> nextPointer) {
  for (BlockArgument arg : args) {
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
    argAccess[arg] =
        wholeTensorAccess(memrefFromPointer(nextPointer(), tensor.getElementType()), tensor);
  }
  for (Type resultType : results) {
    auto tensor = dyn_cast<RankedTensorType>(resultType);
    if (!tensor) { // the cache or state is written in place, no slot
      resultAccess.push_back({});
      continue;
    }
    resultAccess.push_back(
        wholeTensorAccess(memrefFromPointer(nextPointer(), tensor.getElementType()), tensor));
  }
}

RowAccess KernelTarget::access(Value value) {
  return resolveView(value, [&](BlockArgument arg) {
    assert(argAccess.count(arg) && "argument has no slot in this kernel");
    return argAccess.lookup(arg);
  });
}

RowAccess KernelTarget::viewGeometry(Value value) {
  return resolveView(value, [](BlockArgument arg) {
    return wholeTensorAccess(Value(), cast<RankedTensorType>(arg.getType()));
  });
}

std::pair<RowAccess, RowAccess> KernelTarget::kvRows(Value cache) {
  Type element = cast<qtf::KVCacheType>(cache.getType()).getElementType();
  auto [keys, values] = kvAccess.lookup(cache);
  return {RowAccess{keys, element}, RowAccess{values, element}};
}

std::pair<RowAccess, RowAccess> KernelTarget::stateArrays(Value state) {
  Type element = cast<qtf::LinearStateType>(state.getType()).getElementType();
  auto [conv, recurrent] = stateAccess.lookup(state);
  return {RowAccess{conv, element}, RowAccess{recurrent, b->getF32Type()}};
}

Value KernelTarget::kvOffset(qtf::KVCacheType cache, int64_t layer, const RowAccess &blockTable,
                             Value tableRow, Value position) {
  int64_t pageSize = cache.getPageSize();
  Value page = loadIndex(blockTable, addIndex(tableRow, divIndex(position, pageSize)));
  Value slot = remIndex(position, pageSize);
  // ((page * layers + layer) * pageSize + slot) * kvHeads * headDim
  Value offset = addIndex(mulIndex(page, cache.getLayers()), index(layer));
  offset = addIndex(mulIndex(offset, pageSize), slot);
  return mulIndex(offset, cache.getKvHeads() * cache.getHeadDim());
}

//===----------------------------------------------------------------------===//
// Constants, index arithmetic, math
//===----------------------------------------------------------------------===//

Value KernelTarget::index(int64_t value) { return arith::ConstantIndexOp::create(*b, value); }
Value KernelTarget::f32(float value) {
  return arith::ConstantOp::create(*b, b->getF32FloatAttr(value));
}
Value KernelTarget::i32(int32_t value) {
  return arith::ConstantOp::create(*b, b->getI32IntegerAttr(value));
}
Value KernelTarget::addIndex(Value a, Value c) { return arith::AddIOp::create(*b, a, c); }
Value KernelTarget::mulIndex(Value a, int64_t c) {
  if (c == 1)
    return a;
  return arith::MulIOp::create(*b, a, index(c));
}
Value KernelTarget::mulIndex(Value a, Value c) { return arith::MulIOp::create(*b, a, c); }
Value KernelTarget::divIndex(Value a, int64_t c) {
  if (c == 1)
    return a;
  return arith::DivUIOp::create(*b, a, index(c));
}
Value KernelTarget::remIndex(Value a, int64_t c) {
  if (c == 1)
    return index(0);
  return arith::RemUIOp::create(*b, a, index(c));
}

Value KernelTarget::address(const RowAccess &acc, Value row, Value unit, Value col) {
  Value flat = mulIndex(row, acc.rowStride);
  if (acc.offset)
    flat = addIndex(flat, index(acc.offset));
  if (unit)
    flat = addIndex(flat, mulIndex(unit, acc.unitWidth));
  return col ? addIndex(flat, col) : flat;
}

/// 1.0 as a scalar or a vector of x's type.
static Value oneLike(ImplicitLocOpBuilder &b, Value x) {
  if (auto vecType = dyn_cast<VectorType>(x.getType()))
    return arith::ConstantOp::create(b, DenseElementsAttr::get(vecType, 1.0f));
  return arith::ConstantOp::create(b, b.getF32FloatAttr(1.0f));
}

// (Ops are created one statement at a time where their order would
// otherwise depend on the order C++ evaluates call arguments in.)
Value KernelTarget::silu(Value x) {
  Value one = oneLike(*b, x);
  Value denominator =
      arith::AddFOp::create(*b, one, math::ExpOp::create(*b, arith::NegFOp::create(*b, x)));
  return arith::DivFOp::create(*b, x, denominator);
}

//===----------------------------------------------------------------------===//
// Scalar memory and control flow
//===----------------------------------------------------------------------===//

Value KernelTarget::loadF32(const RowAccess &acc, Value flatIndex) {
  Value raw = memref::LoadOp::create(*b, acc.memref, ValueRange{flatIndex});
  return widenToF32(*b, b->getLoc(), raw, acc.elementType);
}

Value KernelTarget::loadIndex(const RowAccess &acc, Value flatIndex) {
  Value raw = memref::LoadOp::create(*b, acc.memref, ValueRange{flatIndex});
  return arith::IndexCastOp::create(*b, b->getIndexType(), raw);
}

void KernelTarget::forLoop(Value lb, Value ub, int64_t step,
                           llvm::function_ref<void(Value)> body) {
  auto loop = scf::ForOp::create(*b, lb, ub, index(step));
  OpBuilder::InsertionGuard guard(*b);
  b->setInsertionPointToStart(loop.getBody());
  body(loop.getInductionVar());
}

ValueRange KernelTarget::forLoop(Value lb, Value ub, int64_t step, ValueRange init,
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

void KernelTarget::ifThen(Value condition, llvm::function_ref<void()> body) {
  auto ifOp = scf::IfOp::create(*b, condition, /*withElseRegion=*/false);
  OpBuilder::InsertionGuard guard(*b);
  b->setInsertionPointToStart(ifOp.thenBlock());
  body();
}

//===----------------------------------------------------------------------===//
// Column blocks
//===----------------------------------------------------------------------===//

Value KernelTarget::splatColumns(const ColumnBlock &block, Value x) {
  if (block.width == 1)
    return x;
  return vector::BroadcastOp::create(*b, VectorType::get({block.width}, b->getF32Type()), x);
}

Value KernelTarget::fma(Value x, Value y, Value z) {
  if (isa<VectorType>(x.getType()))
    return vector::FMAOp::create(*b, x, y, z);
  return math::FmaOp::create(*b, x, y, z);
}

Value KernelTarget::loadColumns(const ColumnBlock &block, const RowAccess &acc, Value rowBase) {
  Value at = addIndex(rowBase, block.column);
  return block.width == 1 ? loadF32(acc, at) : loadVectorF32(acc, at, block.width);
}

void KernelTarget::storeColumns(const ColumnBlock &block, const RowAccess &acc, Value rowBase,
                                Value value) {
  store(acc, addIndex(rowBase, block.column), value);
}

Value KernelTarget::blockRow(const ColumnBlock &block, int64_t r) {
  return addIndex(block.part, index(r * block.split));
}

/// Walks `block`'s rows for readRows / updateRows (`update` null: reads).
static SmallVector<Value>
walkRows(KernelTarget &t, ColumnBlock &block, ArrayRef<RowOperand> operands, ValueRange init,
         llvm::function_ref<Value(Value, ArrayRef<Value>)> update, KernelTarget::RowBody body) {
  ImplicitLocOpBuilder &b = t.builder();
  auto operandsAt = [&](Value row) {
    SmallVector<Value> c;
    for (const RowOperand &operand : operands) {
      Value at = operand.base ? t.addIndex(operand.base, row) : row;
      c.push_back(t.splatColumns(block, memref::LoadOp::create(b, operand.row, ValueRange{at})));
    }
    return c;
  };
  // Registers: unrolled over this lane's rows.
  if (!block.registers.empty()) {
    SmallVector<Value> acc(init.begin(), init.end());
    for (int64_t r = 0, e = block.registers.size(); r < e; ++r) {
      SmallVector<Value> c = operandsAt(t.blockRow(block, r));
      Value s = block.registers[r];
      if (update)
        block.registers[r] = s = update(s, c);
      acc = body(s, c, acc);
    }
    return acc;
  }
  // Memory: a loop over every row.
  ValueRange out = t.forLoop(t.index(0), t.index(block.rows), 1, init,
                             [&](Value r, ValueRange acc) -> SmallVector<Value> {
    SmallVector<Value> c = operandsAt(r);
    Value at = t.addIndex(block.base, t.mulIndex(r, block.stride));
    Value s = block.width == 1 ? t.loadF32(block.memory, at)
                               : t.loadVectorF32(block.memory, at, block.width);
    if (update) {
      s = update(s, c);
      t.store(block.memory, at, s);
    }
    return body(s, c, acc);
  });
  return SmallVector<Value>(out.begin(), out.end());
}

SmallVector<Value> KernelTarget::readRows(ColumnBlock &block, ArrayRef<RowOperand> operands,
                                          ValueRange init, RowBody body) {
  return walkRows(*this, block, operands, init, nullptr, body);
}

SmallVector<Value>
KernelTarget::updateRows(ColumnBlock &block, ArrayRef<RowOperand> operands, ValueRange init,
                         llvm::function_ref<Value(Value, ArrayRef<Value>)> update,
                         RowBody accumulate) {
  return walkRows(*this, block, operands, init, update, accumulate);
}
