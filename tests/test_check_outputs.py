"Verdicts of tools/check_outputs.py on small notebooks built here (nothing is executed)."

import importlib.util
import subprocess
import sys
from pathlib import Path
import nbformat
from nbformat.v4 import new_notebook, new_code_cell, new_markdown_cell, new_output
import pytest

TOOLS = Path(__file__).resolve().parent.parent / 'tools'


def _load(name):
    spec = importlib.util.spec_from_file_location(name, TOOLS / f'{name}.py')
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


nb_record, check_outputs = _load('nb_record'), _load('check_outputs')


@pytest.fixture
def lib(tmp_path):
    d = tmp_path / 'lib'
    d.mkdir()
    (d / 'schedule.py').write_text('def f(): return 1\n')
    (d / '_modidx.py').write_text('d = {}\n')
    return d


def make_nb(path, lib, outputs=True, record=True, code=('x = 1', 'print(x)')):
    "A notebook 'executed' with `code`: outputs and record as tools/execute_nbs.py writes them."
    cells = [new_markdown_cell('# A chapter\n\nSome $x^2$ math.')]
    for i, src in enumerate(code):
        c = new_code_cell(src)
        if outputs and i == len(code) - 1:
            c.outputs = [new_output('stream', name='stdout', text='1\n')]
        cells.append(c)
    nb = new_notebook(cells=cells)
    if record:
        files = nb_record.lib_files(lib)
        nb_record.write_record(
            nb,
            dict(
                code_sha256=nb_record.code_hash(nb),
                lib_sha256=nb_record.lib_hash(files),
                lib_files={k: v[:12] for k, v in files.items()},
                wall_s=0.1,
            ),
        )
    nbformat.write(nb, path)
    return path


def verdict(path, lib, capsys):
    rc = check_outputs.main([str(path), '--lib', str(lib)])
    return rc, capsys.readouterr().out


def edit(path, f):
    nb = nbformat.read(path, as_version=4)
    f(nb)
    nbformat.write(nb, path)


def test_fresh_passes(tmp_path, lib, capsys):
    rc, out = verdict(make_nb(tmp_path / 'fresh.ipynb', lib), lib, capsys)
    assert rc == 0 and 'ok   fresh.ipynb' in out and 'WARN' not in out and 'FAIL' not in out


def test_whitespace_and_markdown_edits_are_not_stale(tmp_path, lib, capsys):
    p = make_nb(tmp_path / 'ws.ipynb', lib)

    def f(nb):
        nb.cells[1].source = '\n  x = 1   \n\n'  # leading/trailing whitespace and blank lines only
        nb.cells[0].source += '\n\nMore prose.'  # prose may change without re-executing

    edit(p, f)
    assert verdict(p, lib, capsys)[0] == 0


def test_stale_code_fails(tmp_path, lib, capsys):
    p = make_nb(tmp_path / 'stale.ipynb', lib)
    # code changed after the outputs were made
    edit(p, lambda nb: setattr(nb.cells[1], 'source', 'x = 2'))
    rc, out = verdict(p, lib, capsys)
    assert rc == 1 and 'FAIL stale.ipynb: stale' in out


def test_added_code_cell_fails(tmp_path, lib, capsys):
    p = make_nb(tmp_path / 'added.ipynb', lib)
    edit(p, lambda nb: nb.cells.append(new_code_cell('y = 3')))
    assert verdict(p, lib, capsys)[0] == 1


def test_error_output_fails(tmp_path, lib, capsys):
    p = make_nb(tmp_path / 'err.ipynb', lib)
    edit(
        p,
        lambda nb: nb.cells[1].outputs.append(
            new_output('error', ename='ValueError', evalue='boom', traceback=['...'])
        ),
    )
    rc, out = verdict(p, lib, capsys)
    assert rc == 1 and 'error output ValueError' in out


def test_stderr_traceback_fails(tmp_path, lib, capsys):
    p = make_nb(tmp_path / 'tb.ipynb', lib)
    tb = (
        'Traceback (most recent call last):\n'
        '  File "x.py", line 1\n'
        'ZeroDivisionError: division by zero\n'
    )
    edit(p, lambda nb: nb.cells[1].outputs.append(new_output('stream', name='stderr', text=tb)))
    rc, out = verdict(p, lib, capsys)
    assert rc == 1 and 'traceback in a stderr output' in out


def test_error_in_widget_state_fails(tmp_path, lib, capsys):
    p = make_nb(tmp_path / 'widget.ipynb', lib)
    state = {
        'state': {
            'abc': {
                'model_name': 'OutputModel',
                'state': {
                    'outputs': [
                        {
                            'output_type': 'error',
                            'ename': 'KeyError',
                            'evalue': "'T'",
                            'traceback': [],
                        }
                    ]
                },
            }
        },
        'version_major': 2,
        'version_minor': 0,
    }
    edit(
        p,
        lambda nb: nb.metadata.update(widgets={'application/vnd.jupyter.widget-state+json': state}),
    )
    rc, out = verdict(p, lib, capsys)
    assert rc == 1 and 'widget state' in out


def test_no_output_fails(tmp_path, lib, capsys):
    rc, out = verdict(make_nb(tmp_path / 'empty.ipynb', lib, outputs=False), lib, capsys)
    assert rc == 1 and 'no outputs' in out


def test_no_record_fails(tmp_path, lib, capsys):
    rc, out = verdict(make_nb(tmp_path / 'norec.ipynb', lib, record=False), lib, capsys)
    assert rc == 1 and 'no execution record' in out


def test_library_changed_warns(tmp_path, lib, capsys):
    p = make_nb(tmp_path / 'libchg.ipynb', lib)
    (lib / 'schedule.py').write_text('def f(): return 2\n')
    (lib / '_modidx.py').write_text('d = {"x": 1}\n')  # ignored
    rc, out = verdict(p, lib, capsys)
    assert rc == 0 and 'WARN libchg.ipynb: library changed since execution (schedule.py)' in out
    assert 'to re-execute' in out and 'libchg.ipynb' in out.split('to re-execute')[1]


def test_modidx_only_change_is_ignored(tmp_path, lib, capsys):
    p = make_nb(tmp_path / 'modidx.ipynb', lib)
    (lib / '_modidx.py').write_text('d = {"y": 2}\n')
    rc, out = verdict(p, lib, capsys)
    assert rc == 0 and 'WARN' not in out


def test_record_survives_nbdev_clean(tmp_path, lib):
    "nbdev-clean keeps the outputs and the execution record (wherever nb_record puts it)."
    p = make_nb(tmp_path / 'clean.ipynb', lib)
    before = nb_record.read_record(nbformat.read(p, as_version=4))
    nbdev_clean = Path(sys.executable).parent / 'nbdev-clean'
    if not nbdev_clean.exists():
        pytest.skip('nbdev-clean not installed')
    subprocess.run([str(nbdev_clean), '--fname', str(p)], check=True, cwd=TOOLS.parent)
    nb = nbformat.read(p, as_version=4)
    assert nb_record.read_record(nb) == before and nb.cells[-1].outputs
    assert check_outputs.check_nb(p, nb_record.lib_files(lib)) == ([], [])


def test_cli_exit_status(tmp_path, lib):
    "The script's exit status, as `make check-outputs` sees it."
    good, bad = make_nb(tmp_path / 'good.ipynb', lib), make_nb(tmp_path / 'bad.ipynb', lib)
    edit(bad, lambda nb: setattr(nb.cells[1], 'source', 'x = 3'))
    run = lambda *nbs: (
        subprocess.run(
            [sys.executable, str(TOOLS / 'check_outputs.py'), *map(str, nbs), '--lib', str(lib)],
            capture_output=True,
            text=True,
        ).returncode
    )
    assert run(good) == 0 and run(good, bad) == 1
