//===- QTFAttrs.td - qtf attributes -------------------------*- tablegen -*-===//
#ifndef QWEN_DIALECT_QTF_ATTRS_TD
#define QWEN_DIALECT_QTF_ATTRS_TD

include "qwen/Dialect/QTF/IR/QTFBase.td"
include "mlir/IR/EnumAttr.td"

//===----------------------------------------------------------------------===//
// RoPE scaling
//===----------------------------------------------------------------------===//

def QTF_RopeScalingKind : I32EnumAttr<"RopeScalingKind",
    "how a scaled RoPE derives its frequencies (HF rope_type)", [
      I32EnumAttrCase<"Linear", 0, "linear">,
      I32EnumAttrCase<"Dynamic", 1, "dynamic">,
      I32EnumAttrCase<"Yarn", 2, "yarn">,
      I32EnumAttrCase<"Llama3", 3, "llama3">,
      I32EnumAttrCase<"LongRope", 4, "longrope">]> {
  let cppNamespace = "::qwen::qtf";
  let genSpecializedAttr = 0;
}

/// An IEEE double (APFloat, which hashes), printed so it parses back exactly.
class QTF_F64Parameter<string desc, string default>
    : AttrOrTypeParameter<"::llvm::APFloat", desc> {
  let parser = [{ [&]() -> ::mlir::FailureOr<::llvm::APFloat> {
      double value;
      if (::mlir::failed($_parser.parseFloat(value)))
        return ::mlir::failure();
      return ::llvm::APFloat(value);
    }() }];
  let printer = [{ $_printer.printFloat($_self) }];
  let comparator = "$_lhs.bitwiseIsEqual($_rhs)";
  let defaultValue = "::llvm::APFloat(" # default # ")";
}

class QTF_BoolParameter<string desc, string default>
    : AttrOrTypeParameter<"bool", desc> {
  let parser = [{ [&]() -> ::mlir::FailureOr<bool> {
      if (::mlir::succeeded($_parser.parseOptionalKeyword("true")))
        return true;
      if (::mlir::failed($_parser.parseKeyword("false")))
        return ::mlir::failure();
      return false;
    }() }];
  let printer = [{ $_printer << ($_self ? "true" : "false") }];
  let defaultValue = default;
}

/// An optional f64 array, written `[1.0, 2.5]` (as it prints stripped).
class QTF_F64ArrayParameter<string desc>
    : OptionalParameter<"::mlir::DenseF64ArrayAttr", desc> {
  let parser = [{ [&]() -> ::mlir::FailureOr<::mlir::DenseF64ArrayAttr> {
      auto array = ::llvm::dyn_cast_or_null<::mlir::DenseF64ArrayAttr>(
          ::mlir::DenseF64ArrayAttr::parse($_parser, ::mlir::Type()));
      if (!array)
        return ::mlir::failure();
      return array;
    }() }];
}

def QTF_RopeScalingAttr : AttrDef<QTF_Dialect, "RopeScaling"> {
  let mnemonic = "rope_scaling";
  let summary = "How a scaled RoPE derives its inverse frequencies";
  let description = [{
    The resolved `rope_scaling` / `rope_parameters` of a HF config (defaults
    applied, so every parameter here is the value HF computes with). Only the
    parameters of `kind` are meaningful:

    - `linear`: inverse frequencies divided by `factor`.
    - `dynamic` (NTK): while the step's sequence length L (one past the last
      position of the request's rows in the step) exceeds
      `original_max_positions` (HF: `max_position_embeddings`), the base is
      `theta * (factor * L / original - (factor - 1))^(d / (d - 2))`.
    - `yarn`: interpolation blended with extrapolation over the dimensions
      between the correction bounds of `beta_fast` / `beta_slow`
      (floored / ceiled when `truncate`), over `original_max_positions`.
    - `llama3`: wavelengths above `original / low_freq_factor` divided by
      `factor`, below `original / high_freq_factor` kept, smoothed between.
    - `longrope`: `1 / (ext_i * theta^(2i/d))` with `ext = long_factor`
      while L exceeds `original_max_positions`, else `short_factor`.

    cos and sin are multiplied by `attention_factor` (1 except yarn and
    longrope), as HF's `attention_scaling`.

    ```mlir
    #qtf.rope_scaling<kind = yarn, factor = 4.0, original_max_positions = 32768,
                      attention_factor = 1.1386294361119891>
    ```
  }];
  let parameters = (ins
    EnumParameter<QTF_RopeScalingKind>:$kind,
    QTF_F64Parameter<"scaling factor", "1.0">:$factor,
    DefaultValuedParameter<"int64_t", "0", "pretraining context">:$original_max_positions,
    QTF_F64Parameter<"multiplies cos and sin", "1.0">:$attention_factor,
    QTF_F64Parameter<"yarn: fast correction rotations", "32.0">:$beta_fast,
    QTF_F64Parameter<"yarn: slow correction rotations", "1.0">:$beta_slow,
    QTF_BoolParameter<"yarn: integral correction bounds", "true">:$truncate,
    QTF_F64Parameter<"llama3: low-frequency factor", "1.0">:$low_freq_factor,
    QTF_F64Parameter<"llama3: high-frequency factor", "4.0">:$high_freq_factor,
    QTF_F64ArrayParameter<"longrope: short factors">:$short_factor,
    QTF_F64ArrayParameter<"longrope: long factors">:$long_factor);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// Whether the frequencies depend on the step's sequence length
    /// (dynamic, longrope), so the kernel needs the request's rows.
    bool dependsOnLength() const {
      return getKind() == RopeScalingKind::Dynamic || getKind() == RopeScalingKind::LongRope;
    }
    /// The parameters as doubles.
    double factor() const { return getFactor().convertToDouble(); }
    double attentionFactor() const { return getAttentionFactor().convertToDouble(); }
  }];
}

#endif // QWEN_DIALECT_QTF_ATTRS_TD
