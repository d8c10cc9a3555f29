#!/usr/bin/env python3
"""Measures each Lambda function's cold start: the time from exec of its
binary to its first request on the Lambda Runtime API
(GET /2018-06-01/runtime/invocation/next), i.e. when it is ready to serve.

A small stand-in for the Runtime API (what `cargo lambda watch` serves)
records the moment; the function is then stopped. Prints the median and
spread over several runs. Binaries: target/release/<name> (build them first:
cargo build --release -p api-alerts ...), run on this machine's architecture.

    python3 infra/coldstart.py [runs]
"""
import http.server
import os
import pathlib
import re
import statistics
import subprocess
import sys
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 15
ready_at = None
ready = threading.Event()


class RuntimeApi(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        global ready_at
        if self.path.endswith("/runtime/invocation/next") and not ready.is_set():
            ready_at = time.perf_counter()
            ready.set()
        # Keep the function waiting: it is measured, not invoked.
        time.sleep(0.2)
        self.send_response(503)
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
threading.Thread(target=server.serve_forever, daemon=True).start()
api = f"127.0.0.1:{server.server_address[1]}"

functions = sorted(p.name for p in (ROOT / "functions").iterdir() if p.is_dir() and p.name != "local")
print(f"cold start: exec -> first Runtime API request, {RUNS} runs each, {os.uname().machine}")
for name in functions:
    binary = ROOT / "target" / "release" / name
    if not binary.exists():
        print(f"  {name:<16} not built (cargo build --release -p {name})")
        continue
    lib = (ROOT / "functions" / name / "src" / "lib.rs").read_text()
    required = re.findall(r'"(BEALERT_[A-Z0-9_]+)"', lib.split("REQUIRED_ENV")[1].split("];")[0])
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_LAMBDA_RUNTIME_API": api,
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "BEALERT_LOG": "warn",
    }
    env.update({v: f"https://sqs.eu-west-1.amazonaws.com/123456789012/{v.lower()}" if v.endswith("_URL") else "x@bealert.example" if v.endswith("FROM") else f"bench-{v.lower()}" for v in required})
    samples = []
    for _ in range(RUNS):
        ready.clear()
        start = time.perf_counter()
        proc = subprocess.Popen([str(binary)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        ok = ready.wait(10)
        proc.kill()
        _, err = proc.communicate()
        if not ok:
            print(f"  {name:<16} never reached the Runtime API: {err.decode()[:300]}")
            break
        samples.append((ready_at - start) * 1000)
    if samples:
        samples.sort()
        print(f"  {name:<16} median {statistics.median(samples):6.1f} ms   min {samples[0]:6.1f}   max {samples[-1]:6.1f}")
server.shutdown()
