#!/usr/bin/env python3
"""Seeded random weights for a checkpoint of bench/gpu/vision_shapes.py (stdlib only).

    python3 bench/gpu/vision_weights.py DIR

Writes DIR/model.safetensors with every tensor of DIR/shapes.json in bf16: about normal * 0.02
(1.0 + that for norm weights), from a 64 Ki-value block repeated, so that a 1 GB checkpoint takes
seconds without numpy. The vision tower's time does not depend on the values."""
import json
import os
import random
import struct
import sys

BLOCK = 1 << 16


def bf16_block(rng, scale, offset):
    floats = struct.pack("<%df" % BLOCK, *(offset + rng.gauss(0.0, scale) for _ in range(BLOCK)))
    # bf16: the high half of each little-endian f32 (truncation).
    return b"".join(floats[i + 2:i + 4] for i in range(0, len(floats), 4))


def main():
    folder = sys.argv[1]
    with open(os.path.join(folder, "shapes.json")) as f:
        spec = json.load(f)
    rng = random.Random(0)
    weights, norms = bf16_block(rng, 0.02, 0.0), bf16_block(rng, 0.02, 1.0)
    header, offset = {}, 0
    for name, shape in spec["tensors"].items():
        n = 1
        for d in shape:
            n *= d
        header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + 2 * n]}
        offset += 2 * n
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(os.path.join(folder, "model.safetensors"), "wb") as out:
        out.write(struct.pack("<Q", len(text)) + text)
        for name, shape in spec["tensors"].items():
            block = norms if "norm" in name and name.endswith("weight") else weights
            size = header[name]["data_offsets"][1] - header[name]["data_offsets"][0]
            whole, rest = divmod(size, len(block))
            out.write(block * whole + block[:rest])
    print(f"{folder}/model.safetensors: {len(header)} tensors, {offset / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
