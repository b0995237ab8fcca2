"""The built wheel carries the shipped weights: install it alone into a folder and sample from
`fmnist-s` there."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    "The wheel under test: $ADM_EDU_WHEEL (the release workflow's, from its sdist), else built."
    if os.environ.get('ADM_EDU_WHEEL'):
        return Path(os.environ['ADM_EDU_WHEEL'])
    out = tmp_path_factory.mktemp('dist')
    subprocess.run(
        [
            sys.executable,
            '-m',
            'build',
            '--wheel',
            '--no-isolation',
            '--outdir',
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    (whl,) = out.glob('adm_edu-*.whl')
    return whl


def test_wheel_has_weights(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for f in ('fmnist-s.pt', 'fmnist-clf.pt', 'fmnist_features.pt'):
        assert f'adm_edu/weights/{f}' in names, f"{f} missing from the wheel"


def test_installed_wheel_samples(wheel, tmp_path):
    target = tmp_path / 'site'
    subprocess.run(
        [
            sys.executable,
            '-m',
            'pip',
            'install',
            '-q',
            '--no-deps',
            '--target',
            str(target),
            str(wheel),
        ],
        check=True,
    )
    code = (
        "import sys, adm_edu; assert adm_edu.__file__.startswith(sys.argv[1]), adm_edu.__file__\n"
        "from adm_edu.cli import sample_cli\n"
        "sample_cli(model='fmnist-s', n=10, steps=5, out=sys.argv[2], device='cpu')"
    )
    env = {**os.environ, 'PYTHONPATH': str(target)}
    out = tmp_path / 's.npz'
    subprocess.run(
        [sys.executable, '-c', code, str(target), str(out)],
        check=True,
        cwd=tmp_path,
        env=env,
        capture_output=True,
    )
    f = np.load(out)
    assert f['images'].shape == (10, 32, 32, 1) and f['images'].dtype == np.uint8
    assert f['labels'].tolist() == list(range(10))


DEV_ONLY = ('diffusers', 'pytorch_fid', 'guided_diffusion', 'hypothesis', 'pytest', 'build')
BLOCKER = '''import sys, importlib.abc, importlib.machinery
class _NoDev(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    "Make the dev extra's packages unimportable: an environment with adm_edu, not its dev extra."
    def find_spec(self, name, path=None, target=None):
        # a spec without a file: torch's find_spec probes (torch._dynamo, under torch.optim) skip
        # it as they skip a missing package, and importing it fails in create_module
        if name.split('.')[0] in %r:
            return importlib.machinery.ModuleSpec(name, self)
    def create_module(self, spec):
        msg = f"No module named {spec.name!r} (not installed: dev extra)"
        raise ModuleNotFoundError(msg, name=spec.name)
    def exec_module(self, module):
        pass
sys.meta_path.insert(0, _NoDev())
'''


@pytest.fixture(scope='module')
def fresh_env(wheel, tmp_path_factory):
    "A new virtual environment with the built wheel and the project venv's runtime packages only."
    root = tmp_path_factory.mktemp('fresh')
    venv = root / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(venv)], check=True)
    py = venv / 'bin' / 'python'
    site = Path(
        subprocess.run(
            [str(py), '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    subprocess.run(
        [
            sys.executable,
            '-m',
            'pip',
            'install',
            '-q',
            '--no-deps',
            '--target',
            str(site),
            str(wheel),
        ],
        check=True,
    )
    main_site = [p for p in sys.path if p.endswith('site-packages')][0]
    # torch, fastai, ... (no .pth of that dir runs: no editable adm_edu)
    (site / 'zz_runtime_deps.pth').write_text(main_site + '\n')
    (site / 'sitecustomize.py').write_text(BLOCKER % (DEV_ONLY,))
    kdir = root / 'jupyter' / 'kernels' / 'python3'
    kdir.mkdir(parents=True)
    argv = [str(py), '-m', 'ipykernel_launcher', '-f', '{connection_file}']
    kernel = dict(argv=argv, display_name='fresh', language='python')
    (kdir / 'kernel.json').write_text(json.dumps(kernel))
    return py, root


def test_fresh_env_is_the_wheel_without_dev_extra(fresh_env):
    py, root = fresh_env
    code = "import adm_edu, sys; print(adm_edu.__file__)\n"
    code += "try:\n    import diffusers\nexcept ImportError:\n    print('no diffusers')"
    out = subprocess.run(
        [str(py), '-c', code], check=True, capture_output=True, text=True, cwd=root
    ).stdout
    assert str(root) in out.splitlines()[0] and 'no diffusers' in out, out


@pytest.mark.parametrize('chapter', ['01_schedule', '03_ddim', '11_guidance'])
def test_chapter_runs_from_the_wheel(fresh_env, chapter, tmp_path):
    "A chapter copied outside the repository runs top to bottom (IN_TEST=1) with only the wheel."
    import nbformat

    py, root = fresh_env
    nb = nbformat.read(ROOT / 'nbs' / f'{chapter}.ipynb', as_version=4)
    # as nbdev-test: leave out the cells that export the library and the slow / GPU-only ones
    nb.cells = [
        c
        for c in nb.cells
        if not (
            c.cell_type == 'code'
            and ('nbdev_export' in c.source or c.source.startswith(('#| slow', '#| gpu')))
        )
    ]
    (tmp_path / f'{chapter}.ipynb').write_text(nbformat.writes(nb))
    runner = (
        "import sys, nbformat\nfrom nbclient import NotebookClient\n"
        "nb = nbformat.read(sys.argv[1], as_version=4)\n"
        "where = {'metadata': {'path': sys.argv[2]}}\n"
        "NotebookClient(nb, timeout=600, kernel_name='python3', resources=where).execute()\n"
        "print('ran', len(nb.cells), 'cells')"
    )
    env = {
        **os.environ,
        'IN_TEST': '1',
        'JUPYTER_PATH': str(root / 'jupyter'),
        'MPLBACKEND': 'Agg',
        'OMP_NUM_THREADS': '1',
    }
    r = subprocess.run(
        [str(py), '-c', runner, str(tmp_path / f'{chapter}.ipynb'), str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=900,
    )
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]


def test_folder_train_sample_eval_from_the_wheel(fresh_env, tmp_path):
    "The issue's 'done when': a folder of real image files -> train -> 16 PNGs -> FID, P/R."
    import torch
    from adm_edu.metrics import InceptionV3FID
    from test_image_folder import write_folder  # tests/: RGB digit PNGs in class folders, JPEGs

    py, _ = fresh_env
    folder = write_folder(tmp_path / 'folder', n_per_class=3)
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'XDG_CACHE_HOME': str(tmp_path / 'cache')}

    def script(func, *argv):
        code = (
            "import sys\nfrom adm_edu import cli\n"
            f"cli.run_script(cli.{func}, sys.argv[1:], 'adm-edu-{func}')"
        )
        argv = [str(a) for a in argv] + ['--device', 'cpu']
        return subprocess.run(
            [str(py), '-c', code, *argv], capture_output=True, text=True, cwd=tmp_path, env=env
        )

    r = script(
        'train',
        '--data-dir',
        folder,
        '--preset',
        'rgb-32',
        '--epochs',
        1,
        '--bs',
        4,
        '--max-seconds',
        30,
        '--out',
        'run/',
    )
    assert r.returncode == 0, r.stderr[-2000:]
    r = script(
        'sample_cli', '--model', 'run/model.pt', '--n', 16, '--steps', 2, '--out', 'samples/'
    )
    pngs = sorted((tmp_path / 'samples').glob('*.png'))
    assert r.returncode == 0 and len(pngs) == 16, r.stderr[-2000:]
    ev = ('--samples', 'samples/', '--reference', folder, '--out', 'm.json')
    r = script('evaluate', *ev)  # no weights: one line saying where to put which file
    assert r.returncode == 1 and r.stderr.count('\n') == 1, r.stderr
    assert 'pt_inception-2015-12-05-6726825d.pth' in r.stderr, r.stderr
    # pytorch-fid's Inception weights cannot be downloaded here: a randomly initialised
    # InceptionV3FID, saved as a state dict, runs the same code path (the numbers mean nothing)
    torch.save(InceptionV3FID().state_dict(), tmp_path / 'inception.pt')
    r = script('evaluate', *ev, '--inception-weights', tmp_path / 'inception.pt')
    assert r.returncode == 0, r.stderr[-2000:]
    assert 'fid=' in r.stdout and 'precision=' in r.stdout and 'recall=' in r.stdout, r.stdout
    m = json.loads((tmp_path / 'm.json').read_text())['metrics']
    assert (m['n'], m['n_real'], m['extractor']) == (16, 11, 'inception')
