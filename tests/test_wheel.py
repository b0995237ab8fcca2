"The built wheel carries the shipped weights: install it alone into a folder and sample from `fmnist-s` there."
import os, subprocess, sys, zipfile
from pathlib import Path
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp('dist')
    subprocess.run([sys.executable, '-m', 'build', '--wheel', '--no-isolation', '--outdir', str(out), str(ROOT)],
                   check=True, capture_output=True, cwd=ROOT)
    (whl,) = out.glob('adm_edu-*.whl')
    return whl


def test_wheel_has_weights(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for f in ('fmnist-s.pt', 'fmnist-clf.pt', 'fmnist_features.pt'):
        assert f'adm_edu/weights/{f}' in names, f"{f} missing from the wheel"


def test_installed_wheel_samples(wheel, tmp_path):
    target = tmp_path / 'site'
    subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '--no-deps', '--target', str(target), str(wheel)], check=True)
    code = ("import sys, adm_edu; assert adm_edu.__file__.startswith(sys.argv[1]), adm_edu.__file__\n"
            "from adm_edu.cli import sample_cli\n"
            "sample_cli(model='fmnist-s', n=10, steps=5, out=sys.argv[2], device='cpu')")
    env = {**os.environ, 'PYTHONPATH': str(target)}
    out = tmp_path / 's.npz'
    subprocess.run([sys.executable, '-c', code, str(target), str(out)], check=True, cwd=tmp_path, env=env, capture_output=True)
    f = np.load(out)
    assert f['images'].shape == (10, 32, 32, 1) and f['images'].dtype == np.uint8
    assert f['labels'].tolist() == list(range(10))
