//===- QKernelAttrs.td - kernel kinds and launch geometry ---*- tablegen -*-===//
//
// The kind of a kernel (the codegen family every target provides) and the
// launch of a generated kernel: its grid, block, shared memory, the decode
// and split-combine variants and whether it may be launched
// programmatically. Codegen writes #qkernel.launch once; the manifest writer
// serializes it with one function (lib/Target/Common/Manifest.cpp) whose
// field names and limits the runtime's parser shares
// (include/qwen_rt/launch_schema.h).
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_DIALECT_QKERNEL_ATTRS_TD
#define QWEN_DIALECT_QKERNEL_ATTRS_TD

include "qwen/Dialect/QKernel/IR/QKernelDialect.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"
// #qkernel.schedule: generated with these attributes (one parser and printer).
include "qwen/Dialect/QKernel/IR/QKernelSchedule.td"

//===----------------------------------------------------------------------===//
// KernelKind
//===----------------------------------------------------------------------===//

def QKernel_KernelKind : I32EnumAttr<"KernelKind", "codegen family of a kernel", [
    I32EnumAttrCase<"Matmul", 0, "matmul">,
    I32EnumAttrCase<"Rows", 1, "rows">,
    I32EnumAttrCase<"Attention", 2, "attention">,
    I32EnumAttrCase<"KVWrite", 3, "kv_write">,
    I32EnumAttrCase<"Embedding", 4, "embedding">,
    I32EnumAttrCase<"Elementwise", 5, "elementwise">,
    I32EnumAttrCase<"Router", 6, "router">,
    I32EnumAttrCase<"Experts", 7, "experts">,
    I32EnumAttrCase<"Conv", 8, "conv">,
    I32EnumAttrCase<"DeltaRule", 9, "delta_rule">,
    I32EnumAttrCase<"GatedNorm", 10, "gated_norm">,
    // Kinds codegen creates, never fusion: the gather / convert prologue of
    // a cuBLASLt GEMM (passes/Codegen/GPU/MatmulLaunch.cpp).
    I32EnumAttrCase<"GemmPack", 11, "gemm_pack">,
    // The vision encoder's families (passes/Codegen/Common/VisionFamilies.h).
    I32EnumAttrCase<"LayerNorm", 12, "layer_norm">,
    I32EnumAttrCase<"Gelu", 13, "gelu">,
    I32EnumAttrCase<"Rotary", 14, "rotary">,
    I32EnumAttrCase<"WeightedGather", 15, "weighted_gather">,
    I32EnumAttrCase<"SegmentAttention", 16, "segment_attention">
  ]> {
  let cppNamespace = "::qwen::qkernel";
  let genSpecializedAttr = 0;
}

def QKernel_KernelKindAttr : EnumAttr<QKernel_Dialect, QKernel_KernelKind, "kind"> {
  let summary = "Codegen family of a kernel region or an outlined kernel";
  // `#qkernel.kind<matmul>` alone, `qkernel.region <matmul>` in an op.
  let assemblyFormat = "`<` $value `>`";
}

//===----------------------------------------------------------------------===//
// Launch geometry
//===----------------------------------------------------------------------===//

class QKernel_Attr<string name, string attrMnemonic, list<Trait> traits = []>
    : AttrDef<QKernel_Dialect, name, traits> {
  let mnemonic = attrMnemonic;
}

def QKernel_KernelVariantAttr : QKernel_Attr<"KernelVariant", "variant"> {
  let summary = "Another generated kernel launched for a program entry";
  let description = [{
    A kernel named `kernel` in the GPU module, launched on `grid` (factors:
    the step symbols T, B, P, R and positive integers, multiplied) blocks of
    `block` threads with `shared` bytes of static shared memory.

    ```mlir
    #qkernel.variant<"qk3_attention_decode", grid = [B, 8], block = 128, shared = 2064>
    ```
  }];
  let parameters = (ins "::mlir::StringAttr":$kernel, "::mlir::ArrayAttr":$grid,
                        "int64_t":$block, "int64_t":$shared);
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
}

def QKernel_LaunchAttr : QKernel_Attr<"Launch", "launch"> {
  let summary = "Launch geometry of a kernel, decided by target codegen";
  let description = [{
    `grid` factors (step symbols T, B, P, R and positive integers) multiply
    to the number of work items: CPU row ranges, GPU blocks. A generated
    GPU kernel also has `block` threads (1 to 1024) and `shared` bytes of
    static shared memory (at most 48 KiB); a CPU launch has neither.

    `decode` is the kernel the runtime launches instead on decode-only steps
    (every request one token). It splits the context into up to
    `max_splits` parts, each writing `partial_floats` floats per token;
    with `max_splits` > 1 the `combine` kernel merges them, and the runtime
    never cuts the context into splits of fewer than `split_keys` positions
    (the schedule's choice; the count also depends on the step's context and
    the device, so the runtime picks it within these bounds).

    `programmatic`: every kernel of the launch waits for the grids before it
    (griddepcontrol.wait), so the runtime may use programmatic dependent
    launch.

    ```mlir
    #qkernel.launch<grid = [T, 4]>
    #qkernel.launch<grid = [T, 8], block = 256, shared = 1056,
                    decode = <"qk3_attention_decode", grid = [B, 8], block = 128, shared = 2064>,
                    max_splits = 16, partial_floats = 1040,
                    combine = <"qk3_attention_decode_combine", grid = [B, 8], block = 128, shared = 0>,
                    split_keys = 64, programmatic>
    ```
  }];
  let parameters = (ins "::mlir::ArrayAttr":$grid,
                        DefaultValuedParameter<"int64_t", "0">:$block,
                        DefaultValuedParameter<"int64_t", "0">:$shared,
                        OptionalParameter<"KernelVariantAttr">:$decode,
                        DefaultValuedParameter<"int64_t", "0">:$maxSplits,
                        DefaultValuedParameter<"int64_t", "0">:$partialFloats,
                        OptionalParameter<"KernelVariantAttr">:$combine,
                        DefaultValuedParameter<"bool", "false">:$programmatic,
                        DefaultValuedParameter<"int64_t", "0">:$splitKeys);
  let builders = [
    AttrBuilder<(ins "::mlir::ArrayAttr":$grid), [{
      return $_get($_ctxt, grid, 0, 0, KernelVariantAttr(), 0, 0, KernelVariantAttr(), false, 0);
    }]>
  ];
  let extraClassDeclaration = [{
    /// A generated GPU kernel (block threads and shared memory), not a CPU
    /// row range.
    bool isGpu() const { return getBlock() > 0; }
    /// The same launch with the programmatic flag set to `flag`.
    LaunchAttr withProgrammatic(bool flag) const;
  }];
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
}

#endif // QWEN_DIALECT_QKERNEL_ATTRS_TD
