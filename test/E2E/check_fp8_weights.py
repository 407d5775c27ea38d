"""Checks that an artifact keeps a checkpoint's FP8 tensors fp8 (stdlib only):
  check_fp8_weights.py ARTIFACT CHECKPOINT_DIR
Counts the weights of the manifest (the step's and the vision program's)
whose source tensors are stored F8_E4M3: those kept f8e4m3 (bound as the
file's bytes) and those of a wider dtype (dequantized when bound, named on
the following lines), then the weight bytes by dtype. The tests check the
counts."""
import json
import os
import struct
import sys


def dtypes(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    return {k: v["dtype"] for k, v in header.items()}


def main():
    artifact, checkpoint = sys.argv[1], sys.argv[2]
    stored = {}
    for name in os.listdir(checkpoint):
        if name.endswith(".safetensors"):
            stored.update(dtypes(os.path.join(checkpoint, name)))
    with open(os.path.join(artifact, "manifest.json")) as f:
        manifest = json.load(f)
    weights = list(manifest.get("weights", []))
    if isinstance(manifest.get("vision"), dict):
        weights += manifest["vision"].get("weights", [])
    size = {"f8e4m3": 1, "bf16": 2, "f16": 2, "f32": 4, "f64": 8, "i32": 4}
    fp8, by_dtype, bad = 0, {}, []
    for w in weights:
        n = 1
        for d in w["shape"]:
            n *= d
        by_dtype[w["dtype"]] = by_dtype.get(w["dtype"], 0) + n * size.get(w["dtype"], 4)
        sources = [s.split("[")[0] for s in w["sources"]]
        if any(stored.get(s) == "F8_E4M3" for s in sources):
            if w["dtype"] == "f8e4m3":
                fp8 += 1
            else:
                bad.append(w)
    print("fp8 weights: %d" % fp8)
    print("dequantized fp8 sources: %d" % len(bad))
    for w in bad:
        print("  weight %d (%s) is %s" % (w["id"], w["sources"][0], w["dtype"]))
    for dtype in sorted(by_dtype):
        print("%s bytes: %d" % (dtype, by_dtype[dtype]))


main()
