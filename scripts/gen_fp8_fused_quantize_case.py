#!/usr/bin/env python3
"""The `qwen-compile --weight-dtype=fp8` case of fused experts.

Developer tool (torch + transformers, as scripts/gen_reference.py; never run
at build or test time). Writes test/data/reference/fp8_quantize_fused_f32:

  model.safetensors  a tiny random Qwen3.5-MoE text model (f32, one full
                     attention layer, hidden 128, 2 experts of
                     moe_intermediate 128, fused experts on disk:
                     experts.gate_up_proj [2, 256, 128], down_proj
                     [2, 128, 128]), as save_pretrained writes it
  config.json        its config
  hf_fp8.safetensors what transformers' own FineGrainedFP8 quantizer
                     (Fp8Quantize._quantize_one, 128 x 128 blocks) makes of
                     every tensor qwen-compile --weight-dtype=fp8 quantizes:
                     the fused experts per expert matrix (`<name>_scale_inv`
                     [E, rows / 128, cols / 128]) and the 2-D decoder linears
                     the block divides (`.weight_scale_inv`)

Usage: .venv-ref/bin/python scripts/gen_fp8_fused_quantize_case.py
"""
import json
import os
import shutil
import tempfile
import types

import torch
import transformers
from safetensors.torch import load_file, save_file
from transformers.integrations.finegrained_fp8 import Fp8Quantize

REF_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "data", "reference")
NAME = "fp8_quantize_fused_f32"
BLOCK = (128, 128)


def hf_quantize(name, t):
    qc = types.SimpleNamespace(weight_block_size=list(BLOCK), scale_fmt=None)
    return Fp8Quantize(types.SimpleNamespace(quantization_config=qc))._quantize_one(name, t)


@torch.no_grad()
def main():
    torch.manual_seed(1304)
    config = transformers.Qwen3_5MoeTextConfig(
        vocab_size=320, hidden_size=128, num_hidden_layers=1, layer_types=["full_attention"],
        num_attention_heads=2, num_key_value_heads=1, head_dim=32, moe_intermediate_size=128,
        shared_expert_intermediate_size=128, num_experts=2, num_experts_per_tok=2,
        max_position_embeddings=64, initializer_range=0.15, tie_word_embeddings=False,
        dtype="float32")
    model = transformers.Qwen3_5MoeForCausalLM(config).float().eval()
    out = os.path.join(REF_DIR, NAME)
    shutil.rmtree(out, ignore_errors=True)
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        # save_pretrained splits the experts per expert; the released
        # Qwen3.5-MoE checkpoints (and the model in memory) are fused.
        st = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        os.makedirs(out)
        for f in ("config.json", "generation_config.json"):
            if os.path.exists(os.path.join(tmp, f)):
                shutil.copy(os.path.join(tmp, f), out)
    fused = [k for k in st if k.endswith("experts.gate_up_proj") or k.endswith("experts.down_proj")]
    assert len(fused) == 2 and all(st[k].dim() == 3 for k in fused), sorted(st)
    expected = {}
    for k, t in st.items():
        if ".layers." not in k or not (t.dim() == 3 and k in fused or t.dim() == 2 and k.endswith(".weight")):
            continue
        got = hf_quantize(k, t.float())
        if len(got) == 2:
            expected.update({n: v.contiguous() for n, v in got.items()})
    save_file(st, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    save_file(expected, os.path.join(out, "hf_fp8.safetensors"),
              metadata={"generator": "scripts/gen_fp8_fused_quantize_case.py; transformers "
                                     f"{transformers.__version__}; torch {torch.__version__}"})
    print(NAME, {k: (str(v.dtype), list(v.shape)) for k, v in expected.items()})


if __name__ == "__main__":
    main()
