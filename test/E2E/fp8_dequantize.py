"""Writes an FP8 block-wise checkpoint's weights dequantized to f32 (stdlib only):
  fp8_dequantize.py FP8_DIR OUT_DIR
Every F8_E4M3 tensor (2-D, or 3-D fused experts with one scale grid per
matrix) becomes f32 `code * scale` of its block (`<name>_scale_inv`, block
size from quantization_config.weight_block_size), rounded once to f32 as HF
dequantizes; the scales are dropped, every other tensor is copied, and
config.json loses its quantization_config. An artifact on FP8_DIR must
compute what one on OUT_DIR computes."""
import json
import os
import struct
import sys

from fp8_requantize import from_e4m3, read, write


def main():
    src, out = sys.argv[1], sys.argv[2]
    with open(os.path.join(src, "config.json")) as f:
        config = json.load(f)
    br, bc = config.pop("quantization_config")["weight_block_size"]
    _, tensors = read(os.path.join(src, "model.safetensors"))
    table = [from_e4m3(c) for c in range(256)]
    result, count = {}, 0
    for name, (dtype, shape, blob) in tensors.items():
        if name.endswith("_scale_inv"):
            continue
        if dtype != "F8_E4M3":
            result[name] = (dtype, shape, blob)
            continue
        _, sshape, sblob = tensors[name + "_scale_inv"]
        scales = struct.unpack(f"<{len(sblob) // 4}f", sblob)
        rows, cols = shape[-2:]
        sr, sc = sshape[-2:]
        values = [0.0] * len(blob)
        for k, code in enumerate(blob):
            e, rc = divmod(k, rows * cols)
            r, c = divmod(rc, cols)
            s = scales[(e * sr + r // br) * sc + c // bc]
            values[k] = struct.unpack("<f", struct.pack("<f", table[code] * s))[0]
        result[name] = ("F32", shape, struct.pack(f"<{len(values)}f", *values))
        count += 1
    os.makedirs(out, exist_ok=True)
    write(os.path.join(out, "model.safetensors"), result)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    print(f"dequantized {count} weights")


if __name__ == "__main__":
    main()
