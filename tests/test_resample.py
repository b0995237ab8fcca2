"Tests of adm_edu.resample (chapter 07): timestep samplers."

import math
import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st
from scipy.stats import chisquare
from adm_edu.resample import UniformSampler, ImportanceSampler, make_schedule_sampler


def _warm(smp, losses_fn, seed=0):
    rng = np.random.default_rng(seed)
    while not smp.warmed_up():
        t = torch.tensor(rng.integers(0, smp.T, 16))
        smp.update(t, torch.tensor(losses_fn(t.numpy(), rng)))


def test_uniform_before_warmup_and_formula_after():
    smp = ImportanceSampler(20, history=4, uniform_prob=0.05)
    rng = np.random.default_rng(1)
    while not smp.warmed_up():
        np.testing.assert_allclose(smp.weights(), np.full(20, 0.05))
        t = torch.tensor(rng.integers(0, 20, 8))
        smp.update(t, torch.tensor(rng.random(8) * (t.numpy() + 1)))
    w = np.sqrt((smp.loss_history**2).mean(1))
    np.testing.assert_allclose(smp.weights(), 0.95 * w / w.sum() + 0.05 / 20, rtol=1e-12)
    assert abs(smp.weights().sum() - 1) < 1e-12


@given(st.integers(1, 40), st.integers(1, 5), st.floats(0, 1))
def test_weights_sum_to_one(T, H, u):
    smp = ImportanceSampler(T, history=H, uniform_prob=u)
    _warm(smp, lambda t, rng: rng.random(len(t)) + 0.01)
    w = smp.weights()
    assert w.shape == (T,) and abs(w.sum() - 1) < 1e-9 and (w >= u / T - 1e-15).all()
    assert abs(UniformSampler(T).weights().sum() - 1) < 1e-12


def test_history_keeps_newest():
    smp = ImportanceSampler(2, history=3)
    for v in range(1, 6):
        smp.update(torch.tensor([0]), torch.tensor([float(v)]))
    assert smp.loss_history[0].tolist() == [3.0, 4.0, 5.0] and smp.loss_counts.tolist() == [3, 0]


@pytest.mark.parametrize('smp', [UniformSampler(30), ImportanceSampler(30)])
def test_sampled_t_follow_weights_and_unbiased(smp):
    Lt = np.exp(-np.arange(30) / 3.0) * 5 + 0.1
    if isinstance(smp, ImportanceSampler):
        _warm(smp, lambda t, rng: Lt[t] * (1 + 0.1 * rng.standard_normal(len(t))))
    g = torch.Generator().manual_seed(0)
    t, w = smp.sample(100_000, generator=g)
    assert t.dtype == torch.long and w.dtype == torch.float32 and t.shape == w.shape == (100_000,)
    assert chisquare(np.bincount(t.numpy(), minlength=30), smp.weights() * len(t)).pvalue > 1e-3
    est = w.double().numpy() * Lt[t.numpy()]
    assert abs(est.mean() - Lt.mean()) < 4 * est.std() / math.sqrt(len(est))


def test_state_dict_roundtrip_and_errors():
    smp = ImportanceSampler(10, history=2)
    _warm(smp, lambda t, rng: rng.random(len(t)))
    s2 = make_schedule_sampler('importance', 10, history=2)
    s2.load_state_dict(smp.state_dict())
    np.testing.assert_array_equal(s2.weights(), smp.weights())
    u = make_schedule_sampler('uniform', 10)
    u.load_state_dict(u.state_dict())
    u.update(torch.tensor([1]), torch.tensor([2.0]))
    with pytest.raises(ValueError, match='T='):
        ImportanceSampler(11, history=2).load_state_dict(smp.state_dict())
    with pytest.raises(ValueError, match='shape'):
        ImportanceSampler(10, history=3).load_state_dict(smp.state_dict())
    with pytest.raises(ValueError, match="'uniform' or 'importance'"):
        make_schedule_sampler('second-moment', 10)
    with pytest.raises(ValueError, match='batch_size'):
        smp.sample(0)
    with pytest.raises(IndexError, match=r'\[0, 10\)'):
        smp.update(torch.tensor([10]), torch.tensor([1.0]))
    with pytest.raises(ValueError, match='positive integer'):
        UniformSampler(0)
