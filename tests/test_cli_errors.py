"""Every user error of the console scripts is one line `adm-edu-XXX: message` on stderr and exit
status 1,
checked before any work; genuine bugs keep their traceback, and ADM_EDU_DEBUG=1 shows it for user
errors too.

Most cases run in-process through `run_script` (what the installed programs run); a few run the
installed programs."""

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
import numpy as np
import pytest
import torch
from adm_edu.cli import run_script, sample_cli, train, evaluate, demo, experiment
from adm_edu.learner import TrainConfig
from adm_edu.pretrained import export_pretrained, save_checkpoint, CKPT_FORMAT
from adm_edu.unet import UNet
from tiny_nets import TINY_BASE as TINY

BIN = Path(sys.executable).parent


def as_user_sees(func, *argv):
    "(exit status, stderr) of `func` run on `argv` as its console script runs it."
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            run_script(func, [str(a) for a in argv])
            code = 0
        except SystemExit as e:
            code = e.code
    return code, err.getvalue()


def one_line_error(func, *argv, contains=''):
    code, err = as_user_sees(func, *argv)
    assert code == 1, (argv, code, err)
    assert err.count('\n') == 1 and err.startswith(func.prog + ': '), err
    assert contains in err, err
    return err.strip()


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp('cli')
    torch.manual_seed(0)
    export_pretrained(
        UNet(**TINY),
        'tiny',
        'diffusion',
        TINY,
        dict(command='(test)'),
        schedule='cosine',
        T=20,
        weights_dir=d,
    )
    (d / 'empty.pt').write_bytes(b'')
    (d / 'random.pt').write_bytes(np.random.default_rng(0).bytes(2000))
    (d / 'text.pt').write_text('hello, this is not a model\n')
    (d / 'adir').mkdir()
    sd = UNet(**TINY).state_dict()
    sd = {k: v for k, v in sd.items() if not k.startswith('label_emb')}
    network = dict(kind='diffusion', name='UNet', kwargs=TINY, classes=list('0123456789'))
    save_checkpoint(
        dict(
            format=CKPT_FORMAT,
            kind='model',
            iter=1,
            config=dict(schedule='cosine', T=20),
            network=network,
            model=sd,
            ema=None,
        ),
        d / 'missing_keys.pt',
    )
    run = d / 'run'
    run.mkdir()
    save_checkpoint(
        dict(
            format=CKPT_FORMAT,
            kind='training',
            iter=5,
            n_iter=10,
            model={},
            opt={},
            config=TrainConfig().to_dict(),
        ),
        run / 'last.pt',
    )
    trunc = d / 'trunc'
    trunc.mkdir()
    (trunc / 'last.pt').write_bytes((run / 'last.pt').read_bytes()[:300])
    (d / 'afile').write_text('x')
    imgs = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 1), dtype=np.uint8)
    np.savez(d / 'float.npz', images=imgs / 255.0)
    np.savez(d / 'nchw.npz', images=imgs.transpose(0, 3, 1, 2))
    np.savez(d / 'labels.npz', images=imgs, labels=np.array([0, 1, 2, 12]))
    (d / 'junk.npz').write_bytes(b'PK\x03\x04 junk')
    return d


@pytest.mark.parametrize(
    'name,msg',
    [
        ('empty.pt', 'the file is empty or truncated'),
        ('random.pt', 'not a PyTorch file'),
        ('text.pt', 'not a PyTorch file'),
        ('adir', 'is a directory'),
        ('nope.pt', 'no model file'),
    ],
)
def test_bad_model_files(files, name, msg):
    for func, extra in (
        (sample_cli, ['--out', files / 's.npz']),
        (evaluate, ['--n', 0, '--out', files / 'm.json']),
    ):
        one_line_error(func, '--model', files / name, *extra, contains=msg)


def test_missing_keys_says_what_differs(files):
    err = one_line_error(
        sample_cli,
        '--model',
        files / 'missing_keys.pt',
        '--out',
        files / 's.npz',
        contains='class conditioning',
    )
    # grouped, never a wall of key names
    assert 'label_emb' in err and len(err) < 800 and err.count('weight') <= 2


@pytest.mark.parametrize(
    'argv,msg',
    [
        (['--classes', 'a,b'], '--classes must be comma-separated class indices such as 0,3,7'),
        (['--classes', '3,11'], '--classes must lie in [0, 10), got [11]'),
        (['--eta', 'inf'], '--eta must be a finite real number >= 0'),
        (['--eta', 'nan'], '--eta must be a finite real number >= 0'),
        (['--eta', '-1'], '--eta must be a finite real number >= 0'),
        (['--guidance', 'nan'], '--guidance must be a finite real number'),
        (['--cfg', '2'], '--cfg needs a model trained with label dropout'),
        (['--steps', '21'], "--steps must be between 1 and the model's T=20"),
        (['--n', 'abc'], "argument --n: invalid int value: 'abc'"),
        (['--bogus', '1'], 'unrecognized arguments: --bogus 1'),
        (['--out', 'x.jpg'], '--out must end in .npz or .png'),
        (['--device', 'tpu'], "--device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"),
    ],
)
def test_sample_arguments(files, argv, msg):
    base = ['--model', files / 'tiny.pt', '--n', 2, '--steps', 2]
    if '--out' not in argv:
        base += ['--out', files / 'never.npz']
    one_line_error(sample_cli, *base, *argv, contains=msg)
    assert not (files / 'never.npz').exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason='this machine has CUDA')
def test_device_cuda_without_cuda(files):
    one_line_error(
        sample_cli,
        '--model',
        files / 'tiny.pt',
        '--device',
        'cuda',
        '--out',
        files / 's.npz',
        contains='--device cuda: CUDA is not available on this machine',
    )


def test_outputs_checked_before_work(files):
    one_line_error(
        sample_cli,
        '--model',
        files / 'tiny.pt',
        '--out',
        files / 'adir.npz' if False else files / 'adir',
        contains='.npz or .png',
    )
    (files / 'dir.npz').mkdir(exist_ok=True)
    one_line_error(
        sample_cli,
        '--model',
        files / 'tiny.pt',
        '--out',
        files / 'dir.npz',
        contains='is a directory; expected a file name',
    )
    one_line_error(
        sample_cli,
        '--model',
        files / 'tiny.pt',
        '--out',
        files / 'afile' / 's.npz',
        contains='is a file, not a directory',
    )
    one_line_error(
        evaluate,
        '--model',
        files / 'tiny.pt',
        '--out',
        files / 'afile' / 'm.json',
        contains='is a file, not a directory',
    )
    one_line_error(train, '--out', files / 'afile', contains='exists and is not a directory')
    one_line_error(demo, '--out', files / 'afile', contains='exists and is not a directory')


@pytest.mark.skipif(not Path('/proc/self').is_dir(), reason='needs /proc (Linux)')
def test_output_directory_that_cannot_be_made(files):
    "Each script that writes: one line before any work when its output directory cannot be created."
    msg = 'cannot create the directory /proc/x'
    one_line_error(sample_cli, '--model', files / 'tiny.pt', '--out', '/proc/x/o.npz', contains=msg)
    one_line_error(evaluate, '--model', files / 'tiny.pt', '--out', '/proc/x/m.json', contains=msg)
    one_line_error(train, '--out', '/proc/x/run', contains=msg)
    one_line_error(demo, '--out', '/proc/x/demo', contains=msg)
    one_line_error(experiment, 'toy', '--root', '/proc/x/r', contains=msg)
    one_line_error(experiment, 'toy', '--root', files / 'r', '--work', '/proc/x/w', contains=msg)
    assert not (files / 'r').exists()  # the check leaves nothing behind


def test_train_resume_and_init(files):
    one_line_error(
        train,
        '--resume',
        '--out',
        files / 'adir',
        contains=f"no checkpoint {files / 'adir' / 'last.pt'}",
    )
    one_line_error(
        train,
        '--resume',
        '--out',
        files / 'run',
        '--bs',
        32,
        contains='--bs 64; this command has --bs 32',
    )
    one_line_error(
        train,
        '--resume',
        '--out',
        files / 'run',
        '--preset',
        'fmnist-m',
        contains='--preset fmnist-s; this command has --preset fmnist-m',
    )
    one_line_error(
        train,
        '--resume',
        '--out',
        files / 'run',
        '-t',
        500,
        contains='--diffusion-steps 1000; this command has --diffusion-steps 500',
    )
    one_line_error(train, '--resume', '--out', files / 'trunc', contains='cannot read')
    one_line_error(
        train, '--resume', '--init', 'fmnist-s', '--out', files / 'run', contains='pick one'
    )
    one_line_error(train, '--init', files / 'random.pt', '--out', files / 'new', contains='--init')
    one_line_error(
        train,
        '--preset',
        'adm-imagenet64',
        contains='--preset adm-imagenet64 is for 3x64x64 images',
    )
    one_line_error(
        train,
        '--preset',
        'nope',
        contains="--preset: unknown preset 'nope'; the presets are diffusion:",
    )
    one_line_error(
        train,
        '--resume',
        '--out',
        files / 'run',
        '--lr',
        1e-3,
        contains='--lr 0.0002; this command has --lr 0.001',
    )
    one_line_error(
        train, '--mixed-precision', 'fp16', '--device', 'cpu', contains='fp16 needs CUDA'
    )
    one_line_error(train, '--lr', 'inf', contains='--lr must be a finite real number')


def test_diffusion_steps_spellings(files, monkeypatch):
    "--diffusion-steps as the official scripts; -t and --t still work."
    import adm_edu.learner

    seen = []
    monkeypatch.setattr(adm_edu.learner, 'train_model', lambda config, **kw: seen.append(config.T))
    for flag in ('--diffusion-steps', '-t', '--t'):
        code, err = as_user_sees(train, flag, 123, '--out', files / 'steps', '--dataset', 'digits')
        assert code == 0, err
    assert seen == [123, 123, 123]
    one_line_error(train, '-t', 1, contains='--diffusion-steps must be an integer >= 2, got 1')


def test_eval_inputs(files):
    out = ['--out', files / 'm.json']
    one_line_error(
        evaluate,
        '--samples',
        files / 'float.npz',
        *out,
        contains='float images (in [0, 1] or [-1, 1]) are not accepted',
    )
    one_line_error(evaluate, '--samples', files / 'nchw.npz', *out, contains='looks like N×C×H×W')
    one_line_error(evaluate, '--samples', files / 'junk.npz', *out, contains='is not a .npz file')
    one_line_error(
        evaluate,
        '--samples',
        files / 'labels.npz',
        *out,
        contains='labels must be class indices in [0, 10)',
    )
    one_line_error(evaluate, '--samples', files / 'adir', *out, contains='is a directory')
    one_line_error(
        evaluate,
        '--model',
        files / 'tiny.pt',
        '--steps',
        5,
        '--n',
        10,
        '--n-nll',
        0,
        *out,
        contains='1-channel 28x28 or 32x32 images; the model makes 1x8x8',
    )
    one_line_error(
        evaluate,
        '--model',
        files / 'tiny.pt',
        '--steps',
        5,
        '--n',
        0,
        '--n-nll',
        0,
        *out,
        contains='nothing to evaluate',
    )
    one_line_error(
        evaluate,
        '--model',
        files / 'tiny.pt',
        '--steps',
        5,
        '--n',
        0,
        '--n-nll',
        2,
        *out,
        contains='the fashion-mnist test set has 1x32x32',
    )
    one_line_error(
        evaluate,
        '--samples',
        files / 'labels.npz',
        '--k',
        0,
        *out,
        contains='--k must be at least 1',
    )
    assert not (files / 'm.json').exists()


def test_eval_small_sample_file_notes_k(files):
    "A small sample file: precision/recall with k lowered (with a note), IS with one split."
    pytest.importorskip('adm_edu.data').load_dataset('fashion-mnist', 'test')
    imgs = np.random.default_rng(1).integers(0, 256, (3, 32, 32, 1), dtype=np.uint8)
    np.savez(files / 'three.npz', images=imgs, labels=np.array([0, 1, 2]))
    code, err = as_user_sees(
        evaluate, '--samples', files / 'three.npz', '--out', files / 'three.json', '--device', 'cpu'
    )
    assert code == 0, err
    m = json.loads((files / 'three.json').read_text())['metrics']
    assert (m['k'], m['k_requested']) == (2, 3) and any('k=2 instead of 3' in n for n in m['notes'])
    assert m['is_splits'] == 1 and any('inception_score used 1 split' in n for n in m['notes'])


def test_demo_unknown_model_exits_1(files):
    one_line_error(
        demo, '--model', 'nope', '--out', files / 'demo', contains="unknown model 'nope'"
    )
    assert not (files / 'demo').exists()


def run(prog, *args, **env):
    e = {k: v for k, v in os.environ.items() if k != 'ADM_EDU_DEBUG'}
    e.update(env)
    return subprocess.run(
        [str(BIN / prog), *map(str, args)], capture_output=True, text=True, timeout=300, env=e
    )


def test_installed_programs(files):
    r = run('adm-edu-sample', '--classes', 'a,b', '--out', files / 's.npz')
    assert (r.returncode, r.stderr) == (
        1,
        "adm-edu-sample: --classes must be comma-separated class indices such as 0,3,7, "
        "got 'a,b'\n",
    )
    r = run('adm-edu-sample', '--classes', 'a,b', '--out', files / 's.npz', ADM_EDU_DEBUG='1')
    assert r.returncode == 1 and 'Traceback' in r.stderr and 'BadArgument' in r.stderr
    r = run('adm-edu-train', '--help')
    assert r.returncode == 0 and '--diffusion-steps' in r.stdout
