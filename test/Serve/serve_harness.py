"""Starts `qwen-run serve` on a free 127.0.0.1 port for a test (stdlib only).

The server is started with --port 0 and its log line names the port; stop()
sends SIGTERM and checks that the server drains and exits 0. Every call has a
timeout, so a hung server fails the test instead of hanging CI.
"""
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

START_TIMEOUT_S = 60
REQUEST_TIMEOUT_S = 60


class Server:
    def __init__(self, artifact, *args, prefix=()):
        """prefix: a command that runs qwen-run (e.g. test/CUDA/fake-gpu.sh ... --)."""
        cmd = [*prefix, "qwen-run", "serve", artifact, "--host", "127.0.0.1", "--port", "0", *args]
        self.proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        self.log = []
        self.port = None
        ready = threading.Event()

        def read_log():
            for line in self.proc.stderr:
                self.log.append(line.rstrip("\n"))
                m = re.search(r"on http://127\.0\.0\.1:(\d+)", line)
                if m and self.port is None:
                    self.port = int(m.group(1))
                    ready.set()
            ready.set()

        self.reader = threading.Thread(target=read_log, daemon=True)
        self.reader.start()
        if not ready.wait(START_TIMEOUT_S) or self.port is None:
            self.proc.kill()
            sys.exit("FAIL: the server did not start:\n" + "\n".join(self.log))
        self.base = f"http://127.0.0.1:{self.port}"

    def connection(self, timeout=REQUEST_TIMEOUT_S):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, raw=False):
        """Returns (status, parsed JSON body or text)."""
        conn = self.connection()
        data = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
        conn.request(method, path, body=data, headers=headers or {"Content-Type": "application/json"})
        resp = conn.getresponse()
        text = resp.read().decode("utf-8", "replace")
        conn.close()
        if raw:
            return resp.status, text
        try:
            return resp.status, json.loads(text)
        except ValueError:
            return resp.status, text

    def metrics(self):
        status, text = self.request("GET", "/metrics", raw=True)
        check(status == 200, f"/metrics answered {status}")
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        return values

    def wait_idle(self, timeout=10.0):
        """Waits (up to `timeout`) until no request runs or waits and no KV
        page or state slot is in use; returns the metrics then. The gauges
        are published after each engine step, so a response can arrive a
        moment before they say that its request has ended."""
        deadline = time.time() + timeout
        idle = ("qwen_num_requests_running", "qwen_num_requests_waiting", "qwen_kv_pages_used",
                "qwen_state_slots_used")
        while True:
            m = self.metrics()
            if all(m[name] == 0 for name in idle):
                return m
            if time.time() > deadline:
                return m
            time.sleep(0.05)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            sys.exit("FAIL: the server did not exit within 30 s of SIGTERM")
        self.reader.join(timeout=5)
        check(rc == 0, f"the server exited with {rc} after SIGTERM:\n" + "\n".join(self.log[-20:]))


def check(condition, message):
    if not condition:
        print("FAIL: " + message, flush=True)
        sys.exit(1)


def expected_demo_texts():
    root = os.path.join(os.path.dirname(__file__), "..", "data", "demo", "expected.json")
    with open(root, encoding="utf-8") as f:
        return json.load(f)["results"]


def sse_events(lines):
    """The data payloads of an SSE stream given as lines."""
    events = []
    for line in lines:
        if line.startswith("data: "):
            events.append(line[len("data: "):])
    return events
