"Tests of respacing (chapter 08): space_timesteps and Schedule.respace from adm_edu.schedule."

import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st
from adm_edu.schedule import Schedule, space_timesteps
from adm_edu.sampling import sample, SampleOptions
from adm_edu.oracle import GaussianMixture


@given(st.sampled_from(['linear', 'cosine']), st.sets(st.integers(0, 999), min_size=1, max_size=60))
def test_alpha_bar_preserved(name, keep):
    s = Schedule.named(name, 1000)
    S = sorted(keep)
    r = s.respace(S)
    assert r.timestep_map.tolist() == S
    torch.testing.assert_close(r.alpha_bar, s.alpha_bar[S], rtol=1e-12, atol=1e-14)
    ab = s.alpha_bar[S].numpy()
    prev = np.r_[1.0, ab[:-1]]
    np.testing.assert_allclose(
        r.posterior_variance.numpy(), (1 - prev) / (1 - ab) * (1 - ab / prev), rtol=1e-9, atol=1e-15
    )


@pytest.mark.parametrize('T', [1000, 4000])
def test_respace_all_is_identity(T):
    for name in ('linear', 'cosine'):
        s = Schedule.named(name, T)
        r = s.respace(range(T))
        for k in (
            'betas',
            'alpha_bar',
            'alpha_bar_prev',
            'posterior_variance',
            'posterior_mean_coef1',
            'posterior_mean_coef2',
        ):
            torch.testing.assert_close(getattr(r, k), getattr(s, k), rtol=1e-9, atol=1e-15)


@given(st.integers(1, 500), st.data())
def test_space_timesteps_counts(T, data):
    n = data.draw(st.integers(1, T))
    S = space_timesteps(T, n)
    assert len(S) == n and S == sorted(set(S)) and S[0] == 0 and S[-1] <= T - 1
    if n > 1:
        assert S[-1] == T - 1


def test_oracle_ancestral_sampling_on_subsequence():
    from scipy.stats import ks_2samp

    gm = GaussianMixture(torch.tensor([[-0.5, 0.2], [0.4, -0.3]]), [0.1, 0.15], [0.6, 0.4])
    s = Schedule.cosine(1000)
    r = s.respace(space_timesteps(1000, 'ddim20'))
    x = sample(
        gm.model(r, learn_sigma=True),
        s,
        (4000, 2),
        steps=r.timestep_map.flip(0).tolist(),
        sampler='ancestral',
        generator=torch.Generator().manual_seed(0),
        options=SampleOptions(clip_denoised=False),
    )
    ref = gm.sample(4000, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(x.mean(0), gm.mean.float(), atol=0.02, rtol=0)
    torch.testing.assert_close(torch.cov(x.T.double()), gm.cov, atol=0.01, rtol=0)
    for d in range(2):
        assert ks_2samp(x[:, d].numpy(), ref[:, d].numpy()).pvalue > 1e-3


@pytest.mark.parametrize('N', [10, 20, 50, 250])
def test_diffusers_spacings(N):
    from diffusers import DDIMScheduler

    ref = DDIMScheduler(num_train_timesteps=1000, timestep_spacing='leading')
    ref.set_timesteps(N)
    assert sorted(ref.timesteps.tolist()) == space_timesteps(1000, f'ddim{N}')
    ref = DDIMScheduler(num_train_timesteps=1000, timestep_spacing='linspace')
    ref.set_timesteps(N)
    assert sorted(ref.timesteps.tolist()) == space_timesteps(1000, str(N))
