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



def read(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    base = 8 + n
    return {name: (t["dtype"], t["shape"], data[base + t["data_offsets"][0]:base + t["data_offsets"][1]])
            for name, t in header.items()}


def from_e4m3(c):
    sign = -1.0 if c & 0x80 else 1.0
    e, m = (c >> 3) & 0xF, c & 7
    return sign * (m / 8.0 * 2.0 ** -6 if e == 0 else (1 + m / 8.0) * 2.0 ** (e - 7))


def main():
    src, out = sys.argv[1], sys.argv[2]
    with open(os.path.join(src, "config.json")) as f:
        config = json.load(f)
    br, bc = config.pop("quantization_config")["weight_block_size"]
    tensors = read(os.path.join(src, "model.safetensors"))
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
    header, blobs, offset = {}, [], 0
    for name, (dtype, shape, blob) in result.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(os.path.join(out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    print(f"dequantized {count} weights")


main()
