"""`qwen-run serve` on a CUDA artifact: the same server code over the GPU
path of the runtime (here the fake device of test/CUDA): the demo recites,
batched greedy streams equal alone ones (greedy ids picked on the device),
seeded top-k sampling from the device's candidates reproduces, logprobs
(whole rows copied back) work, and nothing stays allocated.

usage: cuda_checks.py ARTIFACT PREFIX... --   (PREFIX runs qwen-run on the device)
"""
import json
import sys
import threading

from serve_harness import Server, check, expected_demo_texts

MODEL = "qwen3-demo"


def stream_text(server, body):
    conn = server.connection()
    conn.request("POST", "/v1/completions", body=json.dumps(dict(body, stream=True)),
                 headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    check(resp.status == 200, f"stream status {resp.status}")
    text = ""
    for line in resp.read().decode().split("\n"):
        if line.startswith("data: ") and line != "data: [DONE]":
            event = json.loads(line[6:])
            check("error" not in event, f"error event: {event}\n" + "\n".join(server.log[-10:]))
            if event["choices"]:
                text += event["choices"][0]["text"]
    conn.close()
    return text


def main():
    artifact = sys.argv[1]
    prefix = sys.argv[2:sys.argv.index("--") + 1]
    expected = expected_demo_texts()
    server = Server(artifact, "--max-num-seqs", "4", "--max-model-len", "256", prefix=prefix)

    got = stream_text(server, {"model": MODEL, "prompt": expected[0]["prompt"], "max_tokens": 200, "temperature": 0})
    check(got == expected[0]["text"], f"the demo does not recite on the device: {got!r}")
    print("PASS: the demo recites through the server on the CUDA artifact")

    bodies = [{"model": MODEL, "prompt": c["prompt"], "max_tokens": 24, "temperature": 0} for c in expected]
    bodies.append({"model": MODEL, "prompt": "Once upon a time", "max_tokens": 24, "temperature": 0})
    alone = [stream_text(server, b) for b in bodies]
    batched = [None] * len(bodies)

    def run(i):
        batched[i] = stream_text(server, bodies[i])
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    check(batched == alone, f"batched greedy text differs on the device:\n{batched}\n{alone}")
    print(f"PASS: {len(bodies)} concurrent greedy streams equal alone runs on the device")

    sampled = {"model": MODEL, "prompt": "Once upon a time", "max_tokens": 16, "temperature": 0.8, "top_k": 20,
               "seed": 11}
    check(stream_text(server, sampled) == stream_text(server, sampled), "seeded top-k sampling does not reproduce")
    status, body = server.request("POST", "/v1/completions", {"model": MODEL, "prompt": "Twinkle, twinkle,",
                                                              "max_tokens": 4, "temperature": 0, "logprobs": 2})
    check(status == 200 and len(body["choices"][0]["logprobs"]["tokens"]) == 4, f"logprobs on the device: {body}")
    print("PASS: seeded top-k sampling and logprobs on the device")

    m = server.wait_idle()
    check(m["qwen_kv_pages_used"] == 0 and m["qwen_num_requests_running"] == 0, f"left allocated: {m}")
    print("PASS: nothing allocated afterwards")
    server.stop()
    print("PASS: all CUDA serve checks")


if __name__ == "__main__":
    main()
