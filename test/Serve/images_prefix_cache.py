"""The prefix cache and the image cache with images: every image token has
the same id, so a cached page is keyed by its image rows and rotary
positions too. Against a server without either cache (the same logprobs, bit
for bit, on the CPU):
- the same image and text again reuses the pages holding the image;
- another image of the same size, at the same place, reuses none of them;
- the next turn of a chat whose history holds the image reuses its pages;
- an image sent again is neither decoded nor encoded again (/metrics).

usage: images_prefix_cache.py ARTIFACT CHECKPOINT IMAGE_A IMAGE_B
"""
import base64
import sys

from serve_harness import Server, check

STEPS = 6
QUESTION = "What is in this picture? Describe it in detail, with its colours and shapes."


def image_part(path):
    with open(path, "rb") as f:
        url = "data:image/png;base64," + base64.b64encode(f.read()).decode()
    return {"type": "image_url", "image_url": {"url": url}}


def ask(server, messages):
    status, reply = server.request("POST", "/v1/chat/completions", body={
        "model": "m", "max_tokens": STEPS, "temperature": 0, "logprobs": True, "messages": messages})
    check(status == 200, f"chat completions: {status} {reply}")
    logprobs = [t["logprob"] for t in reply["choices"][0]["logprobs"]["content"]]
    return logprobs, reply["usage"]["prompt_tokens_details"]["cached_tokens"], reply["choices"][0]["message"]["content"]


def main():
    artifact, checkpoint, image_a, image_b = sys.argv[1:5]
    with_a = [{"role": "user", "content": [image_part(image_a), {"type": "text", "text": QUESTION}]}]
    with_b = [{"role": "user", "content": [image_part(image_b), {"type": "text", "text": QUESTION}]}]

    server = Server(artifact, "--checkpoint", checkpoint, "--served-model-name", "m")
    first = ask(server, with_a)
    again = ask(server, with_a)
    other = ask(server, with_b)
    turn2 = with_a + [{"role": "assistant", "content": first[2]},
                      {"role": "user", "content": "And what is in its corners?"}]
    second_turn = ask(server, turn2)
    status, metrics = server.request("GET", "/metrics", raw=True)
    check(status == 200, f"/metrics: {status}")
    server.stop()

    server = Server(artifact, "--checkpoint", checkpoint, "--served-model-name", "m", "--no-prefix-cache",
                    "--image-cache-mib", "0")
    expected = {"a": ask(server, with_a)[0], "b": ask(server, with_b)[0], "turn2": ask(server, turn2)[0]}
    server.stop()

    check(first[1] == 0, f"the first request reused {first[1]} tokens of an empty cache")
    check(first[0] == expected["a"], f"first request {first[0]} != without the cache {expected['a']}")
    check(again[1] > 0, "the same image and text again reused no pages")
    check(again[0] == expected["a"], f"same image again {again[0]} != without the cache {expected['a']}")
    print(f"PASS: the same image again reused {again[1]} tokens, same logprobs")
    check(other[0] == expected["b"], f"another image {other[0]} != without the cache {expected['b']}")
    check(other[1] < again[1], f"another image reused {other[1]} tokens, as many as the same image ({again[1]})")
    print(f"PASS: another image of the same size reused {other[1]} tokens (none with image rows), same logprobs")
    check(second_turn[1] > 0 and second_turn[0] == expected["turn2"],
          f"second turn: reused {second_turn[1]}, logprobs {second_turn[0]} != {expected['turn2']}")
    print(f"PASS: the second turn reused {second_turn[1]} tokens, same logprobs")
    counters = {}
    for line in metrics.splitlines():
        if line.startswith("qwen_image_cache_"):
            name, value = line.split()
            counters[name] = float(value)
    # Four requests: image A, A again, B, then the chat with A in its history.
    expect = {"qwen_image_cache_pixel_queries_total": 4, "qwen_image_cache_pixel_hits_total": 2,
              "qwen_image_cache_encoder_queries_total": 4, "qwen_image_cache_encoder_hits_total": 2}
    check(counters == expect, f"image cache counters {counters} != {expect}")
    print("PASS: an image sent again was neither decoded nor encoded again")


if __name__ == "__main__":
    main()
