"Tests of adm_edu.losses (chapter 05): the VLB terms, the NLL and the training losses."

import math
import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st
from scipy.stats import norm
from adm_edu.schedule import Schedule
from adm_edu.losses import normal_kl, discretized_gaussian_log_likelihood, mean_flat
from adm_edu.oracle import GaussianMixture


def test_normal_kl_monte_carlo():
    g = torch.Generator().manual_seed(0)
    for m1, v1, m2, v2 in [(0.3, 0.5, -0.2, 2.0), (1.0, 1e-2, 0.9, 2e-2), (0.0, 3.0, 0.5, 0.7)]:
        x = m1 + math.sqrt(v1) * torch.randn(1_000_000, generator=g, dtype=torch.float64)
        lp = lambda x, m, v: -0.5 * (math.log(2 * math.pi * v) + (x - m) ** 2 / v)
        mc = lp(x, m1, v1) - lp(x, m2, v2)
        kl = normal_kl(torch.tensor(m1, dtype=torch.float64), math.log(v1), m2, math.log(v2)).item()
        assert abs(kl - mc.mean().item()) < 4 * mc.std().item() / 1000 + 1e-6


@given(st.floats(-3, 3), st.floats(-5, 2), st.floats(-3, 3), st.floats(-5, 2))
def test_normal_kl_properties(m1, lv1, m2, lv2):
    kl = normal_kl(torch.tensor(m1, dtype=torch.float64), lv1, m2, lv2).item()
    assert kl >= -1e-12 and math.isfinite(kl)
    assert abs(normal_kl(torch.tensor(m1), lv1, m1, lv1).item()) < 1e-6


@given(st.floats(-3, 3), st.floats(-12, 2))
def test_discretized_likelihood_sums_to_one(mu, log_scale):
    grid = torch.linspace(-1, 1, 256, dtype=torch.float64)
    p = discretized_gaussian_log_likelihood(
        grid, torch.tensor(mu, dtype=torch.float64), torch.tensor(log_scale, dtype=torch.float64)
    ).exp()
    assert abs(p.sum().item() - 1) < 1e-8 and (p > 0).all()


def test_discretized_likelihood_matches_scipy_and_float32():
    x = torch.randint(0, 256, (500,)) / 127.5 - 1
    mu, ls = torch.randn(500) * 0.5, torch.rand(500) * -6
    lp = discretized_gaussian_log_likelihood(x, mu, ls, cdf='exact')
    assert lp.dtype == torch.float32
    xn, m, sd = x.double().numpy(), mu.double().numpy(), np.exp(ls.double().numpy())
    hi = np.where(xn > 0.999, np.inf, xn + 1 / 255)
    lo = np.where(xn < -0.999, -np.inf, xn - 1 / 255)
    ref = np.log(np.maximum(norm.cdf(hi, m, sd) - norm.cdf(lo, m, sd), 1e-12))
    np.testing.assert_allclose(lp.double().numpy(), ref, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r'\[-1, 1\]'):
        discretized_gaussian_log_likelihood(torch.tensor([1.5]), 0.0, 0.0)


def test_default_decoder_is_the_official_function():
    "The default (cdf='approx') is OpenAI's discretized_gaussian_log_likelihood, to float rounding."
    official = pytest.importorskip(
        'guided_diffusion.losses', reason='guided-diffusion-sdk (dev extra) is the reference'
    )
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (3000,), generator=g) / 127.5 - 1
    mu = (x + 0.1 * torch.randn(3000, generator=g)).clamp(-1.3, 1.3)
    ls = -7 * torch.rand(3000, generator=g)
    ref = official.discretized_gaussian_log_likelihood(
        x.double(), means=mu.double(), log_scales=ls.double()
    )
    ours = discretized_gaussian_log_likelihood(x.double(), mu.double(), ls.double())
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-9)
    # the official code runs in float32, where cdf_plus - cdf_min cancels for improbable bins; ours
    # computes in float64. Where the bin holds a probability float32 resolves (> 1e-3), the float32
    # official value agrees with ours
    off32 = official.discretized_gaussian_log_likelihood(x, means=mu, log_scales=ls)
    ok = ref > math.log(1e-3)
    assert ok.sum() > 1000
    torch.testing.assert_close(
        discretized_gaussian_log_likelihood(x, mu, ls)[ok], off32[ok], rtol=0, atol=2e-3
    )


@pytest.mark.parametrize('fixed', [None, 'small', 'large'])
def test_vb_terms_equal_official_vb_terms(fixed):
    """L_t for t = 0 (the decoder NLL) and t > 0 (the KLs) against OpenAI's GaussianDiffusion
    ._vb_terms_bpd, an independent implementation, on the same network output (learned range
    variance, or a fixed one)."""
    gd = pytest.importorskip(
        'guided_diffusion.gaussian_diffusion',
        reason='guided-diffusion-sdk (dev extra) is the reference',
    )
    var = dict(small=gd.ModelVarType.FIXED_SMALL, large=gd.ModelVarType.FIXED_LARGE)
    s = Schedule.linear(1000)
    official = gd.GaussianDiffusion(
        betas=s.betas.double().numpy(),
        model_mean_type=gd.ModelMeanType.EPSILON,
        model_var_type=var.get(fixed, gd.ModelVarType.LEARNED_RANGE),
        loss_type=gd.LossType.RESCALED_MSE,
    )
    g = torch.Generator().manual_seed(2)
    x0 = (torch.randint(0, 256, (6, 3, 4, 4), generator=g) / 127.5 - 1).double()
    t = torch.tensor([0, 0, 1, 7, 500, 999])
    xt = s.q_sample(x0, t, torch.randn(x0.shape, generator=g, dtype=torch.float64))
    out = torch.randn(6, 6 if fixed is None else 3, 4, 4, generator=g, dtype=torch.float64)
    if fixed is None:
        out[:, 3:] = out[:, 3:].clamp(-1, 1)
    ref = official._vb_terms_bpd(lambda x, ts: out, x0, xt, t, clip_denoised=False)['output']
    kw = {} if fixed is None else dict(fixed_variance=fixed)
    ours, _ = s.vb_terms_bpd(out, x0, xt, t, **kw)
    # OpenAI's _extract_into_tensor casts the schedule's coefficients to float32: every term carries
    # the float32 rounding of a log-variance (a handful of terms, |log variance| <= max below)
    lv_max = s.posterior_log_variance_clipped.abs().max().item()
    tol = 16 * torch.finfo(torch.float32).eps * lv_max / math.log(2)
    assert ref.abs().max() > 1e3 * tol  # a bug-sized difference is far above it
    torch.testing.assert_close(ours.double(), ref, rtol=0, atol=tol)


@pytest.mark.parametrize('name', ['linear', 'cosine'])
def test_prior_term_vanishes(name):
    x0 = torch.rand(16, 3, 8, 8) * 2 - 1
    pb = Schedule.named(name, 1000).prior_bpd(x0)
    assert pb.shape == (16,) and (pb >= 0).all() and pb.max() < 1e-4


def test_oracle_nll_matches_exact_gaussian():
    """Exact reverse process (single Gaussian, optimal learned variance): the bound equals
    -log q(x0) (+ discretisation)."""
    gm = GaussianMixture(torch.zeros(1, 1, 4, 4), 0.3)
    sch = Schedule.cosine(20)
    x = gm.sample(8, generator=torch.Generator().manual_seed(3)).clamp(-1, 1)
    x = ((x + 1) * 127.5).round() / 127.5 - 1
    reps = 48
    xx = x.repeat(reps, 1, 1, 1)
    r = sch.nll_bpd(
        gm.model(sch, learn_sigma=True),
        xx,
        clip_denoised=False,
        progress=False,
        batch_t=20,
        generator=torch.Generator().manual_seed(0),
    )
    ref = ((-gm.log_prob(x) / 16 + math.log(127.5)) / math.log(2)).float()
    tot = r['total_bpd'].view(reps, 8)
    se = tot.std(0).mean() / math.sqrt(reps * 8)
    assert (tot - ref).mean().abs() < 4 * se + 0.01
    assert r['vb'].shape == (reps * 8, 20) and r['mse'].shape == (reps * 8, 20)
    # the eps oracle is exact, so its eps-MSE against the true noise is the irreducible posterior
    # error (< 1)
    assert r['mse'].mean() < 1


def test_mixture_bound_brackets_nll():
    """The bound against the exact NLL of a 2-component mixture, both sides. Tolerances: 4 standard
    errors of the paired per-image difference (the bound is a Monte Carlo estimate over t and the
    noise), plus, on the upper side with the optimal (learned) variance, 0.05 bits/dim for what a
    Gaussian reverse step cannot represent of the mixture's q(x_{t-1}|x_t) at T = 200."""
    gm = GaussianMixture(torch.tensor([[-0.4] * 4, [0.5] * 4]), [0.15, 0.2])
    sch = Schedule.cosine(200)
    x = gm.sample(64, generator=torch.Generator().manual_seed(0)).clamp(-1, 1)
    x = ((x + 1) * 127.5).round() / 127.5 - 1
    exact = (-gm.log_prob(x) / 4 + math.log(127.5)) / math.log(2)  # bits/dim, per image

    def gap(model, **kw):
        gen = torch.Generator().manual_seed(1)
        r = sch.nll_bpd(model, x, progress=False, batch_t=50, generator=gen, **kw)
        d = (r['total_bpd'] - exact).double()
        return d.mean().item(), 4 * d.std().item() / math.sqrt(len(d))

    learned, tol = gap(gm.model(sch, learn_sigma=True), clip_denoised=False)
    assert -tol < learned < tol + 0.05  # the optimal variance: the bound is tight
    for kw in (dict(), dict(fixed_variance='large')):
        fixed, tol = gap(gm.model(sch), **kw)
        assert fixed > -tol  # a bound: never below the NLL
        assert fixed > learned - tol  # a fixed variance is no better than the optimal one


def test_nll_calls_model_with_original_timesteps():
    s = Schedule.cosine(100)
    r = s.respace(range(0, 100, 10))
    seen = []

    def model(x, t):
        seen.append(t.clone())
        return torch.zeros_like(x)

    out = r.nll_bpd(model, torch.zeros(2, 1, 2, 2), progress=False, batch_t=3)
    assert sorted(set(torch.cat(seen).tolist())) == list(range(0, 100, 10))
    assert out['vb'].shape == (2, 10) and torch.isfinite(out['total_bpd']).all()
    with pytest.raises(ValueError, match='batch_t'):
        r.nll_bpd(model, torch.zeros(2, 1, 2, 2), progress=False, batch_t=0)


@pytest.mark.parametrize('name', ['linear', 'cosine'])
@pytest.mark.parametrize('T', [1000, 4000])
@pytest.mark.parametrize('autocast', [False, True])
def test_losses_finite_for_every_t(name, T, autocast):
    s = Schedule.named(name, T)
    g = torch.Generator().manual_seed(T)
    t = torch.arange(T)
    x0 = torch.randint(0, 256, (T, 1, 2, 2), generator=g) / 127.5 - 1
    n = torch.randn(x0.shape, generator=g)
    xt = s.q_sample(x0, t, n)
    out = torch.cat(
        [torch.randn(x0.shape, generator=g), torch.rand(x0.shape, generator=g) * 2 - 1], 1
    )
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=autocast):
        out = out.to(torch.bfloat16) if autocast else out
        for lt in ('simple', 'hybrid', 'vlb'):
            L = s.training_losses(out, x0, xt, t, n, lt)
            for k, v in L.items():
                assert torch.isfinite(v).all(), (lt, k)
        bpd, px0 = s.vb_terms_bpd(out, x0, xt, t)
        assert torch.isfinite(bpd).all() and (bpd >= -1e-6).all()


def test_hybrid_stop_gradient_and_errors():
    s = Schedule.cosine(1000)
    x0 = torch.rand(3, 2, 4, 4) * 2 - 1
    t = torch.tensor([0, 10, 900])
    n = torch.randn_like(x0)
    xt = s.q_sample(x0, t, n)
    out = torch.randn(3, 4, 4, 4, requires_grad=True)
    L = s.training_losses(out, x0, xt, t, n, 'hybrid')
    (g,) = torch.autograd.grad(L['vb'].sum(), out)
    assert g[:, :2].abs().max() == 0 and g[:, 2:].abs().max() > 0
    with pytest.raises(ValueError, match='learned sigma'):
        s.training_losses(out[:, :2], x0, xt, t, n, 'vlb')
    with pytest.raises(ValueError, match='loss_type'):
        s.training_losses(out, x0, xt, t, n, 'mse')
    with pytest.raises(ValueError, match='share one shape'):
        s.training_losses(out, x0, xt, t, n[:, :1], 'simple')
