"""One-off (2026-12-07): name the weights in the samples records written before records did.

    python tools/backfill_weights.py

A samples record (`run_samples`) now carries `weights`: for each model it sampled with, the
file, its sha256 and when it was exported (`runner.row_weights`). For a record written before
that, the entry is added only when each model's tensors in the commit that first holds the
record (the weights it was measured with; a record not committed yet was made with the files as
they are) equal the tensors shipped now: a file whose record alone changed still counts, a
retrained one does not. Records that fail the check are left alone and listed.
"""

import io
import subprocess
from functools import cache
from pathlib import Path

import torch

from adm_edu.experiments.runner import read_record, row_weights, weights_file, write_record
from adm_edu.pretrained import safe_load


def first_commit(path: Path) -> str | None:
    "The first commit that holds `path`, None when it is not committed."
    out = subprocess.run(
        ['git', 'log', '--format=%H', '--', str(path)], capture_output=True, text=True
    ).stdout.split()
    return out[-1] if out else None


@cache
def tensors_at(name: str, rev: str | None) -> dict | None:
    "The state_dict of a model's weight file at commit `rev` (None: as it is now; or missing)."
    f = weights_file(name)
    if rev is None:
        return safe_load(f, 'weights')['state_dict']
    rel = f.resolve().relative_to(Path.cwd().resolve())
    blob = subprocess.run(['git', 'show', f'{rev}:{rel}'], capture_output=True).stdout
    if not blob:
        return None
    return torch.load(io.BytesIO(blob), map_location='cpu', weights_only=True)['state_dict']


def same_tensors(a: dict | None, b: dict | None) -> bool:
    if a is None or b is None or a.keys() != b.keys():
        return False
    return all(torch.equal(a[k], b[k]) for k in a)


def measured_with_shipped(name: str, record_path: Path) -> bool:
    "Were `name`'s tensors, when the record was first committed, the ones shipped now?"
    return same_tensors(tensors_at(name, first_commit(record_path)), tensors_at(name, None))


def backfill(root: Path = Path('results/experiments')) -> tuple:
    done, left = [], []
    for p in sorted(root.glob('*/*/record.json')):
        r = read_record(p)
        if 'weights' in r or 'metrics' not in r or 'model' not in r.get('config', {}):
            continue
        weights = row_weights(r['config'])
        if not all(measured_with_shipped(name, p) for name in weights):
            left.append(f'{p.parent.parent.name}/{p.parent.name}')
            continue
        write_record(p, dict(r, weights=weights))
        done.append(f'{p.parent.parent.name}/{p.parent.name}')
    return done, left


if __name__ == '__main__':
    done, left = backfill()
    print(f'weights named in {len(done)} records: {done}')
    print(f'left alone (other tensors than those shipped now): {left}')
