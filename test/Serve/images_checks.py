"""Image content parts in `qwen-run serve`'s chat API: each bad input is a 400
with an OpenAI error body, before the vision program would run, and the
server keeps serving.

usage: images_checks.py VL_ARTIFACT VL_CHECKPOINT TEXT_ARTIFACT VISION_DIR
"""
import base64
import os
import sys

from curl_checks import curl, expect_error
from serve_harness import Server, check


def data_url(path, media):
    with open(path, "rb") as f:
        return f"data:{media};base64," + base64.b64encode(f.read()).decode()


def chat(*parts, system=None):
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": [*parts, {"type": "text", "text": "What is it?"}]})
    return {"model": "m", "messages": messages, "max_tokens": 2}


def image(url):
    return {"type": "image_url", "image_url": {"url": url}}


def main():
    vl, checkpoint, text_only, vision = sys.argv[1:5]
    png = data_url(os.path.join(vision, "gray.png"), "image/png")
    server = Server(vl, "--checkpoint", checkpoint, "--served-model-name", "m", "--max-model-len", "40")
    path = "/v1/chat/completions"
    err = expect_error(server, 400, "remote image URL", path, body=chat(image("https://example.com/cat.png")))
    check("reaches no network" in err["message"], err["message"])
    err = expect_error(server, 400, "truncated PNG", path,
                       body=chat(image(data_url(os.path.join(vision, "bad_truncated.png"), "image/png"))))
    check("truncated" in err["message"] and err["code"] == "invalid_image", str(err))
    err = expect_error(server, 400, "GIF image", path,
                       body=chat(image(data_url(os.path.join(vision, "unsupported.gif"), "image/gif"))))
    check("unsupported image format" in err["message"], err["message"])
    err = expect_error(server, 400, "bad base64", path, body=chat(image("data:image/png;base64,iVBO*w0")))
    check("base64" in err["message"], err["message"])
    err = expect_error(server, 400, "image in the system message", path,
                       body={"model": "m", "messages": [{"role": "system", "content": [image(png)]},
                                                        {"role": "user", "content": "hi"}]})
    check("System message cannot contain images" in err["message"], err["message"])
    # large.jpg takes 60 image tokens (at most 1024 pixels, patch 2): the prompt fits the
    # 40-token context with one <|image_pad|>, not expanded.
    err = expect_error(server, 400, "image tokens beyond the context", path,
                       body=chat(image(data_url(os.path.join(vision, "large.jpg"), "image/jpeg"))))
    check(err["code"] == "context_length_exceeded", str(err))
    status, _ = curl(server, "/health")
    check(status == 200, f"/health: {status}")
    server.stop()

    server = Server(text_only, "--served-model-name", "m")
    err = expect_error(server, 400, "image for a text-only model", path, body=chat(image(png)))
    check(err["code"] == "images_not_supported" and "takes no images" in err["message"], str(err))
    server.stop()
    print("PASS: all image checks")


if __name__ == "__main__":
    main()
