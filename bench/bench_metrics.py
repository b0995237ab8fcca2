"""Benchmark: FID and precision/recall for 10,000 samples of 2,048-d features on this machine's CPU.

Baseline in the same run: pytorch-fid's `calculate_frechet_distance` (np.cov + scipy sqrtm) on the
same features. Target: FID + precision/recall together under 30 s on the CPU. Peak memory is the
growth of the process's maximum resident set size (ru_maxrss) during each step.

    .venv/bin/python bench/bench_metrics.py [--n 10000] [--dim 2048] [--device cpu] [--json PATH]

With --json the figures (FID time, ours / pytorch-fid; FID relative difference) go to PATH."""

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path
import numpy as np
import torch
import adm_edu.metrics as M


def maxrss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(label, fn, rows):
    rss0, t0 = maxrss_mb(), time.perf_counter()
    out = fn()
    dt, drss = time.perf_counter() - t0, maxrss_mb() - rss0
    rows.append((label, dt, drss))
    print(f"{label:58s} {dt:8.2f} s   peak RSS +{drss:7.0f} MB", flush=True)
    return out, dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--n', type=int, default=10_000)
    ap.add_argument('--dim', type=int, default=2048)
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--skip-baseline', action='store_true')
    ap.add_argument('--json', default=None)
    a = ap.parse_args()
    try:
        cpu = next(
            l.split(':', 1)[1].strip()
            for l in subprocess.run(['lscpu'], capture_output=True, text=True).stdout.splitlines()
            if l.startswith('Model name')
        )
    except Exception:
        cpu = '?'
    print(
        f"bench_metrics: n={a.n}, dim={a.dim}, device={a.device}, CPU {cpu}, torch threads "
        f"{torch.get_num_threads()}"
    )
    g = torch.Generator().manual_seed(0)
    # features shaped like Inception pool_3: non-negative, correlated
    mix = torch.randn(a.dim, a.dim, generator=g) / a.dim**0.5
    real = torch.relu(torch.randn(a.n, a.dim, generator=g) @ mix + 0.3)
    fake = torch.relu(torch.randn(a.n, a.dim, generator=g) @ mix + 0.35)
    rows = []
    base_t = None
    if not a.skip_baseline:
        from pytorch_fid.fid_score import calculate_frechet_distance

        def baseline():
            r, f = real.double().numpy(), fake.double().numpy()
            return calculate_frechet_distance(
                r.mean(0), np.cov(r, rowvar=False), f.mean(0), np.cov(f, rowvar=False)
            )

        ref, base_t = timed('baseline: pytorch-fid (np.cov + scipy sqrtm)', baseline, rows)
    fid, t_fid = timed(
        'adm_edu fid_from_features (streaming stats + eigh)',
        lambda: M.fid_from_features(real, fake),
        rows,
    )
    (p, r), t_pr = timed(
        f'adm_edu precision_recall (k=5, blockwise, {a.device})',
        lambda: M.precision_recall(real, fake, k=5, device=a.device),
        rows,
    )
    print(
        f"FID {fid:.4f}"
        + (
            ''
            if base_t is None
            else f" (pytorch-fid {ref:.4f}, rel. diff {abs(fid - ref) / abs(ref):.1e})"
        )
        + f"; precision {p:.4f}, recall {r:.4f}"
    )
    total = t_fid + t_pr
    print(
        f"FID + precision/recall: {total:.1f} s (target < 30 s): "
        f"{'OK' if total < 30 else 'OVER TARGET'}"
    )
    if base_t is not None:
        print(f"FID speed-up over the pytorch-fid baseline: {base_t / t_fid:.1f}x")
    print(
        f"process peak RSS: {maxrss_mb():.0f} MB (features alone: "
        f"{2 * real.numel() * 4 / 2**20:.0f} MB)"
    )
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import figure, write_json

    figs = []
    if base_t is not None:
        figs.append(
            figure(
                f"FID time ({a.n} x {a.dim} features), adm_edu / pytorch-fid",
                t_fid / base_t,
                t_fid,
                base_t,
                's',
                higher_is_better=False,
            )
        )
        figs.append(
            figure(
                "FID value, |adm_edu - pytorch-fid| / pytorch-fid",
                abs(fid - ref) / abs(ref),
                fid,
                ref,
                '',
                higher_is_better=False,
                note='agreement check, not a speed ratio',
            )
        )
    figs.append(
        figure(
            f"FID + precision/recall time / the 30 s target ({a.n} x {a.dim})",
            total / 30,
            total,
            30,
            's',
            higher_is_better=False,
            note='against a fixed target, not a baseline run',
        )
    )
    write_json(
        a.json,
        'bench_metrics',
        figs,
        dict(n=a.n, dim=a.dim, device=a.device, fid=fid, precision=p, recall=r),
    )


if __name__ == '__main__':
    main()
