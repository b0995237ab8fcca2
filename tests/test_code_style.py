"""The generated library reads like its notebooks: no line of `adm_edu/` is longer than ruff's line
length, and no line joins statements with `;`.

ruff checks the notebooks (and tests/, tools/, bench/) but not `adm_edu/`, which nbdev generates
from them; this test checks what nbdev made. nbdev's own lines are exempt: `_modidx.py` and the
module docstring (the notebook's description). `__all__` counts: `make export` rewraps it to the
line length (`tools/wrap_all.py`; nbdev alone wraps it at 120)."""

import ast
import importlib.util
import io
import re
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / 'adm_edu'
GENERATED = ('_modidx.py',)


def line_length(pyproject: Path = ROOT / 'pyproject.toml') -> int:
    "`line-length` of [tool.ruff] in pyproject.toml."
    ruff = pyproject.read_text().partition('\n[tool.ruff]\n')[2]
    m = re.search(r'^line-length\s*=\s*(\d+)', ruff, re.M)
    assert m, f'no line-length in the [tool.ruff] table of {pyproject}'
    return int(m.group(1))


def modules(pkg: Path) -> list:
    "Every .py file of the package, subpackages included, except nbdev's index `_modidx.py`."
    return [p for p in sorted(pkg.rglob('*.py')) if p.relative_to(pkg).as_posix() not in GENERATED]


def nbdev_lines(tree: ast.Module) -> set:
    "Line numbers of the module docstring, which nbdev copies from the notebook's description."
    body = tree.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        return set(range(body[0].lineno, body[0].end_lineno + 1))
    return set()


def long_lines(pkg: Path = PKG, limit: int | None = None) -> list:
    "'path:line: N characters' for every line longer than `limit` (nbdev's own lines aside)."
    limit = limit or line_length()
    out = []
    for path in modules(pkg):
        src = path.read_text(encoding='utf-8')
        exempt = nbdev_lines(ast.parse(src))
        for i, line in enumerate(src.splitlines(), start=1):
            if len(line) > limit and i not in exempt:
                out.append(f'{path.relative_to(pkg.parent)}:{i}: {len(line)} characters')
    return out


def semicolons(pkg: Path = PKG) -> list:
    "'path:line: text' for every `;` that joins statements (a `;` token, not one in a string)."
    out = []
    for path in modules(pkg):
        src = path.read_text(encoding='utf-8')
        for tok in tokenize.generate_tokens(io.StringIO(src).readline):
            if tok.type == tokenize.OP and tok.string == ';':
                where = f'{path.relative_to(pkg.parent)}:{tok.start[0]}'
                out.append(f'{where}: {tok.line.strip()[:80]}')
    return out


def _summary(found: list, what: str) -> str:
    files = sorted({f.split(':')[0] for f in found})
    head = '\n  '.join(found[:30])
    more = f'\n  ... and {len(found) - 30} more' if len(found) > 30 else ''
    return f'{len(found)} {what} in {len(files)} files (edit the notebooks):\n  {head}{more}'


def test_no_long_lines():
    found = long_lines()
    if found:
        pytest.fail(_summary(found, f'lines longer than {line_length()} characters'), pytrace=False)


def test_no_semicolons():
    found = semicolons()
    if found:
        pytest.fail(_summary(found, 'statements joined with `;`'), pytrace=False)


# ---- the checks themselves, on a planted package -------------------------------------------------
PLANTED = {
    '_modidx.py': 'd = {' + "'x': 1, " * 40 + '}\n',
    'core.py': (
        '"""' + 'A description nbdev copies from the notebook. ' * 4 + '"""\n'
        '\n'
        "__all__ = ['" + "', '".join(f'name_{i}' for i in range(30)) + "']\n"
        '\n'
        'x = 1; y = 2\n'
        "s = 'a; b'  # c; d\n"
        "t = f'{x}; {y}'\n"
        'z = ' + ' + '.join(['x'] * 40) + '\n'
        'def f():\n'
        '    "' + 'b' * 120 + '"\n'
    ),
    'experiments/__init__.py': '',
    'experiments/runner.py': 'rows = [' + '1, ' * 40 + ']\n',
}


def _plant(tmp_path) -> Path:
    pkg = tmp_path / 'adm_edu'
    for name, src in PLANTED.items():
        (pkg / name).parent.mkdir(parents=True, exist_ok=True)
        (pkg / name).write_text(src)
    return pkg


def test_planted_long_lines_are_found(tmp_path):
    found = long_lines(_plant(tmp_path), limit=100)
    # core.py: the one-line `__all__`, the `z = ...` line and the function's docstring (only the
    # module's is nbdev's)
    assert [f.rsplit(':', 1)[0] for f in found] == [
        'adm_edu/core.py:3',
        'adm_edu/core.py:8',
        'adm_edu/core.py:10',
        'adm_edu/experiments/runner.py:1',
    ], found


def test_planted_semicolons_are_found(tmp_path):
    found = semicolons(_plant(tmp_path))
    assert found == ['adm_edu/core.py:5: x = 1; y = 2'], found


def test_browser_test_measures_ruffs_line_length():
    "The rendered site must fit a code line as long as ruff allows (tools/browser_test.py checks)."
    spec = importlib.util.spec_from_file_location(
        'browser_test', ROOT / 'tools' / 'browser_test.py'
    )
    bt = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bt)
    assert bt.LINE_LENGTH == line_length()


def test_wrapped_all_fits_and_keeps_the_names():
    "`tools/wrap_all.py` lays `__all__` out within the line length, names and order unchanged."
    spec = importlib.util.spec_from_file_location('wrap_all', ROOT / 'tools' / 'wrap_all.py')
    wrap_all = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(wrap_all)
    names = [f'a_rather_long_public_name_{i}' for i in range(40)]
    src = wrap_all.wrapped_all(names, 100)
    assert max(len(line) for line in src.splitlines()) <= 100 and src.count('\n') > 5
    assert ast.literal_eval(ast.parse(src).body[0].value) == names
