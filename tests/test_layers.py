"""The package's layers, enforced: each module imports only from layers below it (or its own
layer, without cycles), never a private name of another module, and the core maths never imports
networks, fastai, plotting or files.

The layers are those of `ARCHITECTURE.md` (repository root). Imports are read from the source with
`ast`, at module level *and* inside functions, so a deferred import cannot hide a cycle. A
subpackage (`adm_edu/experiments/`) is checked module by module; its modules take the layer of the
subpackage unless `LAYERS` names them (`'experiments.runner'`)."""

import ast
from pathlib import Path
import pytest

PKG = Path(__file__).resolve().parents[1] / 'adm_edu'

# lower number = lower layer; a module may import modules of a lower or equal layer
# (equal: no cycle allowed)
LAYERS = {
    'errors': 0,
    'device': 0,
    'schedule': 1,
    'losses': 1,
    'resample': 1,
    'guidance': 1,
    'sampling': 1,
    'ode': 1,
    'oracle': 2,
    'unet': 3,
    'classifier': 3,
    'upsample': 3,
    'data': 4,
    'pretrained': 5,
    'openai': 5,
    'learner': 6,
    'metrics': 6,
    'viz': 7,
    'experiments': 7,
    'cli': 7,
}
CORE_FORBIDDEN = ('fastai', 'matplotlib', 'ipywidgets', 'PIL', 'urllib', 'tempfile')
NOT_MODULES = ('__init__', '_modidx')


def package_modules(pkg: Path) -> dict:
    "{dotted name: path}: `sampling`, `experiments` (a subpackage's __init__), `experiments.ddim`."
    mods = {}
    for path in sorted(pkg.rglob('*.py')):
        parts = list(path.relative_to(pkg).with_suffix('').parts)
        if len(parts) == 1 and parts[0] in NOT_MODULES:
            continue
        if parts[-1] == '__init__':
            parts = parts[:-1]
        mods['.'.join(parts)] = path
    return mods


def _package_of(name: str, path: Path) -> list:
    "The package a module's relative imports start from, as a list of dotted parts."
    parts = name.split('.')
    return parts if path.name == '__init__.py' else parts[:-1]


def module_imports(src: str, name: str = '', path: Path = Path('m.py')):
    """(imported adm_edu module as a dotted name, imported names, line) for every `import`/`from`
    in `src` of module `name` (at `path`), at any depth; plus the external roots it imports."""
    internal, external = [], set()
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.ImportFrom):
            internal += _from_import(node, name, path, external)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith('adm_edu.'):
                    internal.append((a.name.split('.', 1)[1], [], node.lineno))
                elif a.name != 'adm_edu':
                    external.add(a.name.split('.')[0])
    return internal, external


def _from_import(node: ast.ImportFrom, name: str, path: Path, external: set) -> list:
    "The adm_edu modules one `from ... import ...` reads (an external root goes into `external`)."
    mod, names = node.module or '', [a.name for a in node.names]
    if node.level:  # relative: from .x import y / from . import x / from ..x import y
        package = _package_of(name, path)
        base = package[: len(package) - (node.level - 1)]
    elif mod == 'adm_edu' or mod.startswith('adm_edu.'):
        base, mod = [], mod.partition('.')[2]
    else:
        external.add(mod.split('.')[0])
        return []
    if mod:
        return [('.'.join(base + [mod]), names, node.lineno)]
    return [('.'.join(base + [n]), [], node.lineno) for n in names]  # names are modules


def layer_of(name: str, layers: dict):
    "A module's layer: its own entry, else its top-level package's (None: not assigned)."
    return layers.get(name, layers.get(name.split('.')[0]))


def violations(pkg: Path = PKG, layers: dict = LAYERS) -> list:
    """Every rule broken in the package at `pkg`: upward import, cross-module private name, cycle,
    forbidden core import, unknown module."""
    out, graph = [], {}
    mods = package_modules(pkg)
    for name, path in mods.items():
        if layer_of(name, layers) is None:
            out.append(f"{name}: not assigned to a layer (add it to ARCHITECTURE.md and this test)")
            continue
        internal, external = module_imports(path.read_text(), name, path)
        for dep, names, line in internal:
            out += _import_violations(name, dep, names, line, layers, graph)
        if layer_of(name, layers) <= 1:
            bad = sorted(e for e in external if e in CORE_FORBIDDEN)
            if bad:
                out.append(f"{name}: core maths module imports {', '.join(bad)}")
    return out + _cycles(graph)


def _import_violations(name, dep, names, line, layers, graph) -> list:
    "The rules one import of module `dep` by module `name` breaks; records the edge in `graph`."
    if dep == name:
        return []
    out, here, there = [], layer_of(name, layers), layer_of(dep, layers)
    if there is None:
        return [f"{name}:{line}: imports unknown module adm_edu.{dep}"]
    top, dep_top = name.split('.')[0], dep.split('.')[0]
    if dep_top != top:  # the modules of one subpackage may import each other
        graph.setdefault(top, set()).add(dep_top)
    if there > here:
        out.append(f"{name}:{line}: upward import of {dep} (layer {there} above {here})")
    for n in names:
        if n.startswith('_') and not n.startswith('__'):
            out.append(f"{name}:{line}: imports private name {dep}.{n}")
    return out


def _cycles(graph: dict) -> list:
    "Every import cycle between top-level modules (within a layer the graph must stay acyclic)."
    out, state = [], {}

    def visit(n, stack):
        state[n] = 1
        for d in sorted(graph.get(n, ())):
            if state.get(d) == 1:
                cycle = stack[stack.index(d) :] + [d] if d in stack else None
                out.append("cycle: " + ' -> '.join(cycle) if cycle else f"cycle through {d}")
            elif d not in state:
                visit(d, stack + [d])
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n, [n])
    return out


def test_package_layers():
    v = violations()
    assert not v, "layer rules broken:\n  " + "\n  ".join(v)


def _plant(tmp_path, files: dict) -> Path:
    "A package `adm_edu` under `tmp_path` with `files` ({dotted module name: source})."
    pkg = tmp_path / 'adm_edu'
    pkg.mkdir()
    for n, src in files.items():
        path = pkg.joinpath(*n.split('.')).with_suffix('.py')
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(src)
    return pkg


@pytest.mark.parametrize(
    'files, expected',
    [
        (
            {'schedule': 'def f():\n    from adm_edu.viz import plot\n', 'viz': ''},
            'upward import of viz',
        ),
        (
            {'sampling': 'from .schedule import _check_t\n', 'schedule': ''},
            'private name schedule._check_t',
        ),
        (
            {
                'sampling': 'from .guidance import g\n',
                'guidance': 'def g():\n    from .sampling import sample\n',
            },
            'cycle',
        ),
        ({'schedule': 'import matplotlib.pyplot as plt\n'}, 'core maths module imports matplotlib'),
        ({'helpers': 'x = 1\n'}, 'not assigned to a layer'),
        (
            {'schedule': 'from .experiments.runner import run\n', 'experiments.runner': ''},
            'upward import of experiments.runner',
        ),
        (
            {'experiments.ddim': 'from ..schedule import _check_t\n', 'schedule': ''},
            'private name schedule._check_t',
        ),
        (
            {'experiments.ddim': 'from .runner import _row\n', 'experiments.runner': ''},
            'private name experiments.runner._row',
        ),
        ({'experiments.ddim': 'from .. import helpers\n'}, 'unknown module adm_edu.helpers'),
    ],
)
def test_planted_violations_are_caught(tmp_path, files, expected):
    v = violations(_plant(tmp_path, files))
    assert any(expected in s for s in v), v


def test_clean_planted_package_passes(tmp_path):
    assert (
        violations(
            _plant(
                tmp_path,
                {
                    'schedule': 'import torch\n',
                    'sampling': 'from .schedule import Schedule\n',
                    'viz': 'from adm_edu.sampling import sample\nimport matplotlib\n',
                    'experiments.__init__': 'from .runner import run\n',
                    'experiments.runner': 'from ..viz import show\nfrom . import ddim\n',
                    'experiments.ddim': 'from adm_edu.experiments.runner import run\n',
                },
            )
        )
        == []
    )
