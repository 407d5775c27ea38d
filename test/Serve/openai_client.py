"""`qwen-run serve` through the official OpenAI Python client: the demo
recites, chat and text completions streamed and not, stop strings, seeds,
usage, logprobs, sampling parameters, and the client's own error types.

usage: openai_client.py ARTIFACT   (run with the test venv's python)
"""
import sys

import openai

from serve_harness import Server, check, expected_demo_texts

MODEL = "qwen3-demo"


def main():
    artifact = sys.argv[1]
    expected = expected_demo_texts()
    server = Server(artifact, "--max-num-seqs", "4", "--api-key", "test-key")
    client = openai.OpenAI(base_url=server.base + "/v1", api_key="test-key", timeout=60, max_retries=0)

    models = client.models.list()
    check([m.id for m in models.data] == [MODEL], f"models: {models}")

    # The demo recites through the server, word for word, streamed and not.
    for case in expected:
        got = client.completions.create(model=MODEL, prompt=case["prompt"], max_tokens=200, temperature=0)
        check(got.choices[0].text == case["text"], f"{case['prompt']!r} does not recite: {got.choices[0].text!r}")
        check(got.choices[0].finish_reason == "stop", f"finish {got.choices[0].finish_reason}")
        check(got.usage.prompt_tokens == len(case["prompt_ids"]), f"prompt tokens {got.usage}")
        check(got.usage.completion_tokens == case["n_generated"], f"completion tokens {got.usage} vs {case['n_generated']}")
        check(got.usage.total_tokens == got.usage.prompt_tokens + got.usage.completion_tokens, "total tokens")
        stream = client.completions.create(model=MODEL, prompt=case["prompt"], max_tokens=200, temperature=0,
                                           stream=True, stream_options={"include_usage": True})
        text, usage, finish = "", None, None
        for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].text
                finish = chunk.choices[0].finish_reason or finish
            if chunk.usage:
                usage = chunk.usage
        check(text == case["text"] and finish == "stop", f"streamed recital differs: {text!r}")
        check(usage is not None and usage.completion_tokens == case["n_generated"], f"streamed usage {usage}")
    print(f"PASS: the demo recites its {len(expected)} texts through the server (streamed and not, usage exact)")

    # Token-id prompts give the same as the text.
    got = client.completions.create(model=MODEL, prompt=expected[2]["prompt_ids"], max_tokens=200, temperature=0)
    check(got.choices[0].text == expected[2]["text"], "token-id prompt")
    print("PASS: prompt as token ids")

    # Chat, streamed and not.
    messages = [{"role": "system", "content": "You recite."},
                {"role": "user", "content": [{"type": "text", "text": "Shall I compare thee"}]}]
    whole = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=16, temperature=0)
    msg = whole.choices[0].message
    check(msg.role == "assistant" and isinstance(msg.content, str), f"chat message {msg}")
    check(whole.usage.completion_tokens <= 16 and whole.usage.prompt_tokens > 0, f"chat usage {whole.usage}")
    text = ""
    for chunk in client.chat.completions.create(model=MODEL, messages=messages, max_tokens=16, temperature=0,
                                                stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
    check(text == msg.content, f"streamed chat {text!r} != {msg.content!r}")
    print("PASS: chat completion, streamed and not")

    # Tools and thinking reach the prompt through the checkpoint's template
    # (the demo model is no chat model: its answers are checked in shape only;
    # the parsing of reasoning and tool calls is unit-tested in
    # unittests/server/response_test.cpp on scripted token streams).
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
              "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
    history = [{"role": "user", "content": "Weather in Paris?"},
               {"role": "assistant", "content": None, "tool_calls": [
                   {"id": "call_1", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
               {"role": "tool", "tool_call_id": "call_1", "content": "18 C"}]
    status, tok = server.request("POST", "/tokenize", {"messages": history, "tools": tools},
                                 headers={"Content-Type": "application/json", "Authorization": "Bearer test-key"})
    check(status == 200, f"/tokenize with tools: {status} {tok}")
    status, prompt = server.request("POST", "/detokenize", {"tokens": tok["tokens"]},
                                    headers={"Content-Type": "application/json", "Authorization": "Bearer test-key"})
    text = prompt["prompt"]
    check("<tools>" in text and '"name": "get_weather"' in text and "<tool_response>\n18 C\n</tool_response>" in text
          and text.endswith("<|im_start|>assistant\n"), f"rendered tool prompt: {text!r}")
    got = client.chat.completions.create(model=MODEL, messages=history, tools=tools, max_tokens=8, temperature=0,
                                         extra_body={"chat_template_kwargs": {"enable_thinking": False}})
    check(got.choices[0].finish_reason in ("stop", "length", "tool_calls"), f"chat with tools: {got}")
    status, tok = server.request("POST", "/tokenize", {"messages": history[:1],
                                                       "chat_template_kwargs": {"enable_thinking": False}},
                                 headers={"Content-Type": "application/json", "Authorization": "Bearer test-key"})
    status, prompt = server.request("POST", "/detokenize", {"tokens": tok["tokens"]},
                                    headers={"Content-Type": "application/json", "Authorization": "Bearer test-key"})
    check(prompt["prompt"].endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n"), f"thinking off: {prompt}")
    print("PASS: tools, tool results and enable_thinking rendered by the checkpoint's template")

    # tool_choice naming a function: the answer is a call of it (the demo's
    # arguments are nonsense; the shape is checked), streamed and not.
    forced = dict(model=MODEL, messages=history[:1], tools=tools, max_tokens=40, temperature=0,
                  tool_choice={"type": "function", "function": {"name": "get_weather"}})
    got = client.chat.completions.create(**forced)
    calls = got.choices[0].message.tool_calls or []
    check(len(calls) == 1 and calls[0].function.name == "get_weather" and calls[0].id
          and got.choices[0].finish_reason == "tool_calls", f"forced call: {got}")
    stream = client.chat.completions.create(**forced, stream=True)
    pieces = [d for c in stream if c.choices for d in (c.choices[0].delta.tool_calls or [])]
    check(pieces and pieces[0].id and pieces[0].function.name == "get_weather"
          and "".join(p.function.arguments or "" for p in pieces) == calls[0].function.arguments,
          f"forced call streamed: {pieces}")
    try:
        client.chat.completions.create(**dict(forced, tool_choice={"type": "function", "function": {"name": "nope"}}))
        check(False, "an unknown forced function was accepted")
    except openai.BadRequestError:
        pass
    print("PASS: tool_choice forcing a named function")

    # Stop strings end the text before them; stop_token_ids and ignore_eos.
    full = expected[0]["text"]
    got = client.completions.create(model=MODEL, prompt=expected[0]["prompt"], max_tokens=100, temperature=0,
                                    stop=["darling", "temperate"])
    check(got.choices[0].text == full[:full.index("temperate")] and got.choices[0].finish_reason == "stop",
          f"stop strings: {got.choices[0].text!r}")
    second_id = expected[0]["generated_ids"][1]
    got = client.completions.create(model=MODEL, prompt=expected[0]["prompt"], max_tokens=100, temperature=0,
                                    extra_body={"stop_token_ids": [second_id]})
    check(got.usage.completion_tokens == 2 and got.choices[0].finish_reason == "stop", f"stop_token_ids: {got}")
    got = client.completions.create(model=MODEL, prompt=expected[0]["prompt"], max_tokens=160, temperature=0,
                                    extra_body={"ignore_eos": True})
    check(got.usage.completion_tokens == 160 and got.choices[0].finish_reason == "length",
          f"ignore_eos: {got.usage} {got.choices[0].finish_reason}")
    print("PASS: stop strings, stop_token_ids, ignore_eos")

    # Seeds: the same seed samples the same text; sampling parameters are taken.
    def sample(seed, **kw):
        return client.completions.create(model=MODEL, prompt="Once upon a time", max_tokens=24, temperature=1.0,
                                         seed=seed, **kw).choices[0].text
    a, b, c = sample(7), sample(7), sample(8)
    check(a == b, f"seed 7 twice: {a!r} != {b!r}")
    texts = {sample(s) for s in range(1, 6)}
    check(len(texts) > 1, "five seeds sampled one text")
    check(sample(3, top_p=0.9, extra_body={"top_k": 20, "min_p": 0.05}) ==
          sample(3, top_p=0.9, extra_body={"top_k": 20, "min_p": 0.05}), "seeded top-k/top-p/min-p")
    check(sample(5, presence_penalty=1.0, frequency_penalty=0.5, extra_body={"repetition_penalty": 1.2}) ==
          sample(5, presence_penalty=1.0, frequency_penalty=0.5, extra_body={"repetition_penalty": 1.2}),
          "seeded penalties")
    print("PASS: seeds reproduce; other seeds differ; top_k, min_p and penalties accepted")

    # A repetition penalty changes a greedy recital (the demo model is so sure
    # of its texts that presence and frequency penalties up to 2 do not).
    plain = client.completions.create(model=MODEL, prompt=expected[0]["prompt"], max_tokens=60, temperature=0)
    punished = client.completions.create(model=MODEL, prompt=expected[0]["prompt"], max_tokens=60, temperature=0,
                                         extra_body={"repetition_penalty": 2.0})
    check(plain.choices[0].text != punished.choices[0].text, "repetition_penalty changed nothing")
    print("PASS: penalties change greedy output")

    # Logprobs: the chosen token's logprob is the best of the top ones under greedy.
    got = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Twinkle, twinkle,"}],
                                         max_tokens=5, temperature=0, logprobs=True, top_logprobs=3)
    entries = got.choices[0].logprobs.content
    check(len(entries) >= 1 and all(len(e.top_logprobs) == 3 for e in entries), f"chat logprobs {entries}")
    check(all(e.logprob <= 0 and abs(e.logprob - e.top_logprobs[0].logprob) < 1e-5 for e in entries),
          "greedy token is not the most likely")
    got = client.completions.create(model=MODEL, prompt="Twinkle, twinkle,", max_tokens=4, temperature=0, logprobs=2)
    lp = got.choices[0].logprobs
    check(len(lp.tokens) == 4 and len(lp.top_logprobs[0]) == 2 and "".join(lp.tokens) == got.choices[0].text,
          f"completion logprobs {lp}")
    print("PASS: logprobs (chat and completions)")

    # Errors arrive as the client's exception types.
    def expect(exc, **kw):
        try:
            client.completions.create(**kw)
        except exc as e:
            return e
        check(False, f"{kw} did not raise {exc.__name__}")
    expect(openai.NotFoundError, model="nope", prompt="a")
    expect(openai.BadRequestError, model=MODEL, prompt="a", temperature=5)
    e = expect(openai.BadRequestError, model=MODEL, prompt="a " * 600)
    check(e.code == "context_length_exceeded", f"too long prompt: {e}")
    bad = openai.OpenAI(base_url=server.base + "/v1", api_key="wrong", timeout=60, max_retries=0)
    try:
        bad.models.list()
        check(False, "wrong key accepted")
    except openai.AuthenticationError:
        pass
    print("PASS: errors as openai exceptions (404, 400, 401)")
    server.stop()
    print("PASS: all openai client checks")


if __name__ == "__main__":
    main()
