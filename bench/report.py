"""Turns the measurements of scripts/bench.sh into BENCHMARKS.md and prints its tables.

Each number stands beside its target with PASS or MISS, and a miss says by how much. Targets
are read strictly: MB and GB are decimal (10^6 and 10^9 bytes) and a value must be at or
under its limit. Nothing here measures; it only reads what the measuring steps wrote.
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys

ZIP_LIMIT_BYTES = 3_000_000
INIT_LIMIT_MS = 15.0
INIT_MIN_RATIO = 20.0
PEAK_LIMIT_KIB = 32_000_000 / 1024  # 32 MB, decimal, in the kB (KiB) units of /proc
REAP_LIMIT_MS = 50.0
FINDINGS_LIMIT_MS = 20.0


def run(argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine():
    cpu = "unknown"
    for line in run(["lscpu"]).splitlines():
        if line.startswith("Model name:"):
            cpu = line.split(":", 1)[1].strip()
            break
    ram = "unknown"
    with open("/proc/meminfo", encoding="ascii") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    os_name = platform.system()
    try:
        with open("/etc/os-release", encoding="utf-8") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    os_name = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return [
        ("CPU", cpu),
        ("Cores (nproc)", run(["nproc"])),
        ("RAM", ram),
        ("OS", f"{os_name}, kernel {platform.release()}"),
        ("Rust", run(["rustc", "-V"])),
        ("cargo-lambda", run(["cargo-lambda", "lambda", "--version"])),
        ("Python (equivalent function)", f"{run([sys.executable, '-V'])}, boto3 "
                                          f"{run([sys.executable, '-c', 'import boto3; print(boto3.__version__)'])}"),
    ]


def verdict_max(value, limit, unit, fmt="{:,.1f}"):
    """PASS when value <= limit, else MISS with the excess."""
    if value is None:
        return "not measured"
    if value <= limit:
        return "PASS"
    over = value - limit
    return f"MISS by {fmt.format(over)} {unit} ({over / limit:.0%} over)"


def verdict_min(value, limit, unit):
    if value is None:
        return "not measured"
    if value >= limit:
        return "PASS"
    return f"MISS by {limit - value:.1f}{unit} ({(limit - value) / limit:.0%} short)"


def criterion_estimate(root, group, bench):
    path = os.path.join(root, group, bench, "new", "estimates.json")
    try:
        with open(path, encoding="utf-8") as f:
            est = json.load(f)
    except OSError:
        return None
    return {key: est[key]["point_estimate"] for key in ("mean", "median")} | {
        "ci_low": est["mean"]["confidence_interval"]["lower_bound"],
        "ci_high": est["mean"]["confidence_interval"]["upper_bound"],
    }


def fmt_ns(ns):
    if ns < 1_000:
        return f"{ns:.0f} ns"
    if ns < 1_000_000:
        return f"{ns / 1_000:.2f} µs"
    return f"{ns / 1_000_000:.2f} ms"


def target_breakdown(path):
    """One line per directory of target/, largest first."""
    if not path:
        return []
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            size, _, name = line.rstrip("\n").partition("\t")
            rows.append((int(size), "target/" + os.path.basename(name)))
    return [f"  - `{name}`: {size / 1e9:.2f} GB" for size, name in sorted(rows, reverse=True)
            if size >= 10_000_000]


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--functions", required=True, help="comma-separated function names")
    p.add_argument("--lambda-dir", action="append", default=[], metavar="ARCH=DIR")
    p.add_argument("--arch-note", action="append", default=[], metavar="ARCH=TEXT")
    p.add_argument("--init", required=True)
    p.add_argument("--python-subject", action="append", default=[], metavar="FUNCTION=SUBJECT")
    p.add_argument("--memory", action="append", default=[], metavar="FUNCTION=FILE")
    p.add_argument("--criterion-dir", required=True)
    p.add_argument("--target-bytes", type=int, required=True)
    p.add_argument("--target-du", help="`du -sb target/*` output, for the breakdown")
    p.add_argument("--ci-seconds", type=float)
    p.add_argument("--ci-note", default="")
    p.add_argument("--init-runs", type=int, required=True)
    p.add_argument("--load-at-init", default="unknown", help="/proc/loadavg's first three fields")
    p.add_argument("--out", required=True)
    a = p.parse_args()

    functions = [f for f in a.functions.split(",") if f]
    lambda_dirs = dict(item.split("=", 1) for item in a.lambda_dir)
    arch_notes = dict(item.split("=", 1) for item in a.arch_note)
    python_of = dict(item.split("=", 1) for item in a.python_subject)
    memory_files = dict(item.split("=", 1) for item in a.memory)
    with open(a.init, encoding="utf-8") as f:
        init = json.load(f)
    subjects = init["subjects"]

    summary, misses = [], []

    def add(measure, function, value, target, result):
        summary.append((measure, function, value, target, result))
        if result.startswith("MISS") or result.startswith("FAILED"):
            misses.append(f"- {measure}, {function}: {value} against {target}: {result}.")

    # Package size.
    package_rows = []
    for fn in functions:
        for arch in ("x86_64", "arm64"):
            if arch not in lambda_dirs:
                note = arch_notes.get(arch, "not built")
                package_rows.append((fn, arch, "—", "—", note))
                if arch == "x86_64":
                    add("Package size (zip)", f"{fn} ({arch})", "—", "≤ 3 MB", f"FAILED: {note}")
                continue
            zip_path = os.path.join(lambda_dirs[arch], fn, "bootstrap.zip")
            boot = os.path.join(lambda_dirs[arch], fn, "bootstrap")
            size = os.path.getsize(zip_path) if os.path.exists(zip_path) else None
            unzipped = os.path.getsize(boot) if os.path.exists(boot) else None
            result = verdict_max(size / 1e6 if size else None, ZIP_LIMIT_BYTES / 1e6, "MB", "{:.2f}")
            shown = f"{size:,} B ({size / 1e6:.2f} MB)" if size else "—"
            package_rows.append((fn, arch, shown, f"{unzipped:,} B" if unzipped else "—", result))
            add("Package size (zip)", f"{fn} ({arch})", shown, "≤ 3 MB", result)

    # Init time and the Python equivalent.
    init_rows, python_shown = [], set()
    for fn in functions:
        s = subjects.get(fn, {})
        py_name = python_of.get(fn)
        py = subjects.get(py_name, {}) if py_name else {}
        if s.get("failure") or "median_ms" not in s:
            why = (s.get("failure") or {}).get("stderr_tail", "no result").strip().splitlines()
            add("Init time (median)", fn, "—", "≤ 15 ms", f"FAILED: {why[-1] if why else 'no output'}")
            continue
        med = s["median_ms"]
        add("Init time (median)", fn, f"{med:.2f} ms", "≤ 15 ms",
            verdict_max(med, INIT_LIMIT_MS, "ms", "{:.2f}"))
        ratio = py["median_ms"] / med if py.get("median_ms") else None
        add("Init time vs Python + boto3", fn, f"{ratio:.1f}× faster" if ratio else "—", "≥ 20×",
            verdict_min(ratio, INIT_MIN_RATIO, "×"))
        init_rows.append((fn, f"{med:.2f} ms", f"{s['p90_ms']:.2f} ms", f"{s['min_ms']:.2f} ms",
                          f"{s['max_ms']:.2f} ms", f"{s['rss_at_first_poll_kb'] or 0:,} kB"))
        if py.get("median_ms") and py_name not in python_shown:
            python_shown.add(py_name)
            init_rows.append((f"{py_name} (equivalent of {fn})", f"{py['median_ms']:.1f} ms",
                              f"{py['p90_ms']:.1f} ms", f"{py['min_ms']:.1f} ms", f"{py['max_ms']:.1f} ms",
                              f"{py['rss_at_first_poll_kb'] or 0:,} kB"))

    # Peak memory per sample event.
    memory_rows = []
    for fn in functions:
        path = memory_files.get(fn)
        if not path:
            add("Peak memory (worst event)", fn, "—", "≤ 32 MB",
                "not measured: no emulator set-up for this function in bench_memory yet")
            continue
        with open(path, encoding="utf-8") as f:
            events = json.load(f)["events"]
        peaks = []
        for e in events:
            if "failure" in e:
                memory_rows.append((fn, e["event"], "—", "—", f"FAILED: {e['failure']}"))
                add("Peak memory", f"{fn}, {e['event']}", "—", "≤ 32 MB", f"FAILED: {e['failure']}")
                continue
            peak = e["peak_kb"]
            peaks.append(peak)
            memory_rows.append((fn, e["event"], e.get("outcome") or "—", f"{peak * 1024 / 1e6:.1f} MB ({peak:,} kB)",
                                verdict_max(peak * 1024 / 1e6, 32.0, "MB", "{:.1f}")))
        if peaks:
            worst = max(peaks)
            add("Peak memory (worst event)", fn, f"{worst * 1024 / 1e6:.1f} MB ({worst:,} kB)", "≤ 32 MB",
                verdict_max(worst * 1024 / 1e6, 32.0, "MB", "{:.1f}"))

    # Handler time excluding AWS.
    crit_rows = []
    for bench, label in (("promote", "a tested, clean image: promote"),
                         ("block_findings", "critical findings: block")):
        est = criterion_estimate(a.criterion_dir, "promotion_gate", bench)
        if est is None:
            crit_rows.append((f"promotion gate, {label}", "—", "—", "no target", "FAILED: no criterion estimate"))
            misses.append(f"- promotion gate, {label}: the criterion run left no estimate.")
            continue
        crit_rows.append((f"promotion gate, {label}", fmt_ns(est["mean"]),
                          f"{fmt_ns(est['ci_low'])} – {fmt_ns(est['ci_high'])}", "no target set", "—"))
    crit_rows.append(("reap plan, 10,000 hosts", "—", "—", "< 50 ms",
                      "not yet measured: function not implemented"))
    crit_rows.append(("findings summary, 5,000 findings", "—", "—", "< 20 ms",
                      "not yet measured: function not implemented"))
    for row in crit_rows:
        summary.append(("Handler time excl. AWS", row[0], row[1], row[3], row[4]))

    # Build.
    target_gb = a.target_bytes / 1e9
    summary.append(("`target/` size after the build", "workspace", f"{target_gb:.1f} GB", "no target set", "—"))
    if a.ci_seconds is not None:
        ci = f"{a.ci_seconds / 60:.1f} min ({a.ci_seconds:,.0f} s)" + (f", {a.ci_note}" if a.ci_note else "")
    else:
        ci = "not measured by this command: see the note of the last CI run"
    summary.append(("Cold CI wall time (`.ci/run`)", "workspace", ci, "no target set", "—"))

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    summary_table = table(["measure", "subject", "value", "target", "result"], summary)
    out = [
        "# Benchmarks",
        "",
        f"Measured on {now} by `make bench` ([`scripts/bench.sh`](scripts/bench.sh)), which wrote this "
        "file. Rerun it rather than editing the numbers by hand.",
        "",
        "To reproduce on a new machine: `make bench` (it runs the README's set-up and the debug "
        "build first). `BENCH_INIT_RUNS` changes the number of init runs (default 30); "
        "`BENCH_CI_COLD_SECONDS` and `BENCH_CI_NOTE` fill in the wall time of a cold `.ci/run`, "
        "which this command cannot measure itself.",
        "",
        "## Machine",
        "",
        table(["", ""], machine()),
        "",
        "## Results against the targets",
        "",
        "Targets are read strictly: MB are 10^6 bytes and a value must be at or under its limit.",
        "",
        summary_table,
        "",
        "### Misses",
        "",
        "\n".join(misses) if misses else "None: every measured number meets its target.",
        "",
        "## Package size",
        "",
        "The release `bootstrap.zip` that `cargo lambda build --release --output-format zip` writes "
        "(the workspace's release profile: opt-level `s`, thin LTO, 16 codegen units, stripped, "
        "panic abort).",
        "",
        table(["function", "architecture", "bootstrap.zip", "bootstrap unzipped", "result"], package_rows),
        "",
        "## Init time",
        "",
        f"From just before the process is started until its first `GET "
        f"/2018-06-01/runtime/invocation/next` on a local Runtime API (`bench/runtime_api_probe.py`, "
        f"127.0.0.1), over {a.init_runs} runs per subject after one discarded warm-up, the subjects "
        "interleaved run by run in the same invocation. Each process gets the Lambda variables, "
        "`AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128`, static dummy credentials, region `us-east-1`, its "
        "configuration, and every AWS endpoint set to the probe itself; the probe saw "
        f"{len(init['unexpected_requests'])} request(s) other than the poll, so no AWS call was made "
        "during init. Each function's Python equivalent creates the same boto3 clients at import, "
        "as a Python function would, then polls with urllib: "
        "[`bench/python_equivalent/handler.py`](bench/python_equivalent/handler.py) for "
        "promote-image (imagebuilder, ec2, ssm, sns, dynamodb), `<function>.py` beside it for a "
        "function that needs other clients (launch-host adds sqs). "
        "The resident set at the first poll is VmHWM from `/proc`. Load average (1, 5, 15 min) "
        f"when the init runs started: {a.load_at_init}; other work on the machine lengthens "
        "these times.",
        "",
        table(["subject", "median", "p90", "min", "max", "RSS at first poll"], init_rows),
        "",
        "## Peak memory per sample event",
        "",
        "Each sample event of a function (the globs under [`events/`](events/) listed in "
        "`bench/functions/<function>.events`) is handled by a fresh release process "
        "(`tests/src/bin/bench_memory.rs`) against moto seeded afresh (with the Image Builder "
        "loopback for promote-image), taking the event from a one-event Runtime API on 127.0.0.1. "
        "VmHWM, the peak resident set of the process, is read from `/proc/<pid>/status` when it "
        "polls for the next event.",
        "",
        table(["function", "event", "outcome", "peak RSS", "≤ 32 MB"], memory_rows)
        if memory_rows else "Not measured.",
        "",
        "## Handler time excluding AWS",
        "",
        "Criterion (`shared/benches/promotion_gate.rs`, 1 s warm-up, 3 s measurement) on the pure "
        "decisions; the value is the mean with its 95% confidence interval. The benchmark build "
        "uses the release profile, except that the AWS SDK service crates, which the decisions do "
        "not call, are compiled at opt-level 0 to save build time.",
        "",
        table(["decision", "mean", "95% CI", "target", "result"], crit_rows),
        "",
        "## Build",
        "",
        f"- `target/` as this command leaves it: {a.target_bytes:,} bytes ({target_gb:.2f} GB). It "
        "holds the debug workspace with its tests, the release functions, the benchmark build and "
        "anything else built in it before (such as `make test`, whose `sam build` works in "
        "`target/tmp`):",
        *target_breakdown(a.target_du),
        f"- Cold CI wall time: {ci}.",
        "",
    ]
    with open(a.out, "w", encoding="utf-8") as f:
        f.write("\n".join(out))

    print(summary_table)
    if memory_rows:
        print()
        print(table(["function", "event", "outcome", "peak RSS", "≤ 32 MB"], memory_rows))
    print()
    print("\n".join(misses) if misses else "No misses.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
