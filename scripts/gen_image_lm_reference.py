#!/usr/bin/env python3
"""Reference data for the language-model side of images (test/E2E/image-lm-*.test).

    /work/.venv-ref/bin/python scripts/gen_image_lm_reference.py [--only NAME]

Writes test/data/reference/<case>/ for tiny random
Qwen3_5ForConditionalGeneration and Qwen3_5MoeForConditionalGeneration
checkpoints (the real classes, save_pretrained, weights drawn as
gen_reference.py draws them) whose config.json puts <|vision_start|>,
<|vision_end|> and <|image_pad|> inside the tiny vocabulary. The vision tower
is not run: each image's merged-patch embeddings are seeded random rows, and
HF's language model takes them through `inputs_embeds` at the pad rows (what
Qwen3_5Model.forward does with the tower's output: masked_scatter), with the
MRoPE positions of HF's own Qwen3_5Model.get_rope_index.

reference.safetensors, per prompt k (p0: one image, text before and after;
p1: two images of different grids, text before, between and after):
  pK.ids            int32 [n]      the prompt with ONE <|image_pad|> per image
                                   (what a user writes; the runtime expands it)
  pK.prompt_ids     int32 [P]      the expanded prompt (processor convention)
  pK.positions      int64 [3, P]   get_rope_index's position_ids
  pK.rope_delta     int64 [1]      its mrope_position_deltas
  pK.prompt_logits  float32 [P, V] logits at every prompt position
  pK.decode_ids     int32 [N]      greedy tokens fed (from these logits)
  pK.decode_logits  float32 [N, V] logits after each fed token (KV cache,
                                   positions index + rope_delta: HF's decode)
and pK.images.safetensors:
  grid_thw          int32 [I, 3]   each image's patch grid
  embeds            float32 [rows, hidden]  the merged-patch rows, in order
"""
import argparse
import json
import os
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_reference as G  # noqa: E402

VISION_START, VISION_END, IMAGE_PAD = 300, 301, 302
N_DECODE = 6

CASES = [
    dict(G._HYB, name="qwen35_vl_f32", arch="qwen3_5",
         cls="Qwen3_5ForConditionalGeneration", dtype="f32", seed=4101,
         vocab_size=320, hidden_size=32, intermediate_size=48,
         num_hidden_layers=4, layer_types=[G.LIN, G.FULL, G.LIN, G.FULL],
         num_attention_heads=2, num_key_value_heads=1, head_dim=32,
         partial_rotary_factor=0.5, mrope_section=[3, 3, 2],
         rope_theta=10000.0, linear_num_key_heads=2,
         linear_num_value_heads=2, linear_key_head_dim=16,
         linear_value_head_dim=16, tie_word_embeddings=True,
         text_tie_word_embeddings=True),
    dict(G._HYB, name="qwen35_moe_vl_f32", arch="qwen3_5_moe",
         cls="Qwen3_5MoeForConditionalGeneration", dtype="f32", seed=4102,
         vocab_size=320, hidden_size=32, num_hidden_layers=3,
         layer_types=[G.LIN, G.FULL, G.LIN], num_attention_heads=2,
         num_key_value_heads=1, head_dim=32, partial_rotary_factor=0.5,
         mrope_section=[3, 3, 2], rope_theta=10000.0,
         linear_num_key_heads=2, linear_num_value_heads=4,
         linear_key_head_dim=8, linear_value_head_dim=8,
         tie_word_embeddings=False, text_tie_word_embeddings=False,
         num_experts=8, num_experts_per_tok=2, moe_intermediate_size=8,
         shared_expert_intermediate_size=16),
]

# (text before, [(grid_thw, text after), ...]); grids in patches, merge 2.
PROMPTS = [
    (7, [((1, 4, 6), 5)]),
    (4, [((1, 6, 4), 3), ((1, 4, 8), 6)]),
]


def text_ids(g, n):
    return torch.randint(0, VISION_START, (n,), generator=g).tolist()


@torch.no_grad()
def gen_case(c):
    case_dir = os.path.join(G.REF_DIR, c["name"])
    os.makedirs(case_dir, exist_ok=True)
    model, _ = G.build_hybrid_model(c, c["seed"])
    for key, value in (("image_token_id", IMAGE_PAD), ("vision_start_token_id", VISION_START),
                       ("vision_end_token_id", VISION_END)):
        setattr(model.config, key, value)
    model.generation_config = G.GenerationConfig(do_sample=False, bos_token_id=None,
                                                 eos_token_id=None, pad_token_id=None)
    model.save_pretrained(case_dir, safe_serialization=True)
    with open(os.path.join(case_dir, "config.json")) as f:
        written = json.load(f)
    assert written["image_token_id"] == IMAGE_PAD and "vision_config" in written
    m, _ = G.load_hybrid(case_dir, torch.float32, c)
    merge = m.config.vision_config.spatial_merge_size
    embed = m.get_input_embeddings()
    std = float(embed.weight.std())
    g = torch.Generator().manual_seed(c["seed"] + 17)
    tensors, facts = {}, []
    for k, (before, images) in enumerate(PROMPTS):
        ids, expanded, grids, rows = text_ids(g, before), None, [], []
        expanded = list(ids)
        for grid, after in images:
            n = grid[0] * grid[1] * grid[2] // merge**2
            tail = text_ids(g, after)
            ids += [VISION_START, IMAGE_PAD, VISION_END] + tail
            expanded += [VISION_START] + [IMAGE_PAD] * n + [VISION_END] + tail
            grids.append(grid)
            rows.append(std * torch.randn(n, c["hidden_size"], generator=g))
        input_ids = torch.tensor([expanded])
        grid_thw = torch.tensor(grids)
        mm = (input_ids == IMAGE_PAD).int()
        positions, delta = m.model.get_rope_index(input_ids, mm, image_grid_thw=grid_thw)
        image_rows = torch.cat(rows)
        inputs = embed(input_ids)
        mask = (input_ids == IMAGE_PAD).unsqueeze(-1).expand_as(inputs)
        inputs = inputs.masked_scatter(mask, image_rows)
        out = m(inputs_embeds=inputs, position_ids=positions, use_cache=True)
        prompt_logits = out.logits[0].float().clone()
        past, P = out.past_key_values, len(expanded)
        fed, dec, prev = [], [], prompt_logits[-1]
        for i in range(N_DECODE):
            tok = int(prev.argmax())
            fed.append(tok)
            pos = torch.full((3, 1, 1), P + i) + delta.view(1, 1, 1)
            out = m(input_ids=torch.tensor([[tok]]), position_ids=pos, past_key_values=past,
                    use_cache=True)
            past, prev = out.past_key_values, out.logits[0, -1].float().clone()
            dec.append(prev)
        p = f"p{k}."
        tensors[p + "ids"] = torch.tensor(ids, dtype=torch.int32)
        tensors[p + "prompt_ids"] = torch.tensor(expanded, dtype=torch.int32)
        tensors[p + "positions"] = positions[:, 0].to(torch.int64).contiguous()
        tensors[p + "rope_delta"] = delta.view(1).to(torch.int64)
        tensors[p + "prompt_logits"] = prompt_logits.contiguous()
        tensors[p + "decode_ids"] = torch.tensor(fed, dtype=torch.int32)
        tensors[p + "decode_logits"] = torch.stack(dec).contiguous()
        save_file({"grid_thw": grid_thw.to(torch.int32).contiguous(),
                   "embeds": image_rows.float().contiguous()},
                  os.path.join(case_dir, f"p{k}.images.safetensors"))
        facts.append(dict(prompt=k, length=P, grids=grids, rope_delta=int(delta)))
    save_file(tensors, os.path.join(case_dir, "reference.safetensors"))
    with open(os.path.join(case_dir, "meta.json"), "w") as f:
        json.dump(dict(case=c["name"], cls=c["cls"], seed=c["seed"],
                       torch=torch.__version__, transformers=G.transformers.__version__,
                       image_pad=IMAGE_PAD, vision_start=VISION_START, vision_end=VISION_END,
                       prompts=facts), f, indent=1)
    print(c["name"], facts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only")
    a = ap.parse_args()
    for c in CASES:
        if a.only in (None, c["name"]):
            gen_case(c)


if __name__ == "__main__":
    main()
