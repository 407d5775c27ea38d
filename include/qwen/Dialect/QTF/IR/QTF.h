//===- QTF.h - Qwen transformer graph dialect -------------------*- C++ -*-===//
#ifndef QWEN_DIALECT_QTF_IR_QTF_H
#define QWEN_DIALECT_QTF_IR_QTF_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "qwen/Dialect/QTF/IR/QTFDialect.h.inc"
#include "qwen/Dialect/QTF/IR/QTFEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "qwen/Dialect/QTF/IR/QTFAttrs.h.inc"

#define GET_TYPEDEF_CLASSES
#include "qwen/Dialect/QTF/IR/QTFTypes.h.inc"

#define GET_OP_CLASSES
#include "qwen/Dialect/QTF/IR/QTFOps.h.inc"

namespace qwen::qtf {
/// The RoPE inverse frequencies of `rotaryDim` rotated dims with base
/// `theta`, scaled by `scaling` (null: default RoPE), in the float32
/// arithmetic of HF's modeling_rope_utils. For `dynamic` this is the table of
/// lengths within the original context; `longContext` selects longrope's
/// long factors.
llvm::SmallVector<float> ropeInverseFrequencies(RopeScalingAttr scaling, double theta,
                                                int64_t rotaryDim, bool longContext = false);
} // namespace qwen::qtf

#endif // QWEN_DIALECT_QTF_IR_QTF_H
