#!/usr/bin/env python3
"""The serving bars of docs/PERFORMANCE.md in one run: fits a one-network
model and a default-preset model (4 networks) on the same synthetic data,
starts anorand-server on a free port over a temporary store, and runs
`anorand-bench service` for each model: StreamScore at batch 256 with 2
streams (against the in-process forward pass of the same model and batch,
measured by the same run) and unary Score of one record (against the
grpc.health.v1 floor), `--runs` times each, then prints the medians.

With --drift: the cost of drift tracking instead. Two servers over the
same store, one with the default --drift_window_records and one with
--drift_window_records=0; each run benches both (alternating which goes
first) with the loads above, the drift-on server also with a shadow at
sample 0.1 in alternate slices (`--with-shadow 0.1`); prints per load the
throughput and p50 of drift on against off, and of drift on with the
shadow against off, per run and the median, beside the in-process cost of
the drift window's Observe as a share of the forward pass.

With --reservoir: the same for a reservoir of recent traffic: one server
keeping a reservoir of 50,000 records for each model and writing it every
second (--reservoir_flush_seconds=1, to show the writes too), one without;
no shadow; beside the in-process cost of a full reservoir's Observe as a
share of the forward pass.

With --training: the isolation bar instead. For each server setting
(--setting LABEL=FLAGS, repeatable; by default normal priority, SCHED_IDLE,
and SCHED_IDLE with --training_yield_inflight 1 and 2) and each model,
unary Score of one record at concurrency 2 with `--with-training` (idle
slices interleaved with slices while a training job runs), `--runs` times,
the settings taking turns within each run on a fresh server; prints the
median p99 ratio (training / idle) beside the job's epochs per second.

usage: bench/service_bars.py [--build build] [--runs 3] [--seconds 3]
                             [--server-flag=--enable_batching ...] [--json out.json]
       bench/service_bars.py --drift [--runs 5] [--seconds 3]
       bench/service_bars.py --reservoir [--runs 5] [--seconds 3]
       bench/service_bars.py --training [--runs 3] [--seconds 4] [--rounds 4]
                             [--setting "LABEL=--flag=value --flag=value" ...]
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
    ap.add_argument("--training", action="store_true")
    ap.add_argument("--drift", action="store_true")
    ap.add_argument("--reservoir", action="store_true")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--setting", action="append", default=[])
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
    def start_server(flags):
        port = free_port()
        proc = subprocess.Popen([server, f"--grpc_address=127.0.0.1:{port}",
                                 f"--model_dir={tmp}/store", "--metrics_address=",
                                 "--poll_seconds=0"] + flags,
                                stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        for _ in range(100):
            if subprocess.run([cli, "health", "--address", f"127.0.0.1:{port}"],
                              capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        return port, proc

    if args.training:
        return training_bars(args, bench, models, start_server)
    if args.drift:
        return on_off_bars(args, bench, models, start_server, args.server_flag,
                           ["--drift_window_records=0"] + args.server_flag,
                           shadow=True, in_process="drift_vs_forward")
    if args.reservoir:
        keep = ",".join(f"{name}=50000" for name in models)
        return on_off_bars(args, bench, models, start_server,
                           [f"--reservoir_records={keep}", "--reservoir_flush_seconds=1",
                            "--replica_id=bench-on"] + args.server_flag,
                           args.server_flag, shadow=False, in_process="reservoir_vs_forward")
    port, proc = start_server(args.server_flag)
    try:
        results = []
        for run in range(args.runs):
            for name in models:
                for mode, batch, conc in LOADS:
                    j = bench_service(bench, port, name, mode, batch, conc, args.seconds)
                    if j is None:
                        return 1
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


LOADS = (("stream", 256, 2), ("unary", 1, 1))


def bench_service(bench, port, name, mode, batch, conc, seconds, extra=()):
    """One `anorand-bench service` run; its JSON, or None (stderr printed)."""
    out = subprocess.run(
        [bench, "service", "--address", f"127.0.0.1:{port}", "--model", name,
         "--mode", mode, "--batch", str(batch), "--concurrency", str(conc),
         "--seconds", str(seconds), "--format", "json"] + list(extra),
        capture_output=True, text=True)
    if out.returncode != 0:
        print(out.stderr, file=sys.stderr)
        return None
    return json.loads(out.stdout)


def on_off_bars(args, bench, models, start_server, on_flags, off_flags, shadow, in_process):
    """Benches a server with a feature on against one with it off, in turns;
    with `shadow`, the on-server also with a shadow at 0.1 in alternate
    slices. `in_process` names the JSON figure of the last column."""
    servers = {"on": start_server(on_flags), "off": start_server(off_flags)}
    results = []
    try:
        for run in range(args.runs):
            order = ("on", "off") if run % 2 == 0 else ("off", "on")
            for name in models:
                for mode, batch, conc in LOADS:
                    for drift in order:
                        extra = ["--with-shadow", "0.1"] if shadow and drift == "on" else []
                        j = bench_service(bench, servers[drift][0], name, mode, batch, conc,
                                          args.seconds, extra)
                        if j is None:
                            return 1
                        j["model"], j["run"], j["drift"] = name, run, drift
                        results.append(j)
    finally:
        for _, proc in servers.values():
            proc.terminate()
            proc.wait()
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    print(f"load average at the end: {' '.join(load)}; {args.runs} runs of {args.seconds} s "
          "per load and setting, medians\n")
    print("| model | load | records/s on / off | on / off per run | median | " +
          ("on + shadow 0.1 / off per run | median | " if shadow else "") +
          "p50 us on / off | Observe / forward in process |")
    print("|---|---|---|---|---|---|---|" + ("---|---|" if shadow else ""))
    for name in models:
        for mode, batch, conc in LOADS:
            pick = lambda d: sorted((r for r in results if r["model"] == name and
                                     r["mode"] == mode and r["drift"] == d),
                                    key=lambda r: r["run"])
            on, off = pick("on"), pick("off")
            ratios = [a["records_per_s"] / b["records_per_s"] for a, b in zip(on, off)]
            med = lambda rs, k: statistics.median(r[k] for r in rs)
            shadow_cells = ""
            if shadow:
                both = [a["records_per_s_shadow_on"] / b["records_per_s"]
                        for a, b in zip(on, off)]
                shadow_cells = (f"{', '.join(f'{x:.3f}' for x in both)} | "
                                f"**{statistics.median(both):.3f}** | ")
            print(f"| {name} | {mode} b{batch} c{conc} | {med(on, 'records_per_s'):,.0f} / "
                  f"{med(off, 'records_per_s'):,.0f} | "
                  f"{', '.join(f'{x:.3f}' for x in ratios)} | "
                  f"**{statistics.median(ratios):.3f}** | {shadow_cells}"
                  f"{med(on, 'p50_us'):,.0f} / "
                  f"{med(off, 'p50_us'):,.0f} | {med(on + off, in_process):.3f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


DEFAULT_SETTINGS = [
    "normal priority=--training_low_priority=false",
    "SCHED_IDLE=",
    "SCHED_IDLE + yield 1=--training_yield_inflight=1",
    "SCHED_IDLE + yield 2=--training_yield_inflight=2",
]


def training_bars(args, bench, models, start_server):
    settings = []
    for text in args.setting or DEFAULT_SETTINGS:
        label, _, flags = text.partition("=")
        settings.append((label, flags.split() + args.server_flag))
    results = []
    for run in range(args.runs):
        for label, flags in settings:
            port, proc = start_server(flags)
            try:
                for name in models:
                    j = bench_service(bench, port, name, "unary", 1, 2, args.seconds,
                                      ["--with-training", "--training-rounds", str(args.rounds)])
                    if j is None:
                        return 1
                    j["model"], j["run"], j["setting"] = name, run, label
                    results.append(j)
            finally:
                proc.terminate()
                proc.wait()
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    print(f"load average at the end: {' '.join(load)}; unary b1 c2, {args.runs} runs of "
          f"{args.rounds} idle/training rounds ({args.seconds} s of each), medians\n")
    print("| setting | model | p99 idle us | p99 training us | p99 ratio per run | "
          "median ratio | epochs/s with scoring | epochs/s alone | paused |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, _ in settings:
        for name in models:
            rs = [r for r in results if r["model"] == name and r["setting"] == label]
            med = lambda k: statistics.median(r[k] for r in rs)
            ratios = ", ".join(f"{r['p99_training_vs_idle']:.2f}" for r in rs)
            print(f"| {label} | {name} | {med('p99_us_idle_slices'):,.0f} | "
                  f"{med('p99_us_while_training'):,.0f} | {ratios} | "
                  f"**{med('p99_training_vs_idle'):.2f}** | {med('training_epochs_per_s'):.1f} | "
                  f"{med('training_alone_epochs_per_s'):.1f} | "
                  f"{100 * med('training_throttled_share'):.0f}% |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
