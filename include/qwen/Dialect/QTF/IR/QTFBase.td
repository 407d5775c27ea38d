//===- QTFBase.td - Qwen transformer graph dialect base ----*- tablegen -*-===//
//
// The qtf dialect is the graph level of the compiler: one op per model-level
// operation (embedding, rms_norm, linear, rope, paged attention, ...) on
// ranked tensors whose leading dimension is a step's ragged token count.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_DIALECT_QTF_BASE_TD
#define QWEN_DIALECT_QTF_BASE_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/CommonTypeConstraints.td"
include "mlir/IR/CommonAttrConstraints.td"
include "mlir/IR/AttrTypeBase.td"

def QTF_Dialect : Dialect {
  let name = "qtf";
  let cppNamespace = "::qwen::qtf";
  let summary = "Graph-level transformer ops for Qwen models";
  let description = [{
    Model builders emit this dialect. Values are ranked tensors; the leading
    dimension of activations is dynamic (`?`) and stands for one of the step's
    symbolic sizes (tokens T, logit rows R), so one graph serves prefill,
    decode and mixed ragged batches. The paged KV cache is threaded through
    the graph as a `!qtf.kv_cache` value so ordering is explicit and every op
    stays free of side effects.
  }];
  let useDefaultTypePrinterParser = 1;
  let useDefaultAttributePrinterParser = 1;
}

class QTF_Op<string mnemonic, list<Trait> traits = []>
    : Op<QTF_Dialect, mnemonic, traits>;

class QTF_Type<string name, string typeMnemonic, list<Trait> traits = []>
    : TypeDef<QTF_Dialect, name, traits> {
  let mnemonic = typeMnemonic;
}

#endif // QWEN_DIALECT_QTF_BASE_TD
