#!/usr/bin/env python3
"""The CPU peer: llama.cpp built from PyPI's llama-cpp-python source package,
run on the same weights as qwen-run (developer tool, never run in CI).

Subcommands, each idempotent (outputs are reused when present):

  build       pip download --no-binary llama-cpp-python, unpack, and build the
              vendored llama.cpp's llama-server and llama-bench with native CPU
              flags (as a user building it on this machine would) into DIR.
  checkpoint  a seeded random HF checkpoint folder from a config.json
              (transformers' *ForCausalLM, bf16 safetensors) with the real
              Qwen3 tokenizer from ../shared/data/qwen3-tokenizer, so that both
              engines read the same weights and the same vocabulary.
  gguf        the vendored convert_hf_to_gguf.py on such a folder (bf16 or f32).
  serve-bench start `qwen-run serve` and `llama-server` on the same checkpoint
              one after the other and run bench/serve_load.py against each
              with the same seeded requests; prints both tables and the ratios.
  compare     qwen-run bench and llama-bench on the same checkpoint (its bf16
              GGUF), alternated and repeated: prefill of each --prompts length,
              decode of --gen tokens after --depth tokens, medians and ratios,
              and decode's effective weight bandwidth against the read
              bandwidth measured in the same run (bench/membw.c). Several
              qwen builds (--qwen LABEL=BINDIR[:compile flags]) compare a change
              with its baseline in one run; no llama.cpp binary: that column is
              skipped.
  chat-bench  multi-turn chat through /v1/chat/completions with a long shared
              system prompt: time to first token per turn for qwen-run serve
              with and without its prefix cache and for llama-server (its
              prompt cache on, as by default).

  python3 bench/llamacpp_peer.py build --dir .peer
  .venv-ref/bin/python bench/llamacpp_peer.py checkpoint \
      --config bench/configs/qwen3-0.6b.json --out .peer/qwen3-0.6b
  .venv-ref/bin/python bench/llamacpp_peer.py gguf --dir .peer --checkpoint .peer/qwen3-0.6b
  python3 bench/llamacpp_peer.py compare --dir .peer --checkpoint .peer/qwen3-0.6b \
      --qwen before=/tmp/main/build/bin --qwen after=build/bin --repeats 3
  python3 bench/llamacpp_peer.py serve-bench --dir .peer --checkpoint .peer/qwen3-0.6b \
      --build build --concurrency 1,8 --requests 16

Needs torch + transformers (scripts/requirements-reference.txt) for
`checkpoint` and `gguf`; the others are stdlib only.
"""
import argparse
import contextlib
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_TOKENIZER = os.path.join(os.path.dirname(ROOT), "shared", "data", "qwen3-tokenizer")


def run(cmd, **kw):
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, check=True, **kw)


def llama_source(peer_dir):
    found = sorted(glob.glob(os.path.join(peer_dir, "llama_cpp_python-*", "vendor", "llama.cpp")))
    return found[-1] if found else None


def cmd_build(args):
    os.makedirs(args.dir, exist_ok=True)
    src = llama_source(args.dir)
    if src is None:
        run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
             "llama-cpp-python" + (("==" + args.version) if args.version else ""), "-d", args.dir])
        archive = sorted(glob.glob(os.path.join(args.dir, "llama_cpp_python-*.tar.gz")))[-1]
        with tarfile.open(archive) as tar:
            tar.extractall(args.dir, filter="data")
        src = llama_source(args.dir)
    build = os.path.join(src, "build")
    if not os.path.exists(os.path.join(build, "build.ninja")):
        run(["cmake", "-S", src, "-B", build, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
             "-DGGML_NATIVE=ON", "-DLLAMA_CURL=OFF", "-DLLAMA_BUILD_TESTS=OFF",
             "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_SERVER=ON"])
    run(["ninja", "-C", build, "-j", str(args.jobs), "llama-server", "llama-bench"])
    print(json.dumps({"llama_cpp": src, "bin": os.path.join(build, "bin")}))


def cmd_checkpoint(args):
    import torch
    import transformers
    if os.path.exists(os.path.join(args.out, "model.safetensors")) or \
            os.path.exists(os.path.join(args.out, "model.safetensors.index.json")):
        print(json.dumps({"checkpoint": args.out, "reused": True}))
        return
    with open(args.config) as f:
        config_dict = json.load(f)
    config = transformers.AutoConfig.for_model(**config_dict)
    torch.manual_seed(args.seed)
    dtype = {"bf16": torch.bfloat16, "f32": torch.float32}[args.dtype]
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.eval()
    os.makedirs(args.out, exist_ok=True)
    model.save_pretrained(args.out, safe_serialization=True)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(args.tokenizer, name), os.path.join(args.out, name))
    print(json.dumps({"checkpoint": args.out, "seed": args.seed, "dtype": args.dtype}))


def gguf_path(checkpoint, outtype):
    return os.path.join(checkpoint, "model-%s.gguf" % outtype)


def cmd_gguf(args):
    src = llama_source(args.dir)
    if src is None:
        sys.exit("llamacpp_peer: run `build` first (no llama.cpp source under %s)" % args.dir)
    out = gguf_path(args.checkpoint, args.outtype)
    if not os.path.exists(out):
        env = dict(os.environ, PYTHONPATH=os.path.join(src, "gguf-py"))
        run([sys.executable, os.path.join(src, "convert_hf_to_gguf.py"), args.checkpoint,
             "--outtype", args.outtype, "--outfile", out], env=env)
    print(json.dumps({"gguf": out}))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port, proc, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited with %d" % proc.returncode)
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/health" % port, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError("server not ready after %d s" % timeout)


def load(port, args, label):
    out = os.path.join(args.dir, "serve-bench-%s.jsonl" % label)
    if os.path.exists(out):
        os.remove(out)
    run([sys.executable, os.path.join(ROOT, "bench", "serve_load.py"),
         "--base-url", "http://127.0.0.1:%d" % port, "--requests", str(args.requests),
         "--concurrency", args.concurrency, "--seed", str(args.seed), "--label", label, "--json", out])
    with open(out) as f:
        return [json.loads(line) for line in f if line.strip()]


@contextlib.contextmanager
def running_server(cmd, port, args, log_name):
    """A server started with `cmd`, ready on `port`; terminated on exit."""
    log = open(os.path.join(args.dir, log_name), "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_ready(port, proc, args.ready_timeout)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def serve(cmd, port, args, label):
    with running_server(cmd, port, args, "serve-bench-%s.log" % label):
        return load(port, args, label)


WORDS = ("time year people way day man thing woman life child world school state family student group "
         "country problem hand part place case week company system program question work government number "
         "night point home water room mother area money story fact month lot right study book eye job word").split()


def served_model(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/v1/models" % port, timeout=10) as r:
        return json.loads(r.read())["data"][0]["id"]


def chat_turn(port, model, messages, max_tokens, timeout):
    """One streamed chat completion: (time to first token in s, reply text)."""
    import http.client
    body = {"model": model, "messages": messages, "max_tokens": max_tokens, "temperature": 0,
            "stream": True, "chat_template_kwargs": {"enable_thinking": False}}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    start = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", body=json.dumps(body),
                 headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError("HTTP %d: %r" % (resp.status, resp.read()[:300]))
    first, text = None, []
    for raw in resp:
        line = raw.strip()
        if not line.startswith(b"data: ") or line == b"data: [DONE]":
            continue
        for choice in json.loads(line[6:]).get("choices", []):
            delta = choice.get("delta", {})
            piece = (delta.get("content") or "") + (delta.get("reasoning_content") or "")
            if piece:
                if first is None:
                    first = time.perf_counter() - start
                text.append(piece)
    conn.close()
    return first if first is not None else time.perf_counter() - start, "".join(text)


def chat_load(port, model, args):
    """args.conversations conversations of args.turns turns, one after the
    other, all with the same system prompt; TTFT per turn (seconds)."""
    import random
    rng = random.Random(args.seed)
    system = " ".join(rng.choice(WORDS) for _ in range(args.system_words))
    per_turn = [[] for _ in range(args.turns)]
    for _ in range(args.conversations):
        messages = [{"role": "system", "content": system}]
        for t in range(args.turns):
            messages.append({"role": "user", "content": " ".join(rng.choice(WORDS) for _ in range(args.user_words))})
            ttft, reply = chat_turn(port, model, messages, args.max_tokens, args.timeout)
            per_turn[t].append(ttft)
            messages.append({"role": "assistant", "content": reply})
    return per_turn


def chat_engine(cmd, port, args, label):
    with running_server(cmd, port, args, "chat-bench-%s.log" % label):
        model = served_model(port)
        chat_turn(port, model, [{"role": "user", "content": "warm up"}], 2, args.timeout)
        return chat_load(port, model, args)


def cmd_chat_bench(args):
    import statistics
    src = llama_source(args.dir)
    gguf = gguf_path(args.checkpoint, args.outtype)
    build = os.path.abspath(args.build)
    artifact = os.path.join(args.dir, os.path.basename(args.checkpoint.rstrip("/")) + ".qwenc")
    if not os.path.exists(artifact):
        run([os.path.join(build, "bin", "qwen-compile"), args.checkpoint, "-o", artifact])
    qwen = [os.path.join(build, "bin", "qwen-run"), "serve", artifact, "--threads", str(args.threads),
            "--max-num-seqs", "1", "--max-model-len", str(args.ctx)]
    engines = [("qwen-cache", qwen), ("qwen-no-cache", qwen + ["--no-prefix-cache"])]
    if src and os.path.exists(gguf):
        engines.append(("llama-server", [os.path.join(src, "build", "bin", "llama-server"), "-m", gguf,
                                         "--host", "127.0.0.1", "-t", str(args.threads), "-np", "1",
                                         "-c", str(args.ctx), "--jinja", "--no-webui"]))
    else:
        print("chat-bench: no llama-server or GGUF under %s: that column is skipped" % args.dir)
    results = {}
    for label, cmd in engines:
        port = free_port()
        results[label] = chat_engine(cmd + ["--port", str(port)], port, args, label)
    print("\ntime to first token per turn, median over %d conversations (s); system prompt %d words"
          % (args.conversations, args.system_words))
    print("%-15s" % "engine" + "".join("%10s" % ("turn %d" % (t + 1)) for t in range(args.turns)))
    for label, per_turn in results.items():
        print("%-15s" % label + "".join("%10.3f" % statistics.median(v) for v in per_turn))
    with open(os.path.join(args.dir, "chat-bench.json"), "w") as f:
        json.dump({"args": vars(args), "ttft_s": results}, f, indent=1)


def cmd_serve_bench(args):
    src = llama_source(args.dir)
    if src is None:
        sys.exit("llamacpp_peer: run `build` first")
    gguf = gguf_path(args.checkpoint, args.outtype)
    if not os.path.exists(gguf):
        sys.exit("llamacpp_peer: run `gguf` first (%s is missing)" % gguf)
    build = os.path.abspath(args.build)
    artifact = os.path.join(args.dir, os.path.basename(args.checkpoint.rstrip("/")) + ".qwenc")
    if not os.path.exists(artifact):
        run([os.path.join(build, "bin", "qwen-compile"), args.checkpoint, "-o", artifact])
    max_seqs = str(max(int(c) for c in args.concurrency.split(",")))
    results = {}
    port = free_port()
    results["qwen"] = serve([os.path.join(build, "bin", "qwen-run"), "serve", artifact, "--port", str(port),
                             "--threads", str(args.threads), "--max-num-seqs", max_seqs,
                             "--max-model-len", str(args.ctx)], port, args, "qwen")
    port = free_port()
    results["llama"] = serve([os.path.join(src, "build", "bin", "llama-server"), "-m", gguf,
                              "--port", str(port), "--host", "127.0.0.1", "-t", str(args.threads),
                              "-np", max_seqs, "-c", str(args.ctx * int(max_seqs)), "--no-webui"],
                             port, args, "llama")
    print("\n%-12s %-6s %12s %12s %12s %12s" % ("engine", "conc", "tok/s", "TTFT p50 ms", "TPOT p50 ms",
                                               "TPOT p99 ms"))
    for engine, rows in results.items():
        for r in rows:
            print("%-12s %-6s %12.1f %12.1f %12.1f %12.1f" % (
                engine, r["concurrency"], r["output_tok_s"], r["ttft_p50_ms"], r["tpot_p50_ms"],
                r["tpot_p99_ms"]))
    for q, l in zip(results["qwen"], results["llama"]):
        print("concurrency %s: throughput %.2fx llama-server, TPOT p50 %.2fx (lower is better)" % (
            q["concurrency"], q["output_tok_s"] / l["output_tok_s"], q["tpot_p50_ms"] / l["tpot_p50_ms"]))
    with open(os.path.join(args.dir, "serve-bench.json"), "w") as f:
        json.dump(results, f, indent=1)


def median(values):
    values = sorted(values)
    n = len(values)
    return (values[n // 2] + values[(n - 1) // 2]) / 2 if n else float("nan")


def qwen_engines(args):
    """[(label, bin_dir, compile flags)] from --qwen LABEL=BINDIR[:FLAGS]."""
    specs = args.qwen or ["qwen=" + os.path.join(args.build, "bin")]
    engines = []
    for spec in specs:
        label, _, rest = spec.partition("=")
        bin_dir, _, flags = rest.partition(":")
        engines.append((label, bin_dir, flags.split()))
    return engines


def qwen_measure(bin_dir, artifact, args, prompt, gen, depth):
    """prefill tok/s of a `prompt`-token prompt, or (prompt == depth) decode
    tok/s of `gen` tokens after it, from `qwen-run bench`."""
    from cpu_bench import last_json
    out = subprocess.run([os.path.join(bin_dir, "qwen-run"), "bench", artifact, "--threads", str(args.threads),
                          "--prompt-len", str(prompt), "--gen", str(gen), "--batch", "1",
                          "--max-context", str(max(prompt, depth) + gen + 16)],
                         check=True, capture_output=True, text=True).stdout
    return last_json(out + "\n")


def llama_measure(llama_bench, gguf, args, prompt, gen, depth):
    """llama-bench: prefill tok/s of `prompt` tokens (gen 0) or decode tok/s
    of `gen` tokens after a context of `depth` (prompt 0)."""
    cmd = [llama_bench, "-m", gguf, "-t", str(args.threads), "-r", "1", "-o", "json",
           "-p", str(prompt), "-n", str(gen), "-d", str(depth)]
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)[0]["avg_ts"]


def cmd_compare(args):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from cpu_bench import measure_bandwidth, weight_bytes, kv_bytes_per_position
    src = llama_source(args.dir)
    llama_bench = os.path.join(src, "build", "bin", "llama-bench") if src else None
    gguf = gguf_path(args.checkpoint, args.outtype)
    if not (llama_bench and os.path.exists(llama_bench) and os.path.exists(gguf)):
        print("llamacpp_peer: no llama-bench or no %s: the llama.cpp column is skipped" % gguf,
              file=sys.stderr)
        llama_bench = None
    prompts = [int(p) for p in args.prompts.split(",")]
    work = args.work or os.path.join(ROOT, ".peer", "compare")
    engines = []
    for label, bin_dir, flags in qwen_engines(args):
        artifact = os.path.join(work, label + ".qwenc")
        if not (args.reuse and os.path.exists(os.path.join(artifact, "manifest.json"))):
            run([os.path.join(bin_dir, "qwen-compile"), args.checkpoint, "-o", artifact, *flags])
        manifest = json.load(open(os.path.join(artifact, "manifest.json")))
        engines.append({"label": label, "bin": bin_dir, "artifact": artifact, "manifest": manifest,
                        "features": manifest["target"].get("features", []), "cpu": manifest["target"].get("cpu")})
    if llama_bench:
        engines.append({"label": "llama.cpp", "bin": None})
    tests = [("prefill", p) for p in prompts] + [("decode", args.depth)]
    samples = {(e["label"], t): [] for e in engines for t in tests}
    bandwidth = [measure_bandwidth(args.threads)]
    for rep in range(args.repeats):
        # Alternate the engines, rotating who goes first, so that the noise of
        # a shared machine spreads over all of them.
        order = engines[rep % len(engines):] + engines[:rep % len(engines)]
        for test in tests:
            kind, n = test
            for e in order:
                if e["bin"] is None:
                    value = llama_measure(llama_bench, gguf, args, n if kind == "prefill" else 0,
                                          args.gen if kind == "decode" else 0, n if kind == "decode" else 0)
                else:
                    res = qwen_measure(e["bin"], e["artifact"], args, n, args.gen if kind == "decode" else 1, n)
                    value = res["prefill_tok_s"] if kind == "prefill" else res["decode_tok_s"]
                samples[(e["label"], test)].append(value)
                print("%-10s %-8s %4d  %8.2f tok/s" % (e["label"], kind, n, value), file=sys.stderr, flush=True)
        bandwidth.append(measure_bandwidth(args.threads))
    bw = median(bandwidth)
    ref = engines[0]["manifest"] if engines and engines[0]["bin"] else None
    step_bytes = None
    if ref:
        step_bytes = weight_bytes(ref) + (args.depth + args.gen / 2) * kv_bytes_per_position(ref)
    results = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpus": os.cpu_count(),
               "threads": args.threads, "repeats": args.repeats, "read_gb_s": bandwidth,
               "checkpoint": args.checkpoint, "gguf": gguf if llama_bench else None,
               "engines": [{k: e[k] for k in ("label", "cpu", "features") if k in e} for e in engines],
               "samples": {"%s %s %d" % (label, kind, n): v for (label, (kind, n)), v in samples.items()}}
    print("\nqwen-run vs llama.cpp, %s, %d cpus, %d threads, batch 1, median of %d alternated runs; "
          "read bandwidth %.1f GB/s (median of %d)" % (results["date"], os.cpu_count(), args.threads,
                                                      args.repeats, bw, len(bandwidth)))
    for e in engines:
        if e["bin"]:
            print("  %s: %s, cpu %s [%s]" % (e["label"], e["artifact"], e["cpu"], ",".join(e["features"])))
    names = ["prefill %d" % n if k == "prefill" else "decode %d after %d" % (args.gen, n) for k, n in tests]
    header = ["engine"] + ["%s tok/s" % n for n in names] + ["decode GB/s", "% read bw"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    llama = next((e for e in engines if e["bin"] is None), None)
    for e in engines:
        meds = [median(samples[(e["label"], t)]) for t in tests]
        row = [e["label"]] + ["%.1f" % m for m in meds]
        if e["bin"] and step_bytes:
            gbs = meds[-1] * step_bytes / 1e9
            row += ["%.1f" % gbs, "%.0f%%" % (100 * gbs / bw)]
        else:
            row += ["-", "-"]
        print("| " + " | ".join(row) + " |")
    if llama:
        for e in engines:
            if e["bin"]:
                ratios = [median(samples[(e["label"], t)]) / median(samples[("llama.cpp", t)]) for t in tests]
                print("| %s / llama.cpp | %s | | |" % (e["label"], " | ".join("%.2fx" % r for r in ratios)))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("--dir", default=os.path.join(ROOT, ".peer"))
    b.add_argument("--version", default="", help="llama-cpp-python version (default: newest)")
    b.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    c = sub.add_parser("checkpoint")
    c.add_argument("--config", required=True)
    c.add_argument("--out", required=True)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--dtype", choices=["bf16", "f32"], default="bf16")
    c.add_argument("--tokenizer", default=SHARED_TOKENIZER)
    g = sub.add_parser("gguf")
    g.add_argument("--dir", default=os.path.join(ROOT, ".peer"))
    g.add_argument("--checkpoint", required=True)
    g.add_argument("--outtype", choices=["bf16", "f32"], default="bf16")
    s = sub.add_parser("serve-bench")
    s.add_argument("--dir", default=os.path.join(ROOT, ".peer"))
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--outtype", choices=["bf16", "f32"], default="bf16")
    s.add_argument("--build", default=os.path.join(ROOT, "build"))
    s.add_argument("--threads", type=int, default=2)
    s.add_argument("--ctx", type=int, default=2048, help="context per sequence")
    s.add_argument("--requests", type=int, default=16)
    s.add_argument("--concurrency", default="1,8")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--ready-timeout", type=int, default=300)
    h = sub.add_parser("chat-bench")
    h.add_argument("--dir", default=os.path.join(ROOT, ".peer"))
    h.add_argument("--checkpoint", required=True)
    h.add_argument("--outtype", choices=["bf16", "f32"], default="bf16")
    h.add_argument("--build", default=os.path.join(ROOT, "build"))
    h.add_argument("--threads", type=int, default=2)
    h.add_argument("--ctx", type=int, default=4096)
    h.add_argument("--system-words", type=int, default=1000, help="about 1.2 tokens per word")
    h.add_argument("--user-words", type=int, default=24)
    h.add_argument("--max-tokens", type=int, default=16)
    h.add_argument("--turns", type=int, default=3)
    h.add_argument("--conversations", type=int, default=2)
    h.add_argument("--seed", type=int, default=0)
    h.add_argument("--timeout", type=float, default=900)
    h.add_argument("--ready-timeout", type=int, default=300)
    m = sub.add_parser("compare")
    m.add_argument("--dir", default=os.path.join(ROOT, ".peer"))
    m.add_argument("--checkpoint", required=True)
    m.add_argument("--outtype", choices=["bf16", "f32"], default="bf16")
    m.add_argument("--build", default=os.path.join(ROOT, "build"))
    m.add_argument("--qwen", action="append",
                   help="LABEL=BINDIR[:qwen-compile flags], repeatable (default: qwen=BUILD/bin)")
    m.add_argument("--threads", type=int, default=2)
    m.add_argument("--prompts", default="128,512")
    m.add_argument("--gen", type=int, default=64)
    m.add_argument("--depth", type=int, default=128, help="context before the decoded tokens")
    m.add_argument("--repeats", type=int, default=3)
    m.add_argument("--work", help="artifact folder (default .peer/compare)")
    m.add_argument("--json", help="write every sample here")
    m.add_argument("--reuse", action="store_true", help="keep artifacts already in --work")
    args = p.parse_args()
    {"compare": cmd_compare, "build": cmd_build, "checkpoint": cmd_checkpoint, "gguf": cmd_gguf,
     "serve-bench": cmd_serve_bench, "chat-bench": cmd_chat_bench}[args.cmd](args)


if __name__ == "__main__":
    main()
