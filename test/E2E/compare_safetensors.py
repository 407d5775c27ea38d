"""Compares safetensors files tensor by tensor (stdlib only), for the
`qwen-compile --weight-dtype=fp8` test:
  compare_safetensors.py OURS EXPECTED [SOURCE]
Every tensor of EXPECTED must be in OURS with the same dtype, shape and bytes;
with SOURCE, every other tensor of OURS must equal SOURCE's tensor of that
name (left as it was). Prints one line per check; exits 1 on a difference."""
import json
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


def main():
    ours = read(sys.argv[1])
    expected = read(sys.argv[2])
    bad = 0
    for name in sorted(expected):
        got = ours.get(name)
        if got is None or got[:2] != expected[name][:2] or got[2] != expected[name][2]:
            what = "missing" if got is None else f"{got[0]} {got[1]} vs {expected[name][0]} {expected[name][1]}"
            print(f"DIFFERENT: {name} ({what})")
            bad += 1
    print(f"{len(expected) - bad} of {len(expected)} quantized tensors byte-equal")
    if len(sys.argv) > 3:
        source = read(sys.argv[3])
        kept = [n for n in ours if n not in expected]
        same = [n for n in kept if source.get(n) == ours[n]]
        for n in sorted(set(kept) - set(same)):
            print(f"CHANGED: {n}")
        print(f"{len(same)} of {len(kept)} other tensors unchanged")
        bad += len(kept) - len(same)
    sys.exit(1 if bad else 0)


main()
