"""Every chapter's first code cell after `default_exp` is the one install cell: in Colab it installs
the package that `.github/workflows/release.yaml` publishes (this project's name, nothing pinned
that pyproject.toml does not pin), and a failed install is one printed line pointing at the
repository's install command, never a traceback."""

import contextlib
import io
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from unittest import mock
import pytest

ROOT = Path(__file__).resolve().parents[1]
NBS = sorted((ROOT / 'nbs').glob('*.ipynb'))
PROJECT = tomllib.loads((ROOT / 'pyproject.toml').read_text())['project']


def code_cells(nb: Path) -> list:
    cells = json.loads(nb.read_text())['cells']
    return [''.join(c['source']) for c in cells if c['cell_type'] == 'code']


def install_cell(nb: Path) -> str:
    (cell,) = [c for c in code_cells(nb) if 'google.colab' in c]
    return cell


def run_cell(cell: str, returncode: int) -> tuple:  # (what it printed, the pip command it ran)
    ran = []

    def fake_run(cmd, **kw):
        ran.append(cmd)
        return subprocess.CompletedProcess(cmd, returncode, b'', b'ERROR: No matching dist')

    out = io.StringIO()
    with (
        mock.patch.dict(sys.modules, {'google.colab': mock.MagicMock()}),
        mock.patch('subprocess.run', fake_run),
        contextlib.redirect_stdout(out),
    ):
        exec(compile(cell, 'install-cell', 'exec'), {})
    return out.getvalue(), ran


def test_every_chapter_has_the_one_install_cell():
    cells = {nb.name: install_cell(nb) for nb in NBS}
    assert len(cells) >= 27 and len(set(cells.values())) == 1, sorted(set(cells.values()))
    for nb in NBS:  # the first code cell after `#| default_exp` (index: the first)
        codes = [c for c in code_cells(nb) if not c.startswith('#| default_exp')]
        assert codes[0] == cells[nb.name], nb.name


def test_installs_what_the_release_workflow_publishes():
    cell = install_cell(NBS[0])
    out, ran = run_cell(cell, 0)
    assert out == '' and len(ran) == 1
    cmd = ran[0]
    assert cmd[:5] == [sys.executable, '-m', 'pip', 'install', '-q'], cmd
    pkgs = cmd[5:]
    assert pkgs[0] == PROJECT['name']  # unpinned: the latest release
    workflow = (ROOT / '.github/workflows/release.yaml').read_text()
    assert 'tags:' in workflow and 'pypa/gh-action-pypi-publish' in workflow
    assert 'id-token: write' in workflow and 'tests/test_wheel.py' in workflow
    # anything else is a requirement of the package, pinned exactly as pyproject.toml pins it
    reqs = PROJECT['dependencies'] + sum(PROJECT['optional-dependencies'].values(), [])
    for p in pkgs[1:]:
        assert p in reqs, (p, 'not a requirement of the package as pyproject.toml writes it')


@pytest.mark.parametrize('code', [1, 2])
def test_failed_install_is_one_line(code):
    out, _ = run_cell(install_cell(NBS[0]), code)
    assert out.count('\n') == 1 and 'Traceback' not in out, out
    repo = PROJECT['urls']['Repository']
    assert f'pip install "git+{repo}"' in out, out


def test_outside_colab_nothing_is_installed():
    with mock.patch('subprocess.run', side_effect=AssertionError('pip ran outside Colab')):
        exec(compile(install_cell(NBS[0]), 'install-cell', 'exec'), {})
    assert re.search(r"if 'google.colab' in sys.modules:", install_cell(NBS[0]))
