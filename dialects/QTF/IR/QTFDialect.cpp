//===- QTFDialect.cpp - qtf dialect registration ------------------------===//
#include "qwen/Dialect/QTF/IR/QTF.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace qwen::qtf;

#include "qwen/Dialect/QTF/IR/QTFDialect.cpp.inc"

#define GET_TYPEDEF_CLASSES
#include "qwen/Dialect/QTF/IR/QTFTypes.cpp.inc"

#include "qwen/Dialect/QTF/IR/QTFEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "qwen/Dialect/QTF/IR/QTFAttrs.cpp.inc"

void QTFDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "qwen/Dialect/QTF/IR/QTFOps.cpp.inc"
      >();
  addTypes<
#define GET_TYPEDEF_LIST
#include "qwen/Dialect/QTF/IR/QTFTypes.cpp.inc"
      >();
  addAttributes<
#define GET_ATTRDEF_LIST
#include "qwen/Dialect/QTF/IR/QTFAttrs.cpp.inc"
      >();
}

LogicalResult
KVCacheType::verify(function_ref<InFlightDiagnostic()> emitError,
                    int64_t layers, int64_t kvHeads, int64_t headDim,
                    int64_t pageSize, Type elementType) {
  if (layers <= 0 || kvHeads <= 0 || headDim <= 0 || pageSize <= 0)
    return emitError() << "kv_cache sizes must be positive";
  if (!isa<FloatType>(elementType))
    return emitError() << "kv_cache element type must be a float type";
  return success();
}

LogicalResult
LinearStateType::verify(function_ref<InFlightDiagnostic()> emitError,
                        int64_t layers, int64_t convChannels, int64_t convWindow,
                        int64_t heads, int64_t keyDim, int64_t valueDim,
                        Type elementType) {
  if (layers <= 0 || convChannels <= 0 || convWindow <= 0 || heads <= 0 ||
      keyDim <= 0 || valueDim <= 0)
    return emitError() << "linear_state sizes must be positive";
  if (!isa<FloatType>(elementType))
    return emitError() << "linear_state element type must be a float type";
  return success();
}
