#!/usr/bin/env python3
"""Writes the vision-tower reference cases under test/data/vision_tower/.

    /work/.venv-ref/bin/python scripts/gen_vision_reference.py [OUT_DIR]

Each case is a tiny random checkpoint saved by the real transformers class
(save_pretrained) with a small vision_config, its preprocessor_config.json,
and reference.safetensors holding, for each image set `<set>` (one image;
two images of other sizes and aspect ratios):

  <set>.pixel_values    float32 (N, 1536): Qwen2VLImageProcessorPil's output
  <set>.grid_thw        int64 (images, 3)
  <set>.embeddings      float32 (N / 4, out_hidden_size): HF's
                        model.model.visual(pixel_values, grid_thw).pooler_output
                        (the merger's output: what replaces the image pads)
  <set>.interp_indices  int64 (N, 4), <set>.interp_weights float32 (N, 4):
                        get_vision_interpolation_indices_and_weights
  <set>.cos, <set>.sin  float32 (N, head_dim): Qwen3_5VisionRotaryEmbedding
  <set>.cu_seqlens      int32 (images + 1,)

Parameters are redrawn from our own generator (LayerNorm weights around 1,
biases and linears with a spread that keeps activations O(1)), so the test
does not depend on transformers' initialisation.
"""
import json
import os
import sys

import torch
import transformers
from PIL import Image
from safetensors.torch import save_file
from transformers import vision_utils
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "test", "data", "vision_tower")
IMAGES = os.path.join(ROOT, "test", "data", "vision")

PREPROCESSOR = {
    "size": {"longest_edge": 12288, "shortest_edge": 1024},
    "patch_size": 16, "temporal_patch_size": 2, "merge_size": 2,
    "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
    "processor_class": "Qwen3VLProcessor", "image_processor_type": "Qwen2VLImageProcessorFast",
}
SETS = {
    "one": ["real_coffee_420.jpg"],
    "two": ["real_chelsea_tall_422.jpg", "real_astronaut_progressive.jpg"],
}
VISION = dict(depth=2, hidden_size=64, intermediate_size=96, num_heads=4, in_channels=3,
              patch_size=16, temporal_patch_size=2, spatial_merge_size=2,
              num_position_embeddings=2304, hidden_act="gelu_pytorch_tanh")
TEXT = dict(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=2,
            num_key_value_heads=1, head_dim=32, vocab_size=320, max_position_embeddings=256,
            rms_norm_eps=1e-6, linear_conv_kernel_dim=4, linear_key_head_dim=16,
            linear_num_key_heads=2, linear_num_value_heads=2, linear_value_head_dim=16,
            layer_types=["linear_attention", "full_attention"],
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                             "partial_rotary_factor": 0.25, "mrope_section": [2, 1, 1],
                             "mrope_interleaved": True})
MOE_TEXT = dict(TEXT, num_experts=4, num_experts_per_tok=2, moe_intermediate_size=16,
                shared_expert_intermediate_size=24)
CASES = [
    dict(name="qwen35_f32", config=transformers.Qwen3_5Config, text=TEXT,
         cls=transformers.Qwen3_5ForConditionalGeneration, seed=5001),
    dict(name="qwen35_moe_f32", config=transformers.Qwen3_5MoeConfig, text=MOE_TEXT,
         cls=transformers.Qwen3_5MoeForConditionalGeneration, seed=5002),
]


@torch.no_grad()
def build(case):
    text = dict(case["text"])
    if "intermediate_size" in text and case["config"] is transformers.Qwen3_5MoeConfig:
        text.pop("intermediate_size")
    cfg = case["config"](text_config=text,
                         vision_config=dict(VISION, out_hidden_size=TEXT["hidden_size"]),
                         tie_word_embeddings=True)
    cfg.architectures = [case["cls"].__name__]
    torch.manual_seed(case["seed"])
    model = case["cls"]._from_config(cfg, dtype=torch.float32, attn_implementation="eager")
    g = torch.Generator().manual_seed(case["seed"] + 7)
    owner = {}
    for mname, mod in model.named_modules():
        for pname, _ in mod.named_parameters(recurse=False):
            owner[f"{mname}.{pname}" if mname else pname] = type(mod).__name__
    for name, p in model.named_parameters():
        rn = torch.randn(p.shape, generator=g)
        if not name.startswith("model.visual."):
            # The text model: small weights, norms at their zero-centred 0.
            p.copy_(0.0 if "norm" in name else 0.05 * rn)
        elif owner[name] == "LayerNorm":
            p.copy_(1.0 + 0.1 * rn if name.endswith("weight") else 0.1 * rn)
        elif name.endswith("bias"):
            p.copy_(0.1 * rn)
        elif name.endswith("pos_embed.weight"):
            p.copy_(0.5 * rn)
        else:
            fan_in = p[0].numel()
            p.copy_(rn / fan_in ** 0.5)
    return model.eval()


def main():
    proc = Qwen2VLImageProcessorPil(**{k: v for k, v in PREPROCESSOR.items()
                                       if k not in ("processor_class", "image_processor_type")})
    for case in CASES:
        model = build(case)
        out = os.path.join(OUT, case["name"])
        os.makedirs(out, exist_ok=True)
        model.save_pretrained(out, safe_serialization=True)
        with open(os.path.join(out, "preprocessor_config.json"), "w") as f:
            json.dump(PREPROCESSOR, f, indent=2)
        visual = model.model.visual
        ref = {}
        for set_name, files in SETS.items():
            images = [Image.open(os.path.join(IMAGES, f)) for f in files]
            batch = proc(images=images, return_tensors="pt")
            pixels, grid = batch["pixel_values"], batch["image_grid_thw"]
            with torch.no_grad():
                result = visual(pixels, grid_thw=grid)
            idx, w = vision_utils.get_vision_interpolation_indices_and_weights(
                grid, num_grid_per_side=visual.num_grid_per_side, mode="bilinear",
                align_corners=True, spatial_merge_size=visual.spatial_merge_size)
            pos = vision_utils.get_vision_position_ids(grid, visual.spatial_merge_size)
            cos, sin = visual.rotary_pos_emb(pixels, pos)
            cu = vision_utils.get_vision_cu_seqlens(grid)
            ref.update({
                f"{set_name}.pixel_values": pixels.float().contiguous(),
                f"{set_name}.grid_thw": grid.long().contiguous(),
                f"{set_name}.embeddings": result.pooler_output.float().contiguous(),
                f"{set_name}.interp_indices": idx.long().contiguous(),
                f"{set_name}.interp_weights": w.float().contiguous(),
                f"{set_name}.cos": cos.float().contiguous(),
                f"{set_name}.sin": sin.float().contiguous(),
                f"{set_name}.cu_seqlens": cu.int().contiguous(),
            })
            print(case["name"], set_name, "grid", grid.tolist(), "embeddings",
                  tuple(result.pooler_output.shape))
        save_file(ref, os.path.join(out, "reference.safetensors"))


if __name__ == "__main__":
    main()
