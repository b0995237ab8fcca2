"""One-off (2026-12-07): the faithful eps upsampler keeps its weights under a new shipped name.

    python tools/rename_upsampler.py

`fmnist-16-32` (eps-prediction, ADM-U as the paper trains it) is copied to `fmnist-16-32-eps`
(weights byte-for-byte, the record with a note), so that the name `fmnist-16-32` can ship the
v-prediction upsampler. The records of `cascade-table` measured with the old name then name the
new one (their `config.upsampler`), after a check that the two files hold the same tensors; each
gets `weights` (file, sha256) and a `renamed` note. Nothing else in a record changes.
"""

import json
from pathlib import Path

import torch

from adm_edu.data import atomic_write
from adm_edu.experiments.runner import row_weights, write_record
from backfill_weights import measured_with_shipped  # tools/backfill_weights.py
from adm_edu.pretrained import WEIGHTS_DIR, safe_load, save_checkpoint

OLD, NEW = 'fmnist-16-32', 'fmnist-16-32-eps'
NOTE = (
    f"measured as '{OLD}' before 2026-12-07, when that name passed to the v-prediction upsampler; "
    f"these are the weights now shipped as '{NEW}' (the same tensors)"
)


def copy_weights() -> Path:
    "fmnist-16-32.pt/.json -> fmnist-16-32-eps.pt/.json, the name and a note changed."
    ck = safe_load(WEIGHTS_DIR / f'{OLD}.pt', 'shipped model')
    ck['name'] = NEW
    ck['record'] = {**ck['record'], 'renamed': f"shipped as '{OLD}' until 2026-12-07"}
    dst = WEIGHTS_DIR / f'{NEW}.pt'
    save_checkpoint(ck, dst)  # as `export_pretrained` writes it
    meta = {k: v for k, v in ck.items() if k != 'state_dict'}
    text = json.dumps(meta, indent=2, default=str) + '\n'
    atomic_write(WEIGHTS_DIR / f'{NEW}.json', lambda f: f.write(text), mode='w')
    return dst


def same_tensors(a: Path, b: Path) -> bool:
    sa, sb = (safe_load(p, 'shipped model')['state_dict'] for p in (a, b))
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def rename_records(root: Path) -> list:
    done = []
    for p in sorted(root.glob('cascade-table/*/record.json')):
        r = json.loads(p.read_text())
        if r['config'].get('upsampler') != OLD:
            continue
        r['config']['upsampler'] = NEW
        weights = row_weights(r['config'])
        for name in [n for n in weights if n != NEW]:  # the base: the same tensors since then?
            if not measured_with_shipped(name, p):
                del weights[name]
        write_record(p, dict(r, weights=weights, renamed=NOTE))
        done.append(p.parent.name)
    return done


if __name__ == '__main__':
    old_file = WEIGHTS_DIR / f'{OLD}.pt'
    new_file = WEIGHTS_DIR / f'{NEW}.pt'
    if not new_file.exists():
        copy_weights()
        assert same_tensors(old_file, new_file), 'the copy differs from the original'
    print('renamed:', rename_records(Path('results/experiments')))
