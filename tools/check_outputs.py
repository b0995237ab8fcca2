#!/usr/bin/env python
"""Cheap check (nothing is executed) that the committed outputs of nbs/*.ipynb belong to their code.

    .venv/bin/python tools/check_outputs.py [NB ...] [--lib adm_edu]      (make check-outputs)

FAIL (exit 1) for a notebook when
  * it has no execution record (written by tools/execute_nbs.py) or no outputs at all;
  * its code cells differ from the code its outputs were made from (recorded sha256 of the
    normalised code cells);
  * an output is an error, or any output text (stderr included, and outputs saved in widget state)
    holds a traceback.
WARN (exit 0) when only the library (adm_edu/*.py except _modidx.py) changed since a notebook was
executed: the notebooks to re-execute are listed, with the library modules that changed. Also WARN
when outputs show paths of the machine that made them (/site-packages/, /home/USER/, /root/,
/tmp/...), e.g. a library warning printed to stderr."""

import argparse
import json
import os
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nb_record import ROOT, HASH_VERSION, code_hash, lib_files, lib_hash, read_record  # noqa: E402

TB = 'Traceback (most recent call last)'


def _text(x):
    return ''.join(x) if isinstance(x, list) else (x if isinstance(x, str) else '')


def output_problems(outputs, where='') -> list:
    "Error outputs and tracebacks among a list of nbformat outputs."
    probs = []
    for o in outputs or []:
        if not isinstance(o, dict):
            continue
        if o.get('output_type') == 'error':
            probs.append(
                f"{where}error output {o.get('ename', '')}: {_text(o.get('evalue', ''))[:120]}"
            )
            continue
        texts = [_text(o.get('text', ''))] + [
            _text(v) for k, v in (o.get('data') or {}).items() if k.startswith('text/')
        ]
        if any(TB in t for t in texts):
            probs.append(
                f"{where}traceback in a{' stderr' if o.get('name') == 'stderr' else 'n'} output"
            )
    return probs


_machine_path = re.compile(r'(/site-packages/|/home/[^/\s]+/|/root/|/Users/[^/\s]+/|/tmp/[\w.-]+/)')


def machine_paths(nb) -> list:
    """Cells whose outputs show paths of the machine that made them (warnings with site-packages
    paths and the like)."""
    hits = []
    for i, c in enumerate(nb.get('cells', [])):
        for o in c.get('outputs') or []:
            t = _text(o.get('text', '')) + ''.join(
                _text(v) for k, v in (o.get('data') or {}).items() if k == 'text/plain'
            )
            if m := _machine_path.search(t):
                hits.append(f'cell {i}: {m.group(0)!r}')
    return hits


def widget_problems(state) -> list:
    """Errors/tracebacks in the outputs saved in widget state (Output widgets of interactive
    explorers)."""
    probs = []

    def walk(x):
        if isinstance(x, dict):
            if isinstance(x.get('outputs'), list):
                probs.extend(output_problems(x['outputs'], 'widget state: '))
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(state)
    return probs


def check_nb(path: Path, cur_lib_files: dict):
    "(fails, warns) for one notebook: lists of messages."
    fails, warns = [], []
    try:
        nb = json.loads(Path(path).read_text(encoding='utf-8'))
    except Exception as e:
        return [f'unreadable: {e}'], []
    rec = read_record(nb)
    code_cells = [c for c in nb.get('cells', []) if c.get('cell_type') == 'code']
    n_out = sum(len(c.get('outputs') or []) for c in code_cells)
    if rec is None:
        fails.append('no execution record (run tools/execute_nbs.py on it)')
    if n_out == 0:
        fails.append('no outputs at all')
    if rec is not None and rec.get('hash_v', 1) != HASH_VERSION:
        fails.append(
            f"record made with code-hash scheme {rec.get('hash_v', 1)}, this checker uses "
            f"{HASH_VERSION}: re-execute"
        )
    elif rec is not None and rec.get('code_sha256') != code_hash(nb):
        fails.append('stale: its code changed after its outputs were made')
    for i, c in enumerate(nb.get('cells', [])):
        if c.get('cell_type') == 'code':
            fails.extend(output_problems(c.get('outputs'), f'cell {i}: '))
    fails.extend(widget_problems((nb.get('metadata') or {}).get('widgets')))
    if hits := machine_paths(nb):
        warns.append(
            "outputs show machine-specific paths (a warning printed to stderr?): "
            f"{'; '.join(hits[:3])}"
        )
    if rec is not None and rec.get('lib_sha256') != lib_hash(cur_lib_files):
        old = rec.get('lib_files') or {}
        changed = sorted(
            k
            for k in set(old) | set(cur_lib_files)
            if old.get(k) != (cur_lib_files[k][:12] if k in cur_lib_files else None)
        )
        warns.append(
            'library changed since execution' + (f" ({', '.join(changed)})" if changed else '')
        )
    return fails, warns


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('nbs', nargs='*', help='notebooks (default: every nbs/*.ipynb)')
    p.add_argument(
        '--lib', default=str(ROOT / 'adm_edu'), help='library folder whose *.py are hashed'
    )
    p.add_argument('-q', '--quiet', action='store_true', help='print only problems')
    a = p.parse_args(argv)
    nbs = [Path(n) for n in a.nbs] or sorted((ROOT / 'nbs').glob('*.ipynb'))
    cur = lib_files(a.lib)
    failed, stale_lib = [], []
    for nb in nbs:
        fails, warns = check_nb(nb, cur)
        for m in fails:
            print(f'FAIL {nb.name}: {m}')
        for m in warns:
            print(f'WARN {nb.name}: {m}')
        if fails:
            failed.append(nb)
        elif any(w.startswith('library changed') for w in warns):
            stale_lib.append(nb)
        elif not a.quiet:
            rec = read_record(json.loads(Path(nb).read_text(encoding='utf-8'))) or {}
            note = (
                f"  ({rec.get('n_skipped_cells')} cells not run: "
                f"{', '.join(rec.get('skipped', []))})"
                if rec.get('n_skipped_cells')
                else ''
            )
            print(f'ok   {nb.name}{note}')
    if stale_lib:
        print(
            f'\n{len(stale_lib)} notebook(s) to re-execute because the library changed:\n'
            f'  .venv/bin/python tools/execute_nbs.py '
            + ' '.join(os.path.relpath(n) for n in stale_lib)
        )
    if failed:
        print(
            f'\ncheck-outputs FAILED for {len(failed)} of {len(nbs)} notebook(s): '
            f'{" ".join(n.name for n in failed)}\n'
            f'  re-execute them with: .venv/bin/python tools/execute_nbs.py '
            + ' '.join(os.path.relpath(n) for n in failed)
        )
        return 1
    print(f'check-outputs: {len(nbs)} notebook(s) checked, {len(stale_lib)} warning(s)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
