#!/usr/bin/env python3
"""Load generator for any OpenAI-compatible server (stdlib only).

Sends a fixed number of streaming /v1/completions requests at each
concurrency, with prompt and output lengths drawn from a seeded distribution
(the same requests for every server given the same --seed), and prints
throughput, time to first token (TTFT) and time per output token (TPOT,
(last token - first token) / (tokens - 1) per request) at p50 / p99.

Output lengths are exact: every request sets ignore_eos (vLLM, SGLang,
llama-server and qwen-run serve all take it), so the servers generate the
same number of tokens. Prompts are random words from a fixed list; the token
count they make depends on the server's tokenizer (the same for servers of
the same model).

    python3 bench/serve_load.py --base-url http://127.0.0.1:8000 \
        --requests 32 --concurrency 1,8,32 --json results.jsonl
"""
import argparse
import http.client
import json
import random
import statistics
import sys
import threading
import time
import urllib.parse

WORDS = ("time year people way day man thing woman life child world school state family student group "
         "country problem hand part place case week company system program question work government number "
         "night point home water room mother area money story fact month lot right study book eye job word "
         "business issue side kind head house service friend father power hour game line end member law car "
         "city community name president team minute idea kid body information back parent face others level "
         "office door health person art war history party result change morning reason research girl guy "
         "moment air teacher force education").split()


def make_requests(count, seed, prompt_words, output_tokens):
    rng = random.Random(seed)
    requests = []
    for _ in range(count):
        n_words = rng.randint(*prompt_words)
        prompt = " ".join(rng.choice(WORDS) for _ in range(n_words))
        requests.append({"prompt": prompt, "max_tokens": rng.randint(*output_tokens)})
    return requests


class Client:
    def __init__(self, base_url, api_key, model, timeout):
        url = urllib.parse.urlparse(base_url)
        self.host, self.port = url.hostname, url.port or 80
        self.prefix = url.path.rstrip("/")
        if not self.prefix.endswith("/v1"):
            self.prefix += "/v1"
        self.headers = {"Content-Type": "application/json"}
        if api_key:
            self.headers["Authorization"] = "Bearer " + api_key
        self.timeout = timeout
        self.model = model or self.first_model()

    def first_model(self):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        conn.request("GET", self.prefix + "/models", headers=self.headers)
        resp = conn.getresponse()
        body = json.loads(resp.read())
        conn.close()
        return body["data"][0]["id"]

    def stream(self, request):
        """One streamed completion: (ttft_s, total_s, output tokens, error)."""
        body = {"model": self.model, "prompt": request["prompt"], "max_tokens": request["max_tokens"],
                "temperature": 0, "ignore_eos": True, "stream": True,
                "stream_options": {"include_usage": True}}
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        start = time.perf_counter()
        first = None
        chunks = 0
        usage = None
        try:
            conn.request("POST", self.prefix + "/completions", body=json.dumps(body), headers=self.headers)
            resp = conn.getresponse()
            if resp.status != 200:
                return None, None, 0, f"HTTP {resp.status}: {resp.read()[:200]!r}"
            while True:
                line = resp.readline()
                if not line:
                    break
                if not line.startswith(b"data: "):
                    continue
                data = line[6:].strip()
                if data == b"[DONE]":
                    break
                event = json.loads(data)
                if event.get("usage"):
                    usage = event["usage"]
                if event.get("choices") and event["choices"][0].get("text"):
                    chunks += 1
                    if first is None:
                        first = time.perf_counter() - start
        finally:
            conn.close()
        total = time.perf_counter() - start
        tokens = usage["completion_tokens"] if usage else chunks
        return first, total, tokens, None


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def run_level(client, requests, concurrency):
    results = [None] * len(requests)
    next_index = [0]
    lock = threading.Lock()

    def worker():
        while True:
            with lock:
                i = next_index[0]
                next_index[0] += 1
            if i >= len(requests):
                return
            results[i] = client.stream(requests[i])

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    errors = [r[3] for r in results if r[3]]
    ok = [r for r in results if not r[3]]
    ttft = [r[0] for r in ok if r[0] is not None]
    tpot = [(r[1] - r[0]) / (r[2] - 1) for r in ok if r[0] is not None and r[2] > 1]
    tokens = sum(r[2] for r in ok)
    return {"concurrency": concurrency, "requests": len(requests), "errors": len(errors),
            "first_error": errors[0] if errors else None, "wall_s": wall, "output_tokens": tokens,
            "output_tok_s": tokens / wall, "requests_s": len(ok) / wall,
            "ttft_p50_ms": 1000 * percentile(ttft, 50), "ttft_p99_ms": 1000 * percentile(ttft, 99),
            "tpot_p50_ms": 1000 * percentile(tpot, 50), "tpot_p99_ms": 1000 * percentile(tpot, 99),
            "tpot_mean_ms": 1000 * statistics.mean(tpot) if tpot else float("nan")}


def parse_range(text):
    lo, _, hi = text.partition(",")
    return int(lo), int(hi or lo)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:8000 (with or without /v1)")
    ap.add_argument("--model", help="model name (default: the first of /v1/models)")
    ap.add_argument("--api-key", default="")
    ap.add_argument("--requests", type=int, default=32, help="requests per concurrency level")
    ap.add_argument("--concurrency", default="1,8,32", help="comma-separated levels")
    ap.add_argument("--prompt-words", default="32,192", help="prompt length range in words (uniform)")
    ap.add_argument("--output-tokens", default="32,128", help="output length range in tokens (uniform)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--warmup", type=int, default=2, help="untimed requests before the first level")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per request")
    ap.add_argument("--label", default="", help="recorded in the JSON lines (e.g. the server's name)")
    ap.add_argument("--json", help="append one JSON line per level to this file")
    args = ap.parse_args()

    client = Client(args.base_url, args.api_key, args.model, args.timeout)
    requests = make_requests(args.requests, args.seed, parse_range(args.prompt_words),
                             parse_range(args.output_tokens))
    for r in make_requests(args.warmup, args.seed + 1, (8, 8), (4, 4)):
        client.stream(r)
    print(f"{args.label or args.base_url}: model {client.model}, {args.requests} requests per level, "
          f"prompts {args.prompt_words} words, outputs {args.output_tokens} tokens, seed {args.seed}")
    print(f"{'conc':>4} {'req/s':>7} {'out tok/s':>9} {'TTFT p50':>9} {'TTFT p99':>9} "
          f"{'TPOT p50':>9} {'TPOT p99':>9}  errors")
    failed = False
    for level in [int(c) for c in args.concurrency.split(",")]:
        r = run_level(client, requests, level)
        r.update(label=args.label, model=client.model, seed=args.seed)
        print(f"{level:>4} {r['requests_s']:>7.2f} {r['output_tok_s']:>9.1f} {r['ttft_p50_ms']:>7.1f}ms "
              f"{r['ttft_p99_ms']:>7.1f}ms {r['tpot_p50_ms']:>7.2f}ms {r['tpot_p99_ms']:>7.2f}ms  {r['errors']}"
              + (f" ({r['first_error']})" if r["errors"] else ""), flush=True)
        failed = failed or r["errors"] > 0
        if args.json:
            with open(args.json, "a") as f:
                f.write(json.dumps(r) + "\n")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
