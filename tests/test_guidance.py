"""Tests of adm_edu.guidance: eq. 10 / eq. 14 against exact references (the Gaussian-mixture
oracle), batching, classifier-free guidance, bad input."""

import math
import pytest
import torch
import scipy.stats as st
from hypothesis import given, settings, strategies as hs
from adm_edu.schedule import Schedule
from adm_edu.sampling import sample
from adm_edu.oracle import GaussianMixture
from adm_edu.classifier import NoisyClassifier
from adm_edu.unet import UNet, randomize_
from adm_edu.oracle import MixtureClassifier
from adm_edu.guidance import (
    cond_mean,
    cond_eps,
    classifier_grad,
    ClassifierGuidance,
    ClassifierFreeGuidance,
    as_unconditional,
    make_guidance,
    check_classifier,
)

from tolerance import f32_tol, fan_in  # tests/tolerance.py


SC = Schedule.cosine(1000)
GM = GaussianMixture([[-1.0, -0.4], [1.0, -0.6], [0.0, 1.0]], [0.35, 0.45, 0.3], [0.5, 0.3, 0.2])
TINY_CLF = dict(
    image_size=8,
    in_channels=1,
    model_channels=16,
    num_classes=3,
    num_res_blocks=1,
    attention_resolutions=(4,),
    channel_mult=(1, 2),
    num_head_channels=16,
    norm_groups=8,
)
TINY_UNET = dict(
    image_size=8,
    in_channels=1,
    model_channels=16,
    num_res_blocks=1,
    attention_resolutions=(4,),
    channel_mult=(1, 2),
    num_head_channels=16,
    norm_groups=8,
    num_classes=3,
    class_dropout_null=True,
    learn_sigma=True,
)


@settings(max_examples=30, deadline=None)
@given(s=hs.floats(0, 20), seed=hs.integers(0, 2**31 - 1), stride=hs.sampled_from([1, 7, 100]))
def test_cond_eps_is_score_addition(s, seed, stride):
    "Eq. 11-14: -eps_hat/sqrt(1-ab) = -eps/sqrt(1-ab) + s g; ab: the ORIGINAL alpha_bar of index t."
    rs = SC.respace(range(0, 1000, stride))
    g = torch.Generator().manual_seed(seed)
    t = torch.randint(0, rs.T, (16,), generator=g)
    eps, x, grad = (torch.randn(16, 3, 2, 2, generator=g, dtype=torch.float64) for _ in range(3))
    sd = (1 - SC.alpha_bar[rs.timestep_map[t]]).sqrt().reshape(-1, 1, 1, 1)
    torch.testing.assert_close(
        -cond_eps(rs, eps, x, t, grad, s) / sd, -eps / sd + s * grad, rtol=1e-10, atol=1e-10
    )


def test_cond_mean_is_product_of_gaussian_and_log_linear():
    "Eq. 10 is exact for a log-linear classifier: N(mu, v) exp(s a x) has mean mu + s v a (grid)."
    xs = torch.linspace(-15, 15, 300001, dtype=torch.float64)
    f64 = lambda v: torch.tensor([v], dtype=torch.float64)
    for mu, v, a, s in [(0.2, 0.3, 1.1, 1.0), (-0.5, 0.04, -3.0, 4.0)]:
        w = torch.softmax(-0.5 * (xs - mu) ** 2 / v + s * a * xs, 0)
        m = cond_mean(f64(mu), f64(v), f64(a), s)
        assert abs(m.item() - (w * xs).sum().item()) < 1e-6


def test_exact_classifier_turns_unconditional_eps_into_conditional():
    mclf = MixtureClassifier(GM, SC)
    g = torch.Generator().manual_seed(0)
    x = 1.5 * torch.randn(400, 2, generator=g, dtype=torch.float64)
    t = torch.randint(0, 1000, (400,), generator=g)
    y = torch.randint(0, 3, (400,), generator=g)
    gr = classifier_grad(mclf, x, t, y)
    guided = cond_eps(SC, GM.eps(x, t, SC), x, t, gr, 1.0)
    torch.testing.assert_close(guided, GM.eps(x, t, SC, y), rtol=1e-9, atol=1e-9)
    # the gradient against central finite differences
    h = 1e-6
    for j in range(2):
        e = torch.zeros(2, dtype=torch.float64)
        e[j] = h
        up, down = mclf(x + e, t).gather(1, y[:, None]), mclf(x - e, t).gather(1, y[:, None])
        fd = (up - down).squeeze(1) / (2 * h)
        torch.testing.assert_close(gr[:, j], fd, rtol=1e-5, atol=1e-6)


def test_classifier_grad_batched_equals_per_sample_and_leaves_params_alone():
    torch.manual_seed(0)
    clf = NoisyClassifier(**TINY_CLF).eval()
    x = torch.randn(4, 1, 8, 8)
    t = torch.tensor([0, 333, 666, 999])
    y = torch.tensor([2, 0, 1, 2])
    with torch.no_grad():
        gb = classifier_grad(clf, x, t, y)
    for b in range(4):
        torch.testing.assert_close(
            gb[b : b + 1],
            classifier_grad(clf, x[b : b + 1], t[b : b + 1], y[b : b + 1]),
            rtol=0,
            atol=f32_tol(gb, fan_in(clf)),
        )
    assert all(p.grad is None for p in clf.parameters()) and not gb.requires_grad
    assert gb.abs().sum() > 0


def test_cfg_equals_classifier_guidance_on_oracle():
    om, mclf = GM.model(SC), MixtureClassifier(GM, SC)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(300, 2, generator=g, dtype=torch.float64)
    t = torch.randint(0, 1000, (300,), generator=g)
    y = torch.randint(0, 3, (300,), generator=g)
    gr = classifier_grad(mclf, x, t, y)
    for w in (0.5, 2.0):
        out = ClassifierFreeGuidance(om, w, null_label=None)(x, t, y)
        want = cond_eps(SC, om(x, t), x, t, gr, 1 + w)
        torch.testing.assert_close(out, want, rtol=1e-9, atol=1e-9)


def test_cfg_one_batched_call_keeps_conditional_variance():
    torch.manual_seed(0)
    unet = randomize_(UNet(**TINY_UNET)).eval()  # non-zero outputs: the comparisons mean something
    calls = []
    unet.register_forward_hook(lambda m, i, o: calls.append(len(i[0])))
    x, t, y = torch.randn(3, 1, 8, 8), torch.tensor([5, 500, 995]), torch.tensor([0, 2, 1])
    with torch.no_grad():
        out = ClassifierFreeGuidance(unet, 1.5)(x, t, y)
        assert calls == [6]
        oc, ou = unet(x, t, y), unet(x, t, torch.full((3,), 3))
        tol = f32_tol(torch.cat([oc, ou]), fan_in(unet))  # one call on 2B images, two calls on B
        assert oc.abs().max() > 1e-2
        want = torch.cat([2.5 * oc[:, :1] - 1.5 * ou[:, :1], oc[:, 1:]], 1)
        torch.testing.assert_close(out, want, rtol=0, atol=(2.5 + 1.5) * tol)
        torch.testing.assert_close(as_unconditional(unet)(x, t, y), ou, rtol=0, atol=tol)


def test_guided_ddim_reproduces_component():
    "KS test: DDIM guided by the exact classifier at scale 1 samples component y, unguided not."
    mclf, m = MixtureClassifier(GM, SC), GM.model(SC)
    unc = lambda x, t, y=None: m(x, t)

    def run(s, k=1, n=1000):
        return sample(
            unc,
            SC,
            (n, 2),
            steps=100,
            y=torch.full((n,), k),
            guidance=ClassifierGuidance(mclf, s) if s else None,
            generator=torch.Generator().manual_seed(7),
            options=dict(clip_denoised=False, device='cpu'),
        )

    def pmin(xs, k=1):
        z = (xs.double() - GM.means[k]) / GM.stds[k]
        return min(st.kstest(z[:, j].numpy(), 'norm').pvalue for j in range(2))

    assert pmin(run(1.0)) > 1e-3
    assert pmin(run(0.0)) < 1e-10


def test_guided_sampling_with_tiny_networks_records_original_timesteps():
    torch.manual_seed(0)
    unet = randomize_(UNet(**TINY_UNET), seed=1).eval()  # eps != 0: the CFG half takes part
    clf = NoisyClassifier(**TINY_CLF).eval()
    y = torch.tensor([0, 1, 2])
    hook = make_guidance(clf, scale=3.0, cfg_scale=1.0, record=True)
    rs = SC.respace([0, 400, 800])
    xs = sample(
        unet,
        SC,
        (3, 1, 8, 8),
        steps=[800, 400, 0],
        sampler='ancestral',
        y=y,
        guidance=hook,
        options=dict(device='cpu'),
        generator=torch.Generator().manual_seed(0),
    )
    assert torch.isfinite(xs).all()
    assert [int(t[0]) for t, _ in hook.trace] == [800, 400, 0] and rs.T == 3


@pytest.mark.parametrize(
    'kwargs,msg',
    [
        (dict(scale=1.0), 'needs a classifier'),
        (dict(classifier='clf', scale=1.0, y=None), 'target labels'),
        (dict(cfg_scale=1.0, y=None), 'target labels'),
        (dict(classifier='clf', scale=-1.0), '>= 0'),
        (dict(cfg_scale=float('inf')), 'finite'),
        (dict(classifier='clf', scale=1.0, y=torch.tensor([0, 3])), '[0, 3)'),
        (dict(classifier='clf16', scale=1.0), '16x16'),
        (dict(classifier='clf10', scale=1.0), '10 classes but the diffusion model has 3'),
    ],
)
def test_bad_input(kwargs, msg):
    clfs = dict(
        clf=NoisyClassifier(**TINY_CLF),
        clf16=NoisyClassifier(**{**TINY_CLF, 'image_size': 16, 'attention_resolutions': (8,)}),
        clf10=NoisyClassifier(**{**TINY_CLF, 'num_classes': 10}),
    )
    kw = {'y': torch.tensor([0, 1]), **kwargs}
    if isinstance(kw.get('classifier'), str):
        kw['classifier'] = clfs[kw['classifier']]
    with pytest.raises((ValueError, TypeError), match=msg.replace('[', r'\[').replace(')', r'\)')):
        y = kw.pop('y')
        make_guidance(**kw).prepare(UNet(**TINY_UNET), (2, 1, 8, 8), y)


def test_cfg_needs_null_class_and_valid_labels():
    plain = UNet(**{**TINY_UNET, 'class_dropout_null': False})
    with pytest.raises(ValueError, match='no null class'):
        ClassifierFreeGuidance(plain, 1.0)
    with pytest.raises(ValueError, match=r'\[0, 3\)'):
        ClassifierFreeGuidance(UNet(**TINY_UNET), 1.0)(
            torch.randn(2, 1, 8, 8), torch.tensor([1, 2]), torch.tensor([0, 3])
        )
    with pytest.raises(TypeError, match='integers'):
        classifier_grad(
            MixtureClassifier(GM, SC),
            torch.zeros(2, 2),
            torch.tensor([1, 2]),
            torch.tensor([0.0, 1.0]),
        )


def test_cfg_scale_changes_the_samples():
    "With a randomised network (a fresh UNet outputs eps = 0) the CFG weight changes the samples."
    unet = randomize_(UNet(**TINY_UNET), seed=3).eval()
    y = torch.tensor([2, 0])

    def run(guidance):
        return sample(
            unet,
            SC,
            (2, 1, 8, 8),
            steps=3,
            y=y,
            guidance=guidance,
            generator=torch.Generator().manual_seed(1),
        )

    plain, w0 = run(None), run(make_guidance(cfg_scale=0.0))
    w1, w3 = run(make_guidance(cfg_scale=1.0)), run(make_guidance(cfg_scale=3.0))
    torch.testing.assert_close(w0, plain)  # w = 0 is the conditional model
    assert (w1 - plain).abs().max() > 1e-3 and (w3 - w1).abs().max() > 1e-3
