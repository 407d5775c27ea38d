//===- QKernelDialect.cpp - qkernel dialect -----------------------------===//
#include "qwen/Dialect/QKernel/IR/QKernel.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/DialectImplementation.h"

using namespace mlir;
using namespace qwen::qkernel;

#include "qwen/Dialect/QKernel/IR/QKernelDialect.cpp.inc"

void QKernelDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "qwen/Dialect/QKernel/IR/QKernelOps.cpp.inc"
      >();
  registerAttributes();
}

/// `qkernel.kind` on a kernel function must be a #qkernel.kind, and
/// `qkernel.sampler` the sampler's kernel variants.
LogicalResult QKernelDialect::verifyOperationAttribute(Operation *op, NamedAttribute attr) {
  if (attr.getName() == kKindAttrName && !isa<KernelKindAttr>(attr.getValue()))
    return op->emitOpError("'") << kKindAttrName << "' must be a #qkernel.kind, got "
                                << attr.getValue();
  if (attr.getName() == kSamplerAttrName) {
    auto sampler = dyn_cast<DictionaryAttr>(attr.getValue());
    auto count = sampler ? sampler.getAs<IntegerAttr>("topk_count") : IntegerAttr();
    if (!sampler || !sampler.getAs<KernelVariantAttr>("argmax") ||
        !sampler.getAs<KernelVariantAttr>("topk") || !count || count.getInt() <= 0 ||
        sampler.size() != 3)
      return op->emitOpError("'")
             << kSamplerAttrName
             << "' must be {argmax = #qkernel.variant<...>, topk = #qkernel.variant<...>, "
                "topk_count = N > 0}";
  }
  return success();
}

LogicalResult RegionOp::verify() {
  // Codegen-only kinds are never the result of fusion.
  if (getKind() == KernelKind::GemmPack)
    return emitOpError("kernel kind '") << stringifyKernelKind(getKind())
                                        << "' is not a fusion kind";
  auto yield = cast<YieldOp>(getBody().front().getTerminator());
  if (!llvm::equal(yield.getValues().getTypes(), getResultTypes()))
    return emitOpError("yielded types must match the region results");
  return success();
}

LogicalResult LaunchOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  Operation *callee = symbolTable.lookupNearestSymbolFrom(*this, getKernel());
  if (!callee)
    return emitOpError("kernel '") << getKernel() << "' does not exist";
  // Before target codegen the kernel is a tensor function whose signature
  // must match; afterwards it has the target's ABI signature instead.
  auto func = dyn_cast<func::FuncOp>(callee);
  if (func && func->hasAttr(kKernelAttrName)) {
    FunctionType type = func.getFunctionType();
    if (!llvm::equal(type.getInputs(), getArgs().getTypes()) ||
        !llvm::equal(type.getResults(), getResultTypes()))
      return emitOpError("operand/result types do not match kernel '")
             << getKernel() << "' of type " << type;
  }
  if (auto buffers = getResultBuffers())
    if (buffers->size() != getNumResults())
      return emitOpError("needs one result buffer per result");
  return success();
}

#define GET_OP_CLASSES
#include "qwen/Dialect/QKernel/IR/QKernelOps.cpp.inc"
