"""adm_edu.sampling against diffusers' schedulers, property tests and bad input."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st, HealthCheck

from adm_edu.schedule import Schedule, space_timesteps
from adm_edu.sampling import (
    sample,
    resolve_steps,
    generate,
    register_sampler,
    SAMPLERS,
    SampleOptions,
)
from adm_edu.oracle import GaussianMixture

T = 1000
SCHEDULES = {
    'linear': ('linear', Schedule.linear),
    'cosine': ('squaredcos_cap_v2', Schedule.cosine),
}


def _close(a, b, atol=5e-4, rtol=1e-4):
    torch.testing.assert_close(a, b, atol=atol, rtol=rtol)


def _batch(seed, shape=(4, 3, 8, 8)):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g) for _ in range(3)]


@pytest.mark.parametrize('name', ['linear', 'cosine'])
@pytest.mark.parametrize('eta', [0.0, 0.5, 1.0])
@pytest.mark.parametrize('n_steps', [T, 50])
def test_ddim_step_matches_diffusers(name, eta, n_steps):
    "DDIMScheduler.step (clipped x0, eps re-derived from it) == ddim_step on the 'ddimN' schedule."
    diffusers = pytest.importorskip('diffusers')  # the reference
    dname, make = SCHEDULES[name]
    ref = diffusers.DDIMScheduler(
        num_train_timesteps=T,
        beta_schedule=dname,
        clip_sample=True,
        set_alpha_to_one=True,
        steps_offset=0,
        timestep_spacing='leading',
    )
    ref.set_timesteps(n_steps)
    sched = make(T)
    rs = sched if n_steps == T else sched.respace(space_timesteps(T, f'ddim{n_steps}'))
    np.testing.assert_array_equal(rs.timestep_map.flip(0).numpy(), ref.timesteps.numpy())
    positions = list(range(0, n_steps, max(1, n_steps // 25))) + [n_steps - 2, n_steps - 1]
    for k in positions:  # k-th sampling step, index S-1-k of the respaced schedule
        t_orig = ref.timesteps[k]
        x, eps, z = _batch(k)
        want = ref.step(eps, t_orig, x, eta=eta, use_clipped_model_output=True, variance_noise=z)
        i = torch.full((x.shape[0],), n_steps - 1 - k)
        got = rs.ddim_step(eps, x, i, eta=eta, noise=z)
        _close(got['pred_x0'], want.pred_original_sample)
        _close(got['sample'], want.prev_sample)


def _ddpm_noise(seed, shape):
    "The variance noise DDPMScheduler.step draws from a CPU generator seeded with `seed`."
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize('name', ['linear', 'cosine'])
@pytest.mark.parametrize('respaced', [False, True])
@pytest.mark.parametrize('variance', ['fixed_small', 'learned_range'])
def test_p_sample_matches_ddpm_scheduler(name, respaced, variance):
    "DDPMScheduler.step (fixed small or learned range, custom timesteps) == p_sample, respaced."
    diffusers = pytest.importorskip('diffusers')  # the reference
    dname, make = SCHEDULES[name]
    ref = diffusers.DDPMScheduler(
        num_train_timesteps=T, beta_schedule=dname, clip_sample=True, variance_type=variance
    )
    keep = sorted(set(space_timesteps(T, 40)) | {0, 1, 2, 7, 500}) if respaced else list(range(T))
    ref.set_timesteps(timesteps=keep[::-1])
    rs = make(T).respace(keep)
    learned = variance == 'learned_range'
    positions = list(range(0, len(keep), max(1, len(keep) // 20))) + [len(keep) - 2, len(keep) - 1]
    for k in positions:
        t_orig = int(ref.timesteps[k])
        x, eps, _ = _batch(k)
        out = torch.cat([eps, torch.rand_like(eps) * 2 - 1], 1) if learned else eps
        want = ref.step(out, t_orig, x, generator=torch.Generator().manual_seed(k))
        z = _ddpm_noise(k, x.shape)
        i = torch.full((x.shape[0],), len(keep) - 1 - k)
        got = rs.p_sample(out, x, i, noise=z, learn_sigma=learned)
        _close(got['pred_x0'], want.pred_original_sample)
        _close(got['sample'], want.prev_sample)


def test_sample_loop_matches_diffusers_ddim_loop():
    "A whole DDIM-20 loop (eta=0.5, shared noise) with a fixed toy model equals diffusers' loop."
    diffusers = pytest.importorskip('diffusers')  # the reference
    ref = diffusers.DDIMScheduler(
        num_train_timesteps=T, beta_schedule='linear', clip_sample=True, set_alpha_to_one=True
    )
    ref.set_timesteps(20)
    model = lambda x, t: torch.tanh(x) * (t.float()[:, None, None, None] / T)
    g = torch.Generator().manual_seed(0)
    xT = torch.randn(3, 1, 4, 4, generator=g)
    noises = [torch.randn(3, 1, 4, 4, generator=g) for _ in range(20)]
    x = xT
    for k, t in enumerate(ref.timesteps):
        x = ref.step(
            model(x, t.expand(3)),
            t,
            x,
            eta=0.5,
            use_clipped_model_output=True,
            variance_noise=noises[k],
        ).prev_sample
    # our loop draws x_T, then the noise of every step but the last (where sigma = 0),
    # from one generator: the same stream
    got = sample(
        model,
        Schedule.linear(T),
        (3, 1, 4, 4),
        steps=20,
        eta=0.5,
        generator=torch.Generator().manual_seed(0),
        options=dict(device='cpu'),
    )
    _close(got, x)


# ---------------------------------------------------------------- properties
shapes = st.sampled_from([(1, 2), (3, 1, 4, 4), (5, 3, 2, 2), (2, 2, 3)])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shape=shapes,
    dtype=st.sampled_from([torch.float32, torch.float64]),
    eta=st.floats(0, 1),
    seed=st.integers(0, 2**16),
    learn=st.booleans(),
    steps=st.sampled_from([None, 10, 37]),
)
def test_ddim_step_properties(shape, dtype, eta, seed, learn, steps):
    sched = Schedule.cosine(100)
    rs = resolve_steps(sched, steps)
    g = torch.Generator().manual_seed(seed)
    B, C = shape[0], shape[1]
    x = torch.randn(shape, generator=g, dtype=dtype)
    eps = torch.randn(shape, generator=g, dtype=dtype)
    v = torch.rand(shape, generator=g, dtype=dtype) * 2 - 1
    out = torch.cat([eps, v], 1) if learn else eps
    z = torch.randn(shape, generator=g, dtype=dtype)
    t = torch.randint(0, rs.T, (B,), generator=g)  # a batch of mixed timesteps
    r = rs.ddim_step(out, x, t, eta=eta, noise=z)
    assert r['sample'].shape == shape and r['sample'].dtype == dtype and r['pred_x0'].dtype == dtype
    assert r['pred_x0'].abs().max() <= 1
    # each element equals the same step taken alone; v channels are ignored
    for b in range(B):
        rb = rs.ddim_step(eps[b : b + 1], x[b : b + 1], t[b : b + 1], eta=eta, noise=z[b : b + 1])
        torch.testing.assert_close(rb['sample'][0], r['sample'][b])
    # at index 0 the step returns x0_hat; eta=0 ignores the noise
    r0 = rs.ddim_step(out, x, torch.zeros(B, dtype=torch.long), eta=eta, noise=z)
    torch.testing.assert_close(r0['sample'], r0['pred_x0'])
    torch.testing.assert_close(
        rs.ddim_step(eps, x, t, eta=0.0, noise=z)['sample'],
        rs.ddim_step(eps, x, t, eta=0.0)['sample'],
    )
    # p_sample: same shapes, dtype; the noise enters with std exp(log_variance / 2) where t > 0
    p = rs.p_sample(out, x, t, noise=z)
    assert p['sample'].shape == shape
    p0 = rs.p_sample(out, x, t, noise=torch.zeros_like(z))
    mv = rs.p_mean_variance(out, x, t)
    torch.testing.assert_close(p0['sample'], mv['mean'].to(p0['sample'].dtype))


@settings(max_examples=15, deadline=None)
@given(
    B=st.integers(1, 6),
    steps=st.integers(1, 50),
    eta=st.floats(0, 1),
    sampler=st.sampled_from(['ddim', 'ancestral', 'euler', 'song']),
)
def test_sample_properties(B, steps, eta, sampler):
    sched = Schedule.linear(50)
    calls = []

    def model(x, t):
        calls.append(t.clone())
        return torch.zeros_like(x)

    eta = eta if SAMPLERS[sampler].uses_eta else 0.0
    out = sample(
        model,
        sched,
        (B, 2, 3, 3),
        steps=steps,
        eta=eta,
        sampler=sampler,
        options=dict(device='cpu'),
        return_trajectory=True,
        generator=torch.Generator().manual_seed(0),
    )
    assert out['sample'].shape == (B, 2, 3, 3) and out['sample'].dtype == torch.float32
    assert out['trajectory'].shape == (steps + 1, B, 2, 3, 3) and len(calls) == steps
    ts = torch.stack(calls)
    assert (ts[:, :1] == ts).all()  # one t per step ...
    assert (ts[1:, 0] < ts[:-1, 0]).all()  # ... strictly decreasing
    assert torch.equal(ts[:, 0], out['timesteps'])
    if steps == 50:
        assert ts[0, 0] == 49 and ts[-1, 0] == 0


# ---------------------------------------------------------------- bad input
def test_bad_input():
    sched = Schedule.linear(100)
    model = lambda x, t: torch.zeros_like(x)
    kw = dict(options=dict(device='cpu'))
    with pytest.raises(ValueError, match='eta must be'):
        sample(model, sched, (2, 1, 2, 2), eta=-0.5, **kw)
    with pytest.raises(ValueError, match='eta must be'):
        sched.ddim_step(
            torch.zeros(2, 1), torch.zeros(2, 1), torch.zeros(2, dtype=torch.long), eta=-1
        )
    with pytest.raises(ValueError, match='between 1 and T=100'):
        sample(model, sched, (2, 1, 2, 2), steps=101, **kw)
    with pytest.raises(ValueError, match='between 1 and T=100'):
        sample(model, sched, (2, 1, 2, 2), steps=0, **kw)
    with pytest.raises(ValueError, match='strictly decreasing'):
        sample(model, sched, (2, 1, 2, 2), steps=[0, 50, 99], **kw)
    with pytest.raises(ValueError, match='strictly decreasing'):
        sample(model, sched, (2, 1, 2, 2), steps=[99, 50, 50, 0], **kw)
    with pytest.raises(ValueError, match=r'lie in \[0, 100\)'):
        sample(model, sched, (2, 1, 2, 2), steps=[100, 50], **kw)
    with pytest.raises(ValueError, match='the model returned shape'):
        sample(lambda x, t: torch.zeros(2, 3, 2, 2), sched, (2, 1, 2, 2), steps=3, **kw)
    with pytest.raises(ValueError, match='the model returned shape'):
        sample(
            lambda x, t: torch.zeros(2, 1, 2, 3),
            sched,
            (2, 1, 2, 2),
            steps=3,
            sampler='ancestral',
            **kw,
        )
    with pytest.raises(TypeError, match='must return a tensor'):
        sample(lambda x, t: None, sched, (2, 1, 2, 2), steps=3, **kw)
    with pytest.raises(ValueError, match='sampler must be one of'):
        sample(model, sched, (2, 1, 2, 2), sampler='rk4', **kw)
    with pytest.raises(ValueError, match='takes none'):
        sample(model, sched, (2, 1, 2, 2), sampler='heun', eta=0.5, **kw)
    with pytest.raises(ValueError, match='unknown sampling options'):
        sample(model, sched, (2, 1, 2, 2), options=dict(clip=1))
    with pytest.raises(ValueError, match='noise must have shape'):
        sample(model, sched, (2, 1, 2, 2), noise=torch.zeros(3, 1, 2, 2), **kw)
    with pytest.raises(ValueError, match='expected 1 .eps. or 2'):
        sched.ddim_step(
            torch.zeros(2, 3, 2, 2), torch.zeros(2, 1, 2, 2), torch.zeros(2, dtype=torch.long)
        )
    with pytest.raises(IndexError, match='timesteps must lie'):
        sched.ddim_step(torch.zeros(2, 1), torch.zeros(2, 1), torch.tensor([0, 100]))
    with pytest.raises(ValueError, match='stds must be'):
        GaussianMixture([[0.0, 0.0]], [0.0])
    with pytest.raises(ValueError, match='original timesteps kept'):
        gm = GaussianMixture([[0.0, 0.0]], 0.5)
        gm.eps(torch.zeros(1, 2), torch.tensor([3]), sched.respace([0, 10, 20]))


def test_oracle_sampling_reproduces_gaussian():
    "One Gaussian: DDIM with the exact eps maps N(0, I) to N(mu, s^2 I); check mean and std."
    gm = GaussianMixture([[0.3, -0.2]], 0.4)
    sched = Schedule.cosine(200)
    x = sample(
        gm.model(sched),
        sched,
        (4000, 2),
        generator=torch.Generator().manual_seed(0),
        options=dict(clip_denoised=False, device='cpu'),
    ).double()
    torch.testing.assert_close(x.mean(0), gm.means[0], atol=0.03, rtol=0)
    torch.testing.assert_close(
        x.std(0), torch.full((2,), 0.4, dtype=torch.float64), atol=0.02, rtol=0
    )


@pytest.mark.parametrize('name', ['linear', 'cosine'])
@pytest.mark.parametrize('N', [10, 25])
def test_trailing_ddim_sampling_matches_diffusers(name, N):
    "spacing='trailing' == a DDIMScheduler loop with timestep_spacing='trailing', every step."
    diffusers = pytest.importorskip('diffusers')  # the reference
    dname, make = SCHEDULES[name]
    ref = diffusers.DDIMScheduler(
        num_train_timesteps=T,
        beta_schedule=dname,
        clip_sample=True,
        set_alpha_to_one=True,
        steps_offset=0,
        timestep_spacing='trailing',
    )
    ref.set_timesteps(N)
    assert ref.timesteps[0] == T - 1
    assert sorted(ref.timesteps.tolist()) == space_timesteps(T, f'trailing{N}')

    def model(x, t):  # any deterministic eps(x, t_original)
        return torch.tanh(0.7 * x + t.float().view(-1, 1, 1, 1) / T)

    xT = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(N))
    x = xT.clone()
    for t in ref.timesteps:
        x = ref.step(
            model(x, t.expand(len(x))), t, x, eta=0.0, use_clipped_model_output=True
        ).prev_sample
    got = sample(
        model,
        make(T),
        xT.shape,
        steps=N,
        sampler='ddim',
        noise=xT,
        options=dict(spacing='trailing', device='cpu'),
    )
    _close(got, x, atol=1e-4 * N, rtol=0)
    official = sample(
        model, make(T), xT.shape, steps=N, sampler='ddim', noise=xT, options=dict(device='cpu')
    )
    assert (official - got).abs().max() > 1e-2  # the two spacings are different samplers


# ---------------------------------------------------------------- the registry
def test_registered_sampler_is_used_everywhere():
    "A new sampler is one step function and one registry entry; `sample` and `generate` take it."

    def plain_ddim_step(ctx, x, i):  # eq. 12 through the public one-step API, nothing precomputed
        out = ctx.sched.ddim_step(ctx.model_output(x, i), x, ctx.t_index[i], eta=0.0)
        return out['sample'], out['pred_x0']

    register_sampler('plain-ddim', plain_ddim_step, stride='ddim', about='test entry')
    try:
        gm = GaussianMixture([[0.3, -0.2], [-0.5, 0.4]], [0.3, 0.2])
        sched = Schedule.cosine(200)
        xT = torch.randn(256, 2, generator=torch.Generator().manual_seed(3))
        got = sample(gm.model(sched), sched, xT.shape, 20, 'plain-ddim', noise=xT)
        want = sample(gm.model(sched), sched, xT.shape, 20, 'ddim', noise=xT)
        _close(got, want, atol=1e-5, rtol=0)
        net = _TinyNet()
        a, _, _ = generate(net, sched, 5, steps=4, sampler='plain-ddim', seed=1, batch_size=2)
        b, _, _ = generate(net, sched, 5, steps=4, sampler='ddim', seed=1, batch_size=2)
        assert a.shape == (5, 4, 4, 1) and a.dtype == np.uint8
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1  # the same sampler up to rounding
    finally:
        del SAMPLERS['plain-ddim']
    with pytest.raises(ValueError, match='sampler must be one of'):
        sample(gm.model(sched), sched, (2, 2), sampler='plain-ddim')


class _TinyNet(torch.nn.Module):
    "A deterministic eps-network with the attributes `generate` reads."

    in_channels, image_size = 1, 4

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 1, 3, padding=1)
        torch.nn.init.constant_(self.conv.weight, 0.05)

    def forward(self, x, t):
        return self.conv(x) * (t.float().view(-1, 1, 1, 1) / 200)


def test_generate_is_seeded_and_checks_its_input():
    sched = Schedule.linear(200)
    net = _TinyNet()
    labels = torch.arange(3)
    a, y, secs = generate(
        net, sched, 3, steps=5, seed=7, options=SampleOptions(clip_denoised=False)
    )
    b, _, _ = generate(net, sched, 3, steps=5, seed=7, options=dict(clip_denoised=False))
    c, _, _ = generate(net, sched, 3, steps=5, seed=8)
    assert np.array_equal(a, b) and not np.array_equal(a, c) and y is None and secs >= 0
    _, y, _ = generate(as_class_conditional(net), sched, 3, steps=2, labels=labels)
    assert torch.equal(y, labels)
    with pytest.raises(ValueError, match='n must be a positive'):
        generate(net, sched, 0)
    with pytest.raises(ValueError, match='batch_size must be a positive'):
        generate(net, sched, 2, batch_size=0)


def as_class_conditional(net):
    "The tiny net as a class-conditional model (it ignores y)."

    class Conditional(torch.nn.Module):
        in_channels, image_size = net.in_channels, net.image_size

        def forward(self, x, t, y):
            assert y is not None and len(y) == len(x)
            return net(x, t)

    return Conditional()


def test_registered_sampler_is_listed_by_the_command_line(capsys):
    "`adm-edu-sample --help` lists the registry, a sampler registered a moment ago included."
    from adm_edu.cli import run_script, sample_cli

    register_sampler('listed-test', lambda ctx, x, i: (x, x), about='test entry')
    try:
        with pytest.raises(SystemExit):
            run_script(sample_cli, ['--help'])
        help_text = ' '.join(capsys.readouterr().out.split())
        assert 'registered: ddim, ancestral, euler, heun, song, listed-test' in help_text
    finally:
        del SAMPLERS['listed-test']
    with pytest.raises(SystemExit):
        run_script(sample_cli, ['--sampler', 'listed-test'])
    assert (
        "--sampler must be one of ['ddim', 'ancestral', 'euler', 'heun', 'song']"
        in capsys.readouterr().err
    )
