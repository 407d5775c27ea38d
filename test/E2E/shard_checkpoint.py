"""Splits a checkpoint's model.safetensors into N shards with
model.safetensors.index.json, as HF save_pretrained does for large models
(stdlib only).   usage: shard_checkpoint.py SRC DST N
"""
import json
import os
import shutil
import struct
import sys

src, dst, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.makedirs(dst, exist_ok=True)
for name in os.listdir(src):
    if name != "model.safetensors":
        shutil.copy(os.path.join(src, name), dst)
raw = open(os.path.join(src, "model.safetensors"), "rb").read()
(length,) = struct.unpack("<Q", raw[:8])
header = json.loads(raw[8:8 + length])
data = raw[8 + length:]
header.pop("__metadata__", None)
names = sorted(header)
weight_map = {}
for shard in range(count):
    file = f"model-{shard + 1:05d}-of-{count:05d}.safetensors"
    part, blob = {}, b""
    for name in names[shard::count]:
        begin, end = header[name]["data_offsets"]
        part[name] = dict(header[name], data_offsets=[len(blob), len(blob) + end - begin])
        blob += data[begin:end]
        weight_map[name] = file
    text = json.dumps(part).encode()
    text += b" " * (-len(text) % 8)
    open(os.path.join(dst, file), "wb").write(struct.pack("<Q", len(text)) + text + blob)
json.dump({"metadata": {"total_size": len(data)}, "weight_map": weight_map},
          open(os.path.join(dst, "model.safetensors.index.json"), "w"), indent=1)
