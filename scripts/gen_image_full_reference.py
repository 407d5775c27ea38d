#!/usr/bin/env python3
"""Reference data for images end to end (test/E2E/image-full-*.test).

    /work/.venv-ref/bin/python scripts/gen_image_full_reference.py [--only NAME]

The whole HF model, vision tower included, on real image files: the tiny
random Qwen3_5ForConditionalGeneration / Qwen3_5MoeForConditionalGeneration
checkpoints of gen_image_lm_reference.py (test/data/reference/<case>/, made by
the real classes; their towers have patch 2 and 4x4 position embeddings) with
the demo tokenizer's vocabulary: the embedding table (and an untied lm_head)
widened to 151936 rows with zero rows past the tiny vocabulary, and the
config's image token ids set to the tokenizer's, as test/E2E/widen_vocab.py
does at test time. HF's own Qwen3VLProcessor (Pillow backend,
Qwen2VLImageProcessorPil, under the preprocessor_config.json written here)
makes input_ids, pixel_values and image_grid_thw from the prompt TEXT and the
image files; the model runs on them (its tower and masked_scatter, its
get_rope_index), then greedy decode with its KV cache.

test/data/image_full/<case>/:
  preprocessor_config.json   the processor's settings (patch 2, small pixel bounds)
  reference.safetensors, per prompt k:
    pK.prompt_ids     int32 [P]      HF's expanded input_ids
    pK.prompt_logits  float32 [P, 320]  logits at every prompt position
    pK.decode_ids     int32 [N]      greedy tokens fed
    pK.decode_logits  float32 [N, 320]
  Only the tiny vocabulary's 320 columns are kept: the widened rows are zero,
  so every later logit is exactly 0 (the checker asserts that of ours).
  meta.json: the prompts' text and image files, the grids, versions.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile

import torch
from PIL import Image
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_reference as G  # noqa: E402
import gen_image_lm_reference as L  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
VISION = os.path.join(ROOT, "test", "data", "vision")
OUT = os.path.join(ROOT, "test", "data", "image_full")
DEMO = os.path.join(ROOT, "models", "checkpoints", "qwen3-demo")
VOCAB, TINY_VOCAB = 151936, 320
IMAGE_PAD, VISION_START, VISION_END = 151655, 151652, 151653
N_DECODE = 4
PAD = "<|vision_start|><|image_pad|><|vision_end|>"
# One image; two images of different sizes (different merged-token counts).
PROMPTS = [
    ("Describe " + PAD + " in one word.", ["real_coffee_420.jpg"]),
    ("Is " + PAD + " like " + PAD + "? Say why.", ["real_chelsea_tall_422.jpg", "photo_422.jpg"]),
]
PREPROCESSOR = {
    "size": {"longest_edge": 24 * 24, "shortest_edge": 8 * 8},
    "patch_size": 2, "temporal_patch_size": 2, "merge_size": 2,
    "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
    "processor_class": "Qwen3VLProcessor", "image_processor_type": "Qwen2VLImageProcessorFast",
}


def widen(src, dst):
    """The case's checkpoint with the tokenizer's vocabulary (zero rows)."""
    os.makedirs(dst, exist_ok=True)
    with open(os.path.join(src, "config.json")) as f:
        config = json.load(f)
    config["text_config"]["vocab_size"] = VOCAB
    config.update(image_token_id=IMAGE_PAD, vision_start_token_id=VISION_START,
                  vision_end_token_id=VISION_END)
    with open(os.path.join(dst, "config.json"), "w") as f:
        json.dump(config, f)
    tensors = load_file(os.path.join(src, "model.safetensors"))
    for name, t in tensors.items():
        if name.endswith("embed_tokens.weight") or name == "lm_head.weight":
            tensors[name] = torch.cat([t, torch.zeros(VOCAB - t.shape[0], t.shape[1], dtype=t.dtype)])
    save_file(tensors, os.path.join(dst, "model.safetensors"), metadata={"format": "pt"})
    shutil.copy(os.path.join(src, "generation_config.json"), dst)


@torch.no_grad()
def gen_case(c):
    from transformers import AutoTokenizer
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
    from transformers.models.qwen3_vl.processing_qwen3_vl import Qwen3VLProcessor

    out_dir = os.path.join(OUT, c["name"])
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "preprocessor_config.json"), "w") as f:
        json.dump(PREPROCESSOR, f, indent=2)
    tok = AutoTokenizer.from_pretrained(DEMO)
    assert tok.convert_tokens_to_ids("<|image_pad|>") == IMAGE_PAD
    Qwen3VLProcessor.check_argument_for_proper_class = lambda self, name, arg: None
    ip = Qwen2VLImageProcessorPil(**{k: v for k, v in PREPROCESSOR.items()
                                     if k not in ("processor_class", "image_processor_type")})
    processor = Qwen3VLProcessor(image_processor=ip, tokenizer=tok, video_processor=None)
    with tempfile.TemporaryDirectory() as tmp:
        widen(os.path.join(G.REF_DIR, c["name"]), tmp)
        m, _ = G.load_hybrid(tmp, torch.float32, c)
        tensors, facts = {}, []
        for k, (text, files) in enumerate(PROMPTS):
            images = [Image.open(os.path.join(VISION, name)) for name in files]
            enc = processor(text=[text], images=images, return_tensors="pt")
            input_ids, grid = enc["input_ids"], enc["image_grid_thw"]
            mm = (input_ids == IMAGE_PAD).int()
            positions, delta = m.model.get_rope_index(input_ids, mm, image_grid_thw=grid)
            out = m(input_ids=input_ids, pixel_values=enc["pixel_values"], image_grid_thw=grid,
                    position_ids=positions, use_cache=True)
            prompt_logits = out.logits[0].float().clone()
            past, P = out.past_key_values, input_ids.shape[1]
            fed, dec, prev = [], [], prompt_logits[-1]
            for i in range(N_DECODE):
                tok_id = int(prev.argmax())
                fed.append(tok_id)
                pos = torch.full((3, 1, 1), P + i) + delta.view(1, 1, 1)
                out = m(input_ids=torch.tensor([[tok_id]]), position_ids=pos, past_key_values=past,
                        use_cache=True)
                past, prev = out.past_key_values, out.logits[0, -1].float().clone()
                dec.append(prev)
            decode_logits = torch.stack(dec)
            for logits in (prompt_logits, decode_logits):
                assert float(logits[:, TINY_VOCAB:].abs().max()) == 0.0
            p = f"p{k}."
            tensors[p + "prompt_ids"] = input_ids[0].to(torch.int32).contiguous()
            tensors[p + "prompt_logits"] = prompt_logits[:, :TINY_VOCAB].contiguous()
            tensors[p + "decode_ids"] = torch.tensor(fed, dtype=torch.int32)
            tensors[p + "decode_logits"] = decode_logits[:, :TINY_VOCAB].contiguous()
            facts.append(dict(prompt=k, text=text, images=files, length=P,
                              grids=grid.tolist(), rope_delta=int(delta), decode_ids=fed))
    save_file(tensors, os.path.join(out_dir, "reference.safetensors"))
    with open(os.path.join(out_dir, "meta.json"), "w") as f:
        json.dump(dict(case=c["name"], cls=c["cls"], tokenizer="models/checkpoints/qwen3-demo",
                       torch=torch.__version__, transformers=G.transformers.__version__,
                       image_processor="Qwen2VLImageProcessorPil", prompts=facts), f, indent=1)
    print(c["name"], facts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only")
    a = ap.parse_args()
    for c in L.CASES:
        if a.only in (None, c["name"]):
            gen_case(c)


if __name__ == "__main__":
    main()
