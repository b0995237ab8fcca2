"""Every loader of a user-passable file refuses a file whose unpickling would run code.

A crafted `.pt` whose unpickling would create a marker file goes to every entry point (the library's
loaders and the
console scripts, run as the installed programs); the marker must never appear and each entry point
must give one clear
error (the console scripts: exit status 1, one line on stderr, no traceback)."""

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import pytest
import torch
from adm_edu.errors import BadFile
from adm_edu.pretrained import (
    load_pretrained,
    load_checkpoint,
    read_checkpoint,
    PRETRAINED_FORMAT,
    CKPT_FORMAT,
)

BIN = Path(sys.executable).parent
REFUSED = 'refused: loading it could run code'


class Evil:
    "Unpickling this calls Path.touch(marker): code execution, where a real attack runs os.system."

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def write_evil(path, marker, fmt=PRETRAINED_FORMAT):
    "A .pt that looks like an adm_edu file and runs `Path.touch(marker)` without weights_only."
    torch.save({'format': fmt, 'kind': 'training', 'config': {}, 'x': Evil(marker)}, path)
    return path


@pytest.fixture
def evil(tmp_path):
    marker = tmp_path / 'PWNED'
    return write_evil(tmp_path / 'evil.pt', marker), marker


def test_the_file_is_really_malicious(tmp_path):
    "Sanity check of the test itself: an unsafe torch.load of the file does create its marker."
    marker = tmp_path / 'sanity-marker'
    f = write_evil(tmp_path / 'sanity.pt', marker)
    torch.load(f, weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize(
    'load', [load_pretrained, load_checkpoint, read_checkpoint], ids=lambda f: f.__name__
)
def test_library_loaders_refuse(evil, load):
    f, marker = evil
    with pytest.raises(BadFile, match=REFUSED):
        load(f)
    assert not marker.exists()


def test_openai_loaders_refuse(evil, tmp_path):
    from adm_edu.openai import (
        load_official,
        unet_from_openai,
        classifier_from_openai,
        OFFICIAL_CHECKPOINTS,
    )

    f, marker = evil
    with pytest.raises(BadFile, match=REFUSED):
        unet_from_openai(
            f, image_size=32, num_channels=32, num_res_blocks=1, attention_resolutions='16'
        )
    with pytest.raises(BadFile, match=REFUSED):
        classifier_from_openai(str(f), image_size=64, classifier_width=64, classifier_depth=1)
    # the smallest official network: the file is in the cache, nothing is downloaded
    name = 'cifar10_uncond_50M_500K'
    cache = tmp_path / 'cache'
    cache.mkdir()
    write_evil(cache / OFFICIAL_CHECKPOINTS[name]['url'].rsplit('/', 1)[1], marker)
    with pytest.raises(BadFile, match=REFUSED):
        load_official(name, cache_dir=cache)
    assert not marker.exists()


def run(prog, *args, cwd=None):
    env = {k: v for k, v in os.environ.items() if k != 'ADM_EDU_DEBUG'}
    return subprocess.run(
        [str(BIN / prog), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env=env,
    )


def test_console_scripts_refuse(evil, tmp_path):
    f, marker = evil
    run_dir = tmp_path / 'run'
    run_dir.mkdir()
    write_evil(run_dir / 'last.pt', marker, CKPT_FORMAT)  # what --resume reads
    o = tmp_path / 'out'
    cases = {
        'sample --model': (
            'adm-edu-sample',
            '--model',
            f,
            '--n',
            2,
            '--steps',
            1,
            '--out',
            o / 's.npz',
            '--device',
            'cpu',
        ),
        'sample --classifier': (
            'adm-edu-sample',
            '--guidance',
            1,
            '--classifier',
            f,
            '--n',
            2,
            '--steps',
            1,
            '--out',
            o / 'g.npz',
            '--device',
            'cpu',
        ),
        'train --init': (
            'adm-edu-train',
            '--init',
            f,
            '--out',
            o / 'init',
            '--epochs',
            1,
            '--device',
            'cpu',
        ),
        'train --resume': (
            'adm-edu-train',
            '--resume',
            '--out',
            run_dir,
            '--epochs',
            1,
            '--device',
            'cpu',
        ),
        'eval --model': (
            'adm-edu-eval',
            '--model',
            f,
            '--n',
            0,
            '--n-nll',
            2,
            '--out',
            o / 'm.json',
            '--device',
            'cpu',
        ),
        'demo --model': ('adm-edu-demo', '--model', f, '--out', o / 'demo'),
    }
    with ThreadPoolExecutor(3) as ex:
        results = dict(zip(cases, ex.map(lambda c: run(*c, cwd=tmp_path), cases.values())))
    for case, r in results.items():
        prog = cases[case][0]
        assert r.returncode == 1, (case, r.returncode, r.stdout, r.stderr)
        assert r.stderr.count('\n') == 1 and r.stderr.startswith(prog + ': '), (case, r.stderr)
        assert 'Traceback' not in r.stderr and REFUSED in r.stderr, (case, r.stderr)
    assert not marker.exists()
    assert not (o / 'demo').exists() and not (o / 'init').exists()  # refused before any work
