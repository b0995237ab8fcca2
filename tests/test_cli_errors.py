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
from unittest import mock
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


# ---- issue 34: nothing lost, nothing silent ----------------------------------------------------


def mocked_train(*argv, effect=None):
    "(exit status, stderr) of adm-edu-train with `train_model` replaced by `effect(config)`."
    import adm_edu.learner

    with mock.patch.object(adm_edu.learner, 'train_model', lambda config, **kw: effect(config)):
        return as_user_sees(train, *argv)


def training_state(path, iter=5, n_iter=10, **extra):
    "A minimal training checkpoint of the default configuration (what check_resume reads)."
    config = TrainConfig(**extra.pop('config', {})).to_dict()
    state = dict(format=CKPT_FORMAT, kind='training', iter=iter, n_iter=n_iter, model={}, opt={})
    save_checkpoint(dict(state, config=config, **extra), path)


def test_existing_run_needs_resume_or_overwrite(files, tmp_path):
    "Point 2: a run in --out is never replaced silently; --overwrite says so explicitly."
    run = tmp_path / 'run'
    run.mkdir()
    (run / 'model.pt').write_bytes(b'a finished run')
    one_line_error(train, '--out', run, contains=f"--out {run} holds a run (model.pt)")
    one_line_error(train, '--out', run, '--resume', '--overwrite', contains='pick one')
    assert (run / 'model.pt').read_bytes() == b'a finished run'
    seen = []
    code, err = mocked_train('--out', run, '--overwrite', effect=seen.append)
    assert code == 0 and len(seen) == 1, err
    assert sorted(p.name for p in run.iterdir()) == ['model.pt']  # the lock is gone again


def test_second_process_on_a_run_dir_is_refused(tmp_path):
    "Point 2: the lock keeps a second process out; a dead process's lock is taken over, said so."
    import socket
    from adm_edu.cli import LOCK_NAME

    out = tmp_path / 'run'
    out.mkdir()
    lock = out / LOCK_NAME
    alive = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
    try:
        lock.write_text(f"{alive.pid} {socket.gethostname()}\n")
        one_line_error(train, '--out', out, contains=f"is in use: process {alive.pid} trains")
    finally:
        alive.kill()
        alive.wait()
    # the same pid, now ended: a stale lock
    seen = []
    code, err = mocked_train('--out', out, effect=seen.append)
    assert code == 0 and seen, err
    assert err == (
        f"adm-edu-train: note: took over the stale lock {lock} of process {alive.pid}, "
        "no longer running\n"
    )
    assert not lock.exists()
    # while training, the lock names this process
    held = []
    mocked_train('--out', tmp_path / 'new', effect=lambda c: held.append(lock_of(c)))
    assert held == [f"{os.getpid()} {socket.gethostname()}"]


def lock_of(config):
    from adm_edu.cli import LOCK_NAME

    return (Path(config.out_dir) / LOCK_NAME).read_text().strip()


def test_resume_with_nothing_left_says_so(tmp_path):
    "Point 3: --max-seconds is the whole run's budget; a spent budget is one line, not 0 steps."
    spent = tmp_path / 'spent'
    spent.mkdir()
    training_state(spent / 'last.pt', train_seconds=31.0, config=dict(max_seconds=30))
    one_line_error(
        train,
        '--resume',
        '--max-seconds',
        30,
        '--out',
        spent,
        contains='nothing left to train: ' + str(spent / 'last.pt') + ' has trained 31 s',
    )
    code, err = mocked_train('--resume', '--max-seconds', 60, '--out', spent, effect=print)
    assert code == 0, err
    done = tmp_path / 'done'
    done.mkdir()
    training_state(done / 'last.pt', iter=100, n_iter=10)  # 10 epochs of 10 steps
    one_line_error(train, '--resume', '--out', done, contains='has done all 10 epochs')
    r = run('adm-edu-train', '--help')
    assert 'whole run, resumes included' in ' '.join(r.stdout.split())


@pytest.fixture
def dangling(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path('lnk').symlink_to(tmp_path / 'gone')
    return 'symbolic link to ' + str(tmp_path / 'gone') + ', which is missing'


def test_dangling_symlink_outputs_fail_at_second_zero(files, dangling):
    "Point 4: every script's output behind a dangling symlink is one line before any work."
    one_line_error(
        sample_cli, '--model', files / 'tiny.pt', '--out', 'lnk/o.npz', contains=dangling
    )
    one_line_error(evaluate, '--model', files / 'tiny.pt', '--out', 'lnk/m.json', contains=dangling)
    one_line_error(train, '--out', 'lnk/run', contains=dangling)
    one_line_error(demo, '--out', 'lnk/demo', contains=dangling)
    one_line_error(experiment, 'toy', '--root', 'lnk/r', contains=dangling)
    assert not Path('gone').exists()


def test_settings_out_of_range(files):
    "Point 5: eta > 1 is refused; absurd guidance weights get a note saying what will happen."
    base = ['--model', files / 'tiny.pt', '--n', 2, '--steps', 2, '--out', files / 'e.npz']
    one_line_error(sample_cli, *base, '--eta', 5, contains='--eta must lie in [0, 1]')
    code, err = as_user_sees(sample_cli, *base, '--eta', 1)
    assert code == 0, err
    torch.manual_seed(0)
    export_pretrained(
        UNet(**TINY, class_dropout_null=True),
        'tinynull',
        'diffusion',
        {**TINY, 'class_dropout_null': True},
        dict(command='(test)'),
        schedule='cosine',
        T=20,
        weights_dir=files,
    )
    base[1] = files / 'tinynull.pt'
    code, err = as_user_sees(sample_cli, *base, '--cfg', 1e6)
    assert code == 0 and err.startswith('adm-edu-sample: note: --cfg 1e+06 is far above'), err
    code, err = as_user_sees(sample_cli, *base, '--cfg', 3)
    assert code == 0 and 'far above' not in err, err


def test_float_images_read_as_meant(files):
    "Point 5: the API refuses [0, 1] floats unless told, as the CLI refuses float sample files."
    from adm_edu.metrics import nll_bits_per_dim
    from adm_edu.viz import save_grid

    x = torch.rand(2, 1, 8, 8)
    with pytest.raises(ValueError, match='ambiguous'):
        save_grid(x, files / 'x.png')
    assert not (files / 'x.png').exists()
    with pytest.raises(ValueError, match='ambiguous'):
        nll_bits_per_dim(lambda xt, t: xt, __import__('adm_edu').schedule.Schedule.cosine(5), x)
    save_grid(x, files / 'x.png', unit_range=True)
    # point 8: a class-conditional model without labels names the parameter to pass
    sched = __import__('adm_edu').schedule.Schedule.cosine(5)
    with pytest.raises(ValueError, match=r'pass labels= \(one class index per image\)'):
        nll_bits_per_dim(UNet(**TINY), sched, x * 2 - 1, device='cpu')
    one_line_error(evaluate, '--samples', files / 'float.npz', '--out', files / 'm.json')


def test_user_errors_one_line(files, tmp_path):
    "Point 6: --bs above the dataset, a huge --n, the NaN guard: each one line, exit 1."
    one_line_error(
        train,
        '--dataset',
        'digits',
        '--bs',
        5000,
        '--out',
        tmp_path / 'bs',
        contains='batch size 5000 (--bs) is larger than the dataset',
    )
    assert not (tmp_path / 'bs').exists()
    one_line_error(
        sample_cli,
        '--model',
        files / 'tiny.pt',
        '--n',
        10**12,
        '--steps',
        2,
        '--out',
        files / 'big.npz',
        contains='--n 1000000000000 needs',
    )
    from adm_edu.learner import NaNGuardCallback

    def nan(config):
        raise FloatingPointError(
            "non-finite loss (nan) at step 3, epoch 0, batch 2: training stopped; no checkpoint "
            "had been written yet. " + NaNGuardCallback.advice
        )

    code, err = mocked_train('--out', tmp_path / 'nan', effect=nan)
    assert code == 1 and err.count('\n') == 1 and 'non-finite loss (nan) at step 3' in err, err
    assert '--lr' in err and '--mixed-precision fp32' in err and 'clipping' not in err, err


def test_ctrl_c_is_one_line(files, tmp_path):
    "Point 6: Ctrl-C is one line and exit 130, saying what is kept."
    import adm_edu.cli

    def interrupt(*a, **kw):
        raise KeyboardInterrupt

    out = files / 'int.npz'
    with mock.patch.object(adm_edu.cli, 'generate', interrupt):
        code, err = as_user_sees(
            sample_cli, '--model', files / 'tiny.pt', '--steps', 2, '--out', out
        )
    assert (code, err) == (130, 'adm-edu-sample: interrupted: nothing written\n')
    assert not out.exists()

    def stopped_after_a_checkpoint(config):
        training_state(Path(config.out_dir) / 'last.pt', iter=7)
        raise KeyboardInterrupt

    run_dir = tmp_path / 'run'
    code, err = mocked_train('--out', run_dir, effect=stopped_after_a_checkpoint)
    assert code == 130 and err.startswith(
        'adm-edu-train: interrupted: last checkpoint at step 7 kept'
    ), err
    assert sorted(p.name for p in run_dir.iterdir()) == ['last.pt']  # lock released
    code, err = mocked_train('--out', tmp_path / 'run2', effect=interrupt)
    assert (code, err) == (130, 'adm-edu-train: interrupted: nothing written\n')
    assert not (tmp_path / 'run2').exists()


def test_long_jobs_say_how_long(files, tmp_path, monkeypatch):
    "Point 7: sampling and the NLL estimate their time before they start; no disk, one line."
    import adm_edu.cli

    monkeypatch.setattr(adm_edu.cli, 'ESTIMATE_FROM_S', 0.0)
    out = ['--out', tmp_path / 's.npz']
    code, err = as_user_sees(sample_cli, '--model', files / 'tiny.pt', '--n', 3, '--steps', 2, *out)
    assert code == 0 and err.startswith(
        'adm-edu-sample: note: sampling 3 images (ddim-2): about '
    ), err
    assert '(from a timed model call)' in err.splitlines()[0]
    argv = [
        '--model',
        files / 'tiny.pt',
        '--steps',
        2,
        '--n',
        0,
        '--n-nll',
        2,
        '--dataset',
        'digits',
    ]
    code, err = as_user_sees(evaluate, *argv, '--out', tmp_path / 'm.json', '--device', 'cpu')
    assert code == 0, err
    assert err.startswith('adm-edu-eval: note: the NLL of 2 test images, 20 terms each'), err
    monkeypatch.setattr(adm_edu.cli.shutil, 'disk_usage', lambda p: shutil_usage(free=1000))
    one_line_error(
        sample_cli, '--model', files / 'tiny.pt', '--n', 100, '--steps', 2, *out, contains='GB free'
    )


def shutil_usage(free):
    import shutil

    return shutil._ntuple_diskusage(10**12, 10**12 - free, free)


def test_small_items(files, tmp_path):
    "Point 8: grids near-square, bars on stderr, kind names, a run directory's model.pt."
    from PIL import Image

    png = tmp_path / 'g.png'
    err, stdout = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(stdout):
        run_script(
            sample_cli, ['--model', files / 'tiny.pt', '--n', 16, '--steps', 2, '--out', png]
        )
    assert stdout.getvalue().startswith('wrote 16 images') and '\r' not in stdout.getvalue()
    assert '100.00%' in err.getvalue()  # the bar, on stderr
    side = (4 * (8 + 2) + 2) * 2  # 4 x 4 images of 8 px, 2 px apart, scaled 2x
    assert Image.open(png).size == (side, side)
    one_line_error(
        sample_cli,
        '--model',
        'fmnist-clf',
        '--out',
        files / 'c.npz',
        contains='is a noisy classifier, not a diffusion model',
    )
    run_dir = tmp_path / 'a'
    run_dir.mkdir()
    (run_dir / 'model.pt').write_bytes((files / 'tiny.pt').read_bytes())
    one_line_error(
        sample_cli,
        '--model',
        run_dir,
        '--out',
        files / 'c.npz',
        contains=f"did you mean {run_dir / 'model.pt'}?",
    )
