//===- KernelABI.cpp - What every target's kernel codegen shares ----------===//
#include "qwen/Passes/Codegen/Common/KernelABI.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/SymbolTable.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/bit.h"
#include "llvm/Support/xxhash.h"

#include <cmath>

using namespace mlir;
using namespace qwen;

codegen::RowAccess qwen::codegen::wholeTensorAccess(Value memref, RankedTensorType type) {
  RowAccess access;
  access.memref = memref;
  access.elementType = type.getElementType();
  if (type.getRank() == 1) {
    access.rowStride = 1;
    access.unitWidth = 1;
    return access;
  }
  int64_t row = 1;
  for (int64_t d : type.getShape().drop_front())
    row *= d;
  access.rowStride = row;
  access.unitWidth = type.getShape().back();
  access.units = type.getRank() == 3 ? type.getDimSize(1) : 1;
  return access;
}

codegen::RowAccess
qwen::codegen::resolveView(Value value, llvm::function_ref<RowAccess(BlockArgument)> base) {
  if (auto arg = dyn_cast<BlockArgument>(value))
    return base(arg);
  Operation *def = value.getDefiningOp();
  if (auto split = dyn_cast<qtf::SplitOp>(def)) {
    RowAccess access = resolveView(split.getInput(), base);
    unsigned position = cast<OpResult>(value).getResultNumber();
    for (unsigned i = 0; i < position; ++i)
      access.offset += split.getSizes()[i];
    access.unitWidth = split.getSizes()[position];
    access.units = 1;
    return access;
  }
  if (auto reshape = dyn_cast<qtf::ReshapeOp>(def)) {
    RowAccess access = resolveView(reshape.getInput(), base);
    RankedTensorType type = reshape.getResult().getType();
    access.unitWidth = type.getShape().back();
    access.units = type.getRank() == 3 ? type.getDimSize(1) : 1;
    return access;
  }
  if (auto merge = dyn_cast<qtf::MergeRowsOp>(def)) {
    // Consecutive whole rows side by side: the same memory, rows `factor` times wider.
    RowAccess access = resolveView(merge.getInput(), base);
    assert(access.offset == 0 && access.unitWidth == access.rowStride &&
           "merge_rows of a view that is not whole rows");
    access.rowStride *= static_cast<int64_t>(merge.getFactor());
    access.unitWidth = access.rowStride;
    access.units = 1;
    return access;
  }
  llvm_unreachable("value is neither a kernel argument nor a view of one");
}

Value qwen::codegen::getInvFreqTable(OpBuilder &b, Location loc, Operation *symbolTable,
                                     double theta, int64_t rotaryDim) {
  // Integral thetas keep their readable name; any other value (fractional,
  // huge, or not finite, where a cast to int64_t is undefined) is named by
  // its bits, so two thetas never share a table.
  std::string thetaName = std::isfinite(theta) && std::fabs(theta) < 1e15 && theta == std::trunc(theta)
                              ? std::to_string(static_cast<int64_t>(theta))
                              : "x" + llvm::utohexstr(llvm::bit_cast<uint64_t>(theta));
  std::string name = "qwen_inv_freq_" + std::to_string(rotaryDim) + "_" + thetaName;
  return getF32Table(b, loc, symbolTable, name,
                     qtf::ropeInverseFrequencies(nullptr, theta, rotaryDim));
}

Value qwen::codegen::getRopeTable(OpBuilder &b, Location loc, Operation *symbolTable,
                                  qtf::RopeOp rope, bool longContext) {
  double theta = rope.getTheta().convertToDouble();
  int64_t rotaryDim = static_cast<int64_t>(rope.getRotaryDim());
  qtf::RopeScalingAttr scaling = rope.getScalingAttr();
  if (!scaling)
    return getInvFreqTable(b, loc, symbolTable, theta, rotaryDim);
  // Scaled tables are named by their contents: equal tables share a global.
  SmallVector<float> table = qtf::ropeInverseFrequencies(scaling, theta, rotaryDim, longContext);
  uint64_t hash = llvm::xxh3_64bits(llvm::ArrayRef<uint8_t>(
      reinterpret_cast<const uint8_t *>(table.data()), table.size() * sizeof(float)));
  std::string name = "qwen_inv_freq_" + std::to_string(rotaryDim) + "_" +
                     stringifyRopeScalingKind(scaling.getKind()).str() + "_" +
                     llvm::utohexstr(hash, /*LowerCase=*/true);
  return getF32Table(b, loc, symbolTable, name, table);
}

Value qwen::codegen::getF32Table(OpBuilder &b, Location loc, Operation *symbolTable,
                                 StringRef name, ArrayRef<float> table) {
  auto type = MemRefType::get({static_cast<int64_t>(table.size())}, b.getF32Type());
  if (!SymbolTable::lookupSymbolIn(symbolTable, name)) {
    OpBuilder global(symbolTable->getRegion(0), b.getListener());
    auto tensorType = RankedTensorType::get(type.getShape(), b.getF32Type());
    memref::GlobalOp::create(global, symbolTable->getLoc(), name,
                             global.getStringAttr("private"), type,
                             DenseElementsAttr::get(tensorType, table),
                             /*constant=*/true, /*alignment=*/nullptr);
  }
  return memref::GetGlobalOp::create(b, loc, type, name);
}

Type qwen::codegen::storageType(Type elementType) {
  if (elementType.isBF16())
    return IntegerType::get(elementType.getContext(), 16);
  if (isa<Float8E4M3FNType>(elementType))
    return IntegerType::get(elementType.getContext(), 8);
  return elementType;
}

Value qwen::codegen::memrefFromPointer(OpBuilder &b, Location loc, Value pointer,
                                       Type elementType) {
  MLIRContext *ctx = b.getContext();
  auto i64 = b.getI64Type();
  auto ptrType = LLVM::LLVMPointerType::get(ctx);
  auto arrayType = LLVM::LLVMArrayType::get(i64, 1);
  auto descriptorType =
      LLVM::LLVMStructType::getLiteral(ctx, {ptrType, ptrType, i64, arrayType, arrayType});
  Value descriptor = LLVM::UndefOp::create(b, loc, descriptorType);
  auto constant = [&](int64_t v) {
    return LLVM::ConstantOp::create(b, loc, i64, b.getI64IntegerAttr(v));
  };
  auto insert = [&](Value value, ArrayRef<int64_t> position) {
    descriptor = LLVM::InsertValueOp::create(b, loc, descriptor, value, position);
  };
  insert(pointer, {0});
  insert(pointer, {1});
  insert(constant(0), {2});
  // The size is only a bound no op checks; the step's real extent varies.
  insert(constant(int64_t(1) << 40), {3, 0});
  insert(constant(1), {4, 0});
  auto memrefType = MemRefType::get({ShapedType::kDynamic}, storageType(elementType));
  return UnrealizedConversionCastOp::create(b, loc, memrefType, descriptor).getResult(0);
}

FailureOr<codegen::MatmulPattern> qwen::codegen::matchMatmulKernel(func::FuncOp source) {
  auto ret = cast<func::ReturnOp>(source.getBody().front().getTerminator());
  if (ret.getNumOperands() != 1)
    return source.emitOpError("matmul kernel must have one result"), failure();
  MatmulPattern pattern;
  pattern.output = ret.getOperand(0);
  if (auto add = pattern.output.getDefiningOp<qtf::AddOp>()) {
    pattern.linear = add.getLhs().getDefiningOp<qtf::LinearOp>();
    pattern.residual = add.getRhs();
    if (!pattern.linear) {
      pattern.linear = add.getRhs().getDefiningOp<qtf::LinearOp>();
      pattern.residual = add.getLhs();
    }
  } else {
    pattern.linear = pattern.output.getDefiningOp<qtf::LinearOp>();
  }
  if (!pattern.linear)
    return source.emitOpError("matmul kernel has no linear op"), failure();
  pattern.gather = pattern.linear.getInput().getDefiningOp<qtf::GatherRowsOp>();
  return pattern;
}

Value qwen::codegen::computedValue(Value result) {
  if (auto narrow = result.getDefiningOp<arith::TruncFOp>())
    return narrow.getIn();
  return result;
}

std::optional<unsigned> qwen::codegen::resultIndexOf(func::FuncOp source, Value value) {
  auto ret = cast<func::ReturnOp>(source.getBody().front().getTerminator());
  for (auto [index, operand] : llvm::enumerate(ret.getOperands()))
    if (computedValue(operand) == value)
      return index;
  return std::nullopt;
}

codegen::DeltaRuleSizes qwen::codegen::getDeltaRuleSizes(qtf::GatedDeltaRuleOp rule) {
  qtf::LinearStateType state = rule.getState().getType();
  DeltaRuleSizes sizes;
  sizes.heads = state.getHeads();
  sizes.keyHeads = cast<RankedTensorType>(rule.getQuery().getType()).getDimSize(1);
  sizes.group = sizes.heads / sizes.keyHeads;
  sizes.keyDim = state.getKeyDim();
  sizes.valueDim = state.getValueDim();
  sizes.layer = static_cast<int64_t>(rule.getLayer());
  sizes.scale = static_cast<float>(rule.getScale().convertToDouble());
  return sizes;
}

/// `scalar`, or a vector of it shaped like `like` when that is a vector.
static Type shapedLike(Value like, Type scalar) {
  auto vector = dyn_cast<VectorType>(like.getType());
  return vector ? Type(VectorType::get(vector.getShape(), scalar)) : scalar;
}

/// The i32 constant `v` of type `type` (i32 or a vector of i32: a splat).
static Value i32Constant(OpBuilder &b, Location loc, Type type, int64_t v) {
  TypedAttr attr = isa<VectorType>(type)
                       ? TypedAttr(DenseElementsAttr::get(cast<ShapedType>(type),
                                                          b.getI32IntegerAttr(v).getValue()))
                       : TypedAttr(b.getI32IntegerAttr(v));
  return arith::ConstantOp::create(b, loc, attr);
}

Value qwen::codegen::widenToF32(OpBuilder &b, Location loc, Value raw, Type elementType) {
  if (elementType.isF32())
    return raw;
  Type f32 = shapedLike(raw, b.getF32Type());
  if (elementType.isBF16()) {
    Type i32 = shapedLike(raw, b.getI32Type());
    Value wide = arith::ExtUIOp::create(b, loc, i32, raw);
    Value shifted = arith::ShLIOp::create(b, loc, wide, i32Constant(b, loc, i32, 16));
    return arith::BitcastOp::create(b, loc, f32, shifted);
  }
  if (isa<Float8E4M3FNType>(elementType)) {
    // e4m3fn bits s.eeee.mmm (i8 storage) moved into f32's fields read as
    // value * 2^-120 for normals and subnormals alike (f32 denormals cover
    // the fp8 subnormals), so one exact multiply by 2^120 widens. LLVM has
    // no fp8 type: arith.extf from f8E4M3FN does not lower to LLVM on x86.
    // NaN (s.1111.111) reads as +-480; HF's quantizer never writes it.
    Type i32 = shapedLike(raw, b.getI32Type());
    Value wide = arith::ExtSIOp::create(b, loc, i32, raw); // sign into bit 31
    Value shifted = arith::ShLIOp::create(b, loc, wide, i32Constant(b, loc, i32, 20));
    Value fields = arith::AndIOp::create(b, loc, shifted,
                                         i32Constant(b, loc, i32, int32_t(0x87f00000u)));
    Value scaled = arith::BitcastOp::create(b, loc, f32, fields);
    TypedAttr twoTo120 = isa<VectorType>(f32)
                             ? TypedAttr(DenseElementsAttr::get(cast<ShapedType>(f32), 0x1p120f))
                             : TypedAttr(b.getF32FloatAttr(0x1p120f));
    return arith::MulFOp::create(b, loc, scaled, arith::ConstantOp::create(b, loc, twoTo120));
  }
  return arith::ExtFOp::create(b, loc, f32, raw);
}

Value qwen::codegen::narrowFromF32(OpBuilder &b, Location loc, Value value, Type elementType) {
  if (elementType.isF32())
    return value;
  if (!elementType.isBF16())
    return arith::TruncFOp::create(b, loc, shapedLike(value, elementType), value);
  Type i32 = shapedLike(value, b.getI32Type());
  auto constant = [&](int64_t v) { return i32Constant(b, loc, i32, v); };
  // bits + 0x7fff + (bit 16 of bits), then the high half: round to nearest even.
  Value bits = arith::BitcastOp::create(b, loc, i32, value);
  Value high = arith::ShRUIOp::create(b, loc, bits, constant(16));
  Value odd = arith::AndIOp::create(b, loc, high, constant(1));
  Value rounded = arith::AddIOp::create(b, loc, bits, arith::AddIOp::create(b, loc, odd, constant(0x7fff)));
  Value roundedHigh = arith::ShRUIOp::create(b, loc, rounded, constant(16));
  Value quietNaN = arith::OrIOp::create(b, loc, high, constant(0x40));
  Value isNaN = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::UNO, value, value);
  Value result = arith::SelectOp::create(b, loc, isNaN, quietNaN, roundedHigh);
  return arith::TruncIOp::create(b, loc, shapedLike(value, b.getI16Type()), result);
}

FailureOr<codegen::ElementwisePattern> qwen::codegen::matchElementwiseKernel(func::FuncOp source) {
  ElementwisePattern pattern;
  auto ret = cast<func::ReturnOp>(source.getBody().front().getTerminator());
  if (ret.getNumOperands() == 1)
    pattern.output = computedValue(ret.getOperand(0));
  Operation *op = pattern.output ? pattern.output.getDefiningOp() : nullptr;
  pattern.op = op;
  pattern.combine = dyn_cast_or_null<qtf::MoeCombineOp>(op);
  if (auto add = dyn_cast_or_null<qtf::AddOp>(op)) {
    for (auto [operand, other] : {std::pair{add.getLhs(), add.getRhs()},
                                  std::pair{add.getRhs(), add.getLhs()}})
      if (auto producer = operand.getDefiningOp<qtf::MoeCombineOp>()) {
        pattern.combine = producer;
        pattern.residual = other;
      }
  }
  if (!pattern.combine && !isa_and_nonnull<qtf::SiluMulOp, qtf::SigmoidMulOp, qtf::AddOp>(op))
    return source.emitOpError(
               "elementwise kernel must return silu_mul, sigmoid_mul, add or moe_combine"),
           failure();
  pattern.columns = 1;
  for (int64_t d : cast<RankedTensorType>(pattern.output.getType()).getShape().drop_front())
    pattern.columns *= d;
  pattern.broadcastGate =
      isa<qtf::SigmoidMulOp>(op) &&
      cast<RankedTensorType>(op->getOperand(1).getType()).getDimSize(1) == 1 &&
      pattern.columns != 1;
  if (pattern.combine)
    pattern.choices = pattern.combine.getSlots().getType().getDimSize(1);
  return pattern;
}

RankedTensorType qwen::codegen::getSampledLogitsType(func::FuncOp step) {
  if (!step || step.isDeclaration() || step.getNumResults() == 0)
    return {};
  // An artifact returning hidden states has nothing to sample.
  auto outputKind = step.getResultAttrOfType<StringAttr>(0, "qtf.output");
  if (outputKind && outputKind.getValue() == "hidden_states")
    return {};
  Value logits = step.getBody().front().getTerminator()->getOperand(0);
  auto type = dyn_cast<RankedTensorType>(logits.getType());
  if (type && type.getRank() == 2 && type.getElementType().isF32() &&
      !ShapedType::isDynamic(type.getDimSize(1)))
    return type;
  return {};
}
