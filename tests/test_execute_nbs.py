"""tools/execute_nbs.py on a tiny notebook: outputs written, IN_TEST unset, small figures, record
kept by nbdev-clean."""

import base64
import importlib.util
import io
import shutil
import sys
from pathlib import Path
import nbformat
from nbformat.v4 import new_notebook, new_code_cell, new_markdown_cell
import pytest

TOOLS = Path(__file__).resolve().parent.parent / 'tools'


def _load(name):
    spec = importlib.util.spec_from_file_location(name, TOOLS / f'{name}.py')
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_execute_tiny_notebook(tmp_path, monkeypatch, capsys):
    pytest.importorskip('nbclient')
    from jupyter_client.kernelspec import KernelSpecManager

    if 'python3' not in KernelSpecManager().find_kernel_specs():
        pytest.skip('no python3 kernel')
    ex, co, rec_mod = _load('execute_nbs'), _load('check_outputs'), _load('nb_record')
    p = tmp_path / 'tiny.ipynb'
    nbformat.write(
        new_notebook(
            cells=[
                new_markdown_cell('# Tiny'),
                new_code_cell("import os\nprint('IN_TEST =', repr(os.environ.get('IN_TEST')))"),
                new_code_cell("#| slow\nprint('slow cell ran')"),
                new_code_cell(
                    "import matplotlib.pyplot as plt\n"
                    "fig, ax = plt.subplots(figsize=(4, 2))\n"
                    "ax.plot([0, 1])\n"
                    "plt.show()"
                ),
                new_code_cell("#| hide\nraise SystemExit('the nbdev_export() cell must not run')"),
            ],
            metadata={
                'kernelspec': {'name': 'python3', 'display_name': 'python3', 'language': 'python'}
            },
        ),
        p,
    )
    monkeypatch.setenv('IN_TEST', '1')
    assert ex.execute_one(p, timeout=120, dpi=72, skip_flags={'slow'})
    nb = nbformat.read(p, as_version=4)
    assert nb.cells[1].outputs[0].text.strip() == 'IN_TEST = None'
    assert nb.cells[2].outputs == [] and nb.cells[4].outputs == []  # slow and export cells not run
    png = [o for o in nb.cells[3].outputs if 'image/png' in o.get('data', {})][0]['data'][
        'image/png'
    ]
    from PIL import Image

    w, h = Image.open(io.BytesIO(base64.b64decode(png))).size
    assert w <= 4 * 72 + 10, (w, h)  # 72 dpi, not 100
    rec = rec_mod.read_record(nb)
    assert (
        rec['code_sha256'] == rec_mod.code_hash(nb)
        and rec['n_skipped_cells'] == 2
        and rec['wall_s'] > 0
    )
    assert co.check_nb(p, rec_mod.lib_files()) == ([], [])
