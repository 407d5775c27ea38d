//===- GpuKernelEmitter.cpp - Shared GPU kernel emission helpers ----------===//
#include "passes/Codegen/GPU/GpuKernelEmitter.h"
#include "qwen/Passes/Codegen/Common/KernelABI.h"
#include "qwen/Passes/Codegen/Common/RowFamilies.h"
#include "qwen/Passes/Common/ShapeSymbols.h"

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

/// Bytes per stored element (bf16 is addressed as i16, as on the CPU).
static int64_t storageBytes(Type elementType) {
  return codegen::storageType(elementType).getIntOrFloatBitWidth() / 8;
}

GpuKernelEmitter::GpuKernelEmitter(mlir::gpu::GPUModuleOp gpuModule, func::FuncOp source,
                                   const GpuCodegenOptions &options, RewriterBase &rewriter)
    : KernelTarget(source, options.schedule), gpuModule(gpuModule), rewriter(rewriter),
      opts(options) {}

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

  OpBuilder outer = OpBuilder::atBlockEnd(gpuModule.getBody(), rewriter.getListener());
  kernel = mlir::gpu::GPUFuncOp::create(outer, loc, name, FunctionType::get(ctx, inputs, {}));
  kernel->setAttr(mlir::gpu::GPUDialect::getKernelFuncAttrName(), UnitAttr::get(ctx));
  kernel.setKnownBlockSizeAttr(
      DenseI32ArrayAttr::get(ctx, {static_cast<int32_t>(blockSize), 1, 1}));
  threads = blockSize;
  beginKernel(&kernel.getBody().front());
  b->setListener(rewriter.getListener());
  dimValues.clear();
  extraPointers.clear();
  extraScalars.clear();
  reduceScratch = Value();

  blockIdValue = mlir::gpu::BlockIdOp::create(*b, mlir::gpu::Dimension::x);
  threadIdValue = mlir::gpu::ThreadIdOp::create(*b, mlir::gpu::Dimension::x);
  unsigned slot = 0;
  auto nextPointer = [&]() -> Value { return entryBlock->getArgument(slot++); };
  bindSlots(args, results, nextPointer);
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

void GpuKernelEmitter::buildKernel(int64_t blockSize, llvm::function_ref<void(Value)> body) {
  createKernel(blockSize, [&] { body(blockIdValue); });
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

std::pair<Value, Value> GpuKernelEmitter::kvArrays(Value cache) {
  return kvAccess.lookup(cache);
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

int64_t GpuKernelEmitter::alignedWidth(int64_t width, const RowAccess &access) const {
  return codegen::gpuRowWidth(width, access);
}

ChunkPlan GpuKernelEmitter::planColumns(int64_t columns) const {
  ChunkPlan plan;
  plan.width = rowWidth(columns);
  plan.threads = itemThreads();
  plan.chunks = (columns / plan.width + plan.threads - 1) / plan.threads;
  return plan;
}

ChunkPlan GpuKernelEmitter::planChunks(int64_t columns, ArrayRef<RowAccess> accesses) const {
  ChunkPlan plan;
  plan.width = codegen::gpuRowWidth(columns, accesses);
  int64_t vectors = columns / plan.width;
  plan.threads = codegen::gpuRowBlock(vectors, opts.maxThreads);
  plan.chunks = (vectors + plan.threads - 1) / plan.threads;
  return plan;
}

void GpuKernelEmitter::forChunkColumn(const ChunkPlan &plan, int64_t columns,
                                      llvm::function_ref<void(Value, Value)> body) {
  forColumns(plan, columns, blockIdValue, body);
}

void GpuKernelEmitter::forColumns(const ChunkPlan &plan, int64_t columns, Value item,
                                  llvm::function_ref<void(Value, Value)> body) {
  Value row = divIndex(item, plan.chunks);
  Value vector = threadIdValue;
  if (plan.chunks > 1)
    vector = addIndex(mulIndex(remIndex(item, plan.chunks), plan.threads), vector);
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
  return sharedBuffer({length}, b->getF32Type());
}

Value GpuKernelEmitter::sharedBuffer(ArrayRef<int64_t> shape, Type element) {
  MLIRContext *ctx = b->getContext();
  auto space = mlir::gpu::AddressSpaceAttr::get(ctx, mlir::gpu::AddressSpace::Workgroup);
  auto type = MemRefType::get(shape, element, MemRefLayoutAttrInterface(), space);
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

Value GpuKernelEmitter::shuffleXor(Value value, int64_t offset) {
  return mlir::gpu::ShuffleOp::create(*b, value, static_cast<int32_t>(offset), static_cast<int32_t>(kWarpSize),
                                      mlir::gpu::ShuffleMode::XOR)
      .getShuffleResult();
}

// One gpu.subgroup_reduce per butterfly step, a cluster of the two lanes
// `offset` apart, offsets from lanes / 2 down to 1. A single reduce over the
// whole cluster would be expanded (populateGpuLowerClusteredSubgroupReduce-
// ToShufflePatterns) with offsets 1 up to lanes / 2: the other summation
// order, which moved an f16 CUDA reference past its bound. A cluster of two
// expands to exactly one xor shuffle and one combine(value, shuffled)
// (qwen-gpu-expand-subgroup-reduce), so this is the former butterfly.
Value GpuKernelEmitter::laneReduce(Value value, int64_t lanes,
                                   mlir::gpu::AllReduceOperation kind) {
  for (int64_t offset = lanes / 2; offset > 0; offset /= 2)
    value = mlir::gpu::SubgroupReduceOp::create(*b, value, kind, /*uniform=*/false,
                                                /*cluster_size=*/2u,
                                                static_cast<uint32_t>(offset));
  return value;
}

Value GpuKernelEmitter::laneSum(Value value, int64_t lanes) {
  return laneReduce(value, lanes, mlir::gpu::AllReduceOperation::ADD);
}

Value GpuKernelEmitter::laneMax(Value value, int64_t lanes) {
  return laneReduce(value, lanes, mlir::gpu::AllReduceOperation::MAXIMUMF);
}

Value GpuKernelEmitter::blockReduce(Value value, mlir::gpu::AllReduceOperation kind,
                                    Combine combine) {
  value = laneReduce(value, kWarpSize, kind);
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
  return blockReduce(value, mlir::gpu::AllReduceOperation::ADD, [&](Value x, Value y) -> Value {
    return arith::AddFOp::create(*b, x, y);
  });
}

Value GpuKernelEmitter::blockMin(Value value) {
  return blockReduce(value, mlir::gpu::AllReduceOperation::MINIMUMF,
                     [&](Value x, Value y) -> Value { return arith::MinimumFOp::create(*b, x, y); });
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
