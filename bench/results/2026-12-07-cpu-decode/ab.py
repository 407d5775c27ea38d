#!/usr/bin/env python3
"""Alternate qwen-run bench over builds: ab.py ROUNDS BATCH label=BIN:ART ..."""
import json, subprocess, sys, statistics, time
rounds, batch = int(sys.argv[1]), sys.argv[2]
engines = [a.split("=", 1) for a in sys.argv[3:]]
res = {l: [] for l, _ in engines}
bw = []
def membw():
    out = subprocess.run(["/work/cpu-decode-art/membw"], capture_output=True, text=True).stdout
    return json.loads(out)["read_gb_s"]
for r in range(rounds):
    order = engines[r % len(engines):] + engines[:r % len(engines)]
    bw.append(membw())
    for label, spec in order:
        binary, art = spec.split(":")
        out = subprocess.run(["nice", binary, "bench", art, "--random-weights", "--prompt-len", "128", "--gen", "32",
                              "--threads", "2", "--max-context", "1024", "--batch", batch],
                             capture_output=True, text=True).stdout
        j = [json.loads(l) for l in out.splitlines() if l.startswith("{")][-1]
        # bytes per step: weights + KV read (f32 K and V, 28 layers x 8 heads x 128, ~context 144)
        kv = batch and int(batch) * 144 * 28 * 8 * 128 * 4 * 2
        gbs = (j["weight_bytes"] + kv) * j["decode_tok_s"] / int(batch) / 1e9
        res[label].append((j["decode_tok_s"], gbs, j["prefill_tok_s"]))
        print(f"round {r} {label}: decode {j['decode_tok_s']:.2f} tok/s {gbs:.1f} GB/s prefill {j['prefill_tok_s']:.1f}", flush=True)
    bw.append(membw())
    print(f"  membw {bw[-2]:.1f} {bw[-1]:.1f}  load {open('/proc/loadavg').read().split()[0]}", flush=True)
mbw = statistics.median(bw)
print(f"median read bw {mbw:.2f} GB/s (range {min(bw):.1f}-{max(bw):.1f})")
for l, v in res.items():
    d = statistics.median(x[0] for x in v); g = statistics.median(x[1] for x in v)
    print(f"{l}: batch {batch} decode median {d:.2f} tok/s, {g:.2f} GB/s = {100*g/mbw:.0f}% of read bw; samples {[round(x[0],2) for x in v]}")
