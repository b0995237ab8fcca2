#!/usr/bin/env python
"""Execute chapters top to bottom in place, so that they are committed with their outputs.

    .venv/bin/python tools/execute_nbs.py                 # every nbs/*.ipynb, slow cells left out
    .venv/bin/python tools/execute_nbs.py --with-slow     # every cell, `#| slow` ones included
    .venv/bin/python tools/execute_nbs.py nbs/06_cosine_schedule.ipynb --with-slow

Each notebook runs in a fresh `python3` kernel with cwd = the notebook's folder, `IN_TEST` unset
(full outputs), a per-cell timeout, and matplotlib's inline backend set to PNG at `--dpi` (72 by
default) through kernel command-line config (`--InlineBackend.rc`,
`--InlineBackend.figure_formats`), so no cell is added to the notebook; PNGs (outputs and widget
state) are then re-encoded with an adaptive 256-colour palette when that is smaller
(`--png-colors`). `#| slow` cells run only with `--with-slow` (as `nbdev-test --flags slow`;
`--skip-slow` states the default); the `nbdev_export()` cell is not run (it
would rewrite adm_edu/; `--run-export`); `#| gpu` cells are skipped when no CUDA device is visible
(override with `--skip`/`--run-gpu`); skipped cells keep no outputs. Widget state is stored in
`nb.metadata.widgets` (nbclient's `store_widget_state`).

On success the execution record (see `nb_record.py`: code hash, library hash, wall time) is stored
in the notebook's metadata, the file is written and `nbdev-clean` is run on it. On a cell error the
file is left untouched, the error is printed and the exit status is 1 (`--allow-errors` writes it
anyway, with the error in the outputs)."""

import argparse
import os
import shutil
import subprocess
import sys
import time
import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
# noqa: E402
from nb_record import (
    ROOT,
    HASH_VERSION,
    code_hash,
    lib_files,
    lib_hash,
    cell_directives,
    write_record,
    read_record,
)


def _cuda_available() -> bool:
    try:
        r = subprocess.run(
            [
                sys.executable,
                '-c',
                'import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)',
            ],
            capture_output=True,
            timeout=120,
        )
        return r.returncode == 0
    except Exception:
        return False


def is_export_call(cell) -> bool:
    """A cell that calls nbdev_export() (the last cell of an exporting chapter): running it would
    rewrite adm_edu/."""
    src = cell.source if isinstance(cell.source, str) else ''.join(cell.source)
    return 'nbdev_export(' in src


def make_client(nb, nb_dir, timeout, dpi, skip_flags, skip_export=True):
    from nbclient import NotebookClient

    class SkipClient(NotebookClient):
        "NotebookClient that leaves out (and clears) cells carrying one of `skip_flags`."

        n_skipped = 0

        async def async_execute_cell(
            self, cell, cell_index, execution_count=None, store_history=True
        ):
            if cell.cell_type == 'code' and (
                skip_flags & cell_directives(cell) or (skip_export and is_export_call(cell))
            ):
                cell.outputs = []
                cell.execution_count = None
                SkipClient.n_skipped += 1
                return cell
            return await super().async_execute_cell(
                cell, cell_index, execution_count, store_history
            )

    SkipClient.n_skipped = 0
    args = [
        f"--InlineBackend.rc={{'figure.dpi': {dpi}}}",
        "--InlineBackend.figure_formats={'png'}",
        '--IPKernelApp.log_level=ERROR',
    ]
    return SkipClient(
        nb,
        timeout=timeout,
        kernel_name='python3',
        resources={'metadata': {'path': str(nb_dir)}},
        extra_arguments=args,
        store_widget_state=True,
        record_timing=False,
    ), SkipClient


def shrink_png(b64: str, colors: int = 256) -> str:
    """PNG `b64` re-encoded smaller: opaque images go to an adaptive palette of `colors` colours
    (lossless when the figure has no more colours than that, which is the case for most line plots
    and grey image grids), optimised. Returned unchanged when that does not save space or the image
    has transparency."""
    import base64
    import io
    from PIL import Image

    try:
        raw = base64.b64decode(b64)
        im = Image.open(io.BytesIO(raw))
        im.load()
        if im.mode == 'RGBA':
            if im.getchannel('A').getextrema()[0] < 255:
                return b64
            im = im.convert('RGB')
        elif im.mode not in ('RGB', 'L'):
            return b64
        out = im.quantize(colors, dither=Image.Dither.NONE) if im.mode == 'RGB' else im
        buf = io.BytesIO()
        out.save(buf, format='PNG', optimize=True)
        new = buf.getvalue()
        return base64.b64encode(new).decode() if len(new) < len(raw) else b64
    except Exception:
        return b64


def shrink_pngs(obj, colors: int = 256):
    """Apply `shrink_png` to every 'image/png' entry in a notebook (cell outputs and saved widget
    state), in place."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == 'image/png' and isinstance(v, str):
                obj[k] = shrink_png(v, colors)
            else:
                shrink_pngs(v, colors)
    elif isinstance(obj, list):
        for v in obj:
            shrink_pngs(v, colors)


def nbdev_clean(path: Path):
    exe = Path(sys.executable).parent / 'nbdev-clean'
    cmd = [
        str(exe) if exe.exists() else (shutil.which('nbdev-clean') or 'nbdev-clean'),
        '--fname',
        str(path),
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0:
        print(f'  nbdev-clean failed: {r.stderr.strip()}', file=sys.stderr)
    return r.returncode == 0


def execute_one(
    path: Path,
    timeout: int,
    dpi: int,
    skip_flags: set,
    allow_errors=False,
    clean=True,
    skip_export=True,
    png_colors: int = 256,
) -> bool:
    import nbformat
    from nbclient.exceptions import CellExecutionError

    path = Path(path).resolve()
    nb = nbformat.read(path, as_version=4)
    chash = code_hash(nb)  # of the source as committed, before nbclient touches anything
    files = lib_files()
    client, cls = make_client(nb, path.parent, timeout, dpi, skip_flags, skip_export)
    t0 = time.time()
    ok = True
    env_test = os.environ.pop('IN_TEST', None)  # the kernel inherits our environment
    try:
        client.allow_errors = allow_errors
        client.execute()
    except CellExecutionError as e:
        ok = False
        print(f'  ERROR in {path.name}:\n{str(e)[-3000:]}', file=sys.stderr)
    except Exception as e:  # timeout, dead kernel
        ok = False
        print(f'  ERROR in {path.name}: {type(e).__name__}: {str(e)[-2000:]}', file=sys.stderr)
    finally:
        if env_test is not None:
            os.environ['IN_TEST'] = env_test
    wall = time.time() - t0
    if not ok and not allow_errors:
        print(f'{path.name}: FAILED after {wall:.1f} s; file left unchanged')
        return False
    rec = dict(
        hash_v=HASH_VERSION,
        code_sha256=chash,
        lib_sha256=lib_hash(files),
        lib_files={k: v[:12] for k, v in files.items()},
        wall_s=round(wall, 1),
        skipped=sorted(skip_flags | ({'nbdev_export'} if skip_export else set())),
        n_skipped_cells=cls.n_skipped,
        dpi=dpi,
        executed_at=datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'),
    )
    if png_colors:
        shrink_pngs(nb, png_colors)
    where = write_record(nb, rec)
    nbformat.write(nb, path)
    if clean:
        nbdev_clean(path)
    after = nbformat.read(path, as_version=4)
    if read_record(after) != rec:
        print(
            f'  WARNING: the execution record did not survive nbdev-clean in {path.name}',
            file=sys.stderr,
        )
    if code_hash(after) != chash:
        print(
            f'  WARNING: nbdev-clean changed the code of {path.name}; re-recording its hash',
            file=sys.stderr,
        )
        rec['code_sha256'] = code_hash(after)
        write_record(after, rec)
        nbformat.write(after, path)
    n_out = sum(len(c.get('outputs', [])) for c in after.cells if c.cell_type == 'code')
    size = path.stat().st_size
    print(
        f'{path.name}: {wall:7.1f} s  {size / 1024:8.1f} KiB  {n_out} outputs  '
        f'{cls.n_skipped} cells not run ({",".join(rec["skipped"]) or "-"})  record in {where}'
        + ('' if ok else '  (WITH ERRORS)')
    )
    return ok


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('nbs', nargs='*', help='notebooks (default: every nbs/*.ipynb)')
    p.add_argument(
        '--timeout',
        type=int,
        default=None,
        help='per-cell timeout in s (default: cell_timeout of [tool.nbdev], else 900)',
    )
    p.add_argument('--dpi', type=int, default=72, help='inline figure dpi (default 72)')
    p.add_argument(
        '--png-colors',
        type=int,
        default=256,
        help='re-encode PNG outputs with an adaptive palette of this many colours (0: as made)',
    )
    slow = p.add_mutually_exclusive_group()
    slow.add_argument(
        '--with-slow', action='store_true', help='run the `#| slow` cells too (make execute-all)'
    )
    slow.add_argument(
        '--skip-slow', action='store_true', help='leave out `#| slow` cells (the default)'
    )
    p.add_argument(
        '--skip',
        action='append',
        default=[],
        metavar='FLAG',
        help='leave out cells with this directive (repeatable)',
    )
    p.add_argument(
        '--run-gpu',
        action='store_true',
        help='run `#| gpu` cells even when no CUDA device is visible',
    )
    p.add_argument(
        '--run-export',
        action='store_true',
        help='also run the `nbdev_export()` cells (they rewrite adm_edu/)',
    )
    p.add_argument(
        '--allow-errors', action='store_true', help='write the notebook even when a cell fails'
    )
    p.add_argument('--no-clean', action='store_true', help='do not run nbdev-clean afterwards')
    a = p.parse_args(argv)
    nbs = [Path(n) for n in a.nbs] or sorted((ROOT / 'nbs').glob('*.ipynb'))
    timeout = a.timeout
    if timeout is None:
        try:
            import tomllib

            timeout = int(
                tomllib.loads((ROOT / 'pyproject.toml').read_text())['tool']['nbdev'].get(
                    'cell_timeout', 900
                )
            )
        except Exception:
            timeout = 900
    skip = set(a.skip) | (set() if a.with_slow else {'slow'})
    if not a.run_gpu and 'gpu' not in skip and not _cuda_available():
        skip.add('gpu')
        print('no CUDA device: `#| gpu` cells are skipped (--run-gpu to run them)')
    t0 = time.time()
    failed = []
    for nb in nbs:
        if not execute_one(
            nb,
            timeout,
            a.dpi,
            skip,
            a.allow_errors,
            clean=not a.no_clean,
            skip_export=not a.run_export,
            png_colors=a.png_colors,
        ):
            failed.append(nb.name)
    print(
        f'{len(nbs)} notebooks in {time.time() - t0:.1f} s'
        + (f'; FAILED: {" ".join(failed)}' if failed else '')
    )
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
