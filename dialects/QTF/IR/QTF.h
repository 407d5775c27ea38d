//===- QTF.h - Qwen transformer graph dialect -------------------*- C++ -*-===//
#ifndef QWEN_DIALECTS_QTF_IR_QTF_H
#define QWEN_DIALECTS_QTF_IR_QTF_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "dialects/QTF/IR/QTFDialect.h.inc"

#define GET_TYPEDEF_CLASSES
#include "dialects/QTF/IR/QTFTypes.h.inc"

#define GET_OP_CLASSES
#include "dialects/QTF/IR/QTFOps.h.inc"

#endif // QWEN_DIALECTS_QTF_IR_QTF_H
