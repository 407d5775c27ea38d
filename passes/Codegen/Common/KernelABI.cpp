//===- KernelABI.cpp - What every target's kernel codegen shares ----------===//
#include "passes/Codegen/Common/KernelABI.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/IR/BuiltinTypes.h"

using namespace mlir;
using namespace qwen;

Type qwen::codegen::storageType(Type elementType) {
  if (elementType.isBF16())
    return IntegerType::get(elementType.getContext(), 16);
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
