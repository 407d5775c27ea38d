//===- QTFTypes.td - qtf types ------------------------------*- tablegen -*-===//
#ifndef QWEN_DIALECT_QTF_TYPES_TD
#define QWEN_DIALECT_QTF_TYPES_TD

include "qwen/Dialect/QTF/IR/QTFBase.td"
include "mlir/IR/BuiltinTypeInterfaces.td"

def QTF_KVCacheType : QTF_Type<"KVCache", "kv_cache"> {
  let summary = "The paged key/value cache of all attention layers";
  let description = [{
    Keys and values of every attention layer, stored in pages of `page_size`
    positions: `[num_pages][layers][page_size][kv_heads][head_dim]` each.
    The number of pages is a runtime choice and not part of the type.
  }];
  let parameters = (ins "int64_t":$layers, "int64_t":$kvHeads,
                        "int64_t":$headDim, "int64_t":$pageSize,
                        "::mlir::Type":$elementType);
  let assemblyFormat = [{
    `<` `layers` `=` $layers `,` `kv_heads` `=` $kvHeads `,` `head_dim` `=`
    $headDim `,` `page_size` `=` $pageSize `,` $elementType `>`
  }];
  let genVerifyDecl = 1;
}

def QTF_LinearStateType : QTF_Type<"LinearState", "linear_state"> {
  let summary = "Per-request state of the linear-attention (Gated DeltaNet) layers";
  let description = [{
    A pool of state slots, one per live request, each holding for every
    linear-attention layer the last `conv_window` pre-convolution channel
    values (`[conv_window][conv_channels]` in `elementType`) and the f32
    recurrent state (`[heads][key_dim][value_dim]`). The number of slots is a
    runtime choice and not part of the type; ops index it with `state_slots`.
  }];
  let parameters = (ins "int64_t":$layers, "int64_t":$convChannels,
                        "int64_t":$convWindow, "int64_t":$heads,
                        "int64_t":$keyDim, "int64_t":$valueDim,
                        "::mlir::Type":$elementType);
  let assemblyFormat = [{
    `<` `layers` `=` $layers `,` `conv_channels` `=` $convChannels `,`
    `conv_window` `=` $convWindow `,` `heads` `=` $heads `,` `key_dim` `=`
    $keyDim `,` `value_dim` `=` $valueDim `,` $elementType `>`
  }];
  let genVerifyDecl = 1;
}

#endif // QWEN_DIALECT_QTF_TYPES_TD
