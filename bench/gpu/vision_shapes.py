#!/usr/bin/env python3
"""A vision-tower benchmark checkpoint without its weights, for the GPU bundle.

    /work/.venv-ref/bin/python bench/gpu/vision_shapes.py DIR [--depth 24 --hidden 1024 --heads 16
        --intermediate 4096 --out-hidden 1024 --max-pixels N]

Writes DIR/config.json (Qwen3_5ForConditionalGeneration with that vision_config and a tiny text
model, as bench/vision_tower_bench.py), DIR/preprocessor_config.json and DIR/shapes.json (every
tensor's name, dtype and shape, from HF's model on the meta device). The device has no compiler and
the weights do not travel: bench/gpu/vision_weights.py writes seeded random bf16 weights from
shapes.json there, and qwen-compile reads DIR/config.json here."""
import argparse
import json
import os

import torch
import transformers


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--depth", type=int, default=24)
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--intermediate", type=int, default=4096)
    ap.add_argument("--out-hidden", type=int, default=1024)
    ap.add_argument("--max-pixels", type=int, default=512 * 512)
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    vision = dict(depth=a.depth, hidden_size=a.hidden, intermediate_size=a.intermediate,
                  num_heads=a.heads, out_hidden_size=a.out_hidden, patch_size=16,
                  temporal_patch_size=2, spatial_merge_size=2, num_position_embeddings=2304)
    text = dict(hidden_size=a.out_hidden, intermediate_size=64, num_hidden_layers=1,
                num_attention_heads=2, num_key_value_heads=1, head_dim=64, vocab_size=320,
                layer_types=["full_attention"], linear_num_key_heads=2, linear_num_value_heads=2,
                linear_key_head_dim=16, linear_value_head_dim=16)
    cfg = transformers.Qwen3_5Config(text_config=text, vision_config=vision)
    cfg.architectures = ["Qwen3_5ForConditionalGeneration"]
    cfg.dtype = "bfloat16"
    with torch.device("meta"):
        model = transformers.Qwen3_5ForConditionalGeneration(cfg)
    shapes = {name: list(p.shape) for name, p in model.state_dict().items()}
    cfg.save_pretrained(a.dir)
    with open(os.path.join(a.dir, "shapes.json"), "w") as f:
        json.dump({"dtype": "BF16", "tensors": shapes}, f)
    with open(os.path.join(a.dir, "preprocessor_config.json"), "w") as f:
        json.dump({"size": {"longest_edge": a.max_pixels, "shortest_edge": 65536}, "patch_size": 16,
                   "temporal_patch_size": 2, "merge_size": 2, "image_mean": [0.5] * 3,
                   "image_std": [0.5] * 3}, f)


if __name__ == "__main__":
    main()
