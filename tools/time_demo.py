"""Time `adm-edu-demo` (what `make demo` runs after set-up) for each precision, against a baseline
commit, on this machine.

The baseline is a git worktree of `--baseline` run with the same virtual environment (PYTHONPATH
points at it, so its adm_edu is imported). Runs alternate (baseline fp32, ours fp32, baseline auto,
ours auto, ...) so that machine load hits both alike; each run's wall time from the shell (process
start included) and the demo's own per-stage times (report.json) are written to --out with the
hardware and the commits.

    python tools/time_demo.py --baseline 8b62bd2 [--precisions fp32,auto] [--rounds 1]
        [--cap avx2] --out results/demo-cpu-DATE/demo_times.json

--cap avx2 runs every demo with the instruction set capped at AVX2 (what an AVX2-only CPU runs;
adm_edu then sees no native bf16, so 'auto' means fp32 in this tree)."""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_demo(src: Path, precision: str, out: Path, cap: dict | None = None) -> dict:
    launcher = out.parent / f'{out.name}-adm-edu-demo'  # what pip writes for the console script
    launcher.write_text("import sys\nfrom adm_edu.cli import demo\nsys.exit(demo())\n")
    env = {**os.environ, **(cap or {}), 'PYTHONPATH': str(src), 'PYTHONWARNINGS': 'ignore'}
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, str(launcher), '--out', str(out), '--precision', precision],
        env=env,
        check=True,
        cwd=src,
        stdout=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - t0
    rep = json.loads((out / 'report.json').read_text())
    return dict(
        wall_seconds=round(wall, 2),
        report_seconds=rep['seconds'],
        stage_seconds=rep['stage_seconds'],
        settings=rep['settings'],
        nll_bpd=rep['sampling']['nll']['bpd'],
        guided_independent_class_acc=rep.get('guidance', {}).get('independent_class_acc'),
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--baseline', required=True)
    ap.add_argument('--precisions', default='fp32,auto')
    ap.add_argument('--rounds', type=int, default=1)
    ap.add_argument('--out', required=True)
    ap.add_argument(
        '--cap',
        choices=['none', 'avx2'],
        default='none',
        help=(
            "avx2: run every demo with oneDNN and ATen capped at AVX2 (bench/_common.AVX2_CAP), "
            "i.e. as on an AVX2-only CPU"
        ),
    )
    a = ap.parse_args()
    sys.path.insert(0, str(ROOT / 'bench'))
    import _common as C

    cap = C.AVX2_CAP if a.cap == 'avx2' else None
    head = subprocess.run(
        ['git', 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    dirty = bool(
        subprocess.run(
            ['git', 'status', '--porcelain', 'adm_edu'], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip()
    )
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / 'baseline'
        subprocess.run(
            ['git', 'worktree', 'add', '--detach', str(base), a.baseline],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        try:
            for r in range(a.rounds):
                for prec in a.precisions.split(','):
                    for who, src in (('baseline', base), ('ours', ROOT)):
                        res = run_demo(src, prec, Path(tmp) / f'{who}-{prec}-{r}', cap)
                        runs.setdefault(f'{who}/{prec}', []).append(res)
                        print(
                            f"{who:8s} {prec:5s} wall {res['wall_seconds']:6.1f} s  stages "
                            f"{res['stage_seconds']}",
                            flush=True,
                        )
        finally:
            subprocess.run(
                ['git', 'worktree', 'remove', '--force', str(base)], cwd=ROOT, capture_output=True
            )
    rec = dict(
        what=(
            'wall time of `adm-edu-demo --precision P` (what `make demo` runs after set-up), this '
            'tree against a baseline commit, alternating, on an otherwise idle machine'
        ),
        command=' '.join(['python', 'tools/time_demo.py'] + sys.argv[1:]),
        created=time.strftime('%Y-%m-%dT%H:%M:%S%z'),
        commits=dict(baseline=a.baseline, ours=head + ('+uncommitted' if dirty else '')),
        hardware=C.hardware('cpu'),
        isa_cap=cap or 'none',
        runs=runs,
    )
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(rec, indent=1) + '\n')
    print(f"wrote {a.out}")


if __name__ == '__main__':
    main()
