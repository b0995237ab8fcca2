"Property and reference tests for adm_edu.schedule (its chapter runs the chapter's own checks)."

import math
import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st
from adm_edu.schedule import Schedule, linear_betas, cosine_betas, space_timesteps

SCHEDS = {(n, T): Schedule.named(n, T) for n in ('linear', 'cosine') for T in (50, 1000, 4000)}


@given(
    name=st.sampled_from(['linear', 'cosine']),
    T=st.sampled_from([50, 1000, 4000]),
    B=st.integers(1, 5),
    C=st.integers(1, 3),
    H=st.integers(1, 6),
    data=st.data(),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_shapes_dtypes_broadcasting(name, T, B, C, H, data, dtype):
    s = SCHEDS[(name, T)]
    t = torch.tensor(data.draw(st.lists(st.integers(0, T - 1), min_size=B, max_size=B)))
    x0 = torch.randn(B, C, H, H, dtype=dtype)
    noise = torch.randn_like(x0)
    xt = s.q_sample(x0, t, noise)
    assert xt.shape == x0.shape and xt.dtype == dtype
    # each example uses its own t: compare with one-at-a-time evaluation
    for i in range(B):
        ab = s.alpha_bar[t[i]].item()
        a, b = math.sqrt(ab) * x0[i].double(), math.sqrt(1 - ab) * noise[i].double()
        # rounding scales with the terms, not their sum (they can cancel)
        tol = 4 * torch.finfo(dtype).eps * float((a.abs() + b.abs()).max())
        assert torch.allclose(xt[i].double(), a + b, atol=tol, rtol=0)
    m, v, lv = s.q_posterior(x0, xt, t)
    assert m.shape == x0.shape and v.shape == (B, 1, 1, 1) and lv.shape == (B, 1, 1, 1)
    assert torch.all(v >= 0) and torch.isfinite(lv).all()
    # eps <-> x0 round trip
    back = s.pred_x0_from_eps(xt, t, noise)
    # rounding in `dtype`, amplified by 1/sqrt(alpha_bar_t) when x0 is recovered; near t = 0 the
    # coefficient sqrt(1/alpha_bar - 1) is itself a cancellation, with relative error
    # eps / (1 - alpha_bar)
    ab = s.alpha_bar[t]
    amp = (
        xt.abs().amax((1, 2, 3)).double() + noise.abs().amax((1, 2, 3)).double() / (1 - ab).sqrt()
    ) / ab.sqrt()
    assert (
        (back.double() - x0.double()).abs().amax((1, 2, 3)) <= 8 * torch.finfo(dtype).eps * amp
    ).all()


@given(T=st.integers(50, 3000))
def test_betas_valid(T):
    for b in (linear_betas(T), cosine_betas(T)):
        assert (
            b.shape == (T,)
            and b.dtype == np.float64
            and (b > 0).all()
            and (b <= 0.999).all()  # the cap of Nichol & Dhariwal's eq. 17, enforced
        )
        s = Schedule(b)
        assert torch.all(s.alpha_bar[1:] < s.alpha_bar[:-1])
        assert s.posterior_variance[0] == 0 and torch.all(s.posterior_variance[1:] > 0)
        assert torch.all(s.posterior_variance <= s.betas + 1e-15)  # beta-tilde <= beta
    assert cosine_betas(T)[-1] == 0.999  # alpha_bar(T) = cos(pi/2)^2 ~ 0: beta_T -> 1, capped


@pytest.mark.parametrize('T', [1000, 4000])
def test_against_diffusers(T):
    DDPMScheduler = pytest.importorskip('diffusers').DDPMScheduler  # the reference

    ref = DDPMScheduler(num_train_timesteps=T, beta_schedule='squaredcos_cap_v2')
    s = Schedule.cosine(T)
    assert torch.allclose(s.betas.float(), ref.betas, atol=1e-6)
    ref = DDPMScheduler(
        num_train_timesteps=T,
        beta_schedule='linear',
        beta_start=1e-4 * 1000 / T,
        beta_end=0.02 * 1000 / T,
    )
    s = Schedule.linear(T)
    # float32 cumprod of T terms
    assert torch.allclose(
        s.alpha_bar.float(), ref.alphas_cumprod, atol=T * torch.finfo(torch.float32).eps, rtol=0
    )
    # diffusers' posterior variance (fixed_small) at every t
    x0 = torch.randn(T, 1)
    xt = torch.randn(T, 1)
    t = torch.arange(T)
    _, v, _ = s.q_posterior(x0, xt, t)
    refv = torch.stack([ref._get_variance(int(i)) for i in t])
    # diffusers works in float32
    assert torch.allclose(v.flatten()[1:], refv[1:].float(), rtol=2e-3)


def test_bad_input():
    s = SCHEDS[('cosine', 1000)]
    x = torch.randn(2, 1, 4, 4)
    with pytest.raises(IndexError, match=r'\[0, 1000\)'):
        s.q_sample(x, torch.tensor([-1, 3]))
    with pytest.raises(TypeError, match='integer'):
        s.q_sample(x, torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match='batch size mismatch'):
        s.q_sample(x, torch.tensor([1]))
    with pytest.raises(ValueError, match='shape'):
        s.q_sample(x, torch.tensor([1, 2]), noise=torch.randn(3))
    with pytest.raises(ValueError, match='positive integer'):
        cosine_betas(-3)
    with pytest.raises(ValueError, match="'linear' or 'cosine'"):
        Schedule.named('sigmoid')
    with pytest.raises(ValueError):
        space_timesteps(100, 'ddimx')
    with pytest.raises(ValueError):
        s.respace([])


@pytest.mark.parametrize('name', ['linear', 'cosine'])
def test_posterior_is_the_product_of_gaussians(name):
    """q(x_{t-1} | x_t, x_0) from Bayes' rule, independently: the prior N(sqrt(ab_{t-1}) x0,
    1 - ab_{t-1}) times the likelihood N(x_t; sqrt(alpha_t) x_{t-1}, beta_t), as precisions."""
    s = Schedule.named(name, 1000)
    g = torch.Generator().manual_seed(0)
    t = torch.tensor([1, 2, 10, 500, 998, 999])
    x0 = torch.randn(6, 3, generator=g, dtype=torch.float64)
    xt = torch.randn(6, 3, generator=g, dtype=torch.float64)
    b = s.betas[t][:, None]
    abp = s.alpha_bar[t - 1][:, None]
    precision = 1 / (1 - abp) + (1 - b) / b
    mean = (abp.sqrt() * x0 / (1 - abp) + (1 - b).sqrt() * xt / b) / precision
    m, v, _ = s.q_posterior(x0, xt, t)
    torch.testing.assert_close(m, mean, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(v.expand_as(m), (1 / precision).expand_as(m), rtol=1e-9, atol=1e-15)
