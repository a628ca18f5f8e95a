#!/usr/bin/env python3
"""Speed of anorand against the same network in PyTorch on CPU, measured in
one run on one machine.

Same architecture (the paper preset: d-64-32-16 noise-detection and encoder
blocks, decoder 32-32-64-d), same data (anorand demo-data, 20,000 x 20),
same batch (256) and loss, one thread on both sides. Prints seconds per
epoch for training and records per second for scoring at batch 1 and 256,
and the ratios. Prints which BLAS PyTorch loaded: Debian's python3-torch
uses whatever libblas.so.3 the loader finds (install libopenblas0-pthread
to make it OpenBLAS; the reference BLAS is 2.5-10x slower, an unfair peer).

With --scale-rows N,N,...: PyTorch's cost of the default preset's budget
beside anorand's fit at each size instead. anorand-bench train-scale fits
the default preset (one thread) and reports its epochs, members and rows
per member; PyTorch's cost of the same budget is members x (epochs x its
measured epoch over the rows a member trains on + its measured scoring of
every row at batch 256, the statistics pass), on random data of the same
shape (a dense network's cost depends on shapes, not values). Synthetic
anomalies and the normaliser, which PyTorch does not do, are not counted
on its side. Prints a table and the log-log slopes of both.

usage: bench/torch_compare.py [--build build] [--epochs 5] [--json out.json]
       bench/torch_compare.py --scale-rows 10000,100000,1000000
Installs nothing. Exits 77 (skip) with a message when torch is missing.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def loaded_blas():
    with open("/proc/self/maps") as f:
        libs = {line.split()[-1] for line in f if "blas" in line.lower() and "/" in line}
    return sorted(os.path.realpath(l) for l in libs)


def median(v):
    v = sorted(v)
    return v[len(v) // 2]


def make_model(torch, nn, d):
    """The network of anorand's paper preset (and of the default at d <= 32):
    noise-detection and encoder blocks d-64-32-16, decoder 32-32-64-d."""
    def block(widths, d_in, dropout=0.2):
        layers = []
        for i, w in enumerate(widths):
            layers += [nn.Linear(d_in, w), nn.BatchNorm1d(w), nn.ReLU()]
            if i + 1 < len(widths):
                layers.append(nn.Dropout(dropout))
            d_in = w
        return nn.Sequential(*layers)

    class AnoRand(nn.Module):
        def __init__(self):
            super().__init__()
            self.nd = block([64, 32, 16], d)
            self.nd_out = nn.Linear(16, 1)
            self.enc = block([64, 32, 16], d)
            self.dec = block([32, 64], 32)
            self.dec_out = nn.Linear(64, d)

        def forward(self, v):
            z1 = self.nd(v)
            z0 = self.enc(v)
            return self.nd_out(z1).squeeze(1), self.dec_out(self.dec(torch.cat([z0, z1], 1)))

    torch.manual_seed(1)
    model = AnoRand()
    model.opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    return model


def train_epoch(torch, nn, model, x, y, batch, w=0.2):
    """One epoch of the joint loss over the rows of x; its seconds."""
    bce = nn.BCEWithLogitsLoss()
    n = x.shape[0]
    t0 = time.perf_counter()
    model.train()
    perm = torch.randperm(n)
    for s in range(0, n - 1, batch):
        idx = perm[s:s + batch]
        if len(idx) < 2:
            break
        xb, yb = x[idx], y[idx]
        logit, xh = model(xb)
        normal = 1 - yb
        rec = (((xh - xb) ** 2).mean(1) * normal).sum() / normal.sum().clamp(min=1)
        loss = w * bce(logit, yb) + (1 - w) * rec
        model.opt.zero_grad()
        loss.backward()
        model.opt.step()
    return time.perf_counter() - t0


def score_rate(torch, model, x, b, seconds=2.0, alpha=0.5):
    """Records per second scored at batch b (median call)."""
    model.eval()
    v = x[:b].contiguous()

    def score():
        with torch.no_grad():
            logit, xh = model(v)
            e = ((xh - v) ** 2).mean(1)
            return (1 - alpha) * torch.sigmoid(logit) + alpha * torch.sigmoid(e)

    for _ in range(20):
        score()
    times = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 20:
        t0 = time.perf_counter()
        score()
        times.append(time.perf_counter() - t0)
    return b / median(times)


def scale(args, torch, nn, bench):
    d = args.features
    out = subprocess.run([bench, "train-scale", "--rows", args.scale_rows, "--features", str(d),
                          "--threads", "1", "--format", "json"],
                         check=True, capture_output=True, text=True)
    runs = json.loads(out.stdout)["runs"]
    table = []
    for run in runs:
        n = run["rows"]
        r = min(n, run["member_rows"]) if run["member_rows"] > 0 else n
        x = torch.rand(r, d)
        y = (torch.rand(r) < 0.05).float()
        model = make_model(torch, nn, d)
        epochs = [train_epoch(torch, nn, model, x, y, 256) for _ in range(3)]
        epoch = median(epochs[1:])
        rate = score_rate(torch, model, x, 256, seconds=1.0)
        torch_fit = run["members"] * (run["epochs_member0"] * epoch + n / rate)
        table.append({"rows": n, "member_rows": r, "members": run["members"],
                      "epochs_member0": run["epochs_member0"],
                      "anorand_fit_seconds": run["fit_seconds"],
                      "anorand_fit_cpu_seconds": run["fit_cpu_seconds"],
                      "torch_seconds_per_epoch": epoch,
                      "torch_records_per_s_batch256": rate,
                      "torch_same_budget_seconds": torch_fit})
    print("| rows | rows per member | members x epochs | anorand fit s (CPU s) | "
          "PyTorch epoch s | PyTorch same budget s | PyTorch / anorand |")
    print("|---|---|---|---|---|---|---|")
    for t in table:
        print(f"| {t['rows']:,} | {t['member_rows']:,} | {t['members']} x {t['epochs_member0']} | "
              f"{t['anorand_fit_seconds']:.1f} ({t['anorand_fit_cpu_seconds']:.1f}) | "
              f"{t['torch_seconds_per_epoch']:.2f} | {t['torch_same_budget_seconds']:.1f} | "
              f"{t['torch_same_budget_seconds'] / t['anorand_fit_seconds']:.1f}x |")
    for a, b in zip(table, table[1:]):
        span = math.log(b["rows"] / a["rows"])
        print(f"log-log slope {a['rows']:,} -> {b['rows']:,}: anorand "
              f"{math.log(b['anorand_fit_seconds'] / a['anorand_fit_seconds']) / span:.2f}, "
              f"PyTorch {math.log(b['torch_same_budget_seconds'] / a['torch_same_budget_seconds']) / span:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(table, f, indent=2)
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--features", type=int, default=20)
    ap.add_argument("--json", default="")
    ap.add_argument("--scale-rows", default="")
    args = ap.parse_args()
    try:
        import torch
        from torch import nn
    except ImportError:
        print("skip: PyTorch is not installed (Debian: apt-get install python3-torch "
              "libopenblas0-pthread)", file=sys.stderr)
        return 77
    torch.set_num_threads(1)
    anorand = os.path.join(args.build, "client", "anorand")
    bench = os.path.join(args.build, "bench", "anorand-bench")
    if args.scale_rows:
        return scale(args, torch, nn, bench)
    d, n, batch = args.features, args.rows, 256

    tmp = tempfile.mkdtemp()
    csv = os.path.join(tmp, "train.csv")
    subprocess.run([anorand, "demo-data", "--out", csv, "--rows", str(n), "--features", str(d)],
                   check=True, capture_output=True)
    with open(csv) as f:
        next(f)
        x = torch.tensor([[float(v) for v in line.split(",")] for line in f], dtype=torch.float32)
    lo, hi = x.min(0).values, x.max(0).values
    x = (x - lo) / torch.where(hi > lo, hi - lo, torch.ones_like(hi))
    y = (torch.rand(n) < 0.05).float()

    model = make_model(torch, nn, d)
    epoch_s = [train_epoch(torch, nn, model, x, y, batch) for _ in range(args.epochs)]
    torch_epoch = median(epoch_s[1:])
    torch_b1, torch_b256 = score_rate(torch, model, x, 1), score_rate(torch, model, x, 256)

    def run_bench(*a):
        out = subprocess.run([bench, *a, "--format", "json"], check=True, capture_output=True,
                             text=True)
        return json.loads(out.stdout)

    ours_train = run_bench("train", "--rows", str(n), "--features", str(d), "--epochs",
                           str(args.epochs), "--threads", "1")
    ours_b1 = run_bench("forward", "--features", str(d), "--batch", "1", "--threads", "1")
    ours_b256 = run_bench("forward", "--features", str(d), "--batch", "256", "--threads", "1")

    result = {
        "torch_version": torch.__version__,
        "torch_blas": loaded_blas(),
        "threads": 1,
        "rows": n, "features": d, "batch": batch, "epochs": args.epochs,
        "torch_seconds_per_epoch": torch_epoch,
        "anorand_seconds_per_epoch": ours_train["seconds_per_epoch"],
        "train_speedup": torch_epoch / ours_train["seconds_per_epoch"],
        "torch_records_per_s_batch1": torch_b1,
        "anorand_records_per_s_batch1": ours_b1["records_per_s"],
        "score_speedup_batch1": ours_b1["records_per_s"] / torch_b1,
        "torch_records_per_s_batch256": torch_b256,
        "anorand_records_per_s_batch256": ours_b256["records_per_s"],
        "score_speedup_batch256": ours_b256["records_per_s"] / torch_b256,
        "anorand_forward_efficiency_batch256": ours_b256["efficiency"],
    }
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
