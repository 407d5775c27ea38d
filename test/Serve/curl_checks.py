"""`qwen-run serve` seen through curl: raw SSE framing, the plain endpoints,
and every bad-input case with its status and OpenAI error body, the server
still serving afterwards.

usage: curl_checks.py ARTIFACT
"""
import json
import subprocess
import sys

from serve_harness import Server, check, expected_demo_texts, sse_events

MODEL = "qwen3-demo"


def curl(server, path, body=None, headers=(), raw_body=None, method=None):
    """Returns (status, body text) from curl."""
    cmd = ["curl", "-sS", "-N", "--max-time", "60", "-o", "-", "-w", "\n%{http_code}", server.base + path]
    for h in headers:
        cmd += ["-H", h]
    if method:
        cmd += ["-X", method]
    data = raw_body if raw_body is not None else (json.dumps(body).encode() if body is not None else None)
    if data is not None:
        cmd += ["-H", "Content-Type: application/json", "--data-binary", "@-"]
    out = subprocess.run(cmd, input=data, capture_output=True, timeout=90)
    check(out.returncode == 0, f"curl {path} failed: {out.stderr.decode()}")
    text, _, status = out.stdout.decode("utf-8", "replace").rpartition("\n")
    return int(status), text


def expect_error(server, status, what, path="/v1/completions", **kw):
    got, text = curl(server, path, **kw)
    try:
        err = json.loads(text)["error"]
    except (ValueError, KeyError, TypeError):
        check(False, f"{what}: the body is not an OpenAI error: {text[:200]!r}")
    check(got == status, f"{what}: status {got}, expected {status} ({err})")
    check(isinstance(err.get("message"), str) and err["message"], f"{what}: no error message")
    check(all(k in err for k in ("type", "param", "code")), f"{what}: error lacks type/param/code: {err}")
    # The server still serves.
    ok, _ = curl(server, "/health")
    check(ok == 200, f"after {what}: /health answered {ok}")
    print(f"PASS: {what} -> {status} {err['type']} ({err['message'][:70]})")
    return err


def check_stream_framing(text, what):
    """Every event is one 'data: ' line and a blank line; the last is [DONE]."""
    check(text.endswith("data: [DONE]\n\n"), f"{what}: the stream does not end with 'data: [DONE]': {text[-80:]!r}")
    blocks = text.split("\n\n")
    check(blocks[-1] == "", f"{what}: trailing bytes after the last event")
    for block in blocks[:-1]:
        check(block.startswith("data: ") and "\n" not in block, f"{what}: malformed SSE event {block[:80]!r}")
    return [json.loads(e) for e in sse_events(text.split("\n")) if e != "[DONE]"]


def main():
    artifact = sys.argv[1]
    expected = expected_demo_texts()
    server = Server(artifact, "--max-num-seqs", "4", "--max-body-bytes", "65536")

    # Plain endpoints.
    status, text = curl(server, "/health")
    check(status == 200, f"/health: {status}")
    status, text = curl(server, "/v1/models")
    models = json.loads(text)
    check(status == 200 and models["data"][0]["id"] == MODEL, f"/v1/models: {text}")
    status, text = curl(server, "/tokenize", {"prompt": expected[0]["prompt"]})
    check(json.loads(text)["tokens"] == expected[0]["prompt_ids"], f"/tokenize: {text}")
    status, text = curl(server, "/detokenize", {"tokens": expected[0]["prompt_ids"]})
    check(json.loads(text)["prompt"] == expected[0]["prompt"], f"/detokenize: {text}")
    print("PASS: /health, /v1/models, /tokenize, /detokenize")

    # Raw SSE of a text completion equals the same request unstreamed.
    req = {"model": MODEL, "prompt": expected[0]["prompt"], "max_tokens": 40, "temperature": 0}
    status, text = curl(server, "/v1/completions", req)
    whole = json.loads(text)
    check(status == 200 and whole["object"] == "text_completion", f"completion: {text[:200]}")
    check(expected[0]["text"].startswith(whole["choices"][0]["text"]), "completion differs from the HF greedy text")
    status, text = curl(server, "/v1/completions", dict(req, stream=True, stream_options={"include_usage": True}))
    chunks = check_stream_framing(text, "completion stream")
    streamed = "".join(c["choices"][0]["text"] for c in chunks if c["choices"])
    check(streamed == whole["choices"][0]["text"], f"streamed text differs: {streamed!r}")
    check(chunks[-2]["choices"][0]["finish_reason"] == "length", f"finish chunk: {chunks[-2]}")
    counts = ("prompt_tokens", "completion_tokens", "total_tokens")
    check(chunks[-1]["choices"] == [] and all(chunks[-1]["usage"][k] == whole["usage"][k] for k in counts),
          f"usage chunk: {chunks[-1]}")
    check(all(c["id"] == chunks[0]["id"] for c in chunks), "chunk ids differ within one stream")
    print(f"PASS: raw SSE completion ({len(chunks)} events, usage {whole['usage']})")

    # Raw SSE of a chat completion: role first, content deltas, finish.
    chat = {"model": MODEL, "messages": [{"role": "user", "content": "Shall I compare thee"}],
            "max_tokens": 12, "temperature": 0}
    status, text = curl(server, "/v1/chat/completions", chat)
    whole = json.loads(text)
    check(whole["object"] == "chat.completion" and whole["choices"][0]["message"]["role"] == "assistant",
          f"chat: {text[:200]}")
    status, text = curl(server, "/v1/chat/completions", dict(chat, stream=True))
    chunks = check_stream_framing(text, "chat stream")
    check(chunks[0]["choices"][0]["delta"].get("role") == "assistant", f"first chat chunk: {chunks[0]}")
    check(all(c["object"] == "chat.completion.chunk" for c in chunks), "chat chunk object")
    content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    check(content == whole["choices"][0]["message"]["content"], f"chat stream {content!r} != {whole}")
    check(chunks[-1]["choices"][0]["finish_reason"] == whole["choices"][0]["finish_reason"], "chat finish")
    print("PASS: raw SSE chat completion")

    # tool_choice forcing: the answer starts with a call of the named function
    # (the demo cannot write sensible arguments: the shape is checked).
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}},
             {"type": "function", "function": {"name": "search", "parameters": {"type": "object"}}}]
    forced = {"model": MODEL, "messages": [{"role": "user", "content": "Weather in Paris?"}], "tools": tools,
              "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
              "max_tokens": 40, "temperature": 0}
    status, text = curl(server, "/v1/chat/completions", forced)
    whole = json.loads(text)
    check(status == 200 and whole["object"] == "chat.completion", f"forced call: {status} {text[:300]}")
    choice = whole["choices"][0]
    calls = choice["message"].get("tool_calls") or []
    check(len(calls) == 1 and calls[0]["type"] == "function" and calls[0]["function"]["name"] == "get_weather"
          and calls[0]["id"].startswith("call_") and isinstance(calls[0]["function"]["arguments"], str),
          f"forced call: {choice}")
    check(choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None, f"forced call: {choice}")
    check(0 < whole["usage"]["completion_tokens"] <= 40, f"forced call usage: {whole['usage']}")
    status, text = curl(server, "/v1/chat/completions",
                        dict(forced, stream=True, stream_options={"include_usage": True}))
    chunks = check_stream_framing(text, "forced call stream")
    deltas = [c["choices"][0]["delta"].get("tool_calls") for c in chunks if c["choices"]]
    deltas = [d for ds in deltas if ds for d in ds]
    check(deltas and deltas[0]["index"] == 0 and deltas[0].get("id", "").startswith("call_")
          and deltas[0]["function"].get("name") == "get_weather", f"first streamed call delta: {deltas[:1]}")
    arguments = "".join(d["function"].get("arguments", "") for d in deltas)
    check(arguments == calls[0]["function"]["arguments"], f"streamed arguments {arguments!r} != {calls[0]}")
    check(not any(c["choices"] and c["choices"][0]["delta"].get("content") for c in chunks),
          "the forced text is not streamed as content")
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    check(finishes == ["tool_calls"], f"streamed forced finish: {finishes}")
    check(chunks[-1]["usage"]["completion_tokens"] == whole["usage"]["completion_tokens"],
          f"streamed usage {chunks[-1]['usage']} != {whole['usage']}")
    # "required": the model picks the function; the demo writes none, so the
    # answer is its text (without the forced "<tool_call>") and no call.
    status, text = curl(server, "/v1/chat/completions", dict(forced, tool_choice="required"))
    choice = json.loads(text)["choices"][0]
    check(status == 200 and "<tool_call>" not in (choice["message"]["content"] or "")
          and choice["finish_reason"] in ("stop", "length", "tool_calls"), f"required: {status} {text[:300]}")
    print("PASS: tool_choice forcing a named function, streamed and not")

    # Stop strings are cut across token boundaries, streamed or not.
    full = expected[0]["text"]
    stop = "more lov"  # inside the token " lovely"
    req = {"model": MODEL, "prompt": expected[0]["prompt"], "max_tokens": 60, "temperature": 0, "stop": [stop]}
    status, text = curl(server, "/v1/completions", req)
    got = json.loads(text)["choices"][0]
    check(got["text"] == full[:full.index(stop)] and got["finish_reason"] == "stop", f"stop string: {got}")
    status, text = curl(server, "/v1/completions", dict(req, stream=True))
    chunks = check_stream_framing(text, "stop stream")
    streamed = "".join(c["choices"][0]["text"] for c in chunks)
    check(streamed == full[:full.index(stop)], f"streamed stop string: {streamed!r}")
    print("PASS: stop string across tokens (streamed and not)")

    # A prompt seen before reuses its cached KV pages, and /metrics says so.
    before = server.metrics()
    long_prompt = expected[0]["prompt"] + full[:200]
    answers = [curl(server, "/v1/completions", {"model": MODEL, "prompt": long_prompt, "max_tokens": 8,
                                                "temperature": 0})[1] for _ in range(2)]
    after = server.wait_idle()
    check(json.loads(answers[0])["choices"] == json.loads(answers[1])["choices"], "a cached prefix changed the answer")
    cached = json.loads(answers[1])["usage"]["prompt_tokens_details"]["cached_tokens"]
    check(cached > 0, f"usage does not report the cached prompt tokens: {answers[1]}")
    check(after["qwen_prefix_cache_hits_total"] > before["qwen_prefix_cache_hits_total"],
          f"no prefix-cache hit counted: {after}")
    check(after["qwen_kv_pages_used"] == 0, f"pages in use after the requests: {after['qwen_kv_pages_used']}")
    print(f"PASS: prefix-cache hits in /metrics ({int(after['qwen_prefix_cache_hits_total'])} tokens reused)")

    # Bad input, each with its status and error body.
    expect_error(server, 400, "malformed JSON", raw_body=b'{"model": "qwen3-demo", "prompt": ')
    expect_error(server, 400, "JSON that is not an object", raw_body=b'[1, 2]')
    expect_error(server, 400, "invalid UTF-8", raw_body=b'{"model": "qwen3-demo", "prompt": "caf\xc3"}')
    expect_error(server, 400, "wrong type (prompt: number)", body={"model": MODEL, "prompt": 5})
    expect_error(server, 400, "wrong type (max_tokens: string)", body={"model": MODEL, "prompt": "a", "max_tokens": "9"})
    expect_error(server, 400, "wrong type (stream: string)", body={"model": MODEL, "prompt": "a", "stream": "yes"})
    expect_error(server, 400, "wrong type (messages: string)", path="/v1/chat/completions",
                 body={"model": MODEL, "messages": "hi"})
    expect_error(server, 400, "tool_choice naming an unknown function", path="/v1/chat/completions",
                 body=dict(forced, tool_choice={"type": "function", "function": {"name": "nope"}}))
    no_tools = {k: v for k, v in forced.items() if k != "tools"}
    expect_error(server, 400, "tool_choice without tools", path="/v1/chat/completions", body=no_tools)
    expect_error(server, 400, "tool_choice required without tools", path="/v1/chat/completions",
                 body=dict(no_tools, tool_choice="required"))
    expect_error(server, 400, "out of range (temperature 3)", body={"model": MODEL, "prompt": "a", "temperature": 3})
    expect_error(server, 400, "out of range (top_p 0)", body={"model": MODEL, "prompt": "a", "top_p": 0})
    expect_error(server, 400, "out of range (max_tokens 0)", body={"model": MODEL, "prompt": "a", "max_tokens": 0})
    expect_error(server, 400, "out of range (token id)", body={"model": MODEL, "prompt": [1, 99999999]})
    expect_error(server, 400, "n = 2", body={"model": MODEL, "prompt": "a", "n": 2})
    expect_error(server, 400, "missing prompt", body={"model": MODEL})
    err = expect_error(server, 404, "unknown model", body={"model": "gpt-4", "prompt": "a"})
    check(err["code"] == "model_not_found", f"unknown model code: {err}")
    expect_error(server, 404, "unknown route", path="/v1/nothing", body={})
    expect_error(server, 404, "unknown route (GET)", path="/v2/models")
    err = expect_error(server, 400, "too-long prompt", body={"model": MODEL, "prompt": "word " * 600})
    check(err["code"] == "context_length_exceeded", f"too-long prompt code: {err}")
    expect_error(server, 400, "prompt + max_tokens over the context",
                 body={"model": MODEL, "prompt": "word " * 300, "max_tokens": 300})
    expect_error(server, 413, "body over the limit", raw_body=json.dumps(
        {"model": MODEL, "prompt": "x" * 70000}).encode())

    # Still serving: the demo recites.
    status, text = curl(server, "/v1/completions",
                        {"model": MODEL, "prompt": expected[1]["prompt"], "max_tokens": 200, "temperature": 0})
    check(json.loads(text)["choices"][0]["text"] == expected[1]["text"], "the demo no longer recites")
    print("PASS: still serving after every bad input: the demo recites")
    server.stop()

    # With --api-key: missing and wrong keys are 401, the right one passes.
    server = Server(artifact, "--api-key", "sesame", "--max-num-seqs", "2")
    req = {"model": MODEL, "prompt": "a", "max_tokens": 2}
    err = expect_error(server, 401, "missing API key", body=req)
    check(err["code"] == "invalid_api_key", f"missing key code: {err}")
    expect_error(server, 401, "wrong API key", body=req, headers=["Authorization: Bearer sesamf"])
    expect_error(server, 401, "wrong API key (prefix)", body=req, headers=["Authorization: Bearer sesam"])
    status, text = curl(server, "/v1/completions", req, headers=["Authorization: Bearer sesame"])
    check(status == 200, f"right API key: {status} {text[:200]}")
    status, _ = curl(server, "/health")
    check(status == 200, "/health needs no key")
    print("PASS: API key")
    server.stop()
    print("PASS: all curl checks")


if __name__ == "__main__":
    main()
