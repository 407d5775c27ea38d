"""Copies a checkpoint folder and breaks it in one way (stdlib only), for the
bad-input tests of FP8 checkpoints:
  edit_checkpoint.py SRC DST drop TENSOR         the tensor is missing
  edit_checkpoint.py SRC DST shape TENSOR D0,D1  first elements, another shape
  edit_checkpoint.py SRC DST dtype TENSOR DTYPE  the same bytes labelled DTYPE
  edit_checkpoint.py SRC DST config KEY          config.json without KEY
"""
import json
import os
import shutil
import struct
import sys

src, dst, action, name = sys.argv[1:5]
shutil.rmtree(dst, ignore_errors=True)
shutil.copytree(src, dst)
if action == "config":
    path = os.path.join(dst, "config.json")
    with open(path) as f:
        config = json.load(f)
    del config[name]
    with open(path, "w") as f:
        json.dump(config, f, indent=2)
    sys.exit(0)
raw = open(os.path.join(src, "model.safetensors"), "rb").read()
(length,) = struct.unpack("<Q", raw[:8])
header = json.loads(raw[8:8 + length])
data = raw[8 + length:]
header.pop("__metadata__", None)
size = {"F32": 4, "BF16": 2, "F16": 2, "I32": 4, "F8_E4M3": 1}
out, blob = {}, b""
for tensor in sorted(header):
    info = dict(header[tensor])
    begin, end = info["data_offsets"]
    chunk = data[begin:end]
    if tensor == name:
        if action == "drop":
            continue
        if action == "shape":
            info["shape"] = [int(d) for d in sys.argv[5].split(",")]
            count = 1
            for d in info["shape"]:
                count *= d
            chunk = chunk[:count * size[info["dtype"]]]
        elif action == "dtype":
            info["dtype"] = sys.argv[5]
    info["data_offsets"] = [len(blob), len(blob) + len(chunk)]
    out[tensor] = info
    blob += chunk
text = json.dumps(out).encode()
text += b" " * (-len(text) % 8)
with open(os.path.join(dst, "model.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text + blob)
