//===- GpuKernelEmitter.cpp - Shared GPU kernel emission helpers ----------===//
#include "passes/Codegen/GPU/GpuKernelEmitter.h"
#include "passes/Codegen/Common/KernelABI.h"
#include "passes/Common/ShapeSymbols.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

#include <cmath>

using namespace mlir;
using namespace qwen;
using namespace qwen::codegen::gpu;

/// Widest vector a thread loads: 4 x f32 is one 16-byte access.
static constexpr int64_t kMaxVectorWidth = 4;
static constexpr int64_t kWarpSize = 32;

/// Bytes per stored element (bf16 is addressed as i16, as on the CPU).
static int64_t storageBytes(Type elementType) {
  return codegen::storageType(elementType).getIntOrFloatBitWidth() / 8;
}

GpuKernelEmitter::GpuKernelEmitter(mlir::gpu::GPUModuleOp gpuModule, func::FuncOp source,
                                   const GpuCodegenOptions &options)
    : gpuModule(gpuModule), sourceFunc(source), opts(options) {}

std::string GpuKernelEmitter::leadingSymbol(Value value) {
  return getLeadingSymbol(value);
}

Value GpuKernelEmitter::memrefFromPointer(Value pointer, Type elementType) {
  return codegen::memrefFromPointer(*b, b->getLoc(), pointer, elementType);
}

mlir::gpu::GPUFuncOp GpuKernelEmitter::createKernel(StringRef name, ArrayRef<BlockArgument> args,
                                              TypeRange results, int64_t blockSize,
                                              llvm::function_ref<void()> body,
                                              ExtraParams extra) {
  MLIRContext *ctx = gpuModule.getContext();
  Location loc = sourceFunc.getLoc();
  auto ptrType = LLVM::LLVMPointerType::get(ctx);
  Type i64 = IntegerType::get(ctx, 64);
  SmallVector<Type> inputs;
  for (BlockArgument arg : args)
    inputs.append(isa<qtf::KVCacheType, qtf::LinearStateType>(arg.getType()) ? 2 : 1, ptrType);
  for (Type type : results)
    if (isa<RankedTensorType>(type)) // a cache or state result is written in place
      inputs.push_back(ptrType);
  inputs.append(extra.pointers, ptrType);
  inputs.append(std::size(kStepSymbols) + extra.scalars, i64);

  OpBuilder outer = OpBuilder::atBlockEnd(gpuModule.getBody());
  kernel = mlir::gpu::GPUFuncOp::create(outer, loc, name, FunctionType::get(ctx, inputs, {}));
  kernel->setAttr(mlir::gpu::GPUDialect::getKernelFuncAttrName(), UnitAttr::get(ctx));
  kernel.setKnownBlockSizeAttr(
      DenseI32ArrayAttr::get(ctx, {static_cast<int32_t>(blockSize), 1, 1}));
  entryBlock = &kernel.getBody().front();
  threads = blockSize;
  b = std::make_unique<ImplicitLocOpBuilder>(loc, ctx);
  b->setInsertionPointToStart(entryBlock);
  argAccess.clear();
  kvAccess.clear();
  stateAccess.clear();
  resultAccess.clear();
  dimValues.clear();
  extraPointers.clear();
  extraScalars.clear();
  reduceScratch = Value();

  blockIdValue = mlir::gpu::BlockIdOp::create(*b, mlir::gpu::Dimension::x);
  threadIdValue = mlir::gpu::ThreadIdOp::create(*b, mlir::gpu::Dimension::x);
  unsigned slot = 0;
  auto nextPointer = [&]() -> Value { return entryBlock->getArgument(slot++); };
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
        codegen::wholeTensorAccess(memrefFromPointer(nextPointer(), tensor.getElementType()), tensor);
  }
  for (Type resultType : results) {
    auto tensor = dyn_cast<RankedTensorType>(resultType);
    if (!tensor) {
      resultAccess.push_back({});
      continue;
    }
    resultAccess.push_back(
        codegen::wholeTensorAccess(memrefFromPointer(nextPointer(), tensor.getElementType()), tensor));
  }
  for (unsigned i = 0; i < extra.pointers; ++i)
    extraPointers.push_back(memrefFromPointer(nextPointer(), b->getF32Type()));
  for (size_t i = 0; i < std::size(kStepSymbols); ++i)
    dimValues.push_back(
        arith::IndexCastOp::create(*b, b->getIndexType(), entryBlock->getArgument(slot++)));
  for (unsigned i = 0; i < extra.scalars; ++i)
    extraScalars.push_back(
        arith::IndexCastOp::create(*b, b->getIndexType(), entryBlock->getArgument(slot++)));

  body();
  mlir::gpu::ReturnOp::create(*b);
  return kernel;
}

mlir::gpu::GPUFuncOp GpuKernelEmitter::createKernel(int64_t blockSize,
                                              llvm::function_ref<void()> body) {
  SmallVector<BlockArgument> args(sourceFunc.getArguments());
  return createKernel(sourceFunc.getSymName(), args, sourceFunc.getResultTypes(),
                      blockSize, body);
}

int64_t GpuKernelEmitter::sharedBytes() {
  int64_t bytes = 0;
  for (BlockArgument attribution : kernel.getWorkgroupAttributions()) {
    auto type = cast<MemRefType>(attribution.getType());
    bytes += type.getNumElements() * storageBytes(type.getElementType());
  }
  return bytes;
}

Value GpuKernelEmitter::dim(StringRef symbol) {
  int position = stepSymbolIndex(symbol);
  assert(position >= 0 && "unknown step symbol");
  return dimValues[position];
}

/// Row geometry of `value` through views; `base` gives the access of the
/// function argument the views start from.
RowAccess GpuKernelEmitter::access(Value value) {
  return codegen::resolveView(value, [&](BlockArgument arg) {
    assert(argAccess.count(arg) && "argument has no slot in this kernel");
    return argAccess.lookup(arg);
  });
}

RowAccess GpuKernelEmitter::viewGeometry(Value value) {
  return codegen::resolveView(value, [](BlockArgument arg) {
    return codegen::wholeTensorAccess(Value(), cast<RankedTensorType>(arg.getType()));
  });
}

RowAccess GpuKernelEmitter::result(unsigned position) { return resultAccess[position]; }

std::pair<Value, Value> GpuKernelEmitter::kvArrays(Value cache) {
  return kvAccess.lookup(cache);
}

std::pair<RowAccess, RowAccess> GpuKernelEmitter::stateArrays(Value state) {
  Type element = cast<qtf::LinearStateType>(state.getType()).getElementType();
  auto [conv, recurrent] = stateAccess.lookup(state);
  return {RowAccess{conv, element}, RowAccess{recurrent, b->getF32Type()}};
}

Value GpuKernelEmitter::index(int64_t value) {
  return arith::ConstantIndexOp::create(*b, value);
}
Value GpuKernelEmitter::f32(float value) {
  return arith::ConstantOp::create(*b, b->getF32FloatAttr(value));
}
Value GpuKernelEmitter::i32(int32_t value) {
  return arith::ConstantOp::create(*b, b->getI32IntegerAttr(value));
}
Value GpuKernelEmitter::addIndex(Value a, Value c) { return arith::AddIOp::create(*b, a, c); }
Value GpuKernelEmitter::mulIndex(Value a, int64_t c) {
  if (c == 1)
    return a;
  return arith::MulIOp::create(*b, a, index(c));
}
Value GpuKernelEmitter::mulIndex(Value a, Value c) { return arith::MulIOp::create(*b, a, c); }
Value GpuKernelEmitter::divIndex(Value a, int64_t c) {
  if (c == 1)
    return a;
  return arith::DivUIOp::create(*b, a, index(c));
}
Value GpuKernelEmitter::remIndex(Value a, int64_t c) {
  if (c == 1)
    return index(0);
  return arith::RemUIOp::create(*b, a, index(c));
}

// 1 / sqrt(x) with a correctly rounded sqrt, as math.rsqrt lowers on the
// CPU. math.sqrt would become libdevice's __nv_sqrtf, which is sqrt.approx
// unless __CUDA_PREC_SQRT is reflected as 1.
Value GpuKernelEmitter::rsqrt(Value x) {
  Value root = LLVM::CallIntrinsicOp::create(*b, b->getF32Type(),
                                             b->getStringAttr("llvm.nvvm.sqrt.rn.f"),
                                             ValueRange{x})
                   .getResult(0);
  return arith::DivFOp::create(*b, f32(1.0f), root);
}

/// 1.0 as a scalar or a vector of x's type.
static Value oneLike(ImplicitLocOpBuilder &b, Value x) {
  if (auto vecType = dyn_cast<VectorType>(x.getType()))
    return arith::ConstantOp::create(b, DenseElementsAttr::get(vecType, 1.0f));
  return arith::ConstantOp::create(b, b.getF32FloatAttr(1.0f));
}

// (Ops are created one statement at a time where their order would
// otherwise depend on the order C++ evaluates call arguments in.)
Value GpuKernelEmitter::silu(Value x) {
  Value one = oneLike(*b, x);
  Value denominator =
      arith::AddFOp::create(*b, one, math::ExpOp::create(*b, arith::NegFOp::create(*b, x)));
  return arith::DivFOp::create(*b, x, denominator);
}

Value GpuKernelEmitter::sigmoid(Value x) {
  Value one = oneLike(*b, x);
  Value denominator =
      arith::AddFOp::create(*b, one, math::ExpOp::create(*b, arith::NegFOp::create(*b, x)));
  return arith::DivFOp::create(*b, one, denominator);
}

Value GpuKernelEmitter::address(const RowAccess &acc, Value row, Value unit, Value col) {
  Value flat = mulIndex(row, acc.rowStride);
  if (acc.offset)
    flat = addIndex(flat, index(acc.offset));
  if (unit)
    flat = addIndex(flat, mulIndex(unit, acc.unitWidth));
  return col ? addIndex(flat, col) : flat;
}

Value GpuKernelEmitter::loadF32(const RowAccess &acc, Value flatIndex) {
  Value raw = memref::LoadOp::create(*b, acc.memref, ValueRange{flatIndex});
  return codegen::widenToF32(*b, b->getLoc(), raw, acc.elementType);
}

Value GpuKernelEmitter::loadVectorF32(const RowAccess &acc, Value flatIndex, int64_t width) {
  if (width == 1)
    return vector::BroadcastOp::create(*b, VectorType::get({1}, b->getF32Type()),
                                       loadF32(acc, flatIndex));
  Type type = acc.elementType;
  auto rawVector = VectorType::get({width}, codegen::storageType(type));
  // The alignment lets NVPTX emit one ld.global.v{2,4} instead of scalars.
  Value raw = vector::LoadOp::create(*b, rawVector, acc.memref, ValueRange{flatIndex},
                                     /*nontemporal=*/false,
                                     llvm::Align(width * storageBytes(type)));
  return codegen::widenToF32(*b, b->getLoc(), raw, type);
}

Value GpuKernelEmitter::loadIndex(const RowAccess &acc, Value flatIndex) {
  Value raw = memref::LoadOp::create(*b, acc.memref, ValueRange{flatIndex});
  return arith::IndexCastOp::create(*b, b->getIndexType(), raw);
}

void GpuKernelEmitter::store(const RowAccess &acc, Value flatIndex, Value value) {
  Type type = acc.elementType;
  auto vectorType = dyn_cast<VectorType>(value.getType());
  if (!type.isF32()) {
    // Round to nearest even (cvt.rn), then store bf16 bits as i16.
    Type narrow = vectorType ? Type(VectorType::get(vectorType.getShape(), type)) : type;
    value = arith::TruncFOp::create(*b, narrow, value);
    if (type.isBF16()) {
      Type bits = b->getI16Type();
      if (vectorType)
        bits = VectorType::get(vectorType.getShape(), bits);
      value = arith::BitcastOp::create(*b, bits, value);
    }
  }
  if (!vectorType) {
    memref::StoreOp::create(*b, value, acc.memref, ValueRange{flatIndex});
    return;
  }
  int64_t width = vectorType.getNumElements();
  if (width == 1) {
    memref::StoreOp::create(*b, vector::ExtractOp::create(*b, value, ArrayRef<int64_t>{0}),
                            acc.memref, ValueRange{flatIndex});
    return;
  }
  vector::StoreOp::create(*b, value, acc.memref, ValueRange{flatIndex},
                          /*nontemporal=*/false, llvm::Align(width * storageBytes(type)));
}

int64_t GpuKernelEmitter::vectorWidthFor(int64_t length, ArrayRef<RowAccess> accesses) const {
  auto fits = [&](int64_t width) {
    if (length % width)
      return false;
    for (const RowAccess &acc : accesses) {
      if (acc.rowStride % width || acc.offset % width)
        return false;
      if (acc.units > 1 && acc.unitWidth % width)
        return false;
    }
    return true;
  };
  int64_t width = kMaxVectorWidth;
  while (width > 1 && !fits(width))
    width /= 2;
  return width;
}

int64_t GpuKernelEmitter::blockSizeFor(int64_t vectors) const {
  int64_t size = kWarpSize;
  while (size < vectors && size < opts.maxThreads)
    size *= 2;
  return std::min(size, std::max<int64_t>(opts.maxThreads, kWarpSize));
}

ChunkPlan GpuKernelEmitter::planChunks(int64_t columns, ArrayRef<RowAccess> accesses) const {
  ChunkPlan plan;
  plan.width = vectorWidthFor(columns, accesses);
  int64_t vectors = columns / plan.width;
  plan.threads = blockSizeFor(vectors);
  plan.chunks = (vectors + plan.threads - 1) / plan.threads;
  return plan;
}

void GpuKernelEmitter::forChunkColumn(const ChunkPlan &plan, int64_t columns,
                                      llvm::function_ref<void(Value, Value)> body) {
  Value row = divIndex(blockIdValue, plan.chunks);
  Value vector = threadIdValue;
  if (plan.chunks > 1)
    vector = addIndex(mulIndex(remIndex(blockIdValue, plan.chunks), plan.threads), vector);
  Value col = mulIndex(vector, plan.width);
  if (plan.chunks * plan.threads * plan.width == columns)
    return body(row, col);
  Value inside = arith::CmpIOp::create(*b, arith::CmpIPredicate::ult, col, index(columns));
  ifThen(inside, [&] { body(row, col); });
}

//===----------------------------------------------------------------------===//
// Shared memory, loops and reductions
//===----------------------------------------------------------------------===//

Value GpuKernelEmitter::sharedRow(int64_t length) {
  MLIRContext *ctx = b->getContext();
  auto space = mlir::gpu::AddressSpaceAttr::get(ctx, mlir::gpu::AddressSpace::Workgroup);
  auto type = MemRefType::get({length}, b->getF32Type(), MemRefLayoutAttrInterface(), space);
  BlockArgument row = kernel.addWorkgroupAttribution(type, kernel.getLoc());
  // 16-byte alignment makes vector<4xf32> accesses single ld/st.shared.v4.
  kernel.setWorkgroupAttributionAttr(kernel.getNumWorkgroupAttributions() - 1,
                                     LLVM::LLVMDialect::getAlignAttrName(),
                                     b->getI64IntegerAttr(16));
  return row;
}

Value GpuKernelEmitter::loadShared(Value row, Value col, int64_t width) {
  auto type = VectorType::get({width}, b->getF32Type());
  return vector::LoadOp::create(*b, type, row, ValueRange{col}, /*nontemporal=*/false,
                                llvm::Align(width * 4));
}

void GpuKernelEmitter::storeShared(Value row, Value col, Value value) {
  int64_t width = cast<VectorType>(value.getType()).getNumElements();
  vector::StoreOp::create(*b, value, row, ValueRange{col}, /*nontemporal=*/false,
                          llvm::Align(width * 4));
}

void GpuKernelEmitter::barrier() { mlir::gpu::BarrierOp::create(*b); }

void GpuKernelEmitter::forLoop(Value lb, Value ub, int64_t step,
                               llvm::function_ref<void(Value)> body) {
  auto loop = scf::ForOp::create(*b, lb, ub, index(step));
  OpBuilder::InsertionGuard guard(*b);
  b->setInsertionPointToStart(loop.getBody());
  body(loop.getInductionVar());
}

ValueRange GpuKernelEmitter::forLoop(
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

void GpuKernelEmitter::forThreadColumns(int64_t length, int64_t width,
                                        llvm::function_ref<void(Value)> body) {
  forLoop(mulIndex(threadIdValue, width), index(length), threads * width, body);
}

Value GpuKernelEmitter::forThreadColumns(
    int64_t length, int64_t width, Value init,
    llvm::function_ref<Value(Value, Value)> body) {
  return forLoop(mulIndex(threadIdValue, width), index(length), threads * width,
                 ValueRange{init},
                 [&](Value col, ValueRange acc) -> SmallVector<Value> {
                   return {body(col, acc[0])};
                 })[0];
}

void GpuKernelEmitter::ifThen(Value condition, llvm::function_ref<void()> body) {
  auto ifOp = scf::IfOp::create(*b, condition, /*withElseRegion=*/false);
  OpBuilder::InsertionGuard guard(*b);
  b->setInsertionPointToStart(ifOp.thenBlock());
  body();
}

Value GpuKernelEmitter::shuffleXor(Value value, int64_t offset) {
  return mlir::gpu::ShuffleOp::create(*b, value, static_cast<int32_t>(offset), static_cast<int32_t>(kWarpSize),
                                      mlir::gpu::ShuffleMode::XOR)
      .getShuffleResult();
}

Value GpuKernelEmitter::laneReduce(Value value, int64_t lanes, Combine combine) {
  for (int64_t offset = lanes / 2; offset > 0; offset /= 2)
    value = combine(value, shuffleXor(value, offset));
  return value;
}

Value GpuKernelEmitter::laneSum(Value value, int64_t lanes) {
  return laneReduce(value, lanes, [&](Value x, Value y) -> Value {
    return arith::AddFOp::create(*b, x, y);
  });
}

Value GpuKernelEmitter::laneMax(Value value, int64_t lanes) {
  return laneReduce(value, lanes, [&](Value x, Value y) -> Value {
    return arith::MaximumFOp::create(*b, x, y);
  });
}

Value GpuKernelEmitter::blockReduce(Value value, Combine combine) {
  value = laneReduce(value, kWarpSize, combine);
  const int64_t warps = threads / kWarpSize;
  if (warps == 1)
    return value;
  if (!reduceScratch) {
    OpBuilder::InsertionGuard guard(*b);
    reduceScratch = sharedRow(warps);
  }
  Value lane = remIndex(threadIdValue, kWarpSize);
  Value warp = divIndex(threadIdValue, kWarpSize);
  Value isFirst = arith::CmpIOp::create(*b, arith::CmpIPredicate::eq, lane, index(0));
  ifThen(isFirst, [&] {
    memref::StoreOp::create(*b, value, reduceScratch, ValueRange{warp});
  });
  barrier();
  // Every thread combines the warp results in the same order: identical
  // results.
  Value total = memref::LoadOp::create(*b, reduceScratch, ValueRange{index(0)});
  for (int64_t w = 1; w < warps; ++w)
    total = combine(total, memref::LoadOp::create(*b, reduceScratch, ValueRange{index(w)}));
  // The scratch may be reused by the next reduction.
  barrier();
  return total;
}

Value GpuKernelEmitter::blockSum(Value value) {
  return blockReduce(value, [&](Value x, Value y) -> Value {
    return arith::AddFOp::create(*b, x, y);
  });
}

Value GpuKernelEmitter::blockMin(Value value) {
  return blockReduce(value, [&](Value x, Value y) -> Value {
    return arith::MinimumFOp::create(*b, x, y);
  });
}

//===----------------------------------------------------------------------===//
// Row chains: rms_norm and rope applied to one unit (head) of one token
//===----------------------------------------------------------------------===//

void GpuKernelEmitter::emitRowChain(Value value, Value token, Value unit, Value row) {
  const int64_t length = cast<MemRefType>(row.getType()).getDimSize(0);
  // Every phase owns columns the same way (width of the row), so only rope,
  // which pairs column i with i + half, needs barriers around it.
  const int64_t width = vectorWidthFor(length);
  bool crossThread = false;
  Value sourceRow = token; // of the chain's input: a gather selects another
  std::function<void(Value)> fill = [&](Value v) {
    if (auto gather = v.getDefiningOp<qtf::GatherRowsOp>()) {
      sourceRow = loadIndex(access(gather.getRows()), token);
      fill(gather.getInput());
      return;
    }
    if (auto norm = v.getDefiningOp<qtf::RmsNormOp>()) {
      fill(norm.getInput());
      if (crossThread)
        barrier();
      applyRmsNorm(norm, row, length);
      crossThread = false;
      return;
    }
    if (auto rope = v.getDefiningOp<qtf::RopeOp>()) {
      fill(rope.getInput());
      barrier();
      applyRope(rope, token, row);
      crossThread = true;
      return;
    }
    RowAccess source = access(v);
    // A view at an odd offset loads in narrower pieces of the same columns.
    int64_t sourceWidth = vectorWidthFor(width, source);
    Value base = address(source, sourceRow, source.units > 1 ? unit : Value(), Value());
    forThreadColumns(length, width, [&](Value col) {
      for (int64_t piece = 0; piece < width; piece += sourceWidth) {
        Value at = piece ? addIndex(col, index(piece)) : col;
        storeShared(row, at, loadVectorF32(source, addIndex(base, at), sourceWidth));
      }
    });
  };
  fill(value);
  barrier();
}

void GpuKernelEmitter::applyRmsNorm(qtf::RmsNormOp norm, Value row, int64_t length) {
  RowAccess weight = access(norm.getWeight());
  int64_t width = vectorWidthFor(length);
  auto vecType = VectorType::get({width}, b->getF32Type());
  Value zero = arith::ConstantOp::create(*b, DenseElementsAttr::get(vecType, 0.0f));
  Value sumVector = forThreadColumns(length, width, zero, [&](Value col, Value acc) {
    Value x = loadShared(row, col, width);
    return vector::FMAOp::create(*b, x, x, acc).getResult();
  });
  Value partial = vector::ReductionOp::create(*b, vector::CombiningKind::ADD, sumVector);
  Value sum = blockSum(partial);
  Value mean = arith::DivFOp::create(*b, sum, f32(static_cast<float>(length)));
  Value eps = f32(static_cast<float>(norm.getEpsilon().convertToDouble()));
  Value scale = rsqrt(arith::AddFOp::create(*b, mean, eps));
  Value scaleVector = vector::BroadcastOp::create(*b, vecType, scale);
  bool zeroCentered = norm.getZeroCentered();
  forThreadColumns(length, width, [&](Value col) {
    Value x = loadShared(row, col, width);
    Value w = loadVectorF32(weight, col, width);
    if (zeroCentered)
      w = arith::AddFOp::create(
          *b, w, arith::ConstantOp::create(*b, DenseElementsAttr::get(vecType, 1.0f)));
    Value y = arith::MulFOp::create(*b, w, arith::MulFOp::create(*b, x, scaleVector));
    storeShared(row, col, y);
  });
}

void GpuKernelEmitter::applyRope(qtf::RopeOp rope, Value token, Value row) {
  int64_t rotary = rope.getRotaryDim();
  int64_t half = rotary / 2;
  codegen::RopeFrequencies<GpuKernelEmitter> frequencies(*this, rope, gpuModule, token);
  std::optional<ArrayRef<int64_t>> section = rope.getMropeSection();
  SmallVector<Value> positions =
      codegen::loadRopePositions(*this, access(rope.getPositions()), token, section.has_value());
  // One pair (i, i + half) per thread and step; columns >= rotary pass through.
  forLoop(threadIdValue, index(half), threads, [&](Value i) {
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

func::FuncOp qwen::codegen::gpu::declareKernel(OpBuilder &builder, Location loc, StringRef name,
                                               FunctionType type, qkernel::KernelKind kind,
                                               ArrayRef<NamedAttribute> extra,
                                               ArrayRef<std::string> resultSymbols) {
  auto declaration = func::FuncOp::create(builder, loc, name, type);
  declaration.setPrivate();
  declaration->setAttr(qkernel::kKernelAttrName, builder.getUnitAttr());
  declaration->setAttr(qkernel::kKindAttrName,
                       qkernel::KernelKindAttr::get(builder.getContext(), kind));
  for (NamedAttribute attr : extra)
    declaration->setAttr(attr.getName(), attr.getValue());
  for (auto [index, symbol] : llvm::enumerate(resultSymbols))
    if (!symbol.empty())
      declaration.setResultAttr(index, "qkernel.symbol", builder.getStringAttr(symbol));
  return declaration;
}
