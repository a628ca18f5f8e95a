#!/usr/bin/env python3
"""The serving bars of docs/PERFORMANCE.md in one run: fits a one-network
model and a default-preset model (4 networks) on the same synthetic data,
starts anorand-server on a free port over a temporary store, and runs
`anorand-bench service` for each model: StreamScore at batch 256 with 2
streams (against the in-process forward pass of the same model and batch,
measured by the same run) and unary Score of one record (against the
grpc.health.v1 floor), `--runs` times each, then prints the medians.

usage: bench/service_bars.py [--build build] [--runs 3] [--seconds 3]
                             [--server-flag=--enable_batching ...] [--json out.json]
Standard library only.
"""
import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--server-flag", action="append", default=[])
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    cli = os.path.join(args.build, "client", "anorand")
    server = os.path.join(args.build, "server", "anorand-server")
    bench = os.path.join(args.build, "bench", "anorand-bench")
    for b in (cli, server, bench):
        if not os.access(b, os.X_OK):
            print(f"{b} not built: run scripts/build first", file=sys.stderr)
            return 2
    tmp = tempfile.mkdtemp(prefix="anorand-bars-")
    data = os.path.join(tmp, "train.csv")
    subprocess.run([cli, "demo-data", "--out", data, "--rows", "20000"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    models = {"one-network": ["--param", "ensemble_size=1"], "default": []}
    for name, params in models.items():
        os.makedirs(os.path.join(tmp, "store", name, "1"))
        subprocess.run([cli, "fit", "--data", data, "--threads", "1", "--quiet", "--out",
                        os.path.join(tmp, "store", name, "1", "model.anorand")] + params,
                       check=True, stdout=subprocess.DEVNULL)
    port = free_port()
    proc = subprocess.Popen([server, f"--grpc_address=127.0.0.1:{port}",
                             f"--model_dir={tmp}/store", "--metrics_address=",
                             "--poll_seconds=0"] + args.server_flag,
                            stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if subprocess.run([cli, "health", "--address", f"127.0.0.1:{port}"],
                              capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        results = []
        for run in range(args.runs):
            for name in models:
                for mode, batch, conc in (("stream", 256, 2), ("unary", 1, 1)):
                    out = subprocess.run(
                        [bench, "service", "--address", f"127.0.0.1:{port}", "--model", name,
                         "--mode", mode, "--batch", str(batch), "--concurrency", str(conc),
                         "--seconds", str(args.seconds), "--format", "json"],
                        capture_output=True, text=True)
                    if out.returncode != 0:
                        print(out.stderr, file=sys.stderr)
                        return 1
                    j = json.loads(out.stdout)
                    j["model"], j["run"] = name, run
                    results.append(j)
    finally:
        proc.terminate()
        proc.wait()
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    print(f"load average at the end: {' '.join(load)}; {args.runs} runs, medians\n")
    print("| model | mode | records/s | p50 us | floor p50 us | forward records/s | ratio |")
    print("|---|---|---|---|---|---|---|")
    for name in models:
        for mode in ("stream", "unary"):
            rs = [r for r in results if r["model"] == name and r["mode"] == mode]
            med = lambda k: statistics.median(r[k] for r in rs)
            key = "stream_vs_forward" if mode == "stream" else "p50_vs_floor"
            ratios = " / ".join(f"{r[key]:.2f}" for r in rs)
            label = "stream/forward" if mode == "stream" else "p50/floor"
            print(f"| {name} | {mode} b{rs[0]['batch']} c{rs[0]['concurrency']} | "
                  f"{med('records_per_s'):,.0f} | {med('p50_us'):,.0f} | "
                  f"{med('floor_p50_us'):,.0f} | {med('forward_records_per_s'):,.0f} | "
                  f"{label} {ratios} (median {med(key):.2f}) |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
