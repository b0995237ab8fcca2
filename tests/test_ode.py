"""adm_edu.ode: DDIM == Euler, Song's step, Heun, encodings; properties and bad input."""

import math
import pytest
import torch
from hypothesis import given, settings, strategies as st

from adm_edu.schedule import Schedule, space_timesteps
from adm_edu.sampling import sample
from adm_edu.oracle import GaussianMixture
from adm_edu.ode import (
    to_ode,
    from_ode,
    euler_step,
    song_step,
    heun_step,
    ode_solve,
    ddim_encode,
    slerp,
    reference_solution,
    interpolate,
)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    name=st.sampled_from(['linear', 'cosine']),
    n=st.sampled_from([None, 7, 50]),
    shape=st.sampled_from([(3, 2), (2, 1, 4, 4)]),
)
def test_ddim_step_is_euler_step(seed, name, n, shape):
    "ddim_step (eta 0, no clipping) == an Euler step of eq. 14 in (x_bar, sigma); float64, mixed t."
    sc = Schedule.named(name, 200)
    if n:
        sc = sc.respace(space_timesteps(200, n))
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    eps = torch.randn(shape, generator=g, dtype=torch.float64)
    t = torch.randint(0, sc.T, (shape[0],), generator=g)
    s, s1 = sc.ode_sigma(t, x)
    euler = from_ode(euler_step(to_ode(x, s), s, s1, eps), s1)
    ddim = sc.ddim_step(eps, x, t, clip_denoised=False)['sample']
    torch.testing.assert_close(euler, ddim, atol=1e-11, rtol=1e-11)


@settings(max_examples=30, deadline=None)
@given(s=st.floats(1e-3, 1e3), x=st.floats(-5, 5))
def test_to_from_ode_roundtrip(s, x):
    v = torch.tensor([[x]], dtype=torch.float64)
    torch.testing.assert_close(from_ode(to_ode(v, s), s), v)
    # alpha_bar = 1 / (sigma^2 + 1): x_bar = x / sqrt(alpha_bar)
    torch.testing.assert_close(to_ode(v, s), v / math.sqrt(1 / (s * s + 1)))


def test_song_vs_euler_and_orders():
    "Against DOP853: Euler and Song's step converge at 1st order, to different errors; Heun at 2nd."
    gm = GaussianMixture([[-0.5, 0.2], [0.5, -0.1]], [0.2, 0.3])

    def eps(x, s, i=None):  # the exact eps at noise level sigma = s
        return gm.eps_at(x, torch.full((len(x),), 1 / (s * s + 1), dtype=torch.float64))

    x = torch.randn(16, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    xb = to_ode(x, 50.0)
    ref = reference_solution(eps, xb, 50.0, 0.02)
    grid = lambda n: torch.logspace(math.log10(50), math.log10(0.02), n + 1, dtype=torch.float64)
    error = lambda m, n: float((ode_solve(eps, xb, grid(n), m) - ref).norm())
    err = {m: [error(m, n) for n in (32, 64, 128)] for m in ('euler', 'song', 'heun')}
    # halving the step divides the error by 2 (first order) or 4 (second order)
    for m, lo, hi in (('euler', 1.6, 2.4), ('song', 1.6, 2.4), ('heun', 3.2, 4.8)):
        assert lo < err[m][1] / err[m][2] < hi, (m, err[m])
    assert abs(err['euler'][2] - err['song'][2]) > 0.01 * err['euler'][2]


def test_song_step_formula():
    "x_bar' = x_bar + 1/2 ((1-a')/a' - (1-a)/a) sqrt(a/(1-a)) eps: alpha_bar, as the paper has it."
    sc = Schedule.linear(1000)
    a, ap = sc.alpha_bar[500].item(), sc.alpha_bar[400].item()
    x, e = torch.randn(5, dtype=torch.float64), torch.randn(5, dtype=torch.float64)
    want = x / math.sqrt(a) + 0.5 * ((1 - ap) / ap - (1 - a) / a) * math.sqrt(a / (1 - a)) * e
    s, s1 = math.sqrt((1 - a) / a), math.sqrt((1 - ap) / ap)
    torch.testing.assert_close(song_step(to_ode(x, s), s, s1, e), want)


def test_encode_decode_roundtrip_and_determinism():
    gm = GaussianMixture([[0.4, -0.3], [-0.4, 0.3]], 0.15)
    sc = Schedule.cosine(500)
    m = gm.model(sc)
    x0 = gm.sample(64, torch.Generator().manual_seed(0)).double()
    steps = space_timesteps(500, 100)[::-1]
    z = ddim_encode(m, sc, x0, steps=steps, method='heun')
    assert torch.equal(z, ddim_encode(m, sc, x0, steps=steps, method='heun'))
    rec = sample(m, sc, z.shape, steps, 'heun', noise=z, options=dict(dtype=torch.float64))
    assert float((rec - x0).pow(2).mean()) < 1e-3
    # euler decoding == chapter 03's DDIM loop at eta 0 without clipping
    xT = torch.randn(8, 2, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(
        sample(m, sc, (8, 2), 20, 'euler', noise=xT),
        sample(m, sc, (8, 2), 20, 'ddim', noise=xT, options=dict(clip_denoised=False)),
    )


def test_heun_counts_evaluations():
    calls = []

    def model(x, t):
        calls.append(int(t[0]))
        return torch.zeros_like(x)

    sc = Schedule.linear(100)
    sample(model, sc, (2, 2), 10, 'heun')
    assert len(calls) == 2 * 10 - 1  # last step to sigma = 0 is Euler
    for name in ('euler', 'song', 'ddim', 'ancestral'):
        calls.clear()
        sample(model, sc, (2, 2), 10, name)
        assert len(calls) == 10, name


def test_slerp():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(4, 100, generator=g), torch.randn(4, 100, generator=g)
    torch.testing.assert_close(slerp(a, b, 0.0), a)
    torch.testing.assert_close(slerp(a, b, 1.0), b)
    mid = slerp(a, b, 0.5)
    mean_norm = (a.norm(dim=1) + b.norm(dim=1)) / 2
    assert ((mid.norm(dim=1) - mean_norm).abs() < 0.1 * a.norm(dim=1)).all()
    linear_mid = (a + b) / 2
    assert (linear_mid.norm(dim=1) < 0.85 * mid.norm(dim=1)).all()  # it shrinks the norm
    torch.testing.assert_close(slerp(a, a, 0.3), a)


def test_bad_input():
    f = lambda x, s, i: torch.zeros_like(x)
    with pytest.raises(ValueError, match='method must be'):
        ode_solve(f, torch.zeros(1), [2.0, 1.0], 'rk4')
    with pytest.raises(ValueError, match='strictly monotone'):
        ode_solve(f, torch.zeros(1), [2.0, 1.0, 1.5])
    with pytest.raises(ValueError, match='at least two'):
        ode_solve(f, torch.zeros(1), [2.0])
    with pytest.raises(ValueError, match='sigma may be 0 only at the end'):
        ode_solve(f, torch.zeros(1), [0.0, 1.0], 'song')
    with pytest.raises(ValueError, match='>= 0'):
        ode_solve(f, torch.zeros(1), [1.0, -1.0])
    sc = Schedule.linear(100)
    with pytest.raises(ValueError, match='strictly decreasing'):
        sample(lambda x, t: x, sc, (2, 2), [0, 50], 'heun')
    with pytest.raises(ValueError, match='between 1 and T=100'):
        sample(lambda x, t: x, sc, (2, 2), 101, 'euler')
    with pytest.raises(ValueError, match='the model returned shape'):
        ddim_encode(lambda x, t: x[:1], sc, torch.zeros(2, 2), steps=5)
    with pytest.raises(ValueError, match='same shape'):
        slerp(torch.zeros(2, 3), torch.zeros(3, 3), 0.5)
    with pytest.raises(ValueError, match='> 0'):
        reference_solution(f, torch.zeros(1), 1.0, 0.0)


class _ExactGuidance:
    "Classifier guidance with the mixture's exact posterior: eps - sqrt(1 - a_bar) grad log p(y|x)."

    def __init__(self, gm, sched):
        self.gm, self.sched = gm, sched

    def eps(self, sched, eps, x, t, t_orig, y):
        with torch.enable_grad():
            xg = x.detach().double().requires_grad_()
            logp = self.gm.class_posterior(xg, t_orig, self.sched).log().gather(1, y[:, None]).sum()
            (grad,) = torch.autograd.grad(logp, xg)
        return eps - sched.extract('sqrt_one_minus_alpha_bar', t, x) * grad.to(eps.dtype)


@pytest.mark.parametrize('method', ['euler', 'heun', 'song'])
def test_ode_samplers_take_guidance(method):
    "Every method takes guidance: the exactly guided unconditional oracle is the conditional one."
    gm = GaussianMixture([[-0.6, -0.4], [0.6, -0.3], [0.0, 0.6]], [0.2, 0.3, 0.25], [0.5, 0.3, 0.2])
    sc = Schedule.cosine(1000)
    y = torch.arange(12) % 3
    xT = torch.randn(12, 2, generator=torch.Generator().manual_seed(4))
    cond = sample(gm.model(sc), sc, (12, 2), 25, method, y=y, noise=xT)
    uncond = lambda x, t, y: gm.model(sc)(x, t)
    guided = sample(uncond, sc, (12, 2), 25, method, y=y, noise=xT, guidance=_ExactGuidance(gm, sc))
    torch.testing.assert_close(guided, cond, atol=1e-4, rtol=0)
    unguided = sample(uncond, sc, (12, 2), 25, method, y=y, noise=xT)
    assert not torch.allclose(unguided, cond, atol=1e-2)


def test_ode_samplers_take_autocast():
    "bf16 autocast reaches the network of an ODE sampler; the updates stay in float32."
    conv = torch.nn.Conv2d(1, 1, 3, padding=1)
    seen = []

    def net(x, t):
        out = conv(x) * 0.1
        seen.append(out.dtype)
        return out

    x = sample(
        net,
        Schedule.linear(100),
        (2, 1, 8, 8),
        5,
        'heun',
        generator=torch.Generator().manual_seed(0),
        options=dict(autocast=torch.bfloat16),
    )
    assert x.dtype == torch.float32 and set(seen) == {torch.bfloat16}
