#!/usr/bin/env python
"""Plant one deliberate bug in each of ten core formulas and report which test catches it.

    .venv/bin/python tools/plant_bugs.py              # all ten, one after the other
    .venv/bin/python tools/plant_bugs.py --only kl,cfg

Each bug is a one-line change of the generated library (adm_edu/*.py) made in a COPY of the
repository under --work (default /tmp/plant; the working tree is never touched): the copy is made
once, then for each bug its adm_edu/ is restored from the original and patched. The tests run from
the copy with PYTHONPATH pointing there (checked: `adm_edu` must import from the copy), as
`pytest -x -q` over the core test files; if pytest lets the bug through, `nbdev-test` runs the
chapter that owns the formula. The table at the end lists, per bug, the first test that failed.
Exit status 1 if any bug went uncaught (or a patch no longer applies)."""

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / '.venv' / 'bin'
# the tree the copy leaves out: environments, build outputs, runs and rendered pages
SKIP = {'.venv', '.git', 'runs', '_html', '_browser', 'build', 'demo', '.docs_assets'}
SKIP |= {'__pycache__', '.pytest_cache', '.hypothesis', 'adm_edu.egg-info', '.ruff_cache'}
CORE_TESTS = [  # cheap and central first: -x stops at the first failure
    'tests/test_schedule.py',
    'tests/test_losses.py',
    'tests/test_respacing.py',
    'tests/test_sampling.py',
    'tests/test_ode.py',
    'tests/test_guidance.py',
    'tests/test_metrics.py',
]

# name: (file, exact old text, new text, the chapter that owns the formula, the test file run
# first: the formula's own, so that -x stops early)
BUGS = {
    'posterior-mean-coef': (
        'schedule.py',
        'self.posterior_mean_coef1 = b * self.alpha_bar_prev.sqrt() / (1 - self.alpha_bar)',
        'self.posterior_mean_coef1 = b * self.alpha_bar.sqrt() / (1 - self.alpha_bar)',
        '01_schedule',
        'tests/test_schedule.py',
    ),
    'ddim-sigma-eta': (
        'sampling.py',
        "return _check_eta(eta) * self.extract('posterior_variance', t, x).sqrt()",
        "return _check_eta(eta) * self.extract('posterior_variance', t, x)",
        '03_ddim',
        'tests/test_sampling.py',
    ),
    'learned-variance-interp': (
        'schedule.py',
        'return frac * log_large + (1 - frac) * log_small',
        'return frac * log_small + (1 - frac) * log_large',
        '05_learned_variance',
        'tests/test_losses.py',
    ),
    'normal-kl': (
        'losses.py',
        'return 0.5 * (-1.0 + logvar2 - logvar1 + variance_ratio + scaled_mean_gap)',
        'return 0.5 * (-1.0 + logvar1 - logvar2 + variance_ratio + scaled_mean_gap)',
        '05_learned_variance',
        'tests/test_losses.py',
    ),
    'decoder-bin-edges': (
        'losses.py',
        'half = 1.0 / (bins - 1)  # half a bin width on [-1, 1]',
        'half = 2.0 / (bins - 1)  # half a bin width on [-1, 1]',
        '05_learned_variance',
        'tests/test_losses.py',
    ),
    'cosine-offset': (
        'schedule.py',
        'f = lambda u: math.cos((u + s) / (1 + s) * math.pi / 2) ** 2  # u = t/T',
        'f = lambda u: math.cos((u + s) / (1 - s) * math.pi / 2) ** 2  # u = t/T',
        '06_cosine_schedule',
        'tests/test_schedule.py',
    ),
    'respacing-beta': (
        'schedule.py',
        'betas = 1 - ab / torch.cat([ab.new_ones(1), ab[:-1]])',
        'betas = 1 - ab / torch.cat([ab[:1], ab[:-1]])',
        '08_respacing',
        'tests/test_respacing.py',
    ),
    'cfg-combination': (
        'guidance.py',
        'eps = (1 + self.w) * out_c[:, :C] - self.w * out_u[:, :C]',
        'eps = (1 + self.w) * out_c[:, :C] - self.w * out_c[:, :C]',
        '11_guidance',
        'tests/test_guidance.py',
    ),
    'classifier-mean-shift': (
        'guidance.py',
        'return mean + s * variance.to(mean.dtype) * grad.to(mean.dtype)',
        'return mean + s * variance.to(mean.dtype).sqrt() * grad.to(mean.dtype)',
        '11_guidance',
        'tests/test_guidance.py',
    ),
    'frechet-trace-term': (
        'metrics.py',
        'return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * tr)',
        'return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - tr)',
        '13_metrics',
        'tests/test_metrics.py',
    ),
}


def copy_tree(dst: Path):
    "The repository without SKIP into dst (made afresh)."
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(ROOT, dst, ignore=lambda d, names: [n for n in names if n in SKIP])


def plant(work: Path, name: str):
    "Restore work/adm_edu from the original, then apply bug `name`; False if it does not apply."
    fname, old, new = BUGS[name][:3]
    shutil.rmtree(work / 'adm_edu')
    shutil.copytree(ROOT / 'adm_edu', work / 'adm_edu', ignore=shutil.ignore_patterns('__py*'))
    path = work / 'adm_edu' / fname
    text = path.read_text()
    if text.count(old) != 1:
        return False
    path.write_text(text.replace(old, new))
    return True


def env_for(work: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(work), OMP_NUM_THREADS='1', PYTHONDONTWRITEBYTECODE='1')
    env.pop('IN_TEST', None)
    return env


def imports_copy(work: Path) -> bool:
    "`adm_edu` imports from the copy, not from the editable install of the working tree."
    code = 'import adm_edu, sys; print(adm_edu.__file__)'
    r = subprocess.run(
        [str(BIN / 'python'), '-c', code],
        env=env_for(work),
        cwd=work,
        capture_output=True,
        text=True,
    )
    return r.stdout.strip().startswith(str(work))


def first_failure(out: str) -> str | None:
    "The first failing test id in pytest -q output."
    m = re.search(r'^(?:FAILED|ERROR) (\S+)', out, re.M)
    if m is None:
        return None
    return m.group(1) if '::' in m.group(1) else f'{m.group(1)} (error while collecting)'


def run_pytest(work: Path, first: str, timeout: int) -> str | None:
    files = [first] + [f for f in CORE_TESTS if f != first]
    cmd = [str(BIN / 'pytest'), '-x', '-q', '-p', 'no:cacheprovider', *files]
    r = subprocess.run(
        cmd, env=env_for(work), cwd=work, capture_output=True, text=True, timeout=timeout
    )
    if r.returncode == 0:
        return None
    return first_failure(r.stdout) or f'pytest exit {r.returncode}: {r.stdout[-300:]}'


def run_chapter(work: Path, chapter: str, timeout: int) -> str | None:
    cmd = [str(BIN / 'nbdev-test'), f'nbs/{chapter}.ipynb']
    r = subprocess.run(
        cmd, env=env_for(work), cwd=work, capture_output=True, text=True, timeout=timeout
    )
    if r.returncode == 0:
        return None
    cell = re.search(r'While Executing Cell #(\d+)', r.stdout + r.stderr)
    return f'nbdev-test {chapter}' + (f' (cell #{cell.group(1)})' if cell else '')


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--work', default='/tmp/plant', help='where the copy goes (made afresh)')
    p.add_argument('--only', default='', help='comma-separated bug names (default: all)')
    p.add_argument('--timeout', type=int, default=1200, help='seconds per pytest/nbdev-test run')
    a = p.parse_args(argv)
    names = [n for n in a.only.split(',') if n] or list(BUGS)
    unknown = [n for n in names if n not in BUGS]
    if unknown:
        p.error(f"unknown bug(s) {', '.join(unknown)}; known: {', '.join(BUGS)}")
    work = Path(a.work).resolve() / 'repo'
    if ROOT in work.parents or work == ROOT:
        p.error('--work must be outside the repository')
    copy_tree(work)
    if not imports_copy(work):
        print('adm_edu does not import from the copy; PYTHONPATH is shadowed', file=sys.stderr)
        return 1
    rows = []
    for name in names:
        t0 = time.time()
        if not plant(work, name):
            rows.append((name, 'PATCH DOES NOT APPLY (the formula moved)', 0.0))
            continue
        _, _, _, chapter, first = BUGS[name]
        caught = run_pytest(work, first, a.timeout) or run_chapter(work, chapter, a.timeout)
        rows.append((name, caught or 'NOT CAUGHT', time.time() - t0))
        print(f'{name:26s} {rows[-1][1]}  ({rows[-1][2]:.0f} s)', flush=True)
    shutil.rmtree(work.parent)  # the copy, planted bug and all
    print(f"\n{'bug':26s} {'caught by':90s} {'s':>5s}")
    for name, caught, secs in rows:
        print(f'{name:26s} {caught:90s} {secs:5.0f}')
    missed = [r for r in rows if r[1].startswith(('NOT', 'PATCH'))]
    print(f'{len(rows) - len(missed)} of {len(rows)} caught')
    return 1 if missed else 0


if __name__ == '__main__':
    sys.exit(main())
