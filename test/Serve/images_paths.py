"""Images through the user-facing paths give the tokens of `qwen-run logits
--image` on the same prompt: `qwen-run generate --image` (raw prompt and
--chat), `qwen-run chat` with /image, and the server's /v1/chat/completions
with a data: URL image (greedy; its logprobs' bytes per token). The chat
template's rendering of one user message [image, text] is Qwen3.5's (HF's
corpus, test/data/chat/qwen35_image_reference.json). An artifact compiled
with --no-vision refuses images with a 400 naming the flag.

usage: images_paths.py ARTIFACT CHECKPOINT NOVISION_ARTIFACT IMAGE WORK_DIR
"""
import base64
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "E2E"))
from check_vision import read_safetensors  # noqa: E402
from curl_checks import curl, expect_error  # noqa: E402
from serve_harness import Server, check  # noqa: E402

STEPS = 6
QUESTION = "What is this?"
PAD = "<|vision_start|><|image_pad|><|vision_end|>"
RENDERED = "<|im_start|>user\n" + PAD + QUESTION + "<|im_end|>\n<|im_start|>assistant\n<think>\n"
# qwen-run's chat and generate --chat think only with --think: HF's
# enable_thinking=False rendering.
RENDERED_NO_THINK = RENDERED + "\n</think>\n\n"


def token_bytes(checkpoint):
    """id -> bytes of the byte-level BPE vocabulary (GPT-2's byte map)."""
    printable = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    chars, n = printable[:], 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    decode = {chr(c): b for b, c in zip(printable, chars)}
    with open(os.path.join(checkpoint, "tokenizer.json"), encoding="utf-8") as f:
        tok = json.load(f)
    out = {i: bytes(decode[ch] for ch in t) for t, i in tok["model"]["vocab"].items()}
    for added in tok.get("added_tokens", []):
        out[added["id"]] = added["content"].encode()
    return out


def run(*args, stdin=None):
    out = subprocess.run(["qwen-run", *args], input=stdin, capture_output=True, timeout=300)
    check(out.returncode == 0, f"qwen-run {args[0]}: {out.stderr.decode(errors='replace')}")
    return out.stdout


def main():
    artifact, checkpoint, novision, image, work = sys.argv[1:6]
    vocab = token_bytes(checkpoint)
    def greedy(prompt, name):
        path = os.path.join(work, name)
        run("logits", artifact, "--prompt", prompt, "--image", image, "--steps", str(STEPS), "-o", path)
        logits = read_safetensors(path)
        ids = logits["decode_ids"][1]
        print(f"logits --image ({name}): {len(logits['prompt_ids'][1])} prompt tokens, greedy {ids}")
        return ids, logits["prompt_ids"][1]

    # The CLI prints text: bytes that are not UTF-8 become U+FFFD there.
    def text(ids):
        return b"".join(vocab[i] for i in ids).decode("utf-8", "replace")

    ids, _ = greedy(RENDERED_NO_THINK, "no_think.safetensors")
    expected = text(ids)
    out = run("generate", artifact, RENDERED_NO_THINK, "--image", image, "--max-new-tokens", str(STEPS),
              "--no-stream")
    check(out.decode("utf-8", "replace").rstrip("\n") == expected, f"generate --image: {out!r} != {expected!r}")
    print("PASS: generate --image")
    out = run("generate", artifact, QUESTION, "--chat", "--image", image, "--max-new-tokens", str(STEPS),
              "--no-stream")
    check(out.decode("utf-8", "replace").rstrip("\n") == expected,
          f"generate --chat --image: {out!r} != {expected!r}")
    print("PASS: generate --chat --image")
    out = run("chat", artifact, "--max-new-tokens", str(STEPS),
              stdin=f"/image {image}\n{QUESTION}\n/exit\n".encode())
    check(expected in out.decode("utf-8", "replace"), f"chat /image: {out!r} lacks {expected!r}")
    print("PASS: chat /image")

    # The server renders with thinking on (enable_thinking defaults to true).
    ids, prompt_ids = greedy(RENDERED, "think.safetensors")
    with open(image, "rb") as f:
        url = "data:image/jpeg;base64," + base64.b64encode(f.read()).decode()
    body = {"model": "m", "max_tokens": STEPS, "temperature": 0, "logprobs": True,
            "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}},
                                                      {"type": "text", "text": QUESTION}]}]}
    server = Server(artifact, "--checkpoint", checkpoint, "--served-model-name", "m")
    status, text = curl(server, "/v1/chat/completions", body=body)
    check(status == 200, f"chat completions: {status} {text[:300]}")
    reply = json.loads(text)
    got = [bytes(t["bytes"]) for t in reply["choices"][0]["logprobs"]["content"]]
    check(got == [vocab[i] for i in ids], f"server tokens {got} != {[vocab[i] for i in ids]}")
    check(reply["usage"]["prompt_tokens"] == len(prompt_ids),
          f"server prompt_tokens {reply['usage']['prompt_tokens']} != {len(prompt_ids)}")
    print("PASS: /v1/chat/completions image_url")
    server.stop()

    server = Server(novision, "--checkpoint", checkpoint, "--served-model-name", "m")
    err = expect_error(server, 400, "image for an artifact without the vision program", "/v1/chat/completions",
                       body=body)
    check(err["code"] == "images_not_supported" and "--no-vision" in err["message"], str(err))
    server.stop()
    print("PASS: all image path checks")


if __name__ == "__main__":
    main()
