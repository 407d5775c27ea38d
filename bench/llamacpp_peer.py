#!/usr/bin/env python3
"""The CPU peer: llama.cpp built from PyPI's llama-cpp-python source package,
run on the same weights as qwen-run (developer tool, never run in CI).

Subcommands, each idempotent (outputs are reused when present):

  build       pip download --no-binary llama-cpp-python, unpack, and build the
              vendored llama.cpp's llama-server, llama-bench and
              llama-batched-bench with native CPU flags (as a user building it
              on this machine would) into DIR.
  checkpoint  a seeded random HF checkpoint folder from a config.json
              (transformers' *ForCausalLM, bf16 safetensors) with the real
              Qwen3 tokenizer from ../shared/data/qwen3-tokenizer, so that both
              engines read the same weights and the same vocabulary. --layers N
              keeps the first N decoder layers at their real size (a model too
              large for memory, as bench/moe_depth_bench.py compiles it).
  gguf        the vendored convert_hf_to_gguf.py on such a folder (bf16 or f32;
              --no-mtp for the hybrid families, whose seeded checkpoints have
              no multi-token-prediction tensors).
  serve-bench start `qwen-run serve` and `llama-server` on the same checkpoint
              one after the other and run bench/serve_load.py against each
              with the same seeded requests; prints both tables and the ratios.
  compare     qwen-run bench and llama.cpp on the same checkpoint (its bf16
              GGUF), alternated and repeated: prefill of each --prompts length,
              decode of --gen tokens after --depth tokens, for each of
              --batches sequences together, medians and ratios, and decode's
              effective weight bandwidth against the read bandwidth measured
              in the same run (bench/membw.c). llama.cpp's batch 1 is
              llama-bench, batch B > 1 llama-batched-bench -npl B (B prompts
              prefilled in one batch, then B sequences decoded together, as
              `qwen-run bench --batch B`). Several qwen builds (--qwen
              LABEL=BINDIR[:compile flags]) compare a change with its baseline
              in one run; no llama.cpp binary: that column is skipped.
  greedy      the f32 GGUF in llama-server (f32 KV cache, no flash attention)
              against our artifact compiled with f32 computation
              (--bf16-activations=off --kv-dtype=f32): the same prompt token
              ids to both (no tokenizer or template in between), --steps
              greedy tokens each, the top-2 logit gap of every step in both
              engines, PASS or FAIL with the first divergence.
  chat-bench  multi-turn chat through /v1/chat/completions with a long shared
              system prompt: time to first token per turn for qwen-run serve
              with and without its prefix cache and for llama-server (its
              prompt cache on, as by default).

  python3 bench/llamacpp_peer.py build --dir .peer
  .venv-ref/bin/python bench/llamacpp_peer.py checkpoint \
      --config bench/configs/qwen3-0.6b.json --out .peer/qwen3-0.6b
  .venv-ref/bin/python bench/llamacpp_peer.py checkpoint \
      --config bench/configs/qwen3-30b-a3b.json --layers 2 --out .peer/qwen3-30b-a3b-2l
  .venv-ref/bin/python bench/llamacpp_peer.py gguf --dir .peer --checkpoint .peer/qwen3-0.6b
  .venv-ref/bin/python bench/llamacpp_peer.py gguf --dir .peer --checkpoint .peer/qwen3-0.6b --outtype f32
  python3 bench/llamacpp_peer.py compare --dir .peer --checkpoint .peer/qwen3-0.6b \
      --qwen before=/tmp/main/build/bin --qwen after=build/bin --repeats 3 --batches 1,4
  python3 bench/llamacpp_peer.py greedy --dir .peer --checkpoint .peer/qwen3-0.6b
  python3 bench/llamacpp_peer.py serve-bench --dir .peer --checkpoint .peer/qwen3-0.6b \
      --build build --concurrency 1,8 --requests 16

Needs torch + transformers (scripts/requirements-reference.txt) for
`checkpoint` and `gguf`; the others are stdlib only.
"""
import argparse
import contextlib
import glob
import json
import math
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
    run(["ninja", "-C", build, "-j", str(args.jobs), "llama-server", "llama-bench", "llama-batched-bench"])
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
    if args.layers:
        config_dict = with_layers(config_dict, args.layers)
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


def with_layers(config, layers):
    """`config` with only its first `layers` decoder layers (every layer at
    its real size), as bench/moe_depth_bench.py compiles a model too large for
    this machine: both engines then run the same reduced model."""
    config = json.loads(json.dumps(config))
    text = config.get("text_config", config)
    text["num_hidden_layers"] = layers
    if "layer_types" in text:
        text["layer_types"] = text["layer_types"][:layers]
    if "mlp_only_layers" in text:
        text["mlp_only_layers"] = [i for i in text["mlp_only_layers"] if i < layers]
    return config


def gguf_path(checkpoint, outtype):
    return os.path.join(checkpoint, "model-%s.gguf" % outtype)


def cmd_gguf(args):
    src = llama_source(args.dir)
    if src is None:
        sys.exit("llamacpp_peer: run `build` first (no llama.cpp source under %s)" % args.dir)
    out = gguf_path(args.checkpoint, args.outtype)
    if not os.path.exists(out):
        env = dict(os.environ, PYTHONPATH=os.path.join(src, "gguf-py"))
        with open(os.path.join(args.checkpoint, "config.json")) as f:
            architectures = json.load(f).get("architectures", [])
        # The hybrid families' converter expects multi-token-prediction
        # tensors unless told there are none (a seeded checkpoint has none).
        no_mtp = ["--no-mtp"] if any(a.startswith(("Qwen3_5", "Qwen3Next")) for a in architectures) else []
        run(["nice", sys.executable, os.path.join(src, "convert_hf_to_gguf.py"), args.checkpoint,
             "--outtype", args.outtype, "--outfile", out, *no_mtp], env=env)
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


def qwen_measure(bin_dir, artifact, args, prompt, gen, batch):
    """`qwen-run bench`: `batch` prompts of `prompt` tokens prefilled together,
    then `gen` decode steps of the batch; its JSON line (prefill_tok_s and
    decode_tok_s count the tokens of every sequence)."""
    from cpu_bench import last_json
    out = subprocess.run(["nice", "-n", str(args.nice), os.path.join(bin_dir, "qwen-run"), "bench", artifact,
                          "--threads", str(args.threads), "--prompt-len", str(prompt), "--gen", str(gen),
                          "--batch", str(batch), "--max-context", str(prompt + gen + 16)],
                         check=True, capture_output=True, text=True).stdout
    return last_json(out + "\n")


def llama_measure(bins, gguf, args, kind, n, batch):
    """llama.cpp's tok/s of one test, or None where no binary measures it.

    Batch 1: llama-bench, prefill of `n` tokens (-p n -n 0) or decode of
    --gen tokens after a context of `n` (-p 0 -n gen -d n). Batch B > 1:
    llama-batched-bench -npl B, which prefills B prompts of `n` tokens in one
    batch and then decodes --gen tokens for each (as `qwen-run bench --batch
    B`); its speed_pp / speed_tg count the tokens of every sequence."""
    if batch == 1 and bins.get("llama-bench") and not args.llama_batched_bench:
        cmd = [bins["llama-bench"], "-m", gguf, "-t", str(args.threads), "-r", "1", "-o", "json",
               "-p", str(n if kind == "prefill" else 0), "-n", str(args.gen if kind == "decode" else 0),
               "-d", str(n if kind == "decode" else 0)]
        print("+", " ".join(cmd), file=sys.stderr, flush=True)
        out = subprocess.run(["nice", "-n", str(args.nice)] + cmd, check=True, capture_output=True, text=True).stdout
        return json.loads(out)[0]["avg_ts"]
    if (batch > 1 or args.llama_batched_bench) and bins.get("llama-batched-bench"):
        gen = args.gen if kind == "decode" else 1
        cmd = [bins["llama-batched-bench"], "-m", gguf, "-t", str(args.threads), "-tb", str(args.threads),
               "-c", str(batch * (n + gen + 16)), "-b", "2048", "-ub", "512", "-npp", str(n), "-ntg", str(gen),
               "-npl", str(batch), "--output-format", "jsonl"]
        print("+", " ".join(cmd), file=sys.stderr, flush=True)
        out = subprocess.run(["nice", "-n", str(args.nice)] + cmd, check=True, capture_output=True, text=True).stdout
        row = [json.loads(line) for line in out.splitlines() if line.startswith("{")][-1]
        return row["speed_pp"] if kind == "prefill" else row["speed_tg"]
    return None


def llama_binaries(peer_dir):
    src = llama_source(peer_dir)
    bins = {}
    for name in ("llama-bench", "llama-batched-bench", "llama-server"):
        path = os.path.join(src, "build", "bin", name) if src else ""
        if path and os.path.exists(path):
            bins[name] = path
    return bins


def decode_step_bytes(checkpoint, manifest, batch, context):
    """Bytes one decode step of `batch` sequences reads at `context`: the
    weights (for MoE only the experts a batch touches, moe_depth_bench's
    model), and per sequence its KV cache and linear-attention state."""
    from cpu_bench import weight_bytes, kv_bytes_per_position, state_bytes_per_step
    with open(os.path.join(checkpoint, "config.json")) as f:
        cfg = json.load(f)
    cfg = dict(cfg.get("text_config", cfg))
    # transformers 5 writes the alias num_local_experts.
    cfg["num_experts"] = cfg.get("num_experts") or cfg.get("num_local_experts") or 0
    if cfg["num_experts"]:
        from moe_depth_bench import step_bytes
        return step_bytes(cfg, cfg["num_hidden_layers"], batch, context)
    return weight_bytes(manifest) + batch * (context * kv_bytes_per_position(manifest) +
                                             state_bytes_per_step(manifest))


def cmd_compare(args):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from cpu_bench import measure_bandwidth
    bins = llama_binaries(args.dir)
    gguf = gguf_path(args.checkpoint, args.outtype)
    batches = [int(b) for b in args.batches.split(",")]
    if not os.path.exists(gguf) or not bins.get("llama-bench"):
        print("llamacpp_peer: no llama-bench under %s or no %s: the llama.cpp column is skipped" % (args.dir, gguf),
              file=sys.stderr)
        bins = {}
    elif any(b > 1 for b in batches) and not bins.get("llama-batched-bench"):
        print("llamacpp_peer: no llama-batched-bench (`build` makes it): llama.cpp's batch > 1 cells are skipped",
              file=sys.stderr)
    prompts = [int(p) for p in args.prompts.split(",")]
    work = args.work or os.path.join(ROOT, ".peer", "compare")
    engines = []
    for label, bin_dir, flags in qwen_engines(args):
        artifact = os.path.join(work, label + ".qwenc")
        if not (args.reuse and os.path.exists(os.path.join(artifact, "manifest.json"))):
            run(["nice", "-n", str(args.nice), os.path.join(bin_dir, "qwen-compile"), args.checkpoint,
                 "-o", artifact, *flags])
        manifest = json.load(open(os.path.join(artifact, "manifest.json")))
        engines.append({"label": label, "bin": bin_dir, "artifact": artifact, "manifest": manifest,
                        "features": manifest["target"].get("features", []), "cpu": manifest["target"].get("cpu")})
    if bins:
        engines.append({"label": "llama.cpp", "bin": None})
    tests = [(kind, n, b) for b in batches for kind, n in [("prefill", p) for p in prompts] + [("decode", args.depth)]]
    samples = {(e["label"], t): [] for e in engines for t in tests}
    bandwidth = [measure_bandwidth(args.threads)]
    for rep in range(args.repeats):
        # Alternate the engines, rotating who goes first, so that the noise of
        # a shared machine spreads over all of them.
        order = engines[rep % len(engines):] + engines[:rep % len(engines)]
        for test in tests:
            kind, n, batch = test
            for e in order:
                if e["bin"] is None:
                    value = llama_measure(bins, gguf, args, kind, n, batch)
                    if value is None:
                        continue
                else:
                    res = qwen_measure(e["bin"], e["artifact"], args, n, args.gen if kind == "decode" else 1, batch)
                    value = res["prefill_tok_s"] if kind == "prefill" else res["decode_tok_s"]
                samples[(e["label"], test)].append(value)
                print("%-10s %-8s %4d x%d  %8.2f tok/s" % (e["label"], kind, n, batch, value),
                      file=sys.stderr, flush=True)
        bandwidth.append(measure_bandwidth(args.threads))
    bw = median(bandwidth)
    ref = engines[0]["manifest"] if engines and engines[0]["bin"] else None
    results = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpus": os.cpu_count(),
               "threads": args.threads, "repeats": args.repeats, "read_gb_s": bandwidth,
               "checkpoint": args.checkpoint, "gguf": gguf if bins else None, "batches": batches,
               "llama_cpp": bins,
               "engines": [{k: e[k] for k in ("label", "cpu", "features") if k in e} for e in engines],
               "samples": {"%s %s %d x%d" % (label, kind, n, b): v for (label, (kind, n, b)), v in samples.items()}}
    print("\nqwen-run vs llama.cpp on %s, %s, %d cpus, %d threads, median of %d alternated runs; "
          "read bandwidth %.1f GB/s (median of %d)" % (args.checkpoint, results["date"], os.cpu_count(),
                                                      args.threads, args.repeats, bw, len(bandwidth)))
    for e in engines:
        if e["bin"]:
            print("  %s: %s, cpu %s [%s]" % (e["label"], e["artifact"], e["cpu"], ",".join(e["features"])))
    if bins:
        print("  llama.cpp: %s; %s" % (gguf, "llama-batched-bench -npl B" if args.llama_batched_bench else
                                        "batch 1 llama-bench, batch > 1 llama-batched-bench -npl B"))
    llama = next((e for e in engines if e["bin"] is None), None)
    for batch in batches:
        row_tests = [t for t in tests if t[2] == batch]
        names = ["prefill %d" % n if k == "prefill" else "decode %d after %d" % (args.gen, n) for k, n, _ in row_tests]
        step_bytes = decode_step_bytes(args.checkpoint, ref, batch, args.depth + args.gen / 2) if ref else None
        print("\nbatch %d (tok/s of all %d sequences)" % (batch, batch))
        header = ["engine"] + ["%s tok/s" % n for n in names] + ["decode GB/s", "% read bw"]
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for e in engines:
            meds = [median(samples[(e["label"], t)]) for t in row_tests]
            row = [e["label"]] + ["%.1f" % m if m == m else "-" for m in meds]
            if e["bin"] and step_bytes:
                gbs = meds[-1] / batch * step_bytes / 1e9
                row += ["%.1f" % gbs, "%.0f%%" % (100 * gbs / bw)]
            else:
                row += ["-", "-"]
            print("| " + " | ".join(row) + " |")
        if llama:
            for e in engines:
                if e["bin"]:
                    ratios = []
                    for t in row_tests:
                        ours, theirs = median(samples[(e["label"], t)]), median(samples[("llama.cpp", t)])
                        ratios.append("%.2fx" % (ours / theirs) if theirs == theirs else "-")
                    print("| %s / llama.cpp | %s | | |" % (e["label"], " | ".join(ratios)))
    results["step_bytes_note"] = "decode GB/s = decode tok/s / batch * bytes a step reads (decode_step_bytes)"
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


def read_safetensors(path):
    """{name: (dtype, shape, bytes)} of a safetensors file (stdlib only)."""
    import struct
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    return {k: (v["dtype"], v["shape"], data[v["data_offsets"][0]:v["data_offsets"][1]])
            for k, v in header.items() if k != "__metadata__"}


def top2(row):
    """(best id, best logit, second id, second logit) of a list of logits."""
    best = max(range(len(row)), key=row.__getitem__)
    saved, row[best] = row[best], float("-inf")
    second = max(range(len(row)), key=row.__getitem__)
    row[best] = saved
    return best, row[best], second, row[second]


def qwen_greedy(bin_dir, artifact, ids, steps, args):
    """Our greedy tokens after `ids` and, per step, the logits they were
    picked from (`qwen-run logits`): [(token, logits)]."""
    import array
    out = artifact.rstrip("/") + ".logits.safetensors"
    run(["nice", "-n", str(args.nice), os.path.join(bin_dir, "qwen-run"), "logits", artifact,
         "--threads", str(args.threads), "--max-context", str(len(ids) + steps + 16),
         "--ids", ",".join(map(str, ids)), "--steps", str(steps), "-o", out])
    t = read_safetensors(out)
    vocab = t["prompt_logits"][1][1]
    rows = []
    last = array.array("f", t["prompt_logits"][2][(len(ids) - 1) * vocab * 4:len(ids) * vocab * 4])
    rows.append(last)
    decode = t["decode_logits"][2]
    for i in range(steps - 1):
        rows.append(array.array("f", decode[i * vocab * 4:(i + 1) * vocab * 4]))
    tokens = array.array("i", t["decode_ids"][2]).tolist()
    return list(zip(tokens, rows))


def llama_greedy(server, gguf, ids, steps, args):
    """llama-server's greedy tokens after the same token ids (an id array
    gets no BOS), f32 KV cache and no flash attention so that the f32 GGUF
    computes in f32: [(token, {id: logprob} of its top 2)]."""
    port = free_port()
    cmd = [server, "-m", gguf, "--host", "127.0.0.1", "--port", str(port), "-t", str(args.threads), "-np", "1",
           "-c", str(len(ids) + steps + 16), "-ctk", "f32", "-ctv", "f32", "-fa", "off", "--no-webui"]
    with running_server(["nice", "-n", str(args.nice)] + cmd, port, args, "greedy-llama-server.log"):
        body = {"prompt": ids, "n_predict": steps, "temperature": 0, "top_k": 1, "ignore_eos": True,
                "cache_prompt": False, "return_tokens": True, "n_probs": 2}
        req = urllib.request.Request("http://127.0.0.1:%d/completion" % port, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=args.timeout) as r:
            res = json.loads(r.read())
    if res.get("tokens_evaluated", len(ids)) != len(ids):
        raise RuntimeError("llama-server evaluated %s prompt tokens, not %d" % (res.get("tokens_evaluated"), len(ids)))
    probs = res.get("completion_probabilities") or res.get("probs") or []
    tops = [{p["id"]: p["logprob"] for p in step.get("top_logprobs", [])} for step in probs]
    return list(zip(res["tokens"], tops + [{}] * (len(res["tokens"]) - len(tops))))


def prompt_ids(args, bin_dir, artifact):
    if args.ids:
        return [int(i) for i in args.ids.split(",")]
    if args.prompt:
        out = subprocess.run([os.path.join(bin_dir, "qwen-run"), "tokenize", artifact, args.prompt],
                             check=True, capture_output=True, text=True).stdout
        return json.loads(out.strip().splitlines()[-1])
    import random
    rng = random.Random(args.seed)
    return [rng.randrange(0, 151643) for _ in range(args.prompt_len)]


def cmd_greedy(args):
    """The f32 GGUF in llama-server against our artifact compiled with f32
    computation: the same prompt ids, --steps greedy tokens each."""
    bins = llama_binaries(args.dir)
    gguf = gguf_path(args.checkpoint, "f32")
    if not bins.get("llama-server"):
        sys.exit("llamacpp_peer: no llama-server under %s (run `build`)" % args.dir)
    if not os.path.exists(gguf):
        sys.exit("llamacpp_peer: no %s (run `gguf --outtype f32`)" % gguf)
    bin_dir = os.path.join(os.path.abspath(args.build), "bin")
    work = args.work or os.path.join(ROOT, ".peer", "greedy")
    artifact = os.path.join(work, os.path.basename(args.checkpoint.rstrip("/")) + "-f32.qwenc")
    if not (args.reuse and os.path.exists(os.path.join(artifact, "manifest.json"))):
        run(["nice", "-n", str(args.nice), os.path.join(bin_dir, "qwen-compile"), args.checkpoint, "-o", artifact,
             "--bf16-activations=off", "--kv-dtype=f32"])
    ids = prompt_ids(args, bin_dir, artifact)
    ours = qwen_greedy(bin_dir, artifact, ids, args.steps, args)
    theirs = llama_greedy(bins["llama-server"], gguf, ids, args.steps, args)
    print("\ngreedy %d steps, %s (f32 GGUF, llama-server) vs %s (--bf16-activations=off --kv-dtype=f32)"
          % (args.steps, gguf, artifact))
    print("prompt ids (%d): %s" % (len(ids), ",".join(map(str, ids))))
    print("qwen-run : %s" % " ".join(str(t) for t, _ in ours))
    print("llama.cpp: %s" % " ".join(str(t) for t, _ in theirs))
    first = next((i for i, ((a, _), (b, _)) in enumerate(zip(ours, theirs)) if a != b), None)
    if len(ours) != len(theirs) and first is None:
        first = min(len(ours), len(theirs))
    # The top-2 gap says how confident each engine was at a step: a flat
    # random-weight model can flip its argmax on rounding differences.
    # llama-server's top log-probabilities against ours (log-softmax of our
    # logits) measure how close the two computations are.
    print("step | qwen-run token (top-2 gap) | llama.cpp token (top-2 gap) | |logprob difference| of its top 2")
    min_gap, max_diff = (float("inf"), -1), 0.0
    for i, ((a, logits), (b, top)) in enumerate(zip(ours, theirs)):
        best, l1, second, l2 = top2(logits)
        min_gap = min(min_gap, (l1 - l2, i))
        gaps = sorted(top.values(), reverse=True)
        theirs_gap = "%.4g" % (gaps[0] - gaps[1]) if len(gaps) >= 2 else "-"
        lse = l1 + math.log(math.fsum(math.exp(x - l1) for x in logits))
        diffs = [abs(logits[t] - lse - lp) for t, lp in top.items()]
        max_diff = max([max_diff] + diffs)
        mark = "" if a == b else "  <- differs; qwen-run's logit of %d is %.4g below its best" % (b, l1 - logits[b])
        print("%4d | %6d (%.4g) | %6d (%s) | %s%s" % (i, a, l1 - l2, b, theirs_gap,
                                                  " ".join("%.2g" % d for d in diffs) or "-", mark))
    print("smallest qwen-run top-2 gap %.4g (step %d); largest |logprob difference| %.3g" % (
        min_gap[0], min_gap[1], max_diff))
    result = {"checkpoint": args.checkpoint, "gguf": gguf, "prompt_ids": ids, "qwen": [t for t, _ in ours],
              "llama": [t for t, _ in theirs], "first_divergence": first, "min_top2_gap": min_gap[0],
              "max_logprob_diff": max_diff}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    if first is None:
        print("PASS: %d greedy tokens equal" % len(ours))
    else:
        print("FAIL: first divergence at step %d (qwen-run %d, llama.cpp %d)" % (
            first, ours[first][0] if first < len(ours) else -1, theirs[first][0] if first < len(theirs) else -1))
        sys.exit(1)


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
    c.add_argument("--layers", type=int, default=0,
                   help="keep only the first N decoder layers (a model too large for memory at reduced depth)")
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
    m.add_argument("--batches", default="1", help="sequences prefilled and decoded together, e.g. 1,4")
    m.add_argument("--nice", type=int, default=10, help="niceness of every measured process")
    m.add_argument("--llama-batched-bench", action="store_true",
                   help="llama.cpp's batch 1 from llama-batched-bench -npl 1 instead of llama-bench (a cross-check)")
    m.add_argument("--gen", type=int, default=64)
    m.add_argument("--depth", type=int, default=128, help="context before the decoded tokens")
    m.add_argument("--repeats", type=int, default=3)
    m.add_argument("--work", help="artifact folder (default .peer/compare)")
    m.add_argument("--json", help="write every sample here")
    m.add_argument("--reuse", action="store_true", help="keep artifacts already in --work")
    r = sub.add_parser("greedy")
    r.add_argument("--dir", default=os.path.join(ROOT, ".peer"))
    r.add_argument("--checkpoint", required=True)
    r.add_argument("--build", default=os.path.join(ROOT, "build"))
    r.add_argument("--threads", type=int, default=2)
    r.add_argument("--steps", type=int, default=16)
    r.add_argument("--ids", help="prompt token ids, comma-separated (default: --prompt-len seeded random ids)")
    r.add_argument("--prompt", help="a text tokenized by `qwen-run tokenize`; both engines get its ids")
    r.add_argument("--prompt-len", type=int, default=16)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--nice", type=int, default=10)
    r.add_argument("--timeout", type=float, default=900)
    r.add_argument("--ready-timeout", type=int, default=300)
    r.add_argument("--work", help="artifact folder (default .peer/greedy)")
    r.add_argument("--reuse", action="store_true", help="keep the artifact already in --work")
    r.add_argument("--json", help="write both token lists here")
    args = p.parse_args()
    {"greedy": cmd_greedy, "compare": cmd_compare, "build": cmd_build, "checkpoint": cmd_checkpoint, "gguf": cmd_gguf,
     "serve-bench": cmd_serve_bench, "chat-bench": cmd_chat_bench}[args.cmd](args)


if __name__ == "__main__":
    main()
