"""The chapters are in reading order: no chapter imports from a module whose chapter comes later,
except the pairs named in FORWARD_IMPORTS, each with its reason."""

import json
import re
from pathlib import Path

NBS = Path(__file__).resolve().parent.parent / 'nbs'

# module -> why an earlier chapter may import it: the appendix's infrastructure, the metrics,
# and the experiments package
FORWARD_IMPORTS = {
    'errors': 'the error types every module raises (appendix: errors)',
    'device': 'where tensors go and bf16 detection, used by the core (appendix: devices)',
    'data': 'the datasets chapters demonstrate on (appendix: data)',
    'viz': 'the pictures and explorers every chapter draws with (appendix: pictures)',
    'pretrained': 'the shipped weights chapters demonstrate with (appendix: shipped models)',
    'learner': 'the fastai training loop chapters train their examples with (appendix: training)',
    'metrics': 'the sample metrics (FID, precision, recall) earlier chapters score models with',
    'experiments': "the records index that opens the experiments lists every paper's rows",
    'openai': "the official checkpoints' key mapping, through which the official-forward checks "
    'load our weights into the real guided_diffusion modules (appendix: OpenAI checkpoints)',
}


def allowed(mod: str):
    "The reason a module (or the package it belongs to) may be imported early, or None."
    return FORWARD_IMPORTS.get(mod) or FORWARD_IMPORTS.get(mod.split('.')[0])


_IMPORT = re.compile(r'^\s*(?:from\s+adm_edu\.([\w.]+)\s+import|import\s+adm_edu\.([\w.]+))', re.M)
_EXPORT = re.compile(r'^#\|\s*default_exp\s+(\S+)', re.M)


def chapters() -> list:
    "The chapters in reading order (their file names' order), index.ipynb aside."
    return sorted(p for p in NBS.glob('*.ipynb') if p.name != 'index.ipynb')


def code_cells(path: Path) -> list:
    cells = json.loads(path.read_text())['cells']
    return [''.join(c['source']) for c in cells if c['cell_type'] == 'code']


def module_homes(nbs: list) -> dict:
    "Module name -> the chapter that defines it (`#| default_exp`)."
    homes = {}
    for p in nbs:
        for src in code_cells(p):
            m = _EXPORT.search(src)
            if m:
                homes[m.group(1)] = p.name
    return homes


def package_homes(homes: dict, order: dict) -> dict:
    "A subpackage (`experiments`) imports all its modules: its home is their last chapter."
    packages = {}
    for mod, home in homes.items():
        if '.' in mod:
            pkg = mod.split('.')[0]
            if pkg not in packages or order[home] > order[packages[pkg]]:
                packages[pkg] = home
    return packages


def imported_modules(path: Path, homes: dict) -> set:
    "The package's modules (or subpackages) a chapter imports."
    found = set()
    for src in code_cells(path):
        for m in _IMPORT.finditer(src):
            mod = m.group(1) or m.group(2)
            while mod not in homes and '.' in mod:
                mod = mod.rsplit('.', 1)[0]
            if mod in homes:
                found.add(mod)
    return found


def forward_imports(nbs: list) -> list:
    "(chapter, module, module's chapter) for every import of a module taught later."
    order = {p.name: i for i, p in enumerate(nbs)}
    homes = module_homes(nbs)
    homes = {**package_homes(homes, order), **homes}
    out = []
    for p in nbs:
        for mod in sorted(imported_modules(p, homes)):
            if order[homes[mod]] > order[p.name]:
                out.append((p.name, mod, homes[mod]))
    return out


def test_no_forward_imports_but_the_named_ones():
    found = forward_imports(chapters())
    listed = [f for f in found if allowed(f[1])]
    unlisted = [f for f in found if not allowed(f[1])]
    print(f'{len(listed)} forward imports of the appendix infrastructure (allowed):')
    for chapter, mod, home in listed:
        print(f'  {chapter} -> adm_edu.{mod} ({home}): {allowed(mod)}')
    assert not unlisted, 'chapters import modules taught later: ' + '; '.join(
        f'{c} imports adm_edu.{m} from {h}' for c, m, h in unlisted
    )


def test_the_check_sees_a_planted_forward_import(tmp_path):
    "A chapter that imports a later chapter's module is reported."

    def nb(path, *sources):
        cells = [dict(cell_type='code', source=s, metadata={}, outputs=[]) for s in sources]
        path.write_text(json.dumps(dict(cells=cells)))

    nb(tmp_path / '01_first.ipynb', '#| default_exp first', 'from adm_edu.second import x')
    nb(tmp_path / '02_second.ipynb', '#| default_exp second', 'from adm_edu.first import y')
    nb(tmp_path / '03_pkg_a.ipynb', '#| default_exp pkg.a', 'import adm_edu.pkg')
    nb(tmp_path / '04_pkg_b.ipynb', '#| default_exp pkg.b', 'from adm_edu.pkg.a import z')
    found = forward_imports(sorted(tmp_path.glob('*.ipynb')))
    assert found == [
        ('01_first.ipynb', 'second', '02_second.ipynb'),
        ('03_pkg_a.ipynb', 'pkg', '04_pkg_b.ipynb'),  # the package pulls in every module
    ]


def test_every_forward_import_exception_is_used():
    "An exception nobody needs any more is removed from the list."
    used = {m for _, m, _ in forward_imports(chapters())}
    assert set(FORWARD_IMPORTS) <= used, f'unused exceptions: {sorted(set(FORWARD_IMPORTS) - used)}'
