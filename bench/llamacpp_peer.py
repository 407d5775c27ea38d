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
  chat-bench  multi-turn chat through /v1/chat/completions with a long shared
              system prompt: time to first token per turn for qwen-run serve
              with and without its prefix cache and for llama-server (its
              prompt cache on, as by default).

  python3 bench/llamacpp_peer.py build --dir .peer
  .venv-ref/bin/python bench/llamacpp_peer.py checkpoint \
      --config bench/configs/qwen3-0.6b.json --out .peer/qwen3-0.6b
  .venv-ref/bin/python bench/llamacpp_peer.py gguf --dir .peer --checkpoint .peer/qwen3-0.6b
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
    args = p.parse_args()
    {"build": cmd_build, "checkpoint": cmd_checkpoint, "gguf": cmd_gguf,
     "serve-bench": cmd_serve_bench, "chat-bench": cmd_chat_bench}[args.cmd](args)


if __name__ == "__main__":
    main()
