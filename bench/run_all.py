"""`make bench`: run every CPU benchmark in bench/ at a size that fits ~10 minutes on a 2-core CPU,
collect all figures into one JSON file (default results/bench/latest-cpu.json) and print them as one
table.

Every figure is a ratio ours / baseline measured in the same run (same process where possible,
interleaved); absolute values are context. The hardware block says what the run was on
(adm_edu.device.describe_device, CPU model, AVX512-BF16 / AMX flags and whether bf16 is native; bf16
rows appear only where it is).

    python bench/run_all.py [--out results/bench/latest-cpu.json] [--only
    unet,learner,sampling,metrics,official] [--quick]
"""

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

# name -> (script, arguments sized for ~10 minutes in all on a 2-core CPU; --quick: a smoke run of
# the plumbing)
BENCHES = {
    'unet': (
        'bench_unet.py',
        ['--batch', '32', '--steps', '5'],
        ['--batch', '8', '--steps', '1', '--modes', 'fp32'],
    ),
    'learner': (
        'bench_learner.py',
        ['--bs', '32', '--steps', '8'],
        ['--bs', '8', '--steps', '3', '--modes', 'bare,learner'],
    ),
    'sampling': (
        'bench_sampling.py',
        ['--batch', '32', '--steps', '25', '--repeats', '3'],
        ['--batch', '4', '--steps', '5', '--repeats', '1'],
    ),
    'metrics': ('bench_metrics.py', [], ['--n', '1000', '--dim', '256']),
    'official': (
        'bench_official.py',
        ['--batch', '1', '--repeats', '5', '--ddim-steps', '25', '--ddim-runs', '2'],
        ['--batch', '1', '--repeats', '1', '--ddim-steps', '2', '--ddim-runs', '1', '--no-memory'],
    ),
}


def git_commit():
    "HEAD's short hash, with '+uncommitted' when the library or the benches differ from it."
    try:
        head = subprocess.run(
            ['git', 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True, cwd=C.ROOT
        ).stdout.strip()
        dirty = subprocess.run(
            ['git', 'status', '--porcelain', 'adm_edu', 'bench'],
            capture_output=True,
            text=True,
            cwd=C.ROOT,
        ).stdout.strip()
        return head + ('+uncommitted' if dirty else '')
    except OSError:
        return '?'


def table(figs):
    w = max(len(f['name']) for f in figs) if figs else 10
    w = min(w, 100)
    lines = [
        f"{'bench':9s} {'figure (ours / baseline)':{w}s} {'ratio':>8s} {'ours':>10s} "
        f"{'baseline':>10s} unit"
    ]
    for f in figs:
        fmt = lambda v: '' if v is None else f"{v:10.4g}"
        better = '' if f['higher_is_better'] else ' (lower is better)'
        lines.append(
            f"{f['bench']:9s} {f['name'][:w]:{w}s} {f['ratio']:8.3f} {fmt(f['ours']):>10s} "
            f"{fmt(f['baseline']):>10s} {f['unit']}{better}"
        )
    return '\n'.join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--out', default=None)
    ap.add_argument('--only', default=','.join(BENCHES))
    ap.add_argument(
        '--quick', action='store_true', help='tiny sizes: checks the plumbing, figures meaningless'
    )
    a = ap.parse_args(argv)
    out = Path(
        a.out or C.ROOT / 'results' / 'bench' / ('quick-cpu.json' if a.quick else 'latest-cpu.json')
    )
    tmp = out.parent / '.parts'
    tmp.mkdir(parents=True, exist_ok=True)
    hw = C.hardware('cpu')
    print(
        f"make bench: {hw['describe_device']}; AVX512-BF16 {hw['avx512_bf16']}, AMX-BF16 "
        f"{hw['amx_bf16']}, native bf16 {hw['native_bf16']}",
        flush=True,
    )
    env = {**os.environ, 'PYTHONWARNINGS': 'ignore'}
    figs, ctx, times, t_all = [], {}, {}, time.perf_counter()
    for name in a.only.split(','):
        script, args, quick = BENCHES[name]
        part = tmp / f'{name}.json'
        part.unlink(missing_ok=True)
        cmd = [
            sys.executable,
            str(C.ROOT / 'bench' / script),
            *(quick if a.quick else args),
            '--json',
            str(part),
        ]
        print(
            f"\n== {' '.join(Path(c).name if i < 2 else c for i, c in enumerate(cmd[:-2]))}",
            flush=True,
        )
        t0 = time.perf_counter()
        r = subprocess.run(cmd, env=env, cwd=C.ROOT)
        times[name] = round(time.perf_counter() - t0, 1)
        if r.returncode or not part.exists():
            print(f"!! {script} failed (exit {r.returncode})")
            ctx[name] = dict(error=f'exit {r.returncode}')
            continue
        d = json.loads(part.read_text())
        part.unlink()
        figs += [dict(bench=name, **f) for f in d['figures']]
        ctx[name] = dict(
            d['context'],
            command=' '.join(['python', f'bench/{script}', *(quick if a.quick else args)]),
        )
    try:
        tmp.rmdir()
    except OSError:
        pass
    total = round(time.perf_counter() - t_all, 1)
    res = dict(
        created=datetime.datetime.now().astimezone().isoformat(timespec='seconds'),
        git_commit=git_commit(),
        command='make bench' + (' (--quick)' if a.quick else ''),
        hardware=hw,
        seconds=dict(times, total=total),
        note=(
            'every ratio is ours / a baseline measured in the same run; absolute values are context'
        ),
        figures=figs,
        context=ctx,
    )
    out.write_text(json.dumps(res, indent=1) + '\n')
    print(
        f"\n{table(figs)}\n\n{len(figs)} figures in {total:.0f} s -> "
        f"{out.relative_to(C.ROOT) if out.is_relative_to(C.ROOT) else out}"
    )
    return 1 if any('error' in c for c in ctx.values()) else 0


if __name__ == '__main__':
    sys.exit(main())
