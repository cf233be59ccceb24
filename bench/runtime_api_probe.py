"""Init time of Lambda function processes, measured the way Lambda sees it.

A minimal Lambda Runtime API listens on 127.0.0.1. For each run the probe starts one
function process pointed at it and records the monotonic time from just before the process
is started until the process asks for its first invocation
(GET /2018-06-01/runtime/invocation/next). The process is then stopped by its id and the
next run starts. Subjects are interleaved run by run, so a slow moment of the machine
falls on all of them alike; one warm-up run per subject is discarded.

Usage:
  runtime_api_probe.py --runs 30 --out init.json \
      --subject 'promote-image=target/lambda/promote-image/bootstrap' \
      --subject 'python-boto3=.venv/bin/python bench/python_equivalent/handler.py' \
      --env-file promote-image=bench/function-env/promote-image.env

Every AWS endpoint the subjects are given is this probe's own address, so an AWS call made
during init would show up here as an unexpected request (reported, never answered).
"""

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NEXT_PATH = "/2018-06-01/runtime/invocation/next"
RUN_TIMEOUT_S = 60


class Run:
    """One process start: when it started, when it first polled, and when to let go."""

    def __init__(self):
        self.first_poll_ns = None
        self.polled = threading.Event()
        self.finished = threading.Event()


class Probe(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.current = None
        self.unexpected = []
        self.lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        now = time.monotonic_ns()
        if not self.path.endswith(NEXT_PATH):
            self.unexpected_request()
            return
        with self.server.lock:
            run = self.server.current
            if run is not None and run.first_poll_ns is None:
                run.first_poll_ns = now
                run.polled.set()
        # Hold the poll open without an event until the process has been stopped.
        if run is not None:
            run.finished.wait(RUN_TIMEOUT_S)
        self.close_connection = True

    def do_POST(self):
        self.unexpected_request()

    def unexpected_request(self):
        with self.server.lock:
            self.server.unexpected.append(f"{self.command} {self.path}")
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def read_env_file(path, endpoint):
    env = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip().replace("@ENDPOINT@", endpoint)
    return env


def base_env(port, name, scratch):
    endpoint = f"http://127.0.0.1:{port}"
    missing = os.path.join(scratch, "no-such-file")
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "TZ": "UTC",
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_VERSION": "1",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
        # Profile files of whoever runs the benchmark must not change what is measured.
        "AWS_CONFIG_FILE": missing,
        "AWS_SHARED_CREDENTIALS_FILE": missing,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ENDPOINT_URL_IMAGEBUILDER": endpoint,
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def memory_kb(pid):
    """VmHWM and VmRSS of a live process, in kB."""
    out = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmHWM", "VmRSS"):
                    out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def run_once(probe, argv, env, stderr_path):
    run = Run()
    with probe.lock:
        probe.current = run
    with open(stderr_path, "wb") as err:
        started = time.monotonic_ns()
        child = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while not run.polled.wait(0.005):
            if child.poll() is not None or time.monotonic() > deadline:
                break
        mem = memory_kb(child.pid) if run.polled.is_set() else {}
        child.kill()
        child.wait()
    run.finished.set()
    with probe.lock:
        probe.current = None
    if run.first_poll_ns is None:
        with open(stderr_path, "rb") as f:
            tail = f.read()[-2000:].decode("utf-8", "replace")
        return None, {"exit": child.returncode, "stderr_tail": tail}
    return (run.first_poll_ns - started) / 1e6, mem


def percentile(values, p):
    ordered = sorted(values)
    k = (len(ordered) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--out", required=True)
    parser.add_argument("--subject", action="append", required=True, metavar="NAME=COMMAND")
    parser.add_argument("--env-file", action="append", default=[], metavar="NAME=FILE",
                        help="extra environment of one subject; @ENDPOINT@ is this probe's URL")
    parser.add_argument("--function-name", action="append", default=[], metavar="NAME=FUNCTION",
                        help="AWS_LAMBDA_FUNCTION_NAME of one subject (default: the subject name)")
    args = parser.parse_args()

    probe = Probe()
    port = probe.server_address[1]
    server = threading.Thread(target=probe.serve_forever, daemon=True)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"

    env_files = dict(item.split("=", 1) for item in args.env_file)
    names = dict(item.split("=", 1) for item in args.function_name)
    scratch = tempfile.mkdtemp(prefix="runtime-api-probe-")
    subjects = []
    for item in args.subject:
        name, _, command = item.partition("=")
        env = base_env(port, names.get(name, name), scratch)
        if name in env_files:
            env.update(read_env_file(env_files[name], endpoint))
        subjects.append({"name": name, "argv": shlex.split(command), "env": env,
                         "samples_ms": [], "memory": [], "failure": None})

    try:
        for i in range(args.runs + 1):
            # Alternate the order so neither subject always runs right after the other.
            order = subjects if i % 2 == 0 else list(reversed(subjects))
            for s in order:
                if s["failure"]:
                    continue
                ms, detail = run_once(probe, s["argv"], s["env"],
                                      os.path.join(scratch, f"{s['name']}.stderr"))
                if ms is None:
                    s["failure"] = detail
                    continue
                if i == 0:
                    continue  # warm-up: page cache, first exec of the binary
                s["samples_ms"].append(round(ms, 3))
                s["memory"].append(detail)
    finally:
        probe.shutdown()
        probe.server_close()
        failed_stderr = {s["name"]: s["failure"] for s in subjects if s["failure"]}
        shutil.rmtree(scratch, ignore_errors=True)

    results = {"runs": args.runs, "unexpected_requests": probe.unexpected, "subjects": {}}
    for s in subjects:
        samples = s["samples_ms"]
        entry = {"command": os.path.basename(s["argv"][-1]), "failure": s["failure"],
                 "samples_ms": samples}
        if samples:
            hwm = [m.get("VmHWM") for m in s["memory"] if m.get("VmHWM")]
            entry.update({
                "median_ms": round(statistics.median(samples), 3),
                "p90_ms": round(percentile(samples, 0.9), 3),
                "min_ms": min(samples),
                "max_ms": max(samples),
                "rss_at_first_poll_kb": int(statistics.median(hwm)) if hwm else None,
            })
        results["subjects"][s["name"]] = entry
        line = (f"{s['name']}: median {entry['median_ms']:.1f} ms, p90 {entry['p90_ms']:.1f} ms "
                f"over {len(samples)} runs" if samples else f"{s['name']}: FAILED {s['failure']}")
        print(f"probe: {line}", file=sys.stderr)

    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    return 1 if failed_stderr else 0


if __name__ == "__main__":
    sys.exit(main())
