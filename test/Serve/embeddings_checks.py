"""`qwen-run serve` on a hidden-states artifact: POST /v1/embeddings equals
`qwen-run embed` exactly (texts, token ids, base64), every bad input is a
400 with an OpenAI error body, generation routes refuse the embedding model,
and a logits artifact refuses /v1/embeddings; the server still answers
afterwards and drains on SIGTERM.

usage: embeddings_checks.py EMBEDDING_ARTIFACT CASE_DIR LOGITS_ARTIFACT
"""
import base64
import json
import os
import struct
import subprocess
import sys
import threading

from serve_harness import Server, check

MODEL = "embed"


def qwen_run_embed(artifact, texts):
    out = subprocess.run(["qwen-run", "embed", artifact, *texts], capture_output=True, text=True, timeout=120)
    check(out.returncode == 0, f"qwen-run embed failed: {out.stderr}")
    return json.loads(out.stdout)


def expect_error(server, body, status, says, param=None, path="/v1/embeddings"):
    got, reply = server.request("POST", path, body)
    check(got == status, f"{json.dumps(body)[:120]}: status {got}, expected {status}: {reply}")
    check(isinstance(reply, dict) and set(reply) == {"error"}, f"not an OpenAI error body: {reply}")
    error = reply["error"]
    check(set(error) == {"message", "type", "param", "code"}, f"error fields: {error}")
    check(says in error["message"], f"{json.dumps(body)[:120]}: {error['message']!r} does not say {says!r}")
    if param is not None:
        check(error["param"] == param, f"param {error['param']!r}, expected {param!r}")


def main():
    artifact, case_dir, logits_artifact = sys.argv[1:4]
    with open(os.path.join(case_dir, "texts.json"), encoding="utf-8") as f:
        texts = json.load(f)[:2]
    with open(os.path.join(case_dir, "tokenizer.json"), encoding="utf-8") as f:
        eot = next(t["id"] for t in json.load(f)["added_tokens"] if t["content"] == "<|endoftext|>")
    expected = qwen_run_embed(artifact, texts)

    server = Server(artifact, "--served-model-name", MODEL, "--max-num-seqs", "2", "--max-model-len", "64")
    status, models = server.request("GET", "/v1/models")
    check(status == 200 and [m["id"] for m in models["data"]] == [MODEL], f"models: {models}")

    # Two texts: exactly qwen-run embed's numbers, in order, with usage.
    status, reply = server.request("POST", "/v1/embeddings", {"model": MODEL, "input": texts})
    check(status == 200, f"embeddings: {status} {reply}")
    check(reply["object"] == "list" and reply["model"] == MODEL, f"envelope: {reply.keys()}")
    check([d["object"] for d in reply["data"]] == ["embedding"] * 2, "objects")
    check([d["index"] for d in reply["data"]] == [0, 1], "indices")
    got = [d["embedding"] for d in reply["data"]]
    check(got == expected, "the server's embeddings differ from qwen-run embed's")
    ids = []
    for text in texts:
        status, tok = server.request("POST", "/tokenize", {"prompt": text})
        check(status == 200, f"tokenize: {tok}")
        ids.append(tok["tokens"] + [eot])  # the post-processor's <|endoftext|>
    n = sum(len(i) for i in ids)
    check(reply["usage"] == {"prompt_tokens": n, "total_tokens": n}, f"usage {reply['usage']} vs {n} tokens")
    status, one = server.request("POST", "/v1/embeddings", {"model": MODEL, "input": texts[1], "user": "u"})
    check(status == 200 and one["data"][0]["embedding"] == expected[1], "a single string")
    print("PASS: two texts equal qwen-run embed", flush=True)

    # Token ids: the texts' post-processed ids give the same embeddings.
    status, reply = server.request("POST", "/v1/embeddings", {"model": MODEL, "input": ids})
    check(status == 200 and [d["embedding"] for d in reply["data"]] == expected, f"arrays of token ids: {status}")
    status, reply = server.request("POST", "/v1/embeddings", {"model": MODEL, "input": ids[0]})
    check(status == 200 and reply["data"][0]["embedding"] == expected[0], f"one array of token ids: {status}")
    check(reply["usage"]["prompt_tokens"] == len(ids[0]), f"usage {reply['usage']}")
    print("PASS: token ids equal the texts", flush=True)

    # base64: little-endian float32, the same numbers; dimensions = hidden size.
    width = len(expected[0])
    status, reply = server.request("POST", "/v1/embeddings", {"model": MODEL, "input": texts,
                                                             "encoding_format": "base64", "dimensions": width})
    check(status == 200, f"base64: {status} {reply}")
    for d, want in zip(reply["data"], expected):
        raw = base64.b64decode(d["embedding"])
        check(len(raw) == 4 * width, f"base64 holds {len(raw)} bytes")
        floats = list(struct.unpack("<%df" % width, raw))
        check(floats == [struct.unpack("<f", struct.pack("<f", x))[0] for x in want], "base64 differs")
    print("PASS: base64 decodes to the same floats", flush=True)

    before = server.metrics()["qwen_prompt_tokens_total"]
    server.request("POST", "/v1/embeddings", {"model": MODEL, "input": ids[0]})
    after = server.metrics()["qwen_prompt_tokens_total"]
    check(after - before == len(ids[0]), f"prompt tokens counted {after - before}, expected {len(ids[0])}")
    print("PASS: embedded tokens in /metrics", flush=True)

    # Every bad input: 400 (404 for an unknown model) with its reason.
    vocab = server.request("POST", "/tokenize", {"prompt": "x"})  # the server still tokenizes
    check(vocab[0] == 200, "tokenize")
    cases = [
        ({"model": MODEL}, 400, "'input' is required", "input"),
        ({"model": MODEL, "input": []}, 400, "must not be empty", "input"),
        ({"model": MODEL, "input": ""}, 400, "must not hold an empty string", "input"),
        ({"model": MODEL, "input": ["a", ""]}, 400, "must not hold an empty string", "input"),
        ({"model": MODEL, "input": 3}, 400, "got number", "input"),
        ({"model": MODEL, "input": ["a", 1]}, 400, "at index 1", "input"),
        ({"model": MODEL, "input": [[1], []]}, 400, "empty array of token ids", "input"),
        ({"model": MODEL, "input": [1, 10 ** 9]}, 400, "outside the vocabulary", "input"),
        ({"model": MODEL, "input": [[-1]]}, 400, "outside the vocabulary", "input"),
        ({"model": MODEL, "input": ["x"] * 2049}, 400, "at most 2048", "input"),
        ({"model": MODEL, "input": [1] * 65}, 400, "this model's context is 64 tokens", "input"),
        ({"model": MODEL, "input": "word " * 80}, 400, "this model's context is 64 tokens", "input"),
        ({"model": MODEL, "input": "x", "encoding_format": "int8"}, 400, "\"float\" or \"base64\"", "encoding_format"),
        ({"model": MODEL, "input": "x", "dimensions": 8}, 400, f"must be {width}, this model's hidden size",
         "dimensions"),
        ({"model": "other", "input": "x"}, 404, "does not exist", "model"),
        ({"input": "x"}, 400, "'model' is required", "model"),
    ]
    for body, status, says, param in cases:
        expect_error(server, body, status, says, param)
    expect_error(server, "{not json", 400, "not valid JSON")
    print("PASS: bad inputs -> 400 with the reason", flush=True)

    # The embedding model does not generate.
    expect_error(server, {"model": MODEL, "prompt": "hi", "max_tokens": 2}, 400, "is an embedding model", "model",
                 path="/v1/completions")
    expect_error(server, {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}, 400,
                 "is an embedding model", "model", path="/v1/chat/completions")
    print("PASS: completions on an embedding model -> 400", flush=True)

    status, reply = server.request("POST", "/v1/embeddings", {"model": MODEL, "input": texts})
    check(status == 200 and [d["embedding"] for d in reply["data"]] == expected, "after the bad inputs")
    idle = server.wait_idle()
    check(idle["qwen_num_requests_running"] == 0 and idle["qwen_kv_pages_used"] == 0, f"not idle: {idle}")
    server.stop()
    print("PASS: still serving after every bad input, idle, clean exit", flush=True)

    # Concurrent requests against 2 running + 1 queued: the engine thread
    # batches whatever waits into one call, and every answer equals the
    # request alone; past the bound the answer is 429, counted in /metrics.
    server = Server(artifact, "--served-model-name", MODEL, "--max-num-seqs", "2", "--max-queue", "1")
    big = {"model": MODEL, "input": [ids[i % 2] for i in range(2048)]}
    refused = 0
    for attempt in range(3):
        results, barrier = [None] * 6, threading.Barrier(6)

        def post(k):
            barrier.wait()
            results[k] = server.request("POST", "/v1/embeddings", big)

        threads = [threading.Thread(target=post, args=(k,)) for k in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        for status, reply in results:
            check(status in (200, 429), f"concurrent: {status} {str(reply)[:200]}")
            if status == 429:
                check(reply["error"]["code"] == "queue_full", f"429 body {reply}")
                refused += 1
            else:
                got = [d["embedding"] for d in reply["data"]]
                check(got == [expected[i % 2] for i in range(2048)], "a concurrent answer differs from alone")
        if refused:
            break
    check(refused > 0, "6 concurrent requests against a bound of 3 were never refused")
    m = server.wait_idle()
    check(m["qwen_request_rejected_overload_total"] == refused, f"overload counted {m['qwen_request_rejected_overload_total']}")
    server.stop()
    print("PASS: concurrent requests equal alone, 429 past the bound", flush=True)

    # A logits artifact refuses embeddings, naming the flag that makes them.
    server = Server(logits_artifact, "--served-model-name", MODEL)
    expect_error(server, {"model": MODEL, "input": "x"}, 400, "qwen-compile --hidden-states", "model")
    status, _ = server.request("POST", "/v1/completions", {"model": MODEL, "prompt": "hi", "max_tokens": 1})
    check(status == 200, f"the logits artifact still completes: {status}")
    server.stop()
    print("PASS: embeddings on a logits artifact -> 400", flush=True)
    print("PASS: all embeddings checks", flush=True)


if __name__ == "__main__":
    main()
