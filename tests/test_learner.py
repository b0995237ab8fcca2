"""Tests of adm_edu.learner: exact resume after SIGKILL, DDP gradient agreement (gloo, 2 CPU
processes), NaN guard,
atomic checkpoints, p_uncond validation. Run as a script
(`python tests/test_learner.py run OUT [--resume] [--sleep S]`)
it is the training worker the kill test launches."""

import os
import signal
import subprocess
import sys
import time
import socket
from pathlib import Path
import numpy as np
import pytest
import torch
from torch import nn

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1]))
from adm_edu.learner import (
    diffusion_dls,
    diffusion_learner,
    DiffusionDL,
    CheckpointCallback,
    EMACallback,
)
from adm_edu.learner import TrainConfig
from adm_edu.pretrained import save_checkpoint as save_atomic, read_checkpoint as _load, CKPT_FORMAT
from adm_edu.data import digits, ImageDataset
from adm_edu.schedule import Schedule

# history=2: warm after 100 draws, so its state matters
from adm_edu.resample import (
    ImportanceSampler,
)
from fastai.callback.core import Callback


@pytest.fixture(autouse=True, scope='module')
def _one_thread():
    "The models here are tiny: one thread is faster than two (no OpenMP spinning when busy)."
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


class TinyEps(nn.Module):
    "A few-thousand-parameter eps(+v) predictor with time and label embeddings, and dropout."

    def __init__(self, ch=1, width=16, T=50, num_classes=10, null=False, learn_sigma=True):
        super().__init__()
        self.num_classes, self.learn_sigma = num_classes, learn_sigma
        self.t_emb = nn.Embedding(T, width)
        self.label_emb = nn.Embedding(num_classes + int(null), width)
        self.inp = nn.Conv2d(ch, width, 3, padding=1)
        self.mid = nn.Conv2d(width, width, 3, padding=1)
        self.drop = nn.Dropout(0.1)
        self.out = nn.Conv2d(width, ch * (2 if learn_sigma else 1), 3, padding=1)

    def forward(self, x, t, y=None):
        e = self.t_emb(t) + (self.label_emb(y) if y is not None else 0)
        h = torch.relu(self.inp(x) + e[:, :, None, None])
        return self.out(self.drop(torch.relu(self.mid(h))))


def _dls(n=320, bs=32):
    tr, te = digits('train'), digits('test')
    return diffusion_dls(
        ImageDataset(tr.images[:n], tr.labels[:n], tr.classes),
        bs=bs,
        valid=te,
        n_valid=64,
        device='cpu',
        seed=5,
    )


class _Sleep(Callback):
    order = 100

    def __init__(self, s):
        self.s = s

    def after_batch(self):
        if self.training:
            time.sleep(self.s)


def run(out, resume=False, sleep=0.0, epochs=3):
    "Train TinyEps on 320 digits (10 steps/epoch) for `epochs` epochs, checkpointing every 7 steps."
    nthreads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        model, sched = TinyEps(), Schedule.named('cosine', 50)
        config = TrainConfig.from_flat(
            loss='hybrid', lr=3e-3, ema=0.99, seed=1, progress=False, resume=resume
        )
        learn = diffusion_learner(
            _dls(),
            model,
            sched,
            config,
            CheckpointCallback(Path(out) / 'last.pt', 7),
            cbs=[_Sleep(sleep)] if sleep else None,
            schedule_sampler=ImportanceSampler(50, history=2),
        )
        learn.fit_one_cycle(epochs, 3e-3)
        return learn
    finally:
        torch.set_num_threads(nthreads)


def _states_equal(a, b):
    test = lambda x, y: torch.equal(torch.as_tensor(x), torch.as_tensor(y))
    assert a['iter'] == b['iter']
    for k in a['model']:
        assert test(a['model'][k], b['model'][k]), f"model {k} differs"
    for k in a['ema']['weights']:
        assert test(a['ema']['weights'][k], b['ema']['weights'][k]), f"ema {k} differs"
    assert a['ema']['num_updates'] == b['ema']['num_updates']
    for i, s in a['opt']['state'].items():
        for k, v in s.items():
            assert test(v, b['opt']['state'][i][k]), f"opt state {i}.{k} differs"
    assert np.array_equal(
        a['schedule_sampler']['loss_history'], b['schedule_sampler']['loss_history']
    )
    assert np.array_equal(
        a['schedule_sampler']['loss_counts'], b['schedule_sampler']['loss_counts']
    )


def test_resume_after_sigkill_is_exact(tmp_path):
    ref = run(tmp_path / 'ref')
    assert ref.train_iter == 30 and ref.diffusion.schedule_sampler.warmed_up()
    env = {**os.environ, 'PYTHONPATH': str(HERE.parents[1])}
    p = subprocess.Popen(
        [sys.executable, str(HERE), 'run', str(tmp_path / 'b'), '--sleep', '0.3'],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    ck, deadline = tmp_path / 'b' / 'last.pt', time.time() + 120
    try:
        while time.time() < deadline and p.poll() is None:
            if ck.exists() and _load(ck)['iter'] >= 14:
                break  # reading while the worker replaces it is safe (atomic rename)
            time.sleep(0.1)
        assert p.poll() is None, f"worker ended early: {p.stdout.read().decode()[-2000:]}"
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
    finally:
        if p.poll() is None:
            p.kill()
    saved = _load(ck)
    # killed mid-run, mid-epoch (10 steps per epoch)
    assert saved['iter'] in (14, 21, 28), saved['iter']
    res = run(tmp_path / 'b', resume=True)
    assert res.train_iter == 30
    _states_equal(_load(tmp_path / 'ref' / 'last.pt'), _load(ck))


def test_checkpoint_is_atomic(tmp_path):
    p = tmp_path / 'x.pt'
    save_atomic({'a': torch.arange(3)}, p)

    class Boom:
        def __reduce__(self):
            raise RuntimeError('boom')

    with pytest.raises(RuntimeError, match='boom'):
        save_atomic({'a': Boom()}, p)
    assert torch.equal(torch.load(p)['a'], torch.arange(3))  # the old file survives a failed write
    assert os.listdir(tmp_path) == ['x.pt']  # and no temporary file is left behind


class _Poison(Callback):
    "Makes the loss NaN at step 5 by poisoning the model output."

    order = 0

    def after_pred(self):
        if self.training and self.learn.train_iter == 5:
            self.learn.pred = self.pred * float('nan')


def test_nan_guard_names_step_and_keeps_checkpoint(tmp_path):
    torch.manual_seed(0)
    learn = diffusion_learner(
        _dls(),
        TinyEps(),
        Schedule.named('cosine', 50),
        TrainConfig(lr=1e-3).replace(progress=False),
        CheckpointCallback(tmp_path, 2),
        cbs=[_Poison()],
    )
    with pytest.raises(
        FloatingPointError,
        match=r'non-finite loss \(nan\) at step 5.*last good checkpoint .* \(step 4\)',
    ):
        learn.fit(1)
    ck = _load(tmp_path / 'last.pt')
    assert ck['iter'] == 4 and all(torch.isfinite(v).all() for v in ck['model'].values())


def test_p_uncond_needs_null_class():
    quiet = TrainConfig.from_flat(progress=False)
    learn = diffusion_learner(
        _dls(), TinyEps(null=False), Schedule.named('cosine', 50), quiet.replace(p_uncond=0.1)
    )
    with pytest.raises(ValueError, match='num_classes \\+ 1 = 11'):
        learn.fit(1)
    # with the null row, about p_uncond of the labels become 10
    learn = diffusion_learner(
        _dls(), TinyEps(null=True), Schedule.named('cosine', 50), quiet.replace(p_uncond=0.25)
    )
    seen = []

    class Spy(Callback):
        order = 0

        def before_batch(self):
            if self.training:
                seen.append(self.xb[2].clone())

    learn.add_cb(Spy())
    learn.fit(1)
    y = torch.cat(seen)
    assert 0.15 < (y == 10).float().mean() < 0.35 and (y < 10).any()


def test_loss_decreases_and_ema_lags():
    torch.manual_seed(0)
    config = TrainConfig.from_flat(loss='simple', lr=3e-3, ema=0.9, progress=False)
    learn = diffusion_learner(
        _dls(n=640), TinyEps(learn_sigma=False), Schedule.named('cosine', 50), config
    )
    learn.fit_one_cycle(2, 3e-3)
    losses = [float(l) for l in learn.recorder.losses]
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])
    diff = [
        (p - q).abs().max()
        for p, q in zip(learn.model.parameters(), learn.ema.ema_model.parameters())
    ]
    assert max(diff) > 0 and learn.ema.num_updates == learn.train_iter == 40


# ---------- data-parallel: two CPU processes, gloo ----------
def _ddp_worker(rank, world, port, q):
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
        MASTER_ADDR='127.0.0.1',
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)
    import copy
    import torch.distributed as dist
    from adm_edu.learner import DiffusionLoss

    dist.init_process_group('gloo', rank=rank, world_size=world)
    try:
        _ddp_body(rank, world, q, copy, dist, DiffusionLoss)
    except BaseException as e:
        import traceback

        q.put((rank, traceback.format_exc(), -1, 'error'))
        raise
    finally:
        dist.destroy_process_group()


def _ddp_body(rank, world, q, copy, dist, DiffusionLoss):
    if True:
        torch.manual_seed(0)
        model = TinyEps()
        model.drop.p = 0.0  # no dropout: the reference forward below must see the same network
        config = TrainConfig.from_flat(
            loss='hybrid', lr=1e-3, progress=False, seed=3, grad_clip=None, ema=0
        )
        learn = diffusion_learner(_dls(n=128, bs=16), model, Schedule.named('cosine', 50), config)
        rec = {}

        class Grab(Callback):
            order = 50

            def after_backward(self):
                if self.train_iter:
                    return
                ddp = torch.cat([p.grad.flatten() for p in self.learn.model.parameters()])
                ref = copy.deepcopy(self.learn.model.module)
                ref.zero_grad()  # weights before the first step
                DiffusionLoss(self.learn.diffusion.sched, 'hybrid')(
                    ref(*self.xb), *self.yb
                ).backward()
                local = torch.cat([p.grad.flatten() for p in ref.parameters()])
                mean = local.clone()
                dist.all_reduce(mean)
                mean /= world
                rec.update(
                    ddp=ddp,
                    local=local,
                    mean=mean,
                    x0=self.yb[0].clone(),
                    wrapped=type(self.learn.model).__name__,
                )

        learn.add_cb(Grab())
        with learn.distrib_ctx(cpu=True):
            learn.fit(1)
        # a wall-time budget under DDP: the ranks share one clock, so they stop at one step
        # with the same weights
        torch.manual_seed(0)
        timed = diffusion_learner(
            _dls(n=128, bs=16),
            TinyEps(),
            Schedule.named('cosine', 50),
            config.replace(max_seconds=1.0),
        )
        with timed.distrib_ctx(cpu=True):
            timed.fit_one_cycle(1000)
        rec.update(
            timed_iter=timed.train_iter,
            timed_weights=torch.cat([p.detach().flatten() for p in timed.model.parameters()]),
        )
        q.put(
            (
                rank,
                {k: v.numpy() if torch.is_tensor(v) else v for k, v in rec.items()},
                learn.train_iter,
                type(learn.model).__name__,
            )
        )


def test_ddp_gradients_agree_gloo():
    import torch.multiprocessing as mp

    # forkserver: one clean server imports fastai/accelerate once and forks both ranks (plain fork
    # after torch used
    # its thread pool can deadlock; spawn would import everything twice)
    ctx = mp.get_context('forkserver')
    ctx.set_forkserver_preload(['adm_edu.learner', 'accelerate', 'test_learner'])
    q, port = ctx.Queue(), _free_port()
    ps = [ctx.Process(target=_ddp_worker, args=(r, 2, port, q)) for r in range(2)]
    for p in ps:
        p.start()
    try:
        res = dict((r, (rec, it, cls)) for r, rec, it, cls in (q.get(timeout=90) for _ in ps))
    finally:
        for p in ps:
            p.join(timeout=30)
        for p in ps:
            if p.is_alive():
                p.kill()
    for r, (rec, it, cls) in res.items():
        assert cls != 'error', f"rank {r} failed:\n{rec}"
    (r0, it0, cls0), (r1, it1, cls1) = res[0], res[1]
    # wrapped during fit, unwrapped after
    assert r0['wrapped'] == 'DistributedDataParallel' and cls0 == 'TinyEps'
    assert it0 == it1 == 4  # 128 images / 16 / 2 ranks
    assert not np.allclose(r0['x0'], r1['x0'])  # the ranks saw different data
    # ... hence different local gradients
    assert not np.allclose(r0['local'], r1['local'], atol=1e-4)
    np.testing.assert_array_equal(r0['ddp'], r1['ddp'])  # all-reduced gradients agree
    # and are the mean of the local ones
    np.testing.assert_allclose(r0['ddp'], r0['mean'], rtol=1e-4, atol=1e-6)
    # one clock: stopped together, by time
    assert 0 < r0['timed_iter'] == r1['timed_iter'] < 1000 * 4
    # ... with identical replicas
    np.testing.assert_array_equal(r0['timed_weights'], r1['timed_weights'])


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


if __name__ == '__main__' and len(sys.argv) > 2 and sys.argv[1] == 'run':
    run(
        sys.argv[2],
        resume='--resume' in sys.argv,
        sleep=float(sys.argv[sys.argv.index('--sleep') + 1]) if '--sleep' in sys.argv else 0.0,
    )


def test_a_resumed_epochs_bar_starts_at_the_checkpoint(tmp_path):
    "A run resumed mid-epoch shows its progress bar from the checkpoint's batch, not from 0."
    from fastai.callback.core import CancelFitException

    class StopAt(Callback):
        order = 90

        def __init__(self, step):
            self.step = step

        def after_batch(self):
            if self.training and self.learn.train_iter >= self.step:
                raise CancelFitException

    class BarValues(Callback):
        order = 65  # after the progress bar is made (60), before the checkpoint moves it (70)

        def before_train(self):
            self.values, bar = [], self.learn.progress.pbar
            update = bar.update
            bar.update = lambda v: (self.values.append(v), update(v))[1]

    def fit(resume, cbs, progress):
        torch.manual_seed(0)
        config = TrainConfig.from_flat(lr=3e-3, seed=1, progress=progress, resume=resume)
        ck = CheckpointCallback(tmp_path / 'last.pt', 3)
        learn = diffusion_learner(_dls(), TinyEps(), Schedule.named('cosine', 50), config, ck, cbs)
        learn.fit_one_cycle(2, 3e-3)
        return learn

    fit(False, [StopAt(3)], progress=False)  # a checkpoint at step 3 of the 10 of an epoch
    probe = BarValues()
    learn = fit(True, [probe, StopAt(5)], progress=True)
    assert probe.values[:1] == [3] and max(probe.values) == 5, probe.values
    assert learn.progress.pbar.total == 10
