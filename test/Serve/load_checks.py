"""Bounded loopback load on `qwen-run serve` (127.0.0.1 only, fixed request
counts, every call with a timeout): 32 concurrent streaming clients get the
same greedy text as each request run alone; afterwards no KV page or state
slot is in use; a client that disconnects mid-stream frees its sequence; more
requests than the queue holds get 429 at once and the accepted ones complete.

usage: load_checks.py ARTIFACT [HYBRID_ARTIFACT]

HYBRID_ARTIFACT: a Qwen3.5 (Gated DeltaNet) model whose checkpoint folder has
a tokenizer, to check the same for state slots (token-id prompts, as its
vocabulary is tiny).
"""
import random
import json
import re
import sys
import threading
import time

from serve_harness import Server, check

MODEL = "qwen3-demo"
PROMPTS = ["Shall I compare thee", "Beautiful is better than", "Twinkle, twinkle,", "Once upon a time",
           "The quick brown fox", "To be, or not to be", "In the beginning", "It was the best of times"]
CLIENTS = 32


def stream_completion(server, body, results, index, barrier=None, timeout=120):
    """Streams one completion; results[index] = (status, text, finish, t_first, t_end, error body),
    or (None, exception text, ...) when the client failed."""
    try:
        stream_completion_or_raise(server, body, results, index, barrier, timeout)
    except Exception as e:  # reported by the caller's checks with the server's log
        results[index] = (None, f"{type(e).__name__}: {e}", None, None, None, None)


def stream_completion_or_raise(server, body, results, index, barrier, timeout):
    conn = server.connection(timeout=timeout)
    if barrier:
        barrier.wait(timeout=30)
    start = time.time()
    conn.request("POST", "/v1/completions", body=json.dumps(dict(body, stream=True)),
                 headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    if resp.status != 200:
        results[index] = (resp.status, "", None, None, None, json.loads(resp.read()))
        conn.close()
        return
    text, finish, first = "", None, None
    while True:
        line = resp.readline().decode("utf-8")
        if not line:
            break
        if not line.startswith("data: "):
            continue
        data = line[len("data: "):].strip()
        if data == "[DONE]":
            break
        choice = json.loads(data)["choices"][0]
        if choice["text"] and first is None:
            first = time.time() - start
        text += choice["text"]
        finish = choice["finish_reason"] or finish
    results[index] = (200, text, finish, first, time.time() - start, None)
    conn.close()


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def check_idle(server, what):
    m = server.wait_idle()
    check(m["qwen_num_requests_running"] == 0 and m["qwen_num_requests_waiting"] == 0,
          f"{what}: requests still running or waiting: {m}")
    check(m["qwen_kv_pages_used"] == 0, f"{what}: {m['qwen_kv_pages_used']} KV pages still in use")
    check(m["qwen_state_slots_used"] == 0, f"{what}: {m['qwen_state_slots_used']} state slots still in use")
    return m


def main():
    artifact = sys.argv[1]
    server = Server(artifact, "--max-num-seqs", str(CLIENTS), "--max-queue", "8")

    # Each prompt alone, greedy.
    requests = [{"model": MODEL, "prompt": p, "max_tokens": 40 + 8 * i, "temperature": 0}
                for i, p in enumerate(PROMPTS)]
    alone = [None] * len(requests)
    for i, body in enumerate(requests):
        stream_completion(server, body, alone, i)
        check(alone[i][0] == 200 and alone[i][1], f"alone request {i}: {alone[i]}")
    print(f"PASS: {len(requests)} prompts run alone")

    # 32 concurrent streaming clients, 4 per prompt.
    results = [None] * CLIENTS
    barrier = threading.Barrier(CLIENTS)
    threads = [threading.Thread(target=stream_completion,
                                args=(server, requests[i % len(requests)], results, i, barrier))
               for i in range(CLIENTS)]
    start = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    wall = time.time() - start
    check(all(r is not None for r in results), "a concurrent client did not finish")
    for i, r in enumerate(results):
        check(r[0] == 200, f"client {i}: status {r[0]} {r[1] if r[0] is None else r[5]}\n" +
              "\n".join(server.log[-10:]))
        check(r[1] == alone[i % len(requests)][1],
              f"client {i}: batched greedy text differs from the same request alone:\n"
              f"  alone:   {alone[i % len(requests)][1]!r}\n  batched: {r[1]!r}")
        check(r[2] == alone[i % len(requests)][2], f"client {i}: finish {r[2]}")
    print(f"PASS: {CLIENTS} concurrent streaming clients get the text each request gets alone")
    tokens = sum(len(r[1]) for r in results) / 4  # about 4 characters a token
    ttfts = [r[3] for r in results]
    print(f"load: {CLIENTS} clients in {wall:.2f} s, ~{tokens / wall:.0f} tok/s (text length / 4), "
          f"TTFT p50 {percentile(ttfts, 50) * 1000:.0f} ms p99 {percentile(ttfts, 99) * 1000:.0f} ms")
    m = check_idle(server, "after the load")
    check(m["qwen_generation_tokens_total"] >= CLIENTS, f"generation counter {m['qwen_generation_tokens_total']}")
    print("PASS: no KV page or state slot in use after the load")

    # A client that disconnects mid-stream: its request is cancelled.
    conn = server.connection()
    conn.request("POST", "/v1/completions", body=json.dumps(
        {"model": MODEL, "prompt": PROMPTS[0], "max_tokens": 480, "ignore_eos": True, "temperature": 0,
         "stream": True}), headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    for _ in range(3):
        resp.readline()
    conn.sock.shutdown(2)
    conn.close()
    deadline = time.time() + 10
    while time.time() < deadline and not any("finish=aborted" in line for line in server.log):
        time.sleep(0.02)
    aborted = [line for line in server.log if "finish=aborted" in line]
    check(len(aborted) == 1, "the disconnected request was not logged as aborted:\n" + "\n".join(server.log[-5:]))
    generated = int(re.search(r"completion=(\d+)", aborted[0]).group(1))
    check(generated < 480, f"the disconnected request ran to its end ({generated} tokens)")
    m = check_idle(server, "after a disconnect")
    check(m["qwen_request_aborted_total"] == 1, f"aborted counter: {m['qwen_request_aborted_total']}")
    print(f"PASS: a client disconnecting mid-stream frees its sequence (cancelled after {generated} of 480 tokens)")
    server.stop()

    # A small server: 2 running + 2 queued; 12 at once => the rest get 429.
    server = Server(artifact, "--max-num-seqs", "2", "--max-queue", "2")
    total = 12
    results = [None] * total
    body = {"model": MODEL, "prompt": PROMPTS[1], "max_tokens": 250, "ignore_eos": True, "temperature": 0}
    barrier = threading.Barrier(total)
    threads = [threading.Thread(target=stream_completion, args=(server, body, results, i, barrier))
               for i in range(total)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    statuses = [r[0] for r in results]
    accepted = [r for r in results if r[0] == 200]
    refused = [r for r in results if r[0] == 429]
    check(len(accepted) + len(refused) == total, f"statuses other than 200/429: {statuses}")
    check(len(refused) >= 1, f"no request was refused: {statuses}")
    check(len(accepted) >= 4, f"fewer than the 4 requests the server holds were accepted: {statuses}")
    for r in refused:
        check(r[5]["error"]["type"] == "rate_limit_error" and r[5]["error"]["code"] == "queue_full", f"429 body {r[5]}")
    for r in accepted:
        check(r[2] == "length" and r[1] == accepted[0][1], f"an accepted request did not complete: {r[:3]}")
    check_idle(server, "after the overload")
    print(f"PASS: overload: {len(accepted)} accepted and completed, {len(refused)} refused with 429")
    server.stop()
    if len(sys.argv) > 2:
        check_hybrid(sys.argv[2])
    print("PASS: all load checks")


def check_hybrid(artifact):
    """The same contracts for a hybrid model: its state slots are used
    while requests run and all free afterwards, also after a disconnect."""
    server = Server(artifact, "--max-num-seqs", "8")
    model = server.request("GET", "/v1/models")[1]["data"][0]["id"]
    rng = random.Random(7)
    requests = [{"model": model, "prompt": [rng.randrange(1, 300) for _ in range(rng.randint(5, 40))],
                 "max_tokens": 24, "temperature": 0, "ignore_eos": True} for _ in range(4)]
    alone = [None] * len(requests)
    for i, body in enumerate(requests):
        stream_completion(server, body, alone, i)
        check(alone[i][0] == 200, f"hybrid alone {i}: {alone[i]}")
    results = [None] * 8
    barrier = threading.Barrier(8)
    threads = [threading.Thread(target=stream_completion, args=(server, requests[i % 4], results, i, barrier))
               for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for i, r in enumerate(results):
        check(r is not None and r[0] == 200 and r[1] == alone[i % 4][1],
              f"hybrid client {i}: batched text differs from alone: {r and r[:3]} vs {alone[i % 4][:3]}")
    m = check_idle(server, "hybrid, after the load")
    check(m["qwen_state_slots_total"] == 8, f"state slots total {m['qwen_state_slots_total']}")
    conn = server.connection()
    conn.request("POST", "/v1/completions", body=json.dumps(dict(requests[0], max_tokens=200, stream=True)),
                  headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    resp.readline()
    conn.sock.shutdown(2)
    conn.close()
    # This model is so small that the request may finish before the server
    # notices the disconnect (the demo model above checks the cancellation);
    # either way its slot must be free.
    finished = len(alone) + len(results) + 1
    deadline = time.time() + 10
    while time.time() < deadline and sum(" /v1/completions " in line for line in server.log) < finished:
        time.sleep(0.02)
    check(sum(" /v1/completions " in line for line in server.log) == finished, "the disconnected request never ended")
    check_idle(server, "hybrid, after a disconnect")
    print("PASS: hybrid model: 8 concurrent clients equal alone runs; every state slot free afterwards, "
          "also after a disconnect (" + ("cancelled" if any("finish=aborted" in l for l in server.log)
                                         else "it had finished") + ")")
    server.stop()


if __name__ == "__main__":
    main()
