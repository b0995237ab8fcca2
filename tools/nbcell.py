"""Safe cell-level notebook editing, for several editors (people or helpers) working at once.

Every write takes an exclusive lock (in the temporary directory), re-reads the notebook,
changes ONE thing and writes atomically (temp file + os.replace). Never keep a notebook in
memory across edits.

Usage (NB: a notebook path; ID: a cell id, as `list` prints):
  list NB                       index, type, id, length, first line of each cell
  grep NB TEXT                  cells whose source contains TEXT
  get NB ID                     print a cell's source
  set NB ID FILE                replace a cell's source with FILE's text (outputs kept)
  sub NB ID OLDFILE NEWFILE     replace the one exact occurrence of OLDFILE's text by NEWFILE's
  insert NB AFTER_ID TYPE FILE  a new cell (TYPE code|markdown) after AFTER_ID (START: first);
                                prints its id
  delete NB ID                  delete a cell
  clear NB ID                   clear a code cell's outputs
"""

import fcntl
import json
import os
import secrets
import sys
import tempfile


def load(p):
    with open(p) as f:
        return json.load(f)


def save(p, nb):
    d = os.path.dirname(os.path.abspath(p))
    fd, tmp = tempfile.mkstemp(dir=d, suffix='.tmp')
    with os.fdopen(fd, 'w') as f:
        json.dump(nb, f, indent=1, ensure_ascii=False)
        f.write('\n')
    os.replace(tmp, p)


def find(nb, cid):
    for i, c in enumerate(nb['cells']):
        if c.get('id') == cid:
            return i
    raise SystemExit(f'no cell {cid}')


def src(text):
    lines = text.split('\n')
    if lines and lines[-1] == '':
        lines = lines[:-1]
    return [ln + '\n' for ln in lines[:-1]] + lines[-1:]


def main():
    cmd, p = sys.argv[1], sys.argv[2]
    locks = os.path.join(tempfile.gettempdir(), 'nbcell-locks')
    os.makedirs(locks, exist_ok=True)
    lockf = open(os.path.join(locks, os.path.abspath(p).replace(os.sep, '_') + '.lock'), 'w')
    fcntl.flock(lockf, fcntl.LOCK_EX)
    try:
        nb = load(p)
        a = sys.argv[3:]
        if cmd == 'list':
            for i, c in enumerate(nb['cells']):
                s = ''.join(c['source'])
                print(i, c['cell_type'][:2], c.get('id'), len(s), repr(s.split('\n')[0][:100]))
        elif cmd == 'grep':
            for i, c in enumerate(nb['cells']):
                if a[0] in ''.join(c['source']):
                    print(i, c.get('id'), repr(''.join(c['source']).split('\n')[0][:100]))
        elif cmd == 'get':
            print(''.join(nb['cells'][find(nb, a[0])]['source']))
        elif cmd == 'set':
            nb['cells'][find(nb, a[0])]['source'] = src(open(a[1]).read())
            save(p, nb)
        elif cmd == 'sub':
            c = nb['cells'][find(nb, a[0])]
            s = ''.join(c['source'])
            old, new = open(a[1]).read(), open(a[2]).read()
            n = s.count(old)
            if n != 1:
                raise SystemExit(f'old text found {n} times in cell {a[0]}')
            c['source'] = src(s.replace(old, new))
            save(p, nb)
        elif cmd == 'insert':
            i = 0 if a[0] == 'START' else find(nb, a[0]) + 1
            cid = secrets.token_hex(4)
            c = dict(cell_type=a[1], id=cid, metadata={}, source=src(open(a[2]).read()))
            if a[1] == 'code':
                c.update(execution_count=None, outputs=[])
            nb['cells'].insert(i, c)
            save(p, nb)
            print(cid)
        elif cmd == 'delete':
            del nb['cells'][find(nb, a[0])]
            save(p, nb)
        elif cmd == 'clear':
            c = nb['cells'][find(nb, a[0])]
            c['outputs'] = []
            c['execution_count'] = None
            save(p, nb)
        else:
            raise SystemExit(__doc__)
    finally:
        fcntl.flock(lockf, fcntl.LOCK_UN)
        lockf.close()


main()
