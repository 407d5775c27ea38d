"""Writes two checkpoints from an f32 one (stdlib only), for the FP8 tests of
the MoE and hybrid families:
  fp8_requantize.py SRC FP8_DIR DEQ_DIR BR BC [vision]
FP8_DIR: every projection inside `.layers.` (2-D `*proj*.weight`: q/k/v/o,
gate/up/down, in_proj_*, out_proj; the fused experts `experts.gate_up_proj` /
`experts.down_proj` [E, N, K] per expert matrix, [E, ceil(N/BR), ceil(K/BC)]
scales) as block-wise float8_e4m3fn (scale = amax / 448 per [BR, BC] block,
`<name>_scale_inv` f32, e4m3 rounded to nearest even) and config.json with
quantization_config; DEQ_DIR: the same
tensors as f32 `fp8 * scale` (rounded once to f32, as HF dequantizes), no
quantization_config. With `vision`, the vision tower's linears too
(`model.visual.` 2-D weights but the position table: attn.qkv / proj, the
MLPs' and the merger's linear_fc1 / fc2; the Conv3d patch embedding stays,
as HF's quantizer converts nn.Linear only), and preprocessor_config.json is
copied. An artifact on FP8_DIR must compute what one on DEQ_DIR computes."""
import json
import math
import os
import shutil
import struct
import sys


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", None)
    base = 8 + n
    return meta, {k: (t["dtype"], t["shape"], data[base + t["data_offsets"][0]:base + t["data_offsets"][1]])
                  for k, t in header.items()}


def write(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, (dtype, shape, blob) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def to_e4m3(v):
    """Nearest-even e4m3fn code of |v| <= 448."""
    sign = 0x80 if math.copysign(1.0, v) < 0 else 0
    a = abs(v)
    if a < 2.0 ** -6:
        return sign | int(round(a * 512.0))  # Python rounds half to even
    e = math.floor(math.log2(a))
    m = a / 2.0 ** e * 8.0 - 8.0  # 0 <= m < 8
    mi = int(round(m))
    if mi == 8:
        e, mi = e + 1, 0
    return sign | min(((e + 7) << 3) | mi, 0x7E)


def from_e4m3(c):
    sign = -1.0 if c & 0x80 else 1.0
    e, m = (c >> 3) & 0xF, c & 7
    return sign * (m / 8.0 * 2.0 ** -6 if e == 0 else (1 + m / 8.0) * 2.0 ** (e - 7))


def main():
    src, fp8_dir, deq_dir, br, bc = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    vision = sys.argv[6:] == ["vision"]
    _, tensors = read(os.path.join(src, "model.safetensors"))
    fp8, deq, count = {}, {}, 0
    for name, (dtype, shape, blob) in tensors.items():
        module = name.rsplit(".", 2)[-2] if name.count(".") >= 2 else ""
        linear = len(shape) == 2 and name.endswith(".weight") and "proj" in module
        fused = len(shape) == 3 and (name.endswith("experts.gate_up_proj") or name.endswith("experts.down_proj"))
        tower = (vision and name.startswith("model.visual.") and len(shape) == 2 and name.endswith(".weight")
                 and "pos_embed" not in name)
        if not ((".layers." in name and (linear or fused) or tower) and dtype == "F32"):
            fp8[name] = deq[name] = (dtype, shape, blob)
            continue
        matrices = shape[0] if fused else 1
        rows, cols = shape[-2:]
        w = struct.unpack(f"<{matrices * rows * cols}f", blob)
        sr, sc = -(-rows // br), -(-cols // bc)
        size = matrices * rows * cols
        codes, scales, values = bytearray(size), [0.0] * (matrices * sr * sc), [0.0] * size
        for e in range(matrices):
            for i in range(sr):
                for j in range(sc):
                    idx = [e * rows * cols + r * cols + c for r in range(i * br, min(rows, (i + 1) * br))
                           for c in range(j * bc, min(cols, (j + 1) * bc))]
                    s = f32(max(max(abs(w[k]) for k in idx), 1e-12) / 448.0)
                    scales[(e * sr + i) * sc + j] = s
                    for k in idx:
                        codes[k] = to_e4m3(max(-448.0, min(448.0, w[k] / s)))
                        values[k] = f32(from_e4m3(codes[k]) * s)
        fp8[name] = ("F8_E4M3", shape, bytes(codes))
        scale_shape = [matrices, sr, sc] if fused else [sr, sc]
        fp8[name + "_scale_inv"] = ("F32", scale_shape, struct.pack(f"<{len(scales)}f", *scales))
        deq[name] = ("F32", shape, struct.pack(f"<{len(values)}f", *values))
        count += 1
    for out, table in ((fp8_dir, fp8), (deq_dir, deq)):
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        write(os.path.join(out, "model.safetensors"), table)
        with open(os.path.join(src, "config.json")) as f:
            config = json.load(f)
        if out == fp8_dir:
            config["quantization_config"] = {"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic",
                                             "weight_block_size": [br, bc]}
        with open(os.path.join(out, "config.json"), "w") as f:
            json.dump(config, f, indent=2)
        if vision and os.path.exists(os.path.join(src, "preprocessor_config.json")):
            shutil.copy(os.path.join(src, "preprocessor_config.json"), out)
    print(f"quantized {count} weights")


if __name__ == "__main__":
    main()
