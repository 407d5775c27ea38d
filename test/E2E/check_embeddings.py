#!/usr/bin/env python3
"""Compares `qwen-run embed` with HF reference embeddings (stdlib only).

  check_embeddings.py ARTIFACT CASE_DIR [MAX_ABS]

Runs `qwen-run embed ARTIFACT TEXT...` on CASE_DIR/texts.json and compares
each embedding with tK.embedding of CASE_DIR/reference.safetensors (HF
Qwen3Model's last hidden state at the last token, L2-normalised): max |diff|
<= MAX_ABS (default 1e-5) and unit length. Prints one line per text, then
PASS or FAIL."""
import json
import math
import struct
import subprocess
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
        code = {"F32": "f", "I32": "i"}[info["dtype"]]
        out[name] = list(struct.unpack("<%d%s" % (len(raw) // 4, code), raw))
    return out


def main():
    artifact, case = sys.argv[1], sys.argv[2]
    max_abs = float(sys.argv[3]) if len(sys.argv) > 3 else 1e-5
    with open(case + "/texts.json") as f:
        texts = json.load(f)
    ref = read_safetensors(case + "/reference.safetensors")
    out = subprocess.run(["qwen-run", "embed", artifact, *texts], check=True,
                         capture_output=True, text=True).stdout
    got = json.loads(out)
    ok = len(got) == len(texts)
    if not ok:
        print(f"FAIL: {len(got)} embeddings for {len(texts)} texts")
    for k, emb in enumerate(got[:len(texts)]):
        want = ref[f"t{k}.embedding"]
        diff = max(abs(a - b) for a, b in zip(emb, want)) if len(emb) == len(want) else math.inf
        norm = math.sqrt(sum(a * a for a in emb))
        good = diff <= max_abs and abs(norm - 1) <= 1e-5
        ok &= good
        print(f"{'PASS' if good else 'FAIL'}: text {k}: {len(emb)} dims, max |diff| {diff:.3g} "
              f"<= {max_abs:g}, norm {norm:.6f}")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
