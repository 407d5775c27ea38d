#!/usr/bin/env python3
"""Writes the image test data of unittests/runtime/image_test.cpp.

    /work/.venv-ref/bin/python scripts/gen_image_reference.py [OUT_DIR]
    /work/.venv-ref/bin/python scripts/gen_image_reference.py --compare [--config JSON] IMAGE...

The second form compares the runtime (build/bin/qwen-image-dump, or
$QWEN_IMAGE_DUMP) with HF's processor on any image files, under a
preprocessor_config.json (default: Qwen3.5's), and prints the differences.

OUT_DIR defaults to test/data/vision/. It holds small synthetic photos and
graphics in every format and mode the runtime decodes (written by Pillow),
three real photos re-encoded as JPEGs (see below),
broken files for the error tests, and reference.safetensors with what
HuggingFace's Pillow-backend image processor (Qwen2VLImageProcessorPil, the
class Qwen3-VL and Qwen3.5 use) makes of each image:

  <file>.decoded      uint8 (H, W, 3): transformers' convert_to_rgb of
                      PIL.Image.open(file) (alpha composited onto white)
  <file>.resized      uint8 (h, w, 3): its smart_resize + Pillow BICUBIC resize
                      under the small test config (TEST_CONFIG)
  <file>.grid_thw     int64 (3,): image_grid_thw under TEST_CONFIG
  <file>.pixel_values float32 (rows, 1536): for a few files, under TINY_CONFIG
  resize.source, resize.<i>  uint8: Pillow BICUBIC resizes of one image to
                      assorted sizes (both pass orders)
  <file>.decoded_fp, <file>.qwen35_resized_fp  int64 (rows, 2): fingerprints
                      (per row: sum of the bytes, sum of (index + 1) * byte)
                      of the decoded image and of its resize under the real
                      Qwen3.5 config, for images too large to store whole
  <file>.qwen35_grid_thw  int64 (3,): image_grid_thw under QWEN35_CONFIG
  smart_resize        int64 (N, 4): (height, width, resized height, resized
                      width) under the Qwen3.5 config (QWEN35_CONFIG)
  rope.<k>.*          input_ids, grids, positions (3, L), delta: HF's
                      Qwen3_5Model.get_rope_index on prompts with images
  expand.*            Qwen3VLProcessor's <|image_pad|> expansion of a prompt with
                      two images (ids in and out, grids, the pad id) and
                      get_rope_index on its output

The real photos (real_*.jpg) are written by this script too, re-encoded by
Pillow from the sample images that PyPI's scikit-image wheel ships in
skimage/data/ (loaded through skimage.data; made with scikit-image 0.26.0).
Their licences, as stated in the docstrings of skimage/data/_fetchers.py:

  real_coffee_420.jpg        skimage.data.coffee(), coffee.png, 600x400, whole:
                             "No copyright restrictions. CC0 by the
                             photographer (Rachel Michetti)", courtesy of
                             Pikolo Espresso Bar. Baseline JPEG,
                             4:2:0, quality 90 (a camera's settings).
  real_chelsea_tall_422.jpg  skimage.data.chelsea(), chelsea.png, cropped to
                             181x293 (tall, odd sizes: partial MCUs, and below
                             Qwen3.5's 65536-pixel minimum): "No copyright
                             restrictions. CC0 by the photographer (Stefan van
                             der Walt)." Baseline, 4:2:2, quality 90.
  real_astronaut_progressive.jpg  skimage.data.astronaut(), astronaut.png,
                             cropped to 512x289 (wide): Eileen Collins, from
                             NASA's Great Images database
                             (https://flic.kr/p/r9qvLn), "No known
                             copyright restrictions, released into the public
                             domain." Progressive, 4:2:0, quality 85.

Nothing in test/data/vision/ comes from another project's repository.

Needs transformers 5.x, torch, numpy, safetensors, pillow and scikit-image
(`pip install pillow scikit-image`).
"""
import argparse
import functools
import importlib.metadata
import io
import subprocess
import tempfile
import json
import os
import sys
import types

import numpy as np
import torch
from PIL import Image
from safetensors.numpy import save_file

import transformers
from transformers.image_transforms import convert_to_rgb
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil, smart_resize
from transformers.models.qwen3_5.modeling_qwen3_5 import Qwen3_5Model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "test", "data", "vision")

# Qwen3.5's preprocessor_config.json (the Qwen3-VL image processor settings).
QWEN35_CONFIG = {
    "size": {"longest_edge": 16777216, "shortest_edge": 65536},
    "patch_size": 16,
    "temporal_patch_size": 2,
    "merge_size": 2,
    "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5],
    "processor_class": "Qwen3VLProcessor",
    "image_processor_type": "Qwen2VLImageProcessorFast",
}
# The same with small pixel bounds so that the references stay small.
TEST_CONFIG = dict(QWEN35_CONFIG, size={"longest_edge": 64 * 64, "shortest_edge": 32 * 32})
TINY_CONFIG = dict(QWEN35_CONFIG, size={"longest_edge": 32 * 64, "shortest_edge": 32 * 32})


def processor(config):
    kwargs = {k: v for k, v in config.items() if k not in ("processor_class", "image_processor_type")}
    return Qwen2VLImageProcessorPil(**kwargs)


def photo(width, height, seed):
    """A smooth, photo-like RGB image with edges and a little noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    img = np.zeros((height, width, 3))
    for c in range(3):
        fx, fy, ph = rng.uniform(0.01, 0.08), rng.uniform(0.01, 0.08), rng.uniform(0, 6.28)
        img[..., c] = 128 + 80 * np.sin(fx * x + ph) * np.cos(fy * y + c)
    # A few hard-edged discs and a bright bar: the ringing of the bicubic
    # filter has something to clip.
    for _ in range(4):
        cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(3, max(4, min(width, height) / 3))
        color = rng.integers(0, 256, 3)
        mask = (x - cx) ** 2 + (y - cy) ** 2 < r * r
        img[mask] = color
    img[:, width // 3 : width // 3 + max(1, width // 20)] = [255, 255, 250]
    img += rng.normal(0, 6, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def alpha_ramp(width, height, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    a = (x * 255 // max(1, width - 1)).astype(np.uint8)
    a[rng.random((height, width)) < 0.1] = 0
    a[: height // 4] = 255
    return a


def write_images():
    """Writes the test images; returns the names of the decodable ones."""
    names = []

    def save(name, im, **kw):
        im.save(os.path.join(OUT, name), **kw)
        names.append(name)

    save("photo_420.jpg", Image.fromarray(photo(96, 61, 1)), quality=90)
    save("photo_444_progressive.jpg", Image.fromarray(photo(75, 130, 2)), quality=80, subsampling=0,
         progressive=True)
    save("photo_422.jpg", Image.fromarray(photo(123, 47, 3)), quality=85, subsampling=1)
    save("gray.jpg", Image.fromarray(photo(50, 33, 4)).convert("L"), quality=85)
    save("cmyk.jpg", Image.fromarray(photo(40, 30, 5)).convert("CMYK"), quality=90)
    # A big one: downscaled by about 4 under TEST_CONFIG (a wide filter).
    save("large.jpg", Image.fromarray(photo(640, 400, 6)), quality=60)
    # A thin strip (aspect ratio 60): upscaled a lot along one side.
    save("strip.png", Image.fromarray(photo(300, 5, 7)))

    rgb = Image.fromarray(photo(64, 48, 8))
    save("palette.png", rgb.quantize(colors=40))
    pal = rgb.quantize(colors=16)
    pal.info["transparency"] = bytes([255, 0, 128, 200, 50, 255, 10, 255, 77])
    save("palette_trns.png", pal, transparency=pal.info["transparency"])
    gray = Image.fromarray(photo(37, 29, 9)).convert("L")
    save("gray.png", gray)
    key = int(np.array(gray)[5, 5])
    save("gray_trns.png", gray, transparency=key)
    la = Image.merge("LA", [gray, Image.fromarray(alpha_ramp(37, 29, 10))])
    save("gray_alpha.png", la)
    rgba = Image.fromarray(np.dstack([photo(45, 70, 11), alpha_ramp(45, 70, 12)]), "RGBA")
    save("rgba.png", rgba)
    rgb_small = Image.fromarray(photo(33, 41, 13))
    key_rgb = tuple(int(v) for v in np.array(rgb_small)[7, 9])
    save("rgb_trns.png", rgb_small, transparency=key_rgb)
    g16 = (np.array(gray).astype(np.uint16) * 3).astype(np.uint16)  # values above 255 too
    save("gray16.png", Image.frombytes("I;16", (37, 29), g16.astype("<u2").tobytes()))
    save("bilevel.png", gray.convert("1"))

    save("lossy.webp", Image.fromarray(photo(83, 57, 14)), quality=80)
    save("lossless_alpha.webp", rgba, lossless=True)
    save("lossy_alpha.webp", rgba, quality=70)
    save("lossless.webp", Image.fromarray(photo(30, 20, 15)), lossless=True)
    return names


def write_real_photos(names):
    """Real photographs (see the docstring for where each comes from), saved
    as a camera would: Pillow's libjpeg with standard tables."""
    from skimage import data

    def save(name, pixels, **kw):
        Image.fromarray(np.ascontiguousarray(pixels)).save(os.path.join(OUT, name), format="JPEG", **kw)
        names.append(name)

    coffee, chelsea, astronaut = data.coffee(), data.chelsea(), data.astronaut()
    assert coffee.shape == (400, 600, 3) and chelsea.shape == (300, 451, 3) and astronaut.shape == (512, 512, 3)
    save("real_coffee_420.jpg", coffee, quality=90, subsampling=2)
    save("real_chelsea_tall_422.jpg", chelsea[3:296, 120:301], quality=90, subsampling=1)
    save("real_astronaut_progressive.jpg", astronaut[20:309], quality=85, subsampling=2, progressive=True)


def crafted_png(width, height, bit_depth, color_type, samples, plte=None, trns=None, interlace=False):
    """A PNG written by hand (modes Pillow cannot save): `samples` is an
    (H, W, channels) array of raw sample values; rows use filter 0."""
    import struct
    import zlib

    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type]
    samples = np.asarray(samples).reshape(height, width, channels)

    def pack_rows(block):
        out = b""
        for row in block:
            flat = row.reshape(-1)
            if bit_depth == 16:
                data = flat.astype(">u2").tobytes()
            elif bit_depth == 8:
                data = flat.astype(np.uint8).tobytes()
            else:
                per = 8 // bit_depth
                padded = np.concatenate([flat, np.zeros((-len(flat)) % per, dtype=flat.dtype)])
                data = bytes(
                    sum(int(v) << (8 - bit_depth * (i + 1)) for i, v in enumerate(padded[j:j + per]))
                    for j in range(0, len(padded), per))
            out += b"\x00" + data
        return out

    if interlace:
        raw = b""
        for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
                               (0, 1, 1, 2)):
            sub = samples[y0::dy, x0::dx]
            if sub.shape[0] and sub.shape[1]:
                raw += pack_rows(sub)
    else:
        raw = pack_rows(samples)

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    png = b"\x89PNG\r\n\x1a\n"
    png += chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, int(interlace)))
    if plte is not None:
        png += chunk(b"PLTE", bytes(np.asarray(plte, dtype=np.uint8).reshape(-1)))
    if trns is not None:
        png += chunk(b"tRNS", trns)
    png += chunk(b"IDAT", zlib.compress(raw, 9))
    png += chunk(b"IEND", b"")
    return png


def write_crafted(names):
    rng = np.random.default_rng(20)
    w, h = 27, 19
    rgb16 = (photo(w, h, 21).astype(np.uint16) * 257 + rng.integers(0, 257, (h, w, 3))).astype(np.uint16)
    a16 = (alpha_ramp(w, h, 22).astype(np.uint16) * 257).astype(np.uint16)
    g = photo(w, h, 23)[..., 0]
    files = {
        "rgb16.png": crafted_png(w, h, 16, 2, rgb16),
        "rgba16.png": crafted_png(w, h, 16, 6, np.dstack([rgb16, a16])),
        "gray_alpha16.png": crafted_png(w, h, 16, 4, np.dstack([rgb16[..., 0], a16])),
        "gray2.png": crafted_png(w, h, 2, 0, g >> 6),
        "gray4_trns.png": crafted_png(w, h, 4, 0, g >> 4, trns=bytes([0, 0])),
        # Indices past the 5 PLTE entries (Pillow draws them black), 4-bit.
        "palette4_short.png": crafted_png(w, h, 4, 3, g >> 4, plte=rng.integers(0, 256, (5, 3)),
                                          trns=bytes([255, 30])),
        "interlaced_rgb.png": crafted_png(w, h, 8, 2, photo(w, h, 24), interlace=True),
        "interlaced_palette2.png": crafted_png(w, h, 2, 3, g >> 6, plte=rng.integers(0, 256, (4, 3)),
                                               interlace=True),
        "rgb16_trns.png": crafted_png(w, h, 16, 2, np.minimum(rgb16 >> 8, 3),
                                      trns=bytes([0, 1, 0, 2, 0, 3])),
    }
    for name, data in files.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
        names.append(name)


def write_bad_files():
    with open(os.path.join(OUT, "photo_420.jpg"), "rb") as f:
        jpeg = f.read()
    with open(os.path.join(OUT, "rgba.png"), "rb") as f:
        png = f.read()
    with open(os.path.join(OUT, "lossy.webp"), "rb") as f:
        webp = f.read()
    bad = {
        "bad_truncated.jpg": jpeg[: len(jpeg) // 2],
        "bad_truncated.png": png[: len(png) // 2],
        "bad_truncated.webp": webp[: len(webp) // 2],
        # A flipped byte inside the first IDAT: its CRC no longer matches.
        "bad_crc.png": png[:png.index(b"IDAT") + 20] + bytes([png[png.index(b"IDAT") + 20] ^ 0xFF]) +
        png[png.index(b"IDAT") + 21:],
        "bad_header.jpg": jpeg[:2] + b"\xff\xc0\x00\x02garbage" * 4,
    }
    gif = io.BytesIO()
    Image.fromarray(photo(8, 8, 16)).save(gif, format="GIF")
    bad["unsupported.gif"] = gif.getvalue()
    # Aspect ratio 201: refused by smart_resize.
    extreme = io.BytesIO()
    Image.new("RGB", (402, 2), (10, 20, 30)).save(extreme, format="PNG")
    bad["extreme_aspect.png"] = extreme.getvalue()
    for name, data in bad.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    # What HF says about the last one (the test checks we refuse it too).
    try:
        processor(TEST_CONFIG)(Image.open(os.path.join(OUT, "extreme_aspect.png")))
        raise SystemExit("expected HF to refuse extreme_aspect.png")
    except ValueError:
        pass


def fingerprint(image):
    """Per row of an (H, W, 3) uint8 image: sum of bytes, sum of (i + 1) * byte."""
    rows = image.reshape(image.shape[0], -1).astype(np.int64)
    weights = np.arange(1, rows.shape[1] + 1, dtype=np.int64)
    return np.stack([rows.sum(axis=1), (rows * weights).sum(axis=1)], axis=1)


def rope_case(ids, grids, image_token=248056):
    """HF's get_rope_index with a stand-in `self` (it only reads the merge size)."""
    merge = 2
    fake = types.SimpleNamespace(
        config=types.SimpleNamespace(vision_config=types.SimpleNamespace(spatial_merge_size=merge)),
        get_vision_position_ids=functools.partial(Qwen3_5Model.get_vision_position_ids, None),
    )
    input_ids = torch.tensor([ids], dtype=torch.long)
    mm = (input_ids == image_token).int()
    grid = torch.tensor(grids, dtype=torch.long) if grids else None
    pos, delta = Qwen3_5Model.get_rope_index(fake, input_ids, mm, image_grid_thw=grid)
    return pos[:, 0, :].numpy().astype(np.int64), int(delta.reshape(-1)[0])


def main():
    os.makedirs(OUT, exist_ok=True)
    names = write_images()
    write_crafted(names)
    write_real_photos(names)
    write_bad_files()
    tensors = {}
    test_proc, tiny_proc = processor(TEST_CONFIG), processor(TINY_CONFIG)
    for name in names:
        im = Image.open(os.path.join(OUT, name))
        decoded = convert_to_rgb(im, return_numpy=True)
        if decoded.size <= 64 * 1024:
            tensors[f"{name}.decoded"] = np.ascontiguousarray(decoded)
        else:
            tensors[f"{name}.decoded_fp"] = fingerprint(decoded)
        h, w = decoded.shape[:2]
        rh, rw = smart_resize(h, w, factor=32, min_pixels=TEST_CONFIG["size"]["shortest_edge"],
                              max_pixels=TEST_CONFIG["size"]["longest_edge"])
        resized = np.array(Image.fromarray(decoded).resize((rw, rh), resample=Image.BICUBIC))
        tensors[f"{name}.resized"] = np.ascontiguousarray(resized)
        out = test_proc(Image.open(os.path.join(OUT, name)))
        grid = out["image_grid_thw"][0].astype(np.int64)
        assert tuple(grid) == (1, rh // 16, rw // 16), (name, grid, rh, rw)
        tensors[f"{name}.grid_thw"] = grid
        # The processor's own pixel values must be the levels of `resized`.
        px = np.asarray(out["pixel_values"], dtype=np.float32)
        levels = ((resized.astype(np.float64) * (1 / 255)).astype(np.float32) - np.float32(0.5)) / np.float32(0.5)
        assert set(np.unique(px).tolist()) <= set(np.unique(levels).tolist()), name
        if name in ("photo_420.jpg", "rgba.png", "lossy.webp"):
            tiny = tiny_proc(Image.open(os.path.join(OUT, name)))
            tensors[f"{name}.pixel_values"] = np.ascontiguousarray(np.asarray(tiny["pixel_values"], np.float32))
            tensors[f"{name}.pixel_values_grid_thw"] = tiny["image_grid_thw"][0].astype(np.int64)

    # The real Qwen3.5 bounds (min 65536 pixels: small images grow a lot):
    # HF's pixel values must be the levels of the resized image, patchified.
    qwen35_proc = processor(QWEN35_CONFIG)
    for name in ("real_coffee_420.jpg", "real_chelsea_tall_422.jpg", "real_astronaut_progressive.jpg", "large.jpg",
                 "photo_444_progressive.jpg", "rgba.png", "lossy.webp"):
        im = Image.open(os.path.join(OUT, name))
        decoded = convert_to_rgb(im, return_numpy=True)
        rh, rw = smart_resize(decoded.shape[0], decoded.shape[1], factor=32,
                              min_pixels=QWEN35_CONFIG["size"]["shortest_edge"],
                              max_pixels=QWEN35_CONFIG["size"]["longest_edge"])
        resized = np.array(Image.fromarray(decoded).resize((rw, rh), resample=Image.BICUBIC))
        out = qwen35_proc(Image.open(os.path.join(OUT, name)))
        levels = ((resized.astype(np.float64) * (1 / 255)).astype(np.float32) - np.float32(0.5)) / np.float32(0.5)
        patches, gh, gw = qwen35_proc.patchify(np.moveaxis(levels, -1, 0), patch_size=16, merge_size=2,
                                               temporal_patch_size=2)
        assert np.array_equal(np.asarray(out["pixel_values"], np.float32), patches), name
        tensors[f"{name}.qwen35_resized_fp"] = fingerprint(resized)
        tensors[f"{name}.qwen35_grid_thw"] = out["image_grid_thw"][0].astype(np.int64)

    # Pillow's resize alone over a spread of target sizes: up, down, mixed,
    # and both pass orders (the vertical pass goes first when the height
    # shrinks by more than twice as many pixels as the width).
    base = photo(57, 43, 17)
    tensors["resize.source"] = base
    targets = [(64, 32), (32, 64), (57, 20), (20, 43), (100, 10), (60, 12), (50, 13), (12, 40), (3, 2),
               (114, 86), (200, 7), (29, 21), (56, 42), (58, 44), (1, 1)]
    for i, (w, h) in enumerate(targets):
        tensors[f"resize.{i}"] = np.array(Image.fromarray(base).resize((w, h), resample=Image.BICUBIC))

    sizes = [(61, 96), (130, 75), (1, 1), (16, 16), (48, 48), (224, 224), (480, 640), (1080, 1920),
             (2160, 3840), (4000, 6000), (10000, 100), (100, 10000), (5, 300), (33, 7), (112, 113),
             (8192, 8192), (12345, 678), (720, 1280), (16, 3200), (3200, 16), (47, 9400)]
    rows = []
    for h, w in sizes:
        rh, rw = smart_resize(h, w, factor=32, min_pixels=QWEN35_CONFIG["size"]["shortest_edge"],
                              max_pixels=QWEN35_CONFIG["size"]["longest_edge"])
        rows.append([h, w, rh, rw])
    tensors["smart_resize"] = np.array(rows, dtype=np.int64)

    # Prompts: the ids only matter as "image token or not"; 248053/248054 are
    # <|vision_start|>/<|vision_end|> and 248056 <|image_pad|>.
    pad, vs, ve = 248056, 248053, 248054
    cases = {
        "one": ([1, 2, 3, vs] + [pad] * 6 + [ve, 4, 5], [[1, 4, 6]]),
        "two": ([7, vs] + [pad] * 12 + [ve, 8, 9, vs] + [pad] * 2 + [ve, 10], [[1, 6, 8], [1, 2, 4]]),
        "tall": ([vs] + [pad] * 10 + [ve, 11], [[1, 10, 4]]),
        "text": ([5, 6, 7, 8], []),
    }
    for key, (ids, grids) in cases.items():
        pos, delta = rope_case(ids, grids)
        tensors[f"rope.{key}.input_ids"] = np.array(ids, dtype=np.int64)
        tensors[f"rope.{key}.grids"] = np.array(grids, dtype=np.int64).reshape(-1, 3)
        tensors[f"rope.{key}.positions"] = np.ascontiguousarray(pos)
        tensors[f"rope.{key}.delta"] = np.array([delta], dtype=np.int64)

    # The processor's own placeholder expansion: Qwen3VLProcessor (with the
    # Qwen3 tokenizer, which has the same vision tokens at other ids) on a
    # prompt with two images, and get_rope_index on what it returns.
    from transformers import AutoTokenizer
    from transformers.models.qwen3_vl.processing_qwen3_vl import Qwen3VLProcessor

    tokenizer_dir = os.path.join(ROOT, "..", "shared", "data", "qwen3-tokenizer")
    if not os.path.isdir(tokenizer_dir):
        tokenizer_dir = os.path.join(ROOT, "models", "checkpoints", "qwen3-demo")
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    # No video processor is needed for images (its class check wants torchvision).
    Qwen3VLProcessor.check_argument_for_proper_class = lambda self, name, arg: None
    vl = Qwen3VLProcessor(image_processor=test_proc, tokenizer=tok, video_processor=None)
    text = ("Compare <|vision_start|><|image_pad|><|vision_end|> with "
            "<|vision_start|><|image_pad|><|vision_end|>, please.")
    images = [Image.open(os.path.join(OUT, "photo_420.jpg")), Image.open(os.path.join(OUT, "rgba.png"))]
    out = vl(text=[text], images=images, return_mm_token_type_ids=True)
    pad = tok.convert_tokens_to_ids("<|image_pad|>")
    expanded = [int(t) for t in out["input_ids"][0]]
    grids = np.asarray(out["image_grid_thw"], dtype=np.int64)
    tensors["expand.pad_id"] = np.array([pad], dtype=np.int64)
    tensors["expand.in"] = np.array(tok(text)["input_ids"], dtype=np.int64)
    tensors["expand.grids"] = grids
    tensors["expand.out"] = np.array(expanded, dtype=np.int64)
    assert list(np.asarray(out["mm_token_type_ids"][0])) == [int(t == pad) for t in expanded]
    pos, delta = rope_case(expanded, grids.tolist(), image_token=pad)
    tensors["expand.positions"] = np.ascontiguousarray(pos)
    tensors["expand.delta"] = np.array([delta], dtype=np.int64)

    meta = {"generator": "scripts/gen_image_reference.py", "transformers": transformers.__version__,
            "pillow": Image.__version__, "torch": torch.__version__,
            "scikit-image": importlib.metadata.version("scikit-image"),
            "test_config": json.dumps(TEST_CONFIG), "tiny_config": json.dumps(TINY_CONFIG),
            "qwen35_config": json.dumps(QWEN35_CONFIG)}
    save_file(tensors, os.path.join(OUT, "reference.safetensors"), metadata=meta)
    for name, cfg in (("test", TEST_CONFIG), ("tiny", TINY_CONFIG), ("qwen35", QWEN35_CONFIG)):
        with open(os.path.join(OUT, f"preprocessor_config.{name}.json"), "w") as f:
            json.dump(cfg, f, indent=2)
            f.write("\n")
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {len(os.listdir(OUT))} files, {total} bytes, into {OUT}")


def compare(config_path, images):
    """The runtime's decode, resize and pixel_values next to HF's."""
    from safetensors.numpy import load_file

    with open(config_path) as f:
        config = json.load(f)
    proc = processor(config)
    tool = os.environ.get("QWEN_IMAGE_DUMP", os.path.join(ROOT, "build", "bin", "qwen-image-dump"))
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for path in images:
            out_path = os.path.join(tmp, "out.safetensors")
            run = subprocess.run([tool, path, config_path, out_path], capture_output=True, text=True)
            try:
                hf = proc(Image.open(path))
                decoded = convert_to_rgb(Image.open(path), return_numpy=True)
            except Exception as e:  # HF refuses it: so must we
                print(f"{path}: HF: {e}; runtime: {run.stderr.strip() or 'accepted it'}")
                failed += run.returncode == 0
                continue
            if run.returncode != 0:
                print(f"{path}: runtime failed: {run.stderr.strip()}")
                failed += 1
                continue
            ours = load_file(out_path)
            want = np.asarray(hf["pixel_values"], np.float32)
            same_decode = ours["decoded"].shape == decoded.shape and np.array_equal(ours["decoded"], decoded)
            same_pixels = ours["pixel_values"].shape == want.shape and np.array_equal(
                ours["pixel_values"].view(np.uint32), want.view(np.uint32))
            line = f"{path}: {decoded.shape[1]}x{decoded.shape[0]} grid {ours['image_grid_thw'].tolist()}"
            if same_decode and same_pixels:
                print(line + ": decoded and pixel_values bit-identical")
                continue
            failed += 1
            if not same_decode and ours["decoded"].shape == decoded.shape:
                d = np.abs(ours["decoded"].astype(int) - decoded.astype(int))
                line += f"; decoded: {(d > 0).sum()} bytes differ, by up to {d.max()}"
            elif not same_decode:
                line += f"; decoded shape {ours['decoded'].shape} vs {decoded.shape}"
            if ours["pixel_values"].shape == want.shape:
                d = np.abs(ours["pixel_values"] - want)
                line += f"; pixel_values: {(d > 0).sum()} differ, by up to {d.max()}"
            else:
                line += f"; pixel_values shape {ours['pixel_values'].shape} vs {want.shape}"
            print(line)
    return failed


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--compare", action="store_true", help="compare the runtime with HF on IMAGE files")
    parser.add_argument("--config", help="preprocessor_config.json for --compare (default: Qwen3.5's)")
    parser.add_argument("paths", nargs="*", help="OUT_DIR, or the images to --compare")
    args = parser.parse_args()
    if args.compare:
        config = args.config or os.path.join(OUT, "preprocessor_config.qwen35.json")
        sys.exit(1 if compare(config, args.paths) else 0)
    if args.paths:
        OUT = args.paths[0]
    main()
