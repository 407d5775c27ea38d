//===- QKernelDialect.td - the qkernel dialect --------------*- tablegen -*-===//
//
// Shared by the dialect's op and attribute definitions (QKernelOps.td,
// QKernelAttrs.td).
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_DIALECT_QKERNEL_DIALECT_TD
#define QWEN_DIALECT_QKERNEL_DIALECT_TD

include "mlir/IR/OpBase.td"

def QKernel_Dialect : Dialect {
  let name = "qkernel";
  let cppNamespace = "::qwen::qkernel";
  let summary = "Target-independent kernel regions and their launches";
  let useDefaultAttributePrinterParser = 1;
  let hasOperationAttrVerify = 1;
  let extraClassDeclaration = [{
    void registerAttributes();
  }];
}

#endif // QWEN_DIALECT_QKERNEL_DIALECT_TD
