"""Edit a chapter as flat text: `python tools/nbtext.py tx nbs/NN_name.ipynb` writes
scratch/NN_name.txt (cells separated by `#%%% code id=ID` / `#%%% markdown id=ID` lines; a new cell
may take any new id); `python tools/nbtext.py nb scratch/NN_name.txt` writes it back into
nbs/NN_name.ipynb, keeping the outputs of code cells whose source did not change. Run nbdev-clean
after."""

import sys
import json
import uuid
import re
from pathlib import Path

MARK = re.compile(r'^#%%% (code|markdown|raw)(?: id=(\S+))?\s*$')


def to_txt(p):
    nb = json.load(open(p))
    out = []
    for c in nb['cells']:
        out.append(f"#%%% {c['cell_type']} id={c.get('id', '')}")
        src = ''.join(c['source'])
        out.append(src)
    Path('scratch').mkdir(exist_ok=True)
    Path('scratch', Path(p).stem + '.txt').write_text('\n'.join(out) + '\n')


def to_nb(p):
    name = Path(p).stem
    nbp = Path('nbs', name + '.ipynb')
    old = (
        json.load(open(nbp))
        if nbp.exists()
        else {
            'metadata': {
                "kernelspec": {"display_name": "python3", "language": "python", "name": "python3"}
            },
            'nbformat': 4,
            'nbformat_minor': 5,
        }
    )
    oldc = {c.get('id'): c for c in old.get('cells', [])}
    cells, cur = [], None
    for line in Path(p).read_text().split('\n'):
        m = MARK.match(line)
        if m:
            if cur:
                cells.append(cur)
            cur = dict(type=m.group(1), id=m.group(2) or uuid.uuid4().hex[:8], lines=[])
        elif cur is not None:
            cur['lines'].append(line)
    if cur:
        cells.append(cur)
    new, seen = [], set()
    for c in cells:
        src = '\n'.join(c['lines']).rstrip('\n')
        cid = c['id']
        if cid in seen:
            cid = uuid.uuid4().hex[:8]
        seen.add(cid)
        lines = src.split('\n')
        lines = [l + '\n' for l in lines[:-1]] + [lines[-1]] if src else []
        cell = {'cell_type': c['type'], 'id': cid, 'metadata': {}, 'source': lines}
        if c['type'] == 'code':
            o = oldc.get(cid)
            same = o is not None and ''.join(o['source']) == src
            cell.update(execution_count=None, outputs=o['outputs'] if same else [])
        new.append(cell)
    old['cells'] = new
    json.dump(old, open(nbp, 'w'), indent=1, ensure_ascii=False)
    open(nbp, 'a').write('\n')


if __name__ == '__main__':
    if len(sys.argv) < 3 or sys.argv[1] not in ('tx', 'nb'):
        sys.exit('usage: python tools/nbtext.py tx nbs/NN_name.ipynb | nb scratch/NN_name.txt')
    f = to_txt if sys.argv[1] == 'tx' else to_nb
    for p in sys.argv[2:]:
        f(p)
