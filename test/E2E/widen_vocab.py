#!/usr/bin/env python3
"""Copies a tiny checkpoint's model.safetensors with its embedding table (and an untied lm_head)
widened to VOCAB rows (the new rows zero), so that a tokenizer with a real
vocabulary can drive it: widen_vocab.py IN_DIR OUT_DIR VOCAB. Plain Python
(no torch): the safetensors header is JSON, the tensors follow it."""
import json
import struct
import sys

src, dst, vocab = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(f"{src}/model.safetensors", "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
    data = f.read()
out, blobs, offset = {}, [], 0
for name, info in header.items():
    if name == "__metadata__":
        out[name] = info
        continue
    begin, end = info["data_offsets"]
    blob = data[begin:end]
    if name.endswith("embed_tokens.weight") or name == "lm_head.weight":
        rows, cols = info["shape"]
        blob += bytes((vocab - rows) * cols * 4)
        info = dict(info, shape=[vocab, cols])
    out[name] = dict(info, data_offsets=[offset, offset + len(blob)])
    blobs.append(blob)
    offset += len(blob)
text = json.dumps(out).encode()
text += b" " * (-len(text) % 8)
with open(f"{dst}/model.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
