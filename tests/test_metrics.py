"""Tests for adm_edu.metrics: references are pytorch-fid, closed forms and brute force; hypothesis
for shapes."""

import json
import math
import os
import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import given, settings, strategies as st

import adm_edu.metrics as M

FAST = settings(max_examples=15, deadline=None)
# inside pytorch-fid
pytestmark = pytest.mark.filterwarnings('ignore:The `disp` argument:DeprecationWarning')


def _stats(rng, d, n):
    x = rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) + rng.standard_normal(d)
    return x.mean(0), np.cov(x, rowvar=False)


# ---- Fréchet distance ----------------------------------------------------------------------------
@FAST
@given(d=st.integers(2, 40), n_extra=st.integers(-10, 60), seed=st.integers(0, 10_000))
def test_frechet_matches_pytorch_fid(d, n_extra, seed):
    rng = np.random.default_rng(seed)
    n = max(3, d + n_extra)  # includes rank-deficient covariances (n <= d)
    s1, s2 = _stats(rng, d, n), _stats(rng, d, n)
    fid_score = pytest.importorskip('pytorch_fid.fid_score', reason='pytorch-fid is the reference')
    ref = fid_score.calculate_frechet_distance(s1[0], s1[1], s2[0], s2[1])
    for method in ('eigh', 'sqrtm'):
        assert M.frechet_distance(*s1, *s2, method=method) == pytest.approx(
            ref, rel=1e-6, abs=1e-6 * np.trace(s1[1])
        )


def test_frechet_closed_forms():
    rng = np.random.default_rng(1)
    a, b = rng.uniform(0.1, 3, 10), rng.uniform(0.1, 3, 10)
    m1, m2 = rng.standard_normal(10), rng.standard_normal(10)
    want = ((m1 - m2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert M.frechet_distance(m1, np.diag(a), m2, np.diag(b)) == pytest.approx(want, rel=1e-10)
    # same rotation of both diagonal covariances: still commuting, same closed form
    q, _ = np.linalg.qr(rng.standard_normal((10, 10)))
    assert M.frechet_distance(m1, q @ np.diag(a) @ q.T, m2, q @ np.diag(b) @ q.T) == pytest.approx(
        want, rel=1e-8
    )
    assert M.frechet_distance(1.0, 4.0, -1.0, 9.0) == pytest.approx(5.0)


def test_fid_self_is_zero_and_monte_carlo():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3000, 16)) * 3 + 1
    assert abs(M.fid_from_features(x, x)) < 1e-8 * 16 * 9
    d = 3
    A, B = rng.standard_normal((d, d)), rng.standard_normal((d, d))
    mA, mB = rng.standard_normal(d), rng.standard_normal(d)
    cA, cB = A @ A.T, B @ B.T
    cross = scipy.linalg.sqrtm(cA @ cB).real  # the definition, with scipy's matrix square root
    true = ((mA - mB) ** 2).sum() + np.trace(cA + cB - 2 * cross)
    xa = rng.standard_normal((100_000, d)) @ A.T + mA
    xb = rng.standard_normal((100_000, d)) @ B.T + mB
    assert M.fid_from_features(xa, xb) == pytest.approx(true, rel=0.05)


def test_near_singular_covariance():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((20, 64))  # rank 19 covariance in 64 dims
    s = (x.mean(0), np.cov(x, rowvar=False))
    y = rng.standard_normal((20, 64)) + 0.5
    t = (y.mean(0), np.cov(y, rowvar=False))
    v = M.frechet_distance(*s, *t)
    assert np.isfinite(v) and v == pytest.approx(
        M.frechet_distance(*s, *t, method='sqrtm'), rel=1e-5
    )


# ---- streaming statistics ------------------------------------------------------------------------
@FAST
@given(
    n=st.integers(2, 300), d=st.integers(1, 12), bs=st.integers(1, 64), seed=st.integers(0, 1000)
)
def test_feature_stats_streaming(n, d, bs, seed):
    x = np.random.default_rng(seed).standard_normal((n, d)) * 10 + 1000
    s = M.FeatureStats()
    for i in range(0, n, bs):
        s.update(x[i : i + bs])
    assert s.n == n
    np.testing.assert_allclose(s.mean.numpy(), x.mean(0), rtol=1e-10)
    np.testing.assert_allclose(
        s.cov.numpy(), np.atleast_2d(np.cov(x, rowvar=False)), rtol=1e-6, atol=1e-8
    )
    k = n // 2
    m = (
        M.FeatureStats.from_features(x[:k]).merge(M.FeatureStats.from_features(x[k:]))
        if k
        else M.FeatureStats.from_features(x)
    )
    np.testing.assert_allclose(m.cov.numpy(), s.cov.numpy(), rtol=1e-8, atol=1e-8)


# ---- Inception Score -----------------------------------------------------------------------------
@FAST
@given(c=st.integers(2, 50), reps=st.integers(1, 5), splits=st.integers(1, 3))
def test_inception_score_limits(c, reps, splits):
    assert M.inception_score(
        torch.full((c * reps * splits, c), 1 / c), splits=splits
    ) == pytest.approx(1.0)
    assert M.inception_score(torch.eye(c).repeat(reps * splits, 1), splits=splits) == pytest.approx(
        c
    )


def test_inception_score_closed_form():
    """IS = exp(E_x KL(p(y|x) || p(y))) on a constructed case: rows (a, 1-a) and (1-a, a) in equal
    numbers in every split, so p(y) = (1/2, 1/2) and KL = a log 2a + (1-a) log 2(1-a)."""
    for a in (0.5, 0.7, 0.9, 0.99):
        rows = torch.tensor([[a, 1 - a], [1 - a, a]], dtype=torch.float64).repeat(50, 1)
        kl = a * math.log(2 * a) + (1 - a) * math.log(2 * (1 - a))
        m, s = M.inception_score(rows, splits=5, return_std=True)
        assert m == pytest.approx(math.exp(kl), rel=1e-6) and s == pytest.approx(0, abs=1e-6)
    # splits that see different marginals: the mean over splits of each split's score
    p = torch.tensor([[0.8, 0.2]] * 10 + [[0.3, 0.7]] * 10, dtype=torch.float64)
    want = 1.0  # each split holds one kind of row: p(y|x) = p(y) inside it
    assert M.inception_score(p, splits=2) == pytest.approx(want, rel=1e-9)
    m, s = M.inception_score(torch.randn(500, 7).softmax(1), splits=5, return_std=True)
    assert 1 <= m <= 7 and s > 0


# ---- precision / recall --------------------------------------------------------------------------
def test_knn_radii_brute_force():
    x = torch.randn(300, 10)
    ref = torch.cdist(x, x, compute_mode='donot_use_mm_for_euclid_dist').sort(1).values[:, 3]
    for bs in (7, 64, 1000):
        torch.testing.assert_close(M.knn_radii(x, k=3, block_size=bs), ref, rtol=1e-4, atol=1e-4)


def _pr_brute(real, fake, k):
    rr = torch.cdist(real, real).sort(1).values[:, k]
    rf = torch.cdist(fake, fake).sort(1).values[:, k]
    d = torch.cdist(fake, real)
    return (d <= rr[None]).any(1).float().mean().item(), (d <= rf[:, None]).any(
        0
    ).float().mean().item()


@FAST
@given(
    nr=st.integers(6, 80),
    nf=st.integers(6, 80),
    bs=st.integers(5, 100),
    shift=st.floats(0, 3),
    seed=st.integers(0, 1000),
)
def test_precision_recall_blockwise_equals_brute_force(nr, nf, bs, shift, seed):
    g = torch.Generator().manual_seed(seed)
    real, fake = torch.randn(nr, 4, generator=g), torch.randn(nf, 4, generator=g) + shift
    p, r = M.precision_recall(real, fake, k=5, block_size=bs, device='cpu')
    pb, rb = _pr_brute(real.double(), fake.double(), 5)
    # points exactly on a ball's boundary may flip with rounding: allow one sample of slack
    assert abs(p - pb) <= 1 / nf + 1e-9 and abs(r - rb) <= 1 / nr + 1e-9


def test_precision_recall_limits():
    x = torch.randn(400, 8)
    assert M.precision_recall(x, x) == (1.0, 1.0)
    assert M.precision_recall(x, torch.randn(300, 8) + 50) == (0.0, 0.0)
    real = torch.cat([torch.randn(800, 6), torch.randn(800, 6) + 25])
    p0, r0 = M.precision_recall(real, torch.cat([torch.randn(800, 6), torch.randn(800, 6) + 25]))
    p, r = M.precision_recall(real, torch.randn(1600, 6))  # covers one of the two modes
    assert abs(p - p0) < 0.05 and abs(r - r0 / 2) < 0.05


# ---- clear errors --------------------------------------------------------------------------------
def test_errors():
    x = np.random.default_rng(0).standard_normal((50, 4))
    with pytest.raises(ValueError, match='at least 2 samples'):
        M.fid_from_features(x[:0], x)
    with pytest.raises(ValueError, match='at least 2 samples'):
        M.fid_from_features(x[:1], x)
    with pytest.raises(ValueError, match='feature sizes differ'):
        M.fid_from_features(x, x[:, :3])
    with pytest.raises(ValueError, match='NaN'):
        M.fid_from_features(np.where(x > 2, np.nan, x), x)
    with pytest.raises(ValueError, match='2-D'):
        M.fid_from_features(x[0], x)
    with pytest.raises(ValueError, match='differ in size'):
        M.frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match='NaN'):
        M.frechet_distance(np.zeros(2), np.full((2, 2), np.inf), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match='k\\+1=6'):
        M.precision_recall(x, x[:5])
    with pytest.raises(ValueError, match='k\\+1'):
        M.precision_recall(x[:0], x)
    with pytest.raises(ValueError, match='feature sizes differ'):
        M.precision_recall(x, x[:, :2])
    with pytest.raises(ValueError, match='NaN'):
        M.precision_recall(x, np.where(x > 2, np.nan, x))
    with pytest.raises(ValueError, match='positive integer'):
        M.precision_recall(x, x, k=0)
    with pytest.raises(ValueError, match='empty'):
        M.inception_score(np.zeros((0, 3)))
    with pytest.raises(ValueError, match='probabilities'):
        M.inception_score(np.ones((10, 3)))
    with pytest.raises(ValueError, match='NaN'):
        M.inception_score(np.full((10, 3), np.nan))
    with pytest.raises(ValueError, match='splits'):
        M.inception_score(np.eye(3), splits=4)
    with pytest.raises(ValueError, match=r'\[-1, 1\]'):
        M.to_model_range(torch.rand(2, 1, 8, 8) * 3)
    with pytest.raises(ValueError, match='no images'):
        M.load_fmnist_extractor().features(torch.zeros(0, 1, 32, 32))
    with pytest.raises(ValueError, match='32x32'):
        M.load_fmnist_extractor().features(torch.zeros(2, 1, 20, 20))
    # 16x16: pixel-replicated to 32x32
    assert M.load_fmnist_extractor().features(torch.zeros(2, 1, 16, 16))['pool'].shape[0] == 2


# ---- extractors, evaluation, files ---------------------------------------------------------------
def test_to_model_range_uint8():
    u = np.array([0, 255, 51], np.uint8).reshape(1, 1, 3, 1)  # N, H, W, C
    x = M.to_model_range(u)
    assert x.shape == (1, 1, 1, 3)
    torch.testing.assert_close(x.flatten(), torch.tensor([-1.0, 1.0, 51 * 2 / 255 - 1]))


def test_shipped_fmnist_extractor():
    from adm_edu.data import load_dataset

    rec = json.loads(M.FMNIST_WEIGHTS.with_suffix('.json').read_text())
    assert M.FMNIST_WEIGHTS.stat().st_size < 2_000_000 and rec['test_accuracy'] >= 0.90
    ext = M.load_fmnist_extractor(device='cpu')
    tst = load_dataset('fashion-mnist', 'test')
    labels, probs = ext.classify(tst.images[:2000])
    assert (labels == tst.labels[:2000]).float().mean() >= 0.9
    torch.testing.assert_close(probs.sum(1), torch.ones(2000))
    # uint8 NHWC 28x28 input gives the same features as the padded float version
    u = ((tst.images[:4, :, 2:-2, 2:-2] + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1)
    torch.testing.assert_close(
        ext.features(u)['pool'], ext.features(tst.images[:4])['pool'], rtol=1e-4, atol=1e-4
    )


def test_evaluate_images_and_json(tmp_path):
    from adm_edu.data import load_dataset

    ext = M.load_fmnist_extractor(device='cpu')
    tst = load_dataset('fashion-mnist', 'test')
    real, fake = tst.images[:600], tst.images[600:1000]
    r = M.evaluate_images(fake, real, extractor=ext, labels=tst.labels[600:1000], device='cpu')
    assert set(r) >= {
        'fid',
        'sfid',
        'inception_score',
        'precision',
        'recall',
        'class_acc',
        'n',
        'n_real',
    }
    assert (
        r['n'] == 400
        and r['n_real'] == 600
        and r['class_acc'] > 0.85
        and 1 < r['inception_score'] <= 10
    )
    noisy = (fake + 0.5 * torch.randn_like(fake)).clamp(-1, 1)
    assert M.evaluate_images(noisy, real, extractor=ext, device='cpu')['fid'] > r['fid']
    p = M.save_metrics_json(r, tmp_path / 'm.json', model='test')
    assert json.loads(p.read_text())['model'] == 'test'
    np.savez(
        tmp_path / 's.npz',
        images=((fake + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy(),
        labels=tst.labels[600:1000].numpy(),
    )
    imgs, labs = M.load_sample_file(tmp_path / 's.npz')
    torch.testing.assert_close(imgs, fake, atol=1 / 255 + 1e-6, rtol=0)
    assert torch.equal(labs, tst.labels[600:1000])


def test_inception_architecture_matches_pytorch_fid(tmp_path, monkeypatch):
    pfi = pytest.importorskip('pytorch_fid.inception', reason='pytorch-fid is the reference')

    net = M.InceptionV3FID()
    g = torch.Generator().manual_seed(0)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean = 0.1 * torch.randn(m.running_mean.shape, generator=g)
            m.running_var = 1 + 0.1 * torch.rand(m.running_var.shape, generator=g)
    sd = net.state_dict()
    monkeypatch.setattr(pfi, 'load_state_dict_from_url', lambda *a, **k: sd)
    ref = pfi.InceptionV3([3], resize_input=False, normalize_input=False).eval()
    x = torch.rand(1, 3, 76, 76) * 2 - 1
    with torch.no_grad():
        a, b = ref(x)[0].flatten(1), net.eval().features(x)['pool']
    torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4 * a.abs().max().item())
    # a checkpoint file round-trips through InceptionExtractor(weights=path)
    torch.save(sd, tmp_path / 'w.pth')
    ext = M.InceptionExtractor(weights=tmp_path / 'w.pth', device='cpu')
    assert all(torch.equal(v, ext.net.state_dict()[k]) for k, v in sd.items())


def test_inception_missing_weights_error(tmp_path, monkeypatch):
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path))
    with pytest.raises(FileNotFoundError) as e:
        M.InceptionExtractor()
    assert M.FID_WEIGHTS_URL in str(e.value) and str(tmp_path / 'adm_edu') in str(e.value)
    monkeypatch.setattr(
        M.urllib.request,
        'urlopen',
        lambda *a, **k: (_ for _ in ()).throw(OSError('network unreachable')),
    )
    with pytest.raises(FileNotFoundError, match='network unreachable') as e:
        M.InceptionExtractor(download=True)
    assert M.FID_WEIGHTS_URL in str(e.value) and not list((tmp_path / 'adm_edu').glob('*.pth*'))


# ---- NLL -----------------------------------------------------------------------------------------
def test_nll_oracle_closed_form():
    from scipy.stats import norm
    from adm_edu.schedule import Schedule

    sc = Schedule.cosine(10)
    x0 = (
        torch.randint(0, 256, (3, 1, 3, 3), generator=torch.Generator().manual_seed(0)) * (2 / 255)
        - 1
    ).float()
    ab = torch.as_tensor(sc.alpha_bar, dtype=torch.float32)

    def oracle(xt, t):
        a = ab[t].view(-1, 1, 1, 1)
        return (xt - a.sqrt() * x0) / (1 - a).sqrt()

    r = M.nll_bits_per_dim(oracle, sc, x0, batch_size=3, device='cpu')
    z = 1 / (255 * math.sqrt(float(sc.posterior_variance[1])))
    edge = (x0.abs() > 0.999).double()
    dec = -(edge * math.log(norm.cdf(z)) + (1 - edge) * math.log(2 * norm.cdf(z) - 1))
    aT = float(sc.alpha_bar[-1])
    kl = 0.5 * (-math.log(1 - aT) + (1 - aT) + aT * x0.double() ** 2 - 1)
    assert r['bpd'] == pytest.approx(
        ((dec + kl).flatten(1).mean(1) / math.log(2)).mean().item(), rel=1e-4
    )
    assert r['n'] == 3
    with pytest.raises(ValueError, match='no images'):
        M.nll_bits_per_dim(oracle, sc, x0[:0])
