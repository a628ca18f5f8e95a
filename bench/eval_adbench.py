#!/usr/bin/env python3
"""Runs `anorand eval` (the ADBench protocol) over the datasets in
../shared/datasets/adbench and prints a Markdown table beside the published
Isolation Forest and ECOD numbers from that folder's README.

usage: bench/eval_adbench.py [--anorand build/client/anorand] [--seeds 1,2,3]
                             [--param NAME=VALUE ...] [--datasets a,b] [--json out.json]
                             [--max-rows N]  (rows before the split: 10000 in the
                                              protocol, 0 = the whole dataset)
Standard library only. Exits 77 (skip) when the datasets are absent.
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SHARED = os.path.join(HERE, "..", "..", "shared", "datasets", "adbench")

# Published AUC-ROC x100 (ADBench Table D4), from datasets/adbench/README.md.
IFOREST = {"2_annthyroid": 82.01, "4_breastw": 98.32, "6_cardio": 93.19, "10_cover": 86.74,
           "14_glass": 77.13, "21_Lymphography": 99.81, "23_mammography": 86.39,
           "29_Pima": 72.87, "31_satimage-2": 99.16, "32_shuttle": 99.56, "38_thyroid": 98.30,
           "40_vowels": 73.94, "42_WBC": 99.01}
ECOD = {"2_annthyroid": 78.03, "4_breastw": 99.17, "6_cardio": 94.44, "10_cover": 93.42,
        "14_glass": 75.70, "21_Lymphography": 99.52, "23_mammography": 90.75, "29_Pima": 51.54,
        "31_satimage-2": 97.11, "32_shuttle": 99.40, "38_thyroid": 97.78, "40_vowels": 45.81,
        "42_WBC": 99.11}
IFOREST_PR = {"2_annthyroid": 30.47, "4_breastw": 96.04, "6_cardio": 59.95, "10_cover": 8.85,
              "14_glass": 10.99, "21_Lymphography": 97.31, "23_mammography": 20.67,
              "29_Pima": 55.82, "31_satimage-2": 93.45, "32_shuttle": 97.62, "38_thyroid": 63.11,
              "40_vowels": 15.12, "42_WBC": 90.49}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--anorand", default=os.path.join(HERE, "..", "build", "client", "anorand"))
    ap.add_argument("--data-dir", default=os.environ.get("ANORAND_ADBENCH", DEFAULT_SHARED))
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--param", action="append", default=[])
    ap.add_argument("--datasets", default="")
    ap.add_argument("--json", default="")
    ap.add_argument("--label", default="")
    ap.add_argument("--max-rows", default="")
    ap.add_argument("--labeled-anomalies", default="",
                    help="share of each training split's anomalies that keep label 1 (anorand eval)")
    args = ap.parse_args()
    if not os.path.isdir(args.data_dir):
        print(f"skip: {args.data_dir} not found", file=sys.stderr)
        return 77
    names = sorted((f[:-4] for f in os.listdir(args.data_dir) if f.endswith(".npz")),
                   key=lambda n: int(n.split("_")[0]))
    if args.datasets:
        names = [n for n in names if n in args.datasets.split(",")]
    rows = []
    start = time.time()
    for name in names:
        cmd = [args.anorand, "eval", "--data", os.path.join(args.data_dir, name + ".npz"),
               "--seeds", args.seeds, "--format", "json", "--quiet"]
        for p in args.param:
            cmd += ["--param", p]
        if args.max_rows:
            cmd += ["--max-rows", args.max_rows]
        if args.labeled_anomalies:
            cmd += ["--labeled-anomalies", args.labeled_anomalies]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            print(f"{name}: anorand eval failed: {out.stderr.strip()}", file=sys.stderr)
            return 1
        r = json.loads(out.stdout)
        seeds = r["seeds"]
        rows.append({
            "dataset": name, "auc_roc": r["auc_roc"], "auc_pr": r["auc_pr"],
            "auc_roc_noise": sum(s["auc_roc_noise"] for s in seeds) / len(seeds),
            "auc_roc_reconstruction": sum(s["auc_roc_reconstruction"] for s in seeds) / len(seeds),
            # Each block's AUC-PR alone, when this anorand reports it.
            "auc_pr_noise": (sum(s["auc_pr_noise"] for s in seeds) / len(seeds)
                             if all("auc_pr_noise" in s for s in seeds) else None),
            "auc_pr_reconstruction": (sum(s["auc_pr_reconstruction"] for s in seeds) / len(seeds)
                                      if all("auc_pr_reconstruction" in s for s in seeds) else None),
            "fit_seconds": sum(s["fit_seconds"] for s in seeds) / len(seeds),
            "labeled_anomalies": [s.get("labeled_anomalies", 0) for s in seeds],
        })
        print(f"{name}: auc_roc {r['auc_roc']:.4f} auc_pr {r['auc_pr']:.4f}", file=sys.stderr)
    mean = lambda k: sum(r[k] for r in rows) / len(rows)
    print(f"\nparams: {' '.join(args.param) or '(defaults)'}  seeds: {args.seeds}  "
          f"wall: {time.time() - start:.0f} s\n")
    print("| dataset | AUC-ROC | AUC-PR | ND alone | AE alone | fit s | IForest ROC | ECOD ROC | IForest PR |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        n = r["dataset"]
        print(f"| {n} | {100 * r['auc_roc']:.2f} | {100 * r['auc_pr']:.2f} | "
              f"{100 * r['auc_roc_noise']:.2f} | {100 * r['auc_roc_reconstruction']:.2f} | "
              f"{r['fit_seconds']:.2f} | {IFOREST.get(n, float('nan')):.2f} | "
              f"{ECOD.get(n, float('nan')):.2f} | {IFOREST_PR.get(n, float('nan')):.2f} |")
    known = [r for r in rows if r["dataset"] in IFOREST]
    print(f"| **mean** | **{100 * mean('auc_roc'):.2f}** | **{100 * mean('auc_pr'):.2f}** | "
          f"{100 * mean('auc_roc_noise'):.2f} | {100 * mean('auc_roc_reconstruction'):.2f} | "
          f"{mean('fit_seconds'):.2f} | "
          f"{sum(IFOREST[r['dataset']] for r in known) / max(len(known), 1):.2f} | "
          f"{sum(ECOD[r['dataset']] for r in known) / max(len(known), 1):.2f} | "
          f"{sum(IFOREST_PR[r['dataset']] for r in known) / max(len(known), 1):.2f} |")
    if all(r["auc_pr_noise"] is not None for r in rows):
        print("\nEach block alone, AUC-PR:\n")
        print("| dataset | ND alone PR | AE alone PR | IForest PR |")
        print("|---|---|---|---|")
        for r in rows:
            n = r["dataset"]
            print(f"| {n} | {100 * r['auc_pr_noise']:.2f} | {100 * r['auc_pr_reconstruction']:.2f} | "
                  f"{IFOREST_PR.get(n, float('nan')):.2f} |")
        print(f"| **mean** | {100 * mean('auc_pr_noise'):.2f} | "
              f"{100 * mean('auc_pr_reconstruction'):.2f} | "
              f"{sum(IFOREST_PR[r['dataset']] for r in known) / max(len(known), 1):.2f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"label": args.label, "params": args.param, "seeds": args.seeds,
                       "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
