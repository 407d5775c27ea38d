//===- QTFOps.td - qtf operations ---------------------------*- tablegen -*-===//
#ifndef QWEN_DIALECT_QTF_OPS_TD
#define QWEN_DIALECT_QTF_OPS_TD

include "qwen/Dialect/QTF/IR/QTFBase.td"
include "qwen/Dialect/QTF/IR/QTFTypes.td"
include "qwen/Dialect/QTF/IR/QTFAttrs.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"

def QTF_FloatTensor : RankedTensorOf<[AnyFloat]>;
def QTF_IndexTensor : RankedTensorOf<[I32]>;

//===----------------------------------------------------------------------===//
// Weights
//===----------------------------------------------------------------------===//

def QTF_WeightOp : QTF_Op<"weight", [Pure]> {
  let summary = "A checkpoint tensor, bound by the runtime at load time";
  let description = [{
    Names one or more checkpoint tensors. With several sources the weight is
    their concatenation along dimension 0, done once at load time (this is how
    q|k|v and gate|up are stacked). The result type is the layout the kernels
    see; the runtime converts the stored dtype when it differs.

    ```mlir
    %w = qtf.weight ["model.layers.0.mlp.down_proj.weight"] : tensor<64x192xbf16>
    ```
  }];
  let arguments = (ins StrArrayAttr:$sources);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$sources attr-dict `:` type($result)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Compute
//===----------------------------------------------------------------------===//

def QTF_EmbeddingOp : QTF_Op<"embedding", [Pure]> {
  let summary = "Rows of an embedding table selected by token ids";
  let arguments = (ins QTF_FloatTensor:$table, QTF_IndexTensor:$ids);
  let results = (outs QTF_FloatTensor:$result);
  let assemblyFormat = [{
    $table `[` $ids `]` attr-dict `:` type($table) `,` type($ids) `->` type($result)
  }];
  let hasVerifier = 1;
}

def QTF_RmsNormOp : QTF_Op<"rms_norm", [Pure]> {
  let summary = "RMSNorm over the last dimension";
  let description = [{
    `y = x * rsqrt(mean(x^2) + epsilon) * w`, statistics in f32. With
    `zero_centered` the scale is `(1 + w)` (Qwen3-Next / Qwen3.5 norms).
    Applied to `[T, H]` activations or per head to `[T, heads, head_dim]`.
  }];
  let arguments = (ins QTF_FloatTensor:$input, QTF_FloatTensor:$weight,
                       F64Attr:$epsilon, UnitAttr:$zero_centered);
  let results = (outs QTF_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $weight attr-dict `:` type($input) `,` type($weight) `->` type($result)
  }];
  let hasVerifier = 1;
}

def QTF_LinearOp : QTF_Op<"linear", [Pure, AttrSizedOperandSegments]> {
  let summary = "x @ W^T (+ bias), W stored [out, in] as in safetensors";
  let description = [{
    With `scale`, W is block-wise FP8 (FP8 checkpoints, `qwen-compile
    --weight-dtype=fp8`): f8E4M3FN elements and one f32 factor per
    `weight_block = [br, bc]` block, `weight_scale` of shape
    `[ceil(N / br), ceil(K / bc)]` (HF's `weight_scale_inv`), so that
    `W[n, k] = f32(W8[n, k]) * scale[n / br, k / bc]`. Kernels read the
    1-byte weights and apply the scales; nothing is dequantized in memory.

    ```mlir
    %y = qtf.linear %x, %w8 scale(%s : tensor<1x1xf32>)
           {weight_block = array<i64: 128, 128>}
         : tensor<?x64xf32>, tensor<96x64xf8E4M3FN> -> tensor<?x96xf32>
    ```
  }];
  let arguments = (ins QTF_FloatTensor:$input, QTF_FloatTensor:$weight,
                       Optional<F32Tensor>:$weight_scale,
                       Optional<QTF_FloatTensor>:$bias,
                       OptionalAttr<DenseI64ArrayAttr>:$weight_block);
  let results = (outs QTF_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $weight (`scale` `(` $weight_scale^ `:` type($weight_scale) `)`)?
    (`bias` $bias^)? attr-dict `:` type($input) `,` type($weight)
    (`,` type($bias)^)? `->` type($result)
  }];
  let builders = [
    // An unquantized linear (no scale).
    OpBuilder<(ins "::mlir::Type":$result, "::mlir::Value":$input,
                   "::mlir::Value":$weight, "::mlir::Value":$bias), [{
      build($_builder, $_state, result, input, weight, /*weight_scale=*/::mlir::Value(),
            bias, /*weight_block=*/::mlir::DenseI64ArrayAttr());
    }]>
  ];
  let extraClassDeclaration = [{
    /// True for a block-wise FP8 weight (a scale operand is present).
    bool isBlockQuantized() { return static_cast<bool>(getWeightScale()); }
  }];
  let hasVerifier = 1;
}

def QTF_SplitOp : QTF_Op<"split", [Pure]> {
  let summary = "Splits the last dimension into consecutive column blocks";
  let description = [{
    A view: codegen folds it into the consumers' addressing, no copy is made.
  }];
  let arguments = (ins QTF_FloatTensor:$input, DenseI64ArrayAttr:$sizes);
  let results = (outs Variadic<QTF_FloatTensor>:$results);
  let assemblyFormat = "$input $sizes attr-dict `:` type($input) `->` type($results)";
  let hasVerifier = 1;
}

def QTF_ReshapeOp : QTF_Op<"reshape", [Pure]> {
  let summary = "Splits or merges the trailing dimensions of row-major rows";
  let description = [{
    `[T, n*d] <-> [T, n, d]`: the leading dimension and each row's elements
    are unchanged, so this is a view as well.
  }];
  let arguments = (ins QTF_FloatTensor:$input);
  let results = (outs QTF_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

def QTF_RopeOp : QTF_Op<"rope", [Pure]> {
  let summary = "Rotary position embedding, NeoX (rotate-half) layout";
  let description = [{
    Rotates the first `rotary_dim` elements of each head, pairing element `i`
    with `i + rotary_dim/2`; the remaining elements pass through (partial
    RoPE). Frequencies are `theta^(-2i/rotary_dim)` in f32, or those of
    `scaling` (linear, dynamic NTK, yarn, llama3, longrope), whose
    `attention_factor` multiplies cos and sin.

    Dynamic and longrope frequencies depend on the sequence length L of the
    forward that computes the row, as in HF: one past the last position of
    the request's rows in this step. Those ops take `token_seq` to find the
    request's rows (contiguous in a ragged step).

    With `mrope_section = [t, h, w]` (interleaved MRoPE, Qwen3.5) positions are
    `[tokens, 3]` (temporal, height, width) and frequency `i` takes the height
    position if `i % 3 == 1 && i < 3h`, the width position if
    `i % 3 == 2 && i < 3w`, else the temporal one. For text all three are equal
    and this is plain RoPE.

    ```mlir
    %q = qtf.rope %x, %pos, %seq {rotary_dim = 16 : i64, theta = 1.0e+04 : f64,
           scaling = #qtf.rope_scaling<kind = dynamic, factor = 4.0,
                                       original_max_positions = 16>}
         : tensor<?x4x16xf32>, tensor<?xi32>, tensor<?xi32> -> tensor<?x4x16xf32>
    ```
  }];
  let arguments = (ins QTF_FloatTensor:$input, QTF_IndexTensor:$positions,
                       Optional<QTF_IndexTensor>:$token_seq,
                       F64Attr:$theta, I64Attr:$rotary_dim,
                       OptionalAttr<DenseI64ArrayAttr>:$mrope_section,
                       OptionalAttr<QTF_RopeScalingAttr>:$scaling);
  let results = (outs QTF_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $positions (`,` $token_seq^)? attr-dict `:` type($input) `,` type($positions)
    (`,` type($token_seq)^)? `->` type($result)
  }];
  let hasVerifier = 1;
}

def QTF_KVCacheWriteOp : QTF_Op<"kv_cache_write", [Pure, AllTypesMatch<["cache", "result"]>]> {
  let summary = "Stores the step's keys and values into their cache pages";
  let arguments = (ins QTF_KVCacheType:$cache, QTF_FloatTensor:$keys,
                       QTF_FloatTensor:$values, QTF_IndexTensor:$positions,
                       QTF_IndexTensor:$token_seq, QTF_IndexTensor:$block_table,
                       I64Attr:$layer);
  let results = (outs QTF_KVCacheType:$result);
  let assemblyFormat = [{
    $cache `[` $layer `]` `,` $keys `,` $values `,` $positions `,` $token_seq `,` $block_table
    attr-dict `:` type($cache) `,` type($keys) `,` type($values) `,` type($positions) `,`
    type($token_seq) `,` type($block_table)
  }];
  let hasVerifier = 1;
}

def QTF_PagedAttentionOp : QTF_Op<"paged_attention", [Pure]> {
  let summary = "Causal grouped-query attention over the paged KV cache";
  let description = [{
    Query `t` of sequence `token_seq[t]` at position `positions[t]` attends to
    positions `0..positions[t]` of its sequence, read from the pages listed in
    `block_table`. Query head `h` uses KV head `h / (heads / kv_heads)`.
    Softmax in f32 with scores scaled by `scale`.
  }];
  let arguments = (ins QTF_FloatTensor:$query, QTF_KVCacheType:$cache,
                       QTF_IndexTensor:$positions, QTF_IndexTensor:$token_seq,
                       QTF_IndexTensor:$block_table, I64Attr:$layer, F64Attr:$scale);
  let results = (outs QTF_FloatTensor:$result);
  let assemblyFormat = [{
    $query `,` $cache `[` $layer `]` `,` $positions `,` $token_seq `,` $block_table
    attr-dict `:` type($query) `,` type($cache) `,` type($positions) `,` type($token_seq)
    `,` type($block_table) `->` type($result)
  }];
  let hasVerifier = 1;
}

def QTF_SiluMulOp : QTF_Op<"silu_mul", [Pure, AllTypesMatch<["gate", "up", "result"]>]> {
  let summary = "silu(gate) * up, the SwiGLU activation";
  let arguments = (ins QTF_FloatTensor:$gate, QTF_FloatTensor:$up);
  let results = (outs QTF_FloatTensor:$result);
  let assemblyFormat = "$gate `,` $up attr-dict `:` type($result)";
}

def QTF_SigmoidMulOp : QTF_Op<"sigmoid_mul", [Pure, AllTypesMatch<["input", "result"]>]> {
  let summary = "input * sigmoid(gate): output gates of Qwen3-Next / Qwen3.5";
  let description = [{
    `gate` has the input's shape (the gated attention output) or one column
    that scales the whole row (the shared-expert gate of a MoE block).
  }];
  let arguments = (ins QTF_FloatTensor:$input, QTF_FloatTensor:$gate);
  let results = (outs QTF_FloatTensor:$result);
  let assemblyFormat = "$input `,` $gate attr-dict `:` type($input) `,` type($gate)";
  let hasVerifier = 1;
}

def QTF_AddOp : QTF_Op<"add", [Pure, AllTypesMatch<["lhs", "rhs", "result"]>]> {
  let summary = "Elementwise sum (residual connections)";
  let arguments = (ins QTF_FloatTensor:$lhs, QTF_FloatTensor:$rhs);
  let results = (outs QTF_FloatTensor:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` type($result)";
}

def QTF_GatherRowsOp : QTF_Op<"gather_rows", [Pure]> {
  let summary = "Selects rows (the positions whose logits are wanted)";
  let arguments = (ins QTF_FloatTensor:$input, QTF_IndexTensor:$rows);
  let results = (outs QTF_FloatTensor:$result);
  let assemblyFormat = [{
    $input `[` $rows `]` attr-dict `:` type($input) `,` type($rows) `->` type($result)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Linear attention (Gated DeltaNet)
//===----------------------------------------------------------------------===//

def QTF_CausalConv1dOp : QTF_Op<"causal_conv1d", [Pure, AllTypesMatch<["state", "new_state"]>]> {
  let summary = "Causal depthwise conv1d + SiLU over each request's tokens, with its window state";
  let description = [{
    `result[t, c] = silu(sum_j weight[c, j] * x[t - (K-1) + j, c])` with
    `K = conv_window + 1`, where `x` before the step's first token of a
    request comes from that request's state slot (`state_slots[token_seq[t]]`),
    zeros for a new request. Afterwards each slot holds the last
    `conv_window` inputs of its request (pre-convolution values).
  }];
  let arguments = (ins QTF_LinearStateType:$state, QTF_FloatTensor:$input,
                       QTF_FloatTensor:$weight, QTF_IndexTensor:$token_seq,
                       QTF_IndexTensor:$state_slots, I64Attr:$layer);
  let results = (outs QTF_FloatTensor:$result, QTF_LinearStateType:$new_state);
  let assemblyFormat = [{
    $state `[` $layer `]` `,` $input `,` $weight `,` $token_seq `,` $state_slots attr-dict
    `:` type($state) `,` type($input) `,` type($weight) `,` type($token_seq) `,`
    type($state_slots) `->` type($result)
  }];
  let hasVerifier = 1;
}

def QTF_GatedDeltaRuleOp : QTF_Op<"gated_delta_rule", [Pure, AllTypesMatch<["state", "new_state"]>]> {
  let summary = "The gated delta rule over each request's tokens, f32 state";
  let description = [{
    Per request and value head `h` (key head `h / (heads / key_heads)`), for
    each of its tokens in order, with `q, k` L2-normalized (eps 1e-6 on the
    sum of squares), `q *= scale`, `beta = sigmoid(b)` and
    `g = -exp(a_log) * softplus(a + dt_bias)`:
    `S = exp(g) S;  S += k (beta (v - S^T k))^T;  o = S^T q`.
    `S` (`[key_dim][value_dim]`, f32) starts from and ends in the request's
    state slot, so a step continues where the previous one stopped.
  }];
  let arguments = (ins QTF_LinearStateType:$state, QTF_FloatTensor:$query,
                       QTF_FloatTensor:$key, QTF_FloatTensor:$value,
                       QTF_FloatTensor:$a, QTF_FloatTensor:$b,
                       QTF_FloatTensor:$a_log, QTF_FloatTensor:$dt_bias,
                       QTF_IndexTensor:$token_seq, QTF_IndexTensor:$state_slots,
                       I64Attr:$layer, F64Attr:$scale);
  let results = (outs QTF_FloatTensor:$result, QTF_LinearStateType:$new_state);
  let assemblyFormat = [{
    $state `[` $layer `]` `,` $query `,` $key `,` $value `,` $a `,` $b `,` $a_log `,`
    $dt_bias `,` $token_seq `,` $state_slots attr-dict `:` type($state) `,` type($query)
    `,` type($key) `,` type($value) `,` type($a) `,` type($b) `,` type($a_log) `,`
    type($dt_bias) `,` type($token_seq) `,` type($state_slots) `->` type($result)
  }];
  let hasVerifier = 1;
}

def QTF_GatedRmsNormOp : QTF_Op<"gated_rms_norm", [Pure]> {
  let summary = "Per-head RMSNorm times silu(gate) (Gated DeltaNet output norm)";
  let description = [{
    `y = x * rsqrt(mean(x^2) + epsilon) * w * silu(gate)` over the last
    dimension, all in f32; `w` (not zero-centred) is shared by all heads.
  }];
  let arguments = (ins QTF_FloatTensor:$input, QTF_FloatTensor:$gate,
                       QTF_FloatTensor:$weight, F64Attr:$epsilon);
  let results = (outs QTF_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $gate `,` $weight attr-dict `:` type($input) `,` type($gate) `,`
    type($weight) `->` type($result)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Mixture of experts
//===----------------------------------------------------------------------===//

def QTF_MoeRouterOp : QTF_Op<"moe_router", [Pure]> {
  let summary = "Softmax over all experts in f32, top-k, optional renormalization";
  let description = [{
    From router logits `[T, E]`: `p = softmax(logits)` over all experts,
    `ids, w = topk(p, top_k)` (largest first), and with `normalize`
    `w = w / sum(w)` (Qwen3-MoE's `norm_topk_prob`).
  }];
  let arguments = (ins QTF_FloatTensor:$logits, I64Attr:$top_k, UnitAttr:$normalize);
  let results = (outs QTF_IndexTensor:$ids, QTF_FloatTensor:$weights);
  let assemblyFormat = [{
    $logits attr-dict `:` type($logits) `->` type($ids) `,` type($weights)
  }];
  let hasVerifier = 1;
}

def QTF_MoeExpertFfnOp : QTF_Op<"moe_expert_ffn", [Pure, AttrSizedOperandSegments]> {
  let summary = "Routed SwiGLU experts, one output row per (token, choice) slot";
  let description = [{
    `result[t, j] = weights[t, j] * down_e(silu(gate_e(x_t)) * up_e(x_t))` with
    `e = ids[t, j]`. `gate_up` stacks every expert's gate rows then up rows:
    `[E * 2I, H]`; `down` is `[E * H, I]`. Codegen groups the slots by expert
    so each expert's weights are streamed once per step, not once per token.

    With scales, the experts are block-wise FP8 (f8E4M3FN weights, one f32
    factor per `weight_block = [br, bc]` block of each expert matrix, HF's
    `weight_scale_inv`): every gate, up and down matrix has its own blocks,
    so `gate_up_scale` is `[E * 2 * ceil(I / br), ceil(H / bc)]` (expert e's
    gate blocks, then its up blocks) and `down_scale` is
    `[E * ceil(H / br), ceil(I / bc)]`. Kernels read the 1-byte weights and
    apply the scales in registers.

    ```mlir
    %y = qtf.moe_expert_ffn %x, %ids, %w, %gu8 scale(%gus : tensor<16x2xf32>),
           %d8 scale(%ds : tensor<8x1xf32>) {intermediate_size = 16 : i64,
           num_experts = 4 : i64, weight_block = array<i64: 16, 16>} : ...
    ```
  }];
  let arguments = (ins QTF_FloatTensor:$input, QTF_IndexTensor:$ids,
                       QTF_FloatTensor:$weights, QTF_FloatTensor:$gate_up,
                       Optional<F32Tensor>:$gate_up_scale,
                       QTF_FloatTensor:$down, Optional<F32Tensor>:$down_scale,
                       I64Attr:$num_experts, I64Attr:$intermediate_size,
                       OptionalAttr<DenseI64ArrayAttr>:$weight_block);
  let results = (outs QTF_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $ids `,` $weights `,` $gate_up
    (`scale` `(` $gate_up_scale^ `:` type($gate_up_scale) `)`)? `,` $down
    (`scale` `(` $down_scale^ `:` type($down_scale) `)`)? attr-dict `:` type($input) `,`
    type($ids) `,` type($weights) `,` type($gate_up) `,` type($down) `->` type($result)
  }];
  let builders = [
    // Unquantized experts (no scales).
    OpBuilder<(ins "::mlir::Type":$result, "::mlir::Value":$input, "::mlir::Value":$ids,
                   "::mlir::Value":$weights, "::mlir::Value":$gate_up, "::mlir::Value":$down,
                   "::mlir::IntegerAttr":$num_experts,
                   "::mlir::IntegerAttr":$intermediate_size), [{
      build($_builder, $_state, result, input, ids, weights, gate_up, ::mlir::Value(), down,
            ::mlir::Value(), num_experts, intermediate_size, ::mlir::DenseI64ArrayAttr());
    }]>
  ];
  let extraClassDeclaration = [{
    /// True for block-wise FP8 experts (scale operands are present).
    bool isBlockQuantized() { return static_cast<bool>(getGateUpScale()); }
  }];
  let hasVerifier = 1;
}

def QTF_MoeCombineOp : QTF_Op<"moe_combine", [Pure]> {
  let summary = "Sums each token's expert slots: [T, k, H] -> [T, H]";
  let arguments = (ins QTF_FloatTensor:$slots);
  let results = (outs QTF_FloatTensor:$result);
  let assemblyFormat = "$slots attr-dict `:` type($slots) `->` type($result)";
  let hasVerifier = 1;
}

def QTF_MultimodalEmbeddingOp : QTF_Op<"multimodal_embedding", [Pure]> {
  let summary = "Embedding rows, with image embeddings in place of image tokens";
  let description = [{
    `result[t] = image_rows[t] < 0 ? table[ids[t]] : image_embeds[image_rows[t]]`.
    The language model of a vision-language checkpoint (Qwen3.5) takes the
    vision tower's output rows in place of the embeddings of its
    `<|image_pad|>` tokens (HF's `masked_scatter`); `image_rows` names, per
    token, the row of `image_embeds` that replaces it (-1: none). The image
    rows are f32 whatever the table's dtype.
  }];
  let arguments = (ins QTF_FloatTensor:$table, QTF_IndexTensor:$ids,
                       QTF_IndexTensor:$image_rows, QTF_FloatTensor:$image_embeds);
  let results = (outs QTF_FloatTensor:$result);
  let assemblyFormat = [{
    $table `[` $ids `]` `,` $image_embeds `[` $image_rows `]` attr-dict `:` type($table) `,`
    type($ids) `,` type($image_embeds) `,` type($image_rows) `->` type($result)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Vision encoder (Qwen3-VL / Qwen3.5 ViT)
//===----------------------------------------------------------------------===//

def QTF_GeluApproximation : I32EnumAttr<"GeluApproximation",
    "how a GELU evaluates the normal CDF (HF hidden_act)", [
      I32EnumAttrCase<"Erf", 0, "erf">,
      I32EnumAttrCase<"Tanh", 1, "tanh">]> {
  let cppNamespace = "::qwen::qtf";
  let genSpecializedAttr = 0;
}

def QTF_GeluApproximationAttr
    : EnumAttr<QTF_Dialect, QTF_GeluApproximation, "gelu_approximation"> {
  let assemblyFormat = "`<` $value `>`";
}

def QTF_LayerNormOp : QTF_Op<"layer_norm", [Pure]> {
  let summary = "LayerNorm with weight and bias over the last dimension";
  let description = [{
    `y = (x - mean(x)) * rsqrt(var(x) + epsilon) * w + b`, the biased
    variance, statistics in f32 (torch.nn.LayerNorm). Applied to `[T, H]` rows.

    ```mlir
    %y = qtf.layer_norm %x, %w, %b {epsilon = 1.0e-06 : f64}
         : tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32> -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins QTF_FloatTensor:$input, QTF_FloatTensor:$weight,
                       QTF_FloatTensor:$bias, F64Attr:$epsilon);
  let results = (outs QTF_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $weight `,` $bias attr-dict `:` type($input) `,` type($weight) `,`
    type($bias) `->` type($result)
  }];
  let hasVerifier = 1;
}


def QTF_GeluOp : QTF_Op<"gelu", [Pure, AllTypesMatch<["input", "result"]>]> {
  let summary = "GELU, exact (erf) or tanh-approximated";
  let description = [{
    `erf`:  `x / 2 * (1 + erf(x / sqrt(2)))` (torch.nn.GELU()).
    `tanh`: `x / 2 * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 x^3)))`
    (HF `gelu_pytorch_tanh`).

    ```mlir
    %y = qtf.gelu %x {approximation = #qtf.gelu_approximation<tanh>} : tensor<?x64xf32>
    ```
  }];
  let arguments = (ins QTF_FloatTensor:$input, QTF_GeluApproximationAttr:$approximation);
  let results = (outs QTF_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
}

def QTF_RotaryEmbeddingOp : QTF_Op<"rotary_embedding", [Pure]> {
  let summary = "Rotate-half RoPE with per-row cos / sin given as inputs";
  let description = [{
    For `x` of `[T, heads, head_dim]` and `cos`, `sin` of `[T, head_dim / 2]`
    (row `t`'s angles, shared by every head):
    `y[i] = x[i] cos[i] - x[i + d/2] sin[i]`,
    `y[i + d/2] = x[i + d/2] cos[i] + x[i] sin[i]`, in f32. The vision tower's
    2-D (row, column) angles depend on each image's grid, so the runtime
    computes them as HF's `rot_pos_emb` does and passes the tables in.

    ```mlir
    %y = qtf.rotary_embedding %x, %cos, %sin
         : tensor<?x4x16xf32>, tensor<?x8xf32>, tensor<?x8xf32> -> tensor<?x4x16xf32>
    ```
  }];
  let arguments = (ins QTF_FloatTensor:$input, QTF_FloatTensor:$cos, QTF_FloatTensor:$sin);
  let results = (outs QTF_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $cos `,` $sin attr-dict `:` type($input) `,` type($cos) `,` type($sin)
    `->` type($result)
  }];
  let hasVerifier = 1;
}

def QTF_SegmentAttentionOp : QTF_Op<"segment_attention", [Pure]> {
  let summary = "Non-causal multi-head attention within each token's segment";
  let description = [{
    Query `t` attends to every key `s` with
    `segment_bounds[t][0] <= s < segment_bounds[t][1]` (its image's patches:
    block-diagonal attention, HF's `cu_seqlens`), head by head, softmax in f32
    with scores scaled by `scale`. `query`, `key`, `value` and the result are
    `[T, heads, head_dim]`.

    ```mlir
    %o = qtf.segment_attention %q, %k, %v, %bounds {scale = 0.25 : f64}
         : tensor<?x4x16xf32>, tensor<?x4x16xf32>, tensor<?x4x16xf32>, tensor<?x2xi32>
         -> tensor<?x4x16xf32>
    ```
  }];
  let arguments = (ins QTF_FloatTensor:$query, QTF_FloatTensor:$key, QTF_FloatTensor:$value,
                       QTF_IndexTensor:$segment_bounds, F64Attr:$scale);
  let results = (outs QTF_FloatTensor:$result);
  let assemblyFormat = [{
    $query `,` $key `,` $value `,` $segment_bounds attr-dict `:` type($query) `,`
    type($key) `,` type($value) `,` type($segment_bounds) `->` type($result)
  }];
  let hasVerifier = 1;
}

def QTF_WeightedGatherOp : QTF_Op<"weighted_gather", [Pure]> {
  let summary = "Weighted sum of table rows (interpolated position embeddings)";
  let description = [{
    `result[t] = sum_j weights[t][j] * table[indices[t][j]]`, `j` in
    increasing order, in f32. With the 4 taps and bilinear weights HF's
    `fast_pos_embed_interpolate` computes per patch, this resamples the
    learned position-embedding grid to an image's patch grid.

    ```mlir
    %p = qtf.weighted_gather %table[%idx], %w
         : tensor<256x64xf32>, tensor<?x4xi32>, tensor<?x4xf32> -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins QTF_FloatTensor:$table, QTF_IndexTensor:$indices,
                       QTF_FloatTensor:$weights);
  let results = (outs QTF_FloatTensor:$result);
  let assemblyFormat = [{
    $table `[` $indices `]` `,` $weights attr-dict `:` type($table) `,` type($indices) `,`
    type($weights) `->` type($result)
  }];
  let hasVerifier = 1;
}

def QTF_MergeRowsOp : QTF_Op<"merge_rows", [Pure]> {
  let summary = "Concatenates each group of `factor` consecutive rows";
  let description = [{
    `[T, H] -> [T / factor, factor * H]`: row `m` of the result is rows
    `factor m .. factor m + factor - 1` of the input side by side (the patch
    merger's 2x2 blocks, consecutive in HF's patch order). Row-major memory
    is unchanged, so this is a view; the leading dimension is a new symbol.

    ```mlir
    %m = qtf.merge_rows %x {factor = 4 : i64} : tensor<?x64xf32> -> tensor<?x256xf32>
    ```
  }];
  let arguments = (ins QTF_FloatTensor:$input, I64Attr:$factor);
  let results = (outs QTF_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

#endif // QWEN_DIALECT_QTF_OPS_TD
