#!/usr/bin/env python3
"""Compares qwen-vision-embed output with HF's vision embeddings (stdlib only).

  check_vision.py OURS.safetensors REFERENCE.safetensors SET [MAX_ABS]

OURS holds `embeddings` and `grid_thw` (qwen-vision-embed); REFERENCE holds
`SET.embeddings` and `SET.grid_thw` (scripts/gen_vision_reference.py: HF's
model.model.visual(pixel_values, grid_thw).pooler_output). Prints PASS when
the grids are equal and max |diff| <= MAX_ABS (default 1e-5), else FAIL."""
import json
import math
import struct
import sys


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = data[8 + n + begin:8 + n + end]
        code, size = {"F32": ("f", 4), "I32": ("i", 4), "I64": ("q", 8)}[info["dtype"]]
        out[name] = (info["shape"], list(struct.unpack("<%d%s" % (len(raw) // size, code), raw)))
    return out


def main():
    ours, ref, name = read_safetensors(sys.argv[1]), read_safetensors(sys.argv[2]), sys.argv[3]
    max_abs = float(sys.argv[4]) if len(sys.argv) > 4 else 1e-5
    shape, got = ours["embeddings"]
    want_shape, want = ref[name + ".embeddings"]
    grids_equal = ours["grid_thw"][1] == ref[name + ".grid_thw"][1]
    diff = max(abs(a - b) for a, b in zip(got, want)) if shape == want_shape else math.inf
    scale = max(abs(b) for b in want)
    ok = grids_equal and diff <= max_abs
    print(f"{'PASS' if ok else 'FAIL'}: {name}: embeddings {shape} vs HF {want_shape}, "
          f"grids {'equal' if grids_equal else 'differ'}, max |diff| {diff:.3g} <= {max_abs:g} "
          f"(max |HF| {scale:.3g})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
