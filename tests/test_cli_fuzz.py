"""Hypothesis draws argument combinations (valid and invalid numbers, paths, strings) for
adm-edu-sample, -eval and
-train on a tiny model. Every run either succeeds or exits 1 with one line `adm-edu-XXX: message`:
never a traceback
(an exception other than SystemExit fails the test), never a silent success on clearly invalid
input.

The scripts run in-process through `run_script` (what the installed programs run). `adm-edu-train`
runs with
`train_model` replaced by a recorder: its argument checks are under test, not the training."""

import atexit
import contextlib
import io
import math
import shutil
import tempfile
from pathlib import Path
from unittest import mock
import numpy as np
import pytest
import torch
from hypothesis import given, settings, HealthCheck, strategies as st
from adm_edu.cli import run_script, sample_cli, train, evaluate
from adm_edu.learner import TrainConfig
from adm_edu.pretrained import export_pretrained, save_checkpoint, CKPT_FORMAT
from adm_edu.unet import UNet
from tiny_nets import TINY_BASE as TINY

T = 20
# built once per session (hypothesis re-runs the body, not fixtures)
D = Path(tempfile.mkdtemp(prefix='adm-edu-fuzz-'))
atexit.register(shutil.rmtree, D, True)


def _build():
    torch.manual_seed(0)
    export_pretrained(
        UNet(**TINY),
        'tiny',
        'diffusion',
        TINY,
        dict(command='(test)'),
        schedule='cosine',
        T=T,
        weights_dir=D,
    )
    export_pretrained(
        UNet(**TINY, class_dropout_null=True),
        'tinynull',
        'diffusion',
        {**TINY, 'class_dropout_null': True},
        dict(command='(test)'),
        schedule='cosine',
        T=T,
        weights_dir=D,
    )
    (D / 'empty.pt').write_bytes(b'')
    (D / 'afile').write_text('x')
    (D / 'adir').mkdir()
    run = D / 'run'
    run.mkdir()
    save_checkpoint(
        dict(
            format=CKPT_FORMAT,
            kind='training',
            iter=5,
            n_iter=10,
            model={},
            opt={},
            config=TrainConfig(dataset='digits').to_dict(),
        ),
        run / 'last.pt',
    )
    imgs = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 1), dtype=np.uint8)
    np.savez(D / 'ok.npz', images=imgs, labels=np.arange(5))
    np.savez(D / 'float.npz', images=imgs / 255.0)
    (D / 'junk.npz').write_bytes(b'junk')


_build()

MODELS = {
    'tiny': str(D / 'tiny.pt'),
    'tinynull': str(D / 'tinynull.pt'),
    'missing': str(D / 'nope.pt'),
    'empty': str(D / 'empty.pt'),
    'dir': str(D / 'adir'),
    'unknown': 'no-such-model',
}
ints = st.one_of(st.integers(-3, 30), st.sampled_from(['abc', '1.5', '', '1e3']))
floats = st.one_of(
    st.floats(-2, 3, allow_nan=False), st.sampled_from(['inf', '-inf', 'nan', 'x', '1e400'])
)


def mostly(valid, anything):
    "Valid values four times out of five: fully valid combinations (they must succeed) occur too."
    return st.one_of(valid, valid, valid, valid, anything)


OUTCOMES = []  # (program, exit status) of every run, for the coverage check at the end


def as_user_sees(func, argv):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            run_script(func, [str(a) for a in argv])
            code = 0
        except SystemExit as e:
            code = e.code
    return code, err.getvalue()


def num(v, kind=float):
    "The value argparse would give, or None when it cannot parse it."
    try:
        return kind(v)
    except (TypeError, ValueError):
        return None


def check(func, argv, invalid: bool):
    code, err = as_user_sees(func, argv)
    assert code in (0, 1), (argv, code, err)
    if code == 1:
        assert (
            err.count('\n') == 1 and err.startswith(func.prog + ': ') and 'Traceback' not in err
        ), (argv, err)
    if invalid:
        assert code == 1, f"clearly invalid input accepted: {argv}"
    OUTCOMES.append((func.prog, code))
    return code


def finite_ge(v, lo=0.0):
    x = num(v)
    return x is not None and math.isfinite(x) and x >= lo


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    model=mostly(st.sampled_from(['tiny', 'tinynull']), st.sampled_from(list(MODELS))),
    n=mostly(st.integers(1, 4), ints),
    steps=mostly(st.integers(1, T), ints),
    sampler=mostly(st.sampled_from(['ddim', 'ancestral']), st.just('euler')),
    eta=mostly(st.floats(0, 1), floats),
    cfg=mostly(st.just(0), floats),
    classes=mostly(st.sampled_from([None, '0,3', '9']), st.sampled_from(['11', 'a,b', '-1'])),
    out=mostly(
        st.sampled_from(['s.npz', 'g.png', 'new/deeper/s.npz']),
        st.sampled_from(['x.jpg', 'adir', 'afile/s.npz']),
    ),
    bs=mostly(st.integers(1, 8), ints),
    device=mostly(st.sampled_from(['cpu', 'auto']), st.just('tpu')),
)
def test_fuzz_sample(model, n, steps, sampler, eta, cfg, classes, out, bs, device):
    argv = [
        '--model',
        MODELS[model],
        '--n',
        n,
        '--steps',
        steps,
        '--sampler',
        sampler,
        '--eta',
        eta,
        '--cfg',
        cfg,
        '--out',
        D / out,
        '--batch-size',
        bs,
        '--device',
        device,
    ]
    if classes is not None:
        argv += ['--classes', classes]
    nn, ss, bb = num(n, int), num(steps, int), num(bs, int)
    cls_ok = classes is None or all(c.isdigit() and int(c) < 10 for c in classes.split(','))
    invalid = (
        model not in ('tiny', 'tinynull')
        or nn is None
        or nn < 1
        or nn > 6
        or ss is None
        or not 1 <= ss <= T
        or sampler == 'euler'
        or not finite_ge(eta)
        or num(eta) > 1  # refused: eq. 12's direction term would be clamped
        or not finite_ge(cfg)
        or (num(cfg) and model != 'tinynull')
        or not cls_ok
        or out in ('x.jpg', 'adir', 'afile/s.npz')
        or bb is None
        or bb < 1
        or device == 'tpu'
    )
    if nn is not None and nn > 6 and not invalid:
        return  # valid but costly: not what this test is about
    if check(sample_cli, argv, invalid) == 0:
        assert (D / out).exists()


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    model=mostly(st.just('tiny'), st.sampled_from([None, 'missing', 'empty'])),
    samples=mostly(st.none(), st.sampled_from(['ok.npz', 'float.npz', 'junk.npz', 'nope.npz'])),
    n=mostly(st.just(0), ints),
    n_nll=mostly(st.integers(1, 3), ints),
    steps=mostly(st.integers(1, T), ints),
    k=mostly(st.integers(1, 5), ints),
    dataset=mostly(st.just('digits'), st.just('cifar')),
    out=mostly(st.just('m.json'), st.sampled_from(['adir', 'afile/m.json'])),
)
def test_fuzz_eval(model, samples, n, n_nll, steps, k, dataset, out):
    argv = [
        '--n',
        n,
        '--n-nll',
        n_nll,
        '--steps',
        steps,
        '--k',
        k,
        '--dataset',
        dataset,
        '--out',
        D / out,
        '--device',
        'cpu',
    ]
    if model:
        argv += ['--model', MODELS[model]]
    if samples:
        argv += ['--samples', D / samples]
    nn, nl, ss, kk = num(n, int), num(n_nll, int), num(steps, int), num(k, int)
    if nl is not None and nl > 3:
        return  # keep the NLL cheap
    invalid = (
        (model is None and samples is None)
        or model in ('missing', 'empty')
        or samples in ('float.npz', 'junk.npz', 'nope.npz')
        or None in (nn, nl, ss, kk)
        or (nn is not None and (nn < 0 or nn == 1))
        or (nl is not None and nl < 0)
        or (ss is not None and (ss < 1 or (model == 'tiny' and ss > T)))
        or (kk is not None and kk < 1)
        or dataset == 'cifar'
        or out != 'm.json'
        or samples == 'ok.npz'
        or (model == 'tiny' and nn and not samples)
        or (model == 'tiny' and not samples and not nn and not nl)
        or (model is None and samples is None)
    )
    # digits: sample metrics refused (they need Fashion-MNIST), the NLL of the tiny model runs
    check(evaluate, argv, invalid)


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    dataset=mostly(st.just('digits'), st.just('cifar')),
    preset=mostly(st.just('fmnist-s'), st.sampled_from(['adm-imagenet64', 'nope'])),
    loss=mostly(st.sampled_from(['hybrid', 'simple']), st.just('l1')),
    steps=mostly(st.integers(2, 2000), ints),
    steps_flag=st.sampled_from(['-t', '--t', '--diffusion-steps']),
    epochs=mostly(st.integers(1, 5), ints),
    bs=mostly(st.integers(1, 128), ints),
    lr=mostly(st.floats(1e-5, 1e-2), floats),
    ema=mostly(st.floats(0, 0.999), floats),
    p_uncond=mostly(st.floats(0, 0.5), floats),
    max_seconds=mostly(st.floats(0, 100), floats),
    mp=mostly(st.sampled_from(['auto', 'fp32']), st.sampled_from(['fp16', 'int8'])),
    out=mostly(st.just('new'), st.sampled_from(['run', 'afile', 'afile/x', 'adir'])),
    resume=mostly(st.just(False), st.just(True)),
    init=mostly(st.none(), st.sampled_from(['tiny', 'missing', 'empty'])),
)
def test_fuzz_train(
    dataset,
    preset,
    loss,
    steps,
    steps_flag,
    epochs,
    bs,
    lr,
    ema,
    p_uncond,
    max_seconds,
    mp,
    out,
    resume,
    init,
):
    argv = (
        [
            '--dataset',
            dataset,
            '--preset',
            preset,
            '--loss',
            loss,
            steps_flag,
            steps,
            '--epochs',
            epochs,
            '--bs',
            bs,
            '--lr',
            lr,
            '--ema',
            ema,
            '--p-uncond',
            p_uncond,
            '--max-seconds',
            max_seconds,
            '--mixed-precision',
            mp,
            '--out',
            D / out,
            '--device',
            'cpu',
        ]
        + (['--resume'] if resume else [])
        + (['--init', MODELS[init]] if init else [])
    )
    st_, ep, b = num(steps, int), num(epochs, int), num(bs, int)
    lrv, emav, pu = num(lr), num(ema), num(p_uncond)
    rec = []
    invalid = (
        dataset == 'cifar'
        or preset != 'fmnist-s'
        or loss == 'l1'
        or st_ is None
        or st_ < 2
        or ep is None
        or ep < 1
        or b is None
        or b < 1
        or not finite_ge(lr)
        or lrv == 0
        or not finite_ge(ema)
        or emav >= 1
        or not finite_ge(p_uncond)
        or pu >= 1
        or not finite_ge(max_seconds)
        or mp in ('fp16', 'int8')
        or out in ('afile', 'afile/x')
        or (resume and init)
        or (resume and out != 'run')
        or (out == 'run' and not resume)  # a run is there: --resume or --overwrite
        or init in ('missing', 'empty')
        or (
            resume
            and out == 'run'
            and (st_, b, loss, dataset, pu, lrv, emav)
            != (1000, 64, 'hybrid', 'digits', 0, 2e-4, 0.9999)
        )
    )
    with mock.patch('adm_edu.learner.train_model', lambda config, **kw: rec.append(config)):
        code = check(train, argv, invalid)
    if code == 0:
        assert rec and rec[0].T == st_ and rec[0].resume == resume


def test_fuzz_reached_both_outcomes():
    "The draws above reached successes and user errors of every program (it runs after them)."
    if not OUTCOMES:
        pytest.skip('run with the fuzz tests above')
    for prog in ('adm-edu-sample', 'adm-edu-eval', 'adm-edu-train'):
        codes = {c for p, c in OUTCOMES if p == prog}
        assert codes == {0, 1}, (prog, codes)
