"""Shared helpers for `execute_nbs.py` and `check_outputs.py`: the execution record kept in a
notebook's metadata.

The record is a small dict::

    {"code_sha256": ..., "lib_sha256": ..., "lib_files": {"schedule.py": "<12 hex>", ...},
     "wall_s": 12.3, "skipped": ["gpu"], "n_skipped_cells": 0,
     "executed_at": "2026-11-30T12:00:00Z", "dpi": 72}

Where it lives: `nbdev-clean` keeps only the notebook-metadata keys kernelspec, jekyll, jupytext,
doc, widgets and nbdev, plus `allowed_metadata_keys` of `[tool.nbdev]` in pyproject.toml. So the
record is written to `nb.metadata['adm_edu']` when pyproject allows that key
(`allowed_metadata_keys = ["adm_edu"]`), and otherwise to `nb.metadata['nbdev']['adm_edu']`, which
survives a clean by default. `read_record` looks in both places."""

import hashlib
import json
import re
from pathlib import Path

KEY = 'adm_edu'
# bump when norm_code/code_hash change: records made with another version read as stale
HASH_VERSION = 1
ROOT = Path(__file__).resolve().parent.parent
_dir_re = re.compile(r'^\s*#\s*\|\s*([\w-]+)')


_dir_line_re = re.compile(r'^\s*#\s*\|\s*([\w-]+)\s*:?\s*(.*?)\s*$')


def norm_code(src) -> str:
    """A code cell's source with trailing whitespace, blank lines and leading/trailing whitespace
    removed, and `#|` directive lines written canonically (`#|export` == `#| export`, as
    `nbdev-clean --dirs` rewrites them)."""
    if isinstance(src, list):
        src = ''.join(src)
    out = []
    for l in src.strip().splitlines():
        if not l.strip():
            continue
        m = _dir_line_re.match(l)
        if m:
            l = f"#| {m.group(1)}" + (
                f": {m.group(2)}" if m.group(2) and m.group(2) != 'true' else ''
            )
        out.append(l.rstrip())
    return '\n'.join(out)


def code_hash(nb) -> str:
    "sha256 of the notebook's code cells, normalised by `norm_code` (empty cells ignored)."
    h = hashlib.sha256()
    for c in nb['cells']:
        if c['cell_type'] != 'code':
            continue
        s = norm_code(c['source'])
        if s:
            h.update(s.encode() + b'\n\x00\n')
    return h.hexdigest()


def lib_files(lib=None) -> dict:
    "{file name: sha256} of the library sources (adm_edu/*.py except _modidx.py)."
    lib = Path(lib or ROOT / 'adm_edu')
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(lib.glob('*.py'))
        if p.name != '_modidx.py'
    }


def lib_hash(files: dict) -> str:
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()


def cell_directives(cell) -> set:
    "Names of the `#|` directives at the top of a code cell (e.g. {'hide', 'slow'})."
    src = cell['source'] if isinstance(cell['source'], str) else ''.join(cell['source'])
    out = set()
    for l in src.splitlines():
        if not l.strip():
            continue
        m = _dir_re.match(l)
        if not m:
            break
        out.add(m.group(1))
    return out | set((cell.get('metadata', {}).get('nbdev') or {}).keys())


def _top_level_allowed(root=ROOT) -> bool:
    """True when pyproject's [tool.nbdev] allowed_metadata_keys lists KEY (so nbdev-clean keeps
    nb.metadata[KEY])."""
    try:
        import tomllib

        cfg = (
            tomllib.loads((Path(root) / 'pyproject.toml').read_text())
            .get('tool', {})
            .get('nbdev', {})
        )
    except Exception:
        return False
    keys = cfg.get('allowed_metadata_keys') or []
    if isinstance(keys, str):
        keys = keys.replace(',', ' ').split()
    return KEY in keys


def read_record(nb):
    "The execution record of `nb`, from metadata[KEY] or metadata['nbdev'][KEY]; None if absent."
    md = nb.get('metadata', {})
    rec = md.get(KEY)
    if rec is None:
        rec = (md.get('nbdev') or {}).get(KEY)
    return rec if isinstance(rec, dict) else None


def write_record(nb, rec, root=ROOT) -> str:
    "Store `rec` where nbdev-clean keeps it; returns the location as a string."
    md = nb.setdefault('metadata', {})
    md.pop(KEY, None)
    if isinstance(md.get('nbdev'), dict):
        md['nbdev'].pop(KEY, None)
    if _top_level_allowed(root):
        md[KEY] = rec
        return f"metadata.{KEY}"
    md.setdefault('nbdev', {})[KEY] = rec
    return f"metadata.nbdev.{KEY}"
