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

usage: bench/torch_compare.py [--build build] [--epochs 5] [--json out.json]
Installs nothing. Exits 77 (skip) with a message when torch is missing.
"""
import argparse
import json
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--features", type=int, default=20)
    ap.add_argument("--json", default="")
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
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    bce = nn.BCEWithLogitsLoss()
    w = 0.2
    epoch_s = []
    for _ in range(args.epochs):
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
            opt.zero_grad()
            loss.backward()
            opt.step()
        epoch_s.append(time.perf_counter() - t0)
    torch_epoch = median(epoch_s[1:])

    model.eval()
    alpha = 0.5

    def score(v):
        with torch.no_grad():
            logit, xh = model(v)
            e = ((xh - v) ** 2).mean(1)
            return (1 - alpha) * torch.sigmoid(logit) + alpha * torch.sigmoid(e)

    def rate(b, seconds=2.0):
        v = x[:b].contiguous()
        for _ in range(20):
            score(v)
        times = []
        end = time.perf_counter() + seconds
        while time.perf_counter() < end or len(times) < 20:
            t0 = time.perf_counter()
            score(v)
            times.append(time.perf_counter() - t0)
        return b / median(times)

    torch_b1, torch_b256 = rate(1), rate(256)

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
