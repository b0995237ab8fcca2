"""The package's layers, enforced: each module imports only from layers below it (or its own layer, without cycles),
never a private name of another module, and the core maths never imports networks, fastai, plotting or files.

The layers are those of `ARCHITECTURE.md` (repository root). Imports are read from the source with `ast`, at module
level *and* inside functions, so a deferred import cannot hide a cycle."""
import ast
from pathlib import Path
import pytest

PKG = Path(__file__).resolve().parents[1] / 'adm_edu'

# lower number = lower layer; a module may import modules of a lower or equal layer (equal: no cycle allowed)
LAYERS = {
    'errors': 0, 'device': 0,
    'schedule': 1, 'losses': 1, 'resample': 1, 'guidance': 1, 'sampling': 1, 'ode': 1,
    'oracle': 2,
    'unet': 3, 'classifier': 3, 'upsample': 3,
    'data': 4,
    'pretrained': 5, 'openai': 5,
    'learner': 6, 'metrics': 6,
    'viz': 7, 'experiments': 7, 'cli': 7,
}
CORE_FORBIDDEN = ('fastai', 'matplotlib', 'ipywidgets', 'PIL', 'urllib', 'tempfile')


def module_imports(src: str):
    "(imported adm_edu module, imported names, line) for every `import`/`from` in `src`, at any depth; plus external roots."
    internal, external = [], set()
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ''
            if node.level:  # relative: from .x import y / from . import x
                targets = [mod] if mod else [a.name for a in node.names]
                for t in targets: internal.append((t.split('.')[0], [a.name for a in node.names] if mod else [], node.lineno))
            elif mod == 'adm_edu' or mod.startswith('adm_edu.'):
                sub = mod.split('.')[1] if '.' in mod else None
                if sub: internal.append((sub, [a.name for a in node.names], node.lineno))
                else: internal += [(a.name, [], node.lineno) for a in node.names]
            else: external.add(mod.split('.')[0])
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith('adm_edu.'): internal.append((a.name.split('.')[1], [], node.lineno))
                elif a.name != 'adm_edu': external.add(a.name.split('.')[0])
    return internal, external


def violations(pkg: Path = PKG, layers: dict = LAYERS) -> list:
    "Every rule broken in the package at `pkg`: upward import, cross-module private name, cycle, forbidden core import, unknown module."
    out, graph = [], {}
    mods = {p.stem: p for p in pkg.glob('*.py') if p.stem not in ('__init__', '_modidx')}
    for name, path in sorted(mods.items()):
        if name not in layers: out.append(f"{name}: not assigned to a layer (add it to ARCHITECTURE.md and this test)"); continue
        internal, external = module_imports(path.read_text())
        for dep, names, line in internal:
            if dep == name: continue
            if dep not in layers: out.append(f"{name}:{line}: imports unknown module adm_edu.{dep}"); continue
            graph.setdefault(name, set()).add(dep)
            if layers[dep] > layers[name]:
                out.append(f"{name}:{line}: upward import of {dep} (layer {layers[dep]} above {layers[name]})")
            for n in names:
                if n.startswith('_') and not n.startswith('__'): out.append(f"{name}:{line}: imports private name {dep}.{n}")
        if layers[name] <= 1:
            bad = sorted(e for e in external if e in CORE_FORBIDDEN)
            if bad: out.append(f"{name}: core maths module imports {', '.join(bad)}")
    # cycles (within a layer the graph must stay acyclic)
    state = {}
    def visit(n, stack):
        state[n] = 1
        for d in sorted(graph.get(n, ())):
            if state.get(d) == 1: out.append("cycle: " + ' -> '.join(stack[stack.index(d):] + [d]) if d in stack else f"cycle through {d}")
            elif d not in state: visit(d, stack + [d])
        state[n] = 2
    for n in sorted(graph):
        if n not in state: visit(n, [n])
    return out


def test_package_layers():
    v = violations()
    assert not v, "layer rules broken:\n  " + "\n  ".join(v)


def _plant(tmp_path, files: dict) -> Path:
    pkg = tmp_path / 'adm_edu'; pkg.mkdir()
    for n, src in files.items(): (pkg / f'{n}.py').write_text(src)
    return pkg


@pytest.mark.parametrize('files, expected', [
    ({'schedule': 'def f():\n    from adm_edu.viz import plot\n', 'viz': ''}, 'upward import of viz'),
    ({'sampling': 'from .schedule import _check_t\n', 'schedule': ''}, 'private name schedule._check_t'),
    ({'sampling': 'from .guidance import g\n', 'guidance': 'def g():\n    from .sampling import sample\n'}, 'cycle'),
    ({'schedule': 'import matplotlib.pyplot as plt\n'}, 'core maths module imports matplotlib'),
    ({'helpers': 'x = 1\n'}, 'not assigned to a layer'),
])
def test_planted_violations_are_caught(tmp_path, files, expected):
    v = violations(_plant(tmp_path, files))
    assert any(expected in s for s in v), v


def test_clean_planted_package_passes(tmp_path):
    assert violations(_plant(tmp_path, {'schedule': 'import torch\n', 'sampling': 'from .schedule import Schedule\n',
                                        'viz': 'from adm_edu.sampling import sample\nimport matplotlib\n'})) == []
