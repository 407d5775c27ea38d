#!/usr/bin/env python3
"""Writes a Qwen3 dense checkpoint (bf16/f16/f32 safetensors + tokenizer.json)
as a GGUF file for llama-server, with numpy and llama.cpp's own gguf-py only.

llama.cpp's convert_hf_to_gguf.py does the same but imports torch and
transformers; this is the subset it does for Qwen3 (same tensor names and
metadata, 2-D weights kept in their dtype, norms in f32, the byte-level BPE
vocabulary and merges with pre-tokenizer "qwen2"), for benchmarking
`llama-server` against `qwen-run serve` on the same weights.

usage: qwen3_to_gguf.py CHECKPOINT_DIR OUT.gguf --gguf-py LLAMA_CPP/gguf-py
"""
import argparse
import json
import os
import struct
import sys

import numpy as np


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        base = 8 + n
    data = np.memmap(path, dtype=np.uint8, mode="r")
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = data[base + begin:base + end]
        dtype = {"BF16": np.uint16, "F16": np.float16, "F32": np.float32}[info["dtype"]]
        tensors[name] = (info["dtype"], raw.view(dtype).reshape(info["shape"]))
    return tensors


def to_f32(dtype, array):
    if dtype == "BF16":
        return (array.astype(np.uint32) << 16).view(np.float32)
    return array.astype(np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("output")
    ap.add_argument("--gguf-py", required=True, help="llama.cpp's gguf-py folder")
    args = ap.parse_args()
    sys.path.insert(0, args.gguf_py)
    import gguf

    cfg = json.load(open(os.path.join(args.checkpoint, "config.json")))
    if cfg.get("model_type") != "qwen3":
        sys.exit(f"only Qwen3 dense checkpoints, got {cfg.get('model_type')}")
    tok = json.load(open(os.path.join(args.checkpoint, "tokenizer.json"), encoding="utf-8"))
    tensors = {}
    for name in sorted(os.listdir(args.checkpoint)):
        if name.endswith(".safetensors"):
            tensors.update(read_safetensors(os.path.join(args.checkpoint, name)))

    w = gguf.GGUFWriter(args.output, "qwen3")
    w.add_name(os.path.basename(os.path.normpath(args.checkpoint)))
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv(cfg["num_key_value_heads"])
    head_dim = cfg.get("head_dim", cfg["hidden_size"] // cfg["num_attention_heads"])
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    w.add_rope_freq_base(cfg["rope_theta"])
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_file_type(gguf.LlamaFileType.MOSTLY_BF16)

    # Vocabulary: the BPE vocab and the added tokens, padded to vocab_size.
    vocab_size = cfg["vocab_size"]
    tokens = [f"[PAD{i}]" for i in range(vocab_size)]
    types = [gguf.TokenType.UNUSED] * vocab_size
    for text, i in tok["model"]["vocab"].items():
        tokens[i], types[i] = text, gguf.TokenType.NORMAL
    for added in tok.get("added_tokens", []):
        i = added["id"]
        tokens[i] = added["content"]
        types[i] = gguf.TokenType.CONTROL if added.get("special") else gguf.TokenType.USER_DEFINED
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    eos = cfg.get("eos_token_id")
    w.add_eos_token_id(eos[0] if isinstance(eos, list) else eos)
    w.add_bos_token_id(cfg.get("bos_token_id", 151643))
    w.add_pad_token_id(cfg.get("bos_token_id", 151643))
    w.add_add_bos_token(False)
    tc = os.path.join(args.checkpoint, "tokenizer_config.json")
    if os.path.exists(tc) and isinstance(json.load(open(tc)).get("chat_template"), str):
        w.add_chat_template(json.load(open(tc))["chat_template"])

    names = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
             "self_attn.o_proj": "attn_output", "self_attn.q_norm": "attn_q_norm",
             "self_attn.k_norm": "attn_k_norm", "input_layernorm": "attn_norm",
             "post_attention_layernorm": "ffn_norm", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
             "mlp.down_proj": "ffn_down"}
    for hf_name, (dtype, array) in tensors.items():
        if hf_name == "model.embed_tokens.weight":
            out = "token_embd.weight"
        elif hf_name == "model.norm.weight":
            out = "output_norm.weight"
        elif hf_name == "lm_head.weight":
            if cfg.get("tie_word_embeddings"):
                continue
            out = "output.weight"
        else:
            parts = hf_name.split(".")  # model.layers.N.<module...>.weight
            out = f"blk.{parts[2]}.{names['.'.join(parts[3:-1])]}.weight"
        if array.ndim == 1:
            w.add_tensor(out, to_f32(dtype, array))
        elif dtype == "BF16":
            w.add_tensor(out, np.ascontiguousarray(array), raw_dtype=gguf.GGMLQuantizationType.BF16)
        else:
            w.add_tensor(out, np.ascontiguousarray(array))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"wrote {args.output}: {len(tensors)} tensors, {vocab_size} tokens, {len(merges)} merges")


if __name__ == "__main__":
    main()
