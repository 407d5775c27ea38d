#!/usr/bin/env python3
"""FP8 block-wise reference cases of the MoE and hybrid families.

Developer tool (torch + transformers, as scripts/gen_reference.py; never run
at build or test time). For each source case below, an f32 tiny checkpoint
of test/data/reference, writes test/data/reference/<name>:

  model.safetensors  every decoder projection of the source quantized as HF's
                     FineGrainedFP8 checkpoints store it (float8_e4m3fn,
                     `<name>_scale_inv` f32 per [br, bc] block, amax / 448,
                     e4m3 rounded to nearest even): q/k/v/o, gate/up/down,
                     the linear-attention in_proj_* and out_proj, the
                     per-expert gate/up/down and the fused Qwen3.5-MoE
                     experts.gate_up_proj / down_proj (one block grid per
                     expert, [E, ceil(2I / br), ceil(H / bc)] scales, as
                     transformers' FP8Experts); routers, shared_expert_gate,
                     embeddings, norms and lm_head stay f32
  config.json        the source's, plus quantization_config
  reference.safetensors
                     HF f32 on exactly what the file decodes to (weights
                     dequantized fp8 * scale in f32): the source's prompts,
                     logits at every prompt position, 6 greedy KV-cache
                     decode steps and 12 generate() tokens (same keys as
                     gen_reference.py)
  meta.json          the source's facts and the block size

Usage: .venv-ref/bin/python scripts/gen_fp8_family_reference.py
"""
import json
import os
import shutil
import sys
import tempfile

import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_reference as gr  # noqa: E402

# (source case, new case, block): blocks chosen so that the slices the graph
# takes (Qwen3.5's per-head q|gate rows, Qwen3-Next's grouped qkvz) are
# block-aligned and Qwen3-Next's in_proj_ba slices (2 rows) are not.
CASES = [("moe_f32_renorm", "fp8_moe_f32", (8, 16)),
         ("qwen35_f32_untied_nv_2nk", "fp8_qwen35_f32", (8, 16)),
         ("qwen3_next_f32", "fp8_qwen3_next_f32", (8, 16)),
         ("qwen35_moe_f32", "fp8_qwen35_moe_f32", (8, 16))]


def quantized(name, t):
    """Whether HF's FP8 checkpoints hold tensor `name` in fp8 (as made by
    its quantizer: the decoder's nn.Linear projections and fused experts)."""
    if ".layers." not in name:
        return False
    if t.dim() == 3:
        return name.endswith("experts.gate_up_proj") or name.endswith("experts.down_proj")
    return t.dim() == 2 and name.endswith(".weight") and "proj" in name.rsplit(".", 2)[-2]


def quantize(t, block):
    """(fp8, scale_inv, dequantized f32) of a 2-D or per-matrix 3-D tensor."""
    if t.dim() == 3:
        parts = [quantize(m, block) for m in t]
        return tuple(torch.stack([p[i] for p in parts]) for i in range(3))
    q, s = gr.fp8_quantize_blocks(t.float(), block)
    return q, s, gr.fp8_dequantize_blocks(q, s, block)


def find_case(name):
    for c in gr.CASES + gr.HYBRID_CASES:
        if c["name"] == name:
            return c
    raise KeyError(name)


@torch.no_grad()
def main():
    torch.set_grad_enabled(False)
    for source, name, block in CASES:
        src = os.path.join(gr.REF_DIR, source)
        out = os.path.join(gr.REF_DIR, name)
        c = find_case(source)
        st = load_file(os.path.join(src, "model.safetensors"))
        fp8, deq, count = {}, {}, 0
        for k, t in st.items():
            if quantized(k, t):
                q, s, d = quantize(t, block)
                fp8[k], fp8[k + "_scale_inv"], deq[k] = q.contiguous(), s.contiguous(), d.contiguous()
                count += 1
            else:
                fp8[k] = deq[k] = t
        with open(os.path.join(src, "config.json")) as f:
            config = json.load(f)
        with tempfile.TemporaryDirectory() as tmp:
            for f in ("config.json", "generation_config.json"):
                if os.path.exists(os.path.join(src, f)):
                    shutil.copy(os.path.join(src, f), tmp)
            save_file(deq, os.path.join(tmp, "model.safetensors"), metadata={"format": "pt"})
            if gr.is_hybrid(c):
                model, _ = gr.load_hybrid(tmp, torch.float32, c)
            else:
                model = gr.load(tmp, torch.float32, c, experts_impl=gr.MOE_EXPERTS_IMPL)
        ref = load_file(os.path.join(src, "reference.safetensors"))
        tensors, prompts = {}, []
        for k in range(3):
            p = ref[f"p{k}.prompt_ids"]
            pl, fed, dl = gr.prompt_and_decode(model, p)
            gi = gr.greedy(model, p)
            assert torch.equal(gi[:len(fed)], fed), (name, k)
            tensors.update({f"p{k}.prompt_ids": p, f"p{k}.prompt_logits": pl.contiguous(),
                            f"p{k}.decode_ids": fed, f"p{k}.decode_logits": dl.contiguous(),
                            f"p{k}.greedy_ids": gi})
            prompts.append({"prompt_len": int(p.numel()), "greedy_ids": gi.tolist(),
                            "min_top2_margin_greedy_path": gr.top_margin(dl),
                            "max_abs_diff_vs_unquantized_prompt":
                                float((pl - ref[f"p{k}.prompt_logits"]).abs().max())})
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        for f in ("generation_config.json",):
            if os.path.exists(os.path.join(src, f)):
                shutil.copy(os.path.join(src, f), out)
        save_file(fp8, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
        config["quantization_config"] = {"quant_method": "fp8", "fmt": "e4m3",
                                         "activation_scheme": "dynamic",
                                         "weight_block_size": list(block),
                                         "modules_to_not_convert": ["lm_head"]}
        with open(os.path.join(out, "config.json"), "w") as f:
            json.dump(config, f, indent=2, sort_keys=True)
            f.write("\n")
        import transformers
        save_file(tensors, os.path.join(out, "reference.safetensors"),
                  metadata={"generator": "scripts/gen_fp8_family_reference.py; transformers "
                            f"{transformers.__version__}; torch {torch.__version__}"})
        with open(os.path.join(src, "meta.json")) as f:
            meta = json.load(f)
        meta.update({"case": name, "source_case": source, "fp8_weight_block_size": list(block),
                     "fp8_quantized_tensors": count,
                     "note": f"{source} with its decoder projections and experts block-wise FP8 "
                             f"({block[0]} x {block[1]}); references: HF f32 on the dequantized weights",
                     "fp8_prompts": prompts})
        with open(os.path.join(out, "meta.json"), "w") as f:
            json.dump(meta, f, indent=2)
            f.write("\n")
        gr.log(f"{name}: {count} fp8 tensors, greedy "
               + "; ".join(str(p["greedy_ids"]) for p in prompts))


if __name__ == "__main__":
    main()
