#!/usr/bin/env python3
"""CPU timing of the vision tower (qwen-compile --vision) at a given vision_config.

    /work/.venv-ref/bin/python bench/vision_tower_bench.py WORK_DIR IMAGE [--depth 24 --hidden 1024
        --heads 16 --intermediate 4096 --out-hidden 1024 --dtype bf16 --max-pixels N]

Writes WORK_DIR/ckpt: a Qwen3_5ForConditionalGeneration config.json with that vision_config and a
tiny text model, random weights for every tensor (model.safetensors) and a preprocessor_config.json
(Qwen3.5's, longest_edge = --max-pixels); compiles it with --vision and runs qwen-vision-embed on
IMAGE, which prints the vision program's time (weights bound beforehand)."""
import argparse
import json
import os
import subprocess

import torch
import transformers
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("QWEN_BIN", os.path.join(ROOT, "build", "bin"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("work")
    ap.add_argument("image")
    ap.add_argument("--depth", type=int, default=24)
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--intermediate", type=int, default=4096)
    ap.add_argument("--out-hidden", type=int, default=1024)
    ap.add_argument("--dtype", default="bf16", choices=["bf16", "f32"])
    ap.add_argument("--max-pixels", type=int, default=512 * 512)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    ckpt = os.path.join(a.work, "ckpt")
    os.makedirs(ckpt, exist_ok=True)
    vision = dict(depth=a.depth, hidden_size=a.hidden, intermediate_size=a.intermediate,
                  num_heads=a.heads, out_hidden_size=a.out_hidden, patch_size=16,
                  temporal_patch_size=2, spatial_merge_size=2, num_position_embeddings=2304)
    text = dict(hidden_size=a.out_hidden, intermediate_size=64, num_hidden_layers=1,
                num_attention_heads=2, num_key_value_heads=1, head_dim=64, vocab_size=320,
                layer_types=["full_attention"], linear_num_key_heads=2, linear_num_value_heads=2,
                linear_key_head_dim=16, linear_value_head_dim=16)
    dtype = torch.bfloat16 if a.dtype == "bf16" else torch.float32
    cfg = transformers.Qwen3_5Config(text_config=text, vision_config=vision)
    cfg.architectures = ["Qwen3_5ForConditionalGeneration"]
    cfg.dtype = "bfloat16" if a.dtype == "bf16" else "float32"
    with torch.device("meta"):
        model = transformers.Qwen3_5ForConditionalGeneration(cfg)
    g = torch.Generator().manual_seed(0)
    tensors = {}
    for name, p in model.state_dict().items():
        t = torch.randn(p.shape, generator=g) * (0.02 if p.dim() > 1 else 0.1)
        tensors[name] = (t + 1.0 if "norm" in name and name.endswith("weight") else t).to(dtype)
    save_file(tensors, os.path.join(ckpt, "model.safetensors"))
    cfg.save_pretrained(ckpt)
    with open(os.path.join(ckpt, "preprocessor_config.json"), "w") as f:
        json.dump({"size": {"longest_edge": a.max_pixels, "shortest_edge": 65536}, "patch_size": 16,
                   "temporal_patch_size": 2, "merge_size": 2, "image_mean": [0.5] * 3,
                   "image_std": [0.5] * 3}, f)
    art = os.path.join(a.work, "v.qwenc")
    subprocess.run([os.path.join(BIN, "qwen-compile"), ckpt, "--vision", "-o", art], check=True)
    for _ in range(a.repeat):
        subprocess.run([os.path.join(BIN, "qwen-vision-embed"), art, ckpt,
                        os.path.join(a.work, "out.safetensors"), a.image], check=True)


if __name__ == "__main__":
    main()
