#!/usr/bin/env python3
"""Chat template references for messages with images (chat_image_test.cpp).

    /work/.venv-ref/bin/python scripts/gen_chat_image_reference.py --qwen35-template PATH

Renders conversations whose user messages hold OpenAI `image_url` parts
(inline data: URLs of small images of test/data/vision) and HF-style `image`
parts, with transformers' apply_chat_template(tokenize=False) and the
Qwen3.5 template (the same file gen_chat_reference.py uses; its sha256 is
recorded), and writes test/data/chat/qwen35_image_reference.json: the
messages as a client sends them, the expected text (each image part is
<|vision_start|><|image_pad|><|vision_end|>), or null where the template
refuses (an image in the system message).
"""
import argparse
import base64
import copy
import hashlib
import json
import os

from transformers import AutoTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VISION = os.path.join(ROOT, "test", "data", "vision")
TOKENIZER = os.path.join(ROOT, "models", "checkpoints", "qwen3-demo")


def data_url(name, media):
    with open(os.path.join(VISION, name), "rb") as f:
        return f"data:{media};base64," + base64.b64encode(f.read()).decode()


def image_url(name, media):
    return {"type": "image_url", "image_url": {"url": data_url(name, media)}}


def hf_image(name, media):
    return {"type": "image", "image": data_url(name, media)}


def text(t):
    return {"type": "text", "text": t}


PNG, JPG, WEBP = ("gray.png", "image/png"), ("gray.jpg", "image/jpeg"), ("lossy.webp", "image/webp")

CASES = [
    ("one_image_then_text", [{"role": "user", "content": [image_url(*PNG), text("What is this?")]}]),
    ("text_then_image", [{"role": "user", "content": [text("Describe: "), image_url(*JPG)]}]),
    ("two_images_text_between", [{"role": "user", "content": [
        text("Compare "), image_url(*PNG), text(" and "), image_url(*WEBP), text(" please.")]}]),
    ("hf_image_part", [{"role": "user", "content": [hf_image(*PNG), text("  Caption it.  ")]}]),
    ("image_only", [{"role": "user", "content": [image_url(*WEBP)]}]),
    ("system_then_image", [
        {"role": "system", "content": "You are a careful describer."},
        {"role": "user", "content": [image_url(*PNG), text("What colour?")]}]),
    ("multi_turn_images", [
        {"role": "user", "content": [image_url(*PNG), text("First?")]},
        {"role": "assistant", "content": "A gray square."},
        {"role": "user", "content": [text("And this one?"), image_url(*JPG)]}]),
    ("system_image_refused", [
        {"role": "system", "content": [image_url(*PNG)]},
        {"role": "user", "content": "hi"}]),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--qwen35-template", required=True)
    a = ap.parse_args()
    with open(a.qwen35_template) as f:
        template = f.read()
    tok = AutoTokenizer.from_pretrained(TOKENIZER)
    out = []
    for name, messages in CASES:
        for gen in (True, False):
            for think in (None, False):
                kw = {} if think is None else {"enable_thinking": think}
                try:
                    expected = tok.apply_chat_template(
                        copy.deepcopy(messages), chat_template=template, tokenize=False,
                        add_generation_prompt=gen, **kw)
                except Exception:  # the template refuses
                    expected = None
                out.append(dict(name=name, messages=messages, tools=None,
                                add_generation_prompt=gen, enable_thinking=think,
                                expected=expected))
    path = os.path.join(ROOT, "test", "data", "chat", "qwen35_image_reference.json")
    with open(path, "w") as f:
        json.dump(dict(style="qwen3.5", template_source=os.path.basename(a.qwen35_template),
                       template_sha256=hashlib.sha256(template.encode()).hexdigest(),
                       transformers=__import__("transformers").__version__, cases=out),
                  f, indent=1, ensure_ascii=False)
    print(path, len(out), "cases,", sum(c["expected"] is None for c in out), "refused")


if __name__ == "__main__":
    main()
