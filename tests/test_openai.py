"Tests for adm_edu.openai against the official guided-diffusion key/shape lists in tests/reference."

import json
import math
import os
import urllib.error
import urllib.request
from collections import OrderedDict
from pathlib import Path
import pytest
import torch
import torch.nn.functional as F
from adm_edu.unet import UNet, count_params, randomize_
from adm_edu.classifier import NoisyClassifier
from adm_edu.openai import (
    unet_from_openai,
    classifier_from_openai,
    to_openai_state_dict,
    openai_key_map,
    CheckpointMismatchError,
    parse_flags,
    unet_kwargs_from_flags,
    classifier_kwargs_from_flags,
    OFFICIAL_CHECKPOINTS,
    download_checkpoint,
    DownloadError,
    sr_kwargs_from_flags,
)
from adm_edu.upsample import SuperResUNet

ROOT = Path(__file__).resolve().parents[1]

from tolerance import f32_tol, fan_in  # tests/tolerance.py


def reference_dir():
    d = ROOT / 'tests' / 'reference'
    if (d / 'adm_state_dict_keys.json').exists():
        return d
    raise FileNotFoundError(
        "reference key lists not found: adm_state_dict_keys.json and "
        f"adm_classifier_state_dict_keys.json belong in {d}"
    )


def load_ref(name):
    ref = json.load(open(reference_dir() / name))
    flags = {
        **ref['script_flags_equivalent']['flags'],
        **ref['script_flags_equivalent']['not_expressible_by_flags'],
    }
    if 'out_channels' in flags:
        flags['num_classes'] = flags.pop('out_channels')
    return ref, flags


def random_sd(entries, seed=0, std=1.0):
    g = torch.Generator().manual_seed(seed)
    sd = OrderedDict()
    for k, s in entries:
        v = torch.randn(s, generator=g) * std
        if std < 1 and k.endswith(('layers.0.weight', 'norm.weight', 'out.0.weight')):
            v = v + 1  # GroupNorm gains near 1
        sd[k] = v
    return sd


@pytest.fixture(scope='module')
def unet_ref():
    return load_ref('adm_state_dict_keys.json')


@pytest.fixture(scope='module')
def clf_ref():
    return load_ref('adm_classifier_state_dict_keys.json')


@pytest.mark.parametrize('which', ['unet', 'classifier'])
def test_reference_keys_map_one_to_one(which, unet_ref, clf_ref):
    ref, flags = unet_ref if which == 'unet' else clf_ref
    build = unet_from_openai if which == 'unet' else classifier_from_openai
    sd = random_sd(ref['state_dict'])
    model = build(sd, **flags)
    km = openai_key_map(model)
    # bijection, same shapes, same order
    assert [[k, list(s)] for k, s in km.values()] == ref['state_dict']
    assert (
        len(set(k for k, _ in km.values()))
        == len(km)
        == len(model.state_dict())
        == ref['num_entries']
    )
    assert count_params(model) == ref['num_parameters']
    own = model.state_dict()
    for ours, (off, _) in km.items():  # every value landed where it should
        assert torch.equal(own[ours].reshape(sd[off].shape), sd[off]), ours
    back = to_openai_state_dict(model)  # official -> ours -> official
    assert list(back) == list(sd) and all(torch.equal(back[k], sd[k]) for k in sd)


@pytest.mark.parametrize('which', ['unet', 'classifier'])
def test_round_trip_ours_official_ours(which, unet_ref, clf_ref):
    ref, flags = unet_ref if which == 'unet' else clf_ref
    if which == 'unet':
        model = randomize_(UNet(**{**unet_kwargs_from_flags(**flags)}), seed=3)
    else:
        model = randomize_(NoisyClassifier(**classifier_kwargs_from_flags(**flags)), seed=3)
    again = (unet_from_openai if which == 'unet' else classifier_from_openai)(
        to_openai_state_dict(model), **flags
    )
    a, b = model.state_dict(), again.state_dict()
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_wrong_flags_give_clear_errors(unet_ref, clf_ref):
    ref, flags = unet_ref
    sd = random_sd(ref['state_dict'])
    with pytest.raises(
        CheckpointMismatchError,
        match=r"first mismatching key 'time_embed.0.weight': checkpoint has shape \[256, 64\], "
        r"the model expects \[512, 128\]",
    ):
        unet_from_openai(sd, **{**flags, 'num_channels': 128})
    with pytest.raises(
        CheckpointMismatchError,
        match=r"first mismatching key 'out.2.weight': checkpoint has shape \[6, 64, 3, 3\], "
        r"the model expects \[3, 64, 3, 3\]",
    ):
        unet_from_openai(sd, **{**flags, 'learn_sigma': False})
    with pytest.raises(
        CheckpointMismatchError, match=r"'label_emb.weight': present in the checkpoint"
    ):
        unet_from_openai(
            sd, **{k: v for k, v in flags.items() if k not in ('class_cond', 'num_classes')}
        )
    with pytest.raises(
        CheckpointMismatchError, match=r"label_emb.weight: \[10, 256\] vs \[1000, 256\]"
    ):
        # class_cond alone means 1000
        unet_from_openai(sd, **{k: v for k, v in flags.items() if k != 'num_classes'})
    with pytest.raises(CheckpointMismatchError, match='missing from the checkpoint'):
        unet_from_openai(sd, **{**flags, 'num_res_blocks': 3})
    with pytest.raises(
        CheckpointMismatchError, match=r"'input_blocks.3.0.op.weight'|input_blocks.3.0.in_layers"
    ):
        unet_from_openai(sd, **{**flags, 'resblock_updown': False})
    bad = OrderedDict(sd)
    bad['extra.weight'] = torch.zeros(1)
    with pytest.raises(
        CheckpointMismatchError,
        match=r"unexpected in the checkpoint \(1\):\n    extra.weight \[1\]",
    ):
        unet_from_openai(bad, **flags)
    cref, cflags = clf_ref
    with pytest.raises(
        CheckpointMismatchError, match="first mismatching key 'time_embed.0.weight'"
    ):
        classifier_from_openai(random_sd(cref['state_dict']), **{**cflags, 'classifier_width': 32})
    with pytest.raises(TypeError, match='unknown flag'):
        unet_from_openai(sd, **flags, num_chanels=3)
    with pytest.raises(ValueError, match='64-512 px'):
        classifier_from_openai({}, image_size=32)


# --- numerics: the official forward passes written from their definitions, on the official keys --


def gn(sd, p, h):
    return F.group_norm(h.float(), 32, sd[p + '.weight'], sd[p + '.bias'])


def res(sd, p, h, emb, updown=None):
    r = F.silu(gn(sd, p + '.in_layers.0', h))
    if updown == 'down':
        r, h = F.avg_pool2d(r, 2), F.avg_pool2d(h, 2)
    if updown == 'up':
        r = F.interpolate(r, scale_factor=2.0, mode='nearest')
        h = F.interpolate(h, scale_factor=2.0, mode='nearest')
    r = F.conv2d(r, sd[p + '.in_layers.2.weight'], sd[p + '.in_layers.2.bias'], padding=1)
    s, b = F.linear(F.silu(emb), sd[p + '.emb_layers.1.weight'], sd[p + '.emb_layers.1.bias'])[
        ..., None, None
    ].chunk(2, 1)
    r = F.conv2d(
        F.silu(gn(sd, p + '.out_layers.0', r) * (1 + s) + b),
        sd[p + '.out_layers.3.weight'],
        sd[p + '.out_layers.3.bias'],
        padding=1,
    )
    if p + '.skip_connection.weight' in sd:
        h = F.conv2d(h, sd[p + '.skip_connection.weight'], sd[p + '.skip_connection.bias'])
    return h + r


def qkv_attention(qkv, n, new_order):
    B, C3, L = qkv.shape
    d = C3 // (3 * n)
    if new_order:
        q, k, v = (u.reshape(B * n, d, L) for u in qkv.chunk(3, dim=1))
    else:
        q, k, v = qkv.reshape(B * n, 3 * d, L).split(d, dim=1)
    s = 1 / math.sqrt(math.sqrt(d))
    w = torch.einsum('bct,bcs->bts', q * s, k * s).softmax(-1)
    return torch.einsum('bts,bcs->bct', w, v).reshape(B, -1, L)


def attn(sd, p, x, head_ch, new_order):
    if p + '.qkv.weight' not in sd:
        return x
    B, C, H, W = x.shape
    qkv = F.conv1d(
        gn(sd, p + '.norm', x.reshape(B, C, -1)), sd[p + '.qkv.weight'], sd[p + '.qkv.bias']
    )
    a = qkv_attention(qkv, C // head_ch, new_order)
    return x + F.conv1d(a, sd[p + '.proj_out.weight'], sd[p + '.proj_out.bias']).reshape(B, C, H, W)


def time_emb(sd, t, mc):
    half = mc // 2
    a = t.float()[:, None] * torch.exp(-math.log(10000) * torch.arange(half) / half)[None]
    e = F.linear(
        torch.cat([a.cos(), a.sin()], -1), sd['time_embed.0.weight'], sd['time_embed.0.bias']
    )
    return F.linear(F.silu(e), sd['time_embed.2.weight'], sd['time_embed.2.bias'])


def encoder(sd, x, emb, levels, nrb, head_ch, new_order):
    h = F.conv2d(x, sd['input_blocks.0.0.weight'], sd['input_blocks.0.0.bias'], padding=1)
    hs, n = [h], 1
    for level in range(levels):
        for _ in range(nrb):
            h = attn(
                sd,
                f'input_blocks.{n}.1',
                res(sd, f'input_blocks.{n}.0', h, emb),
                head_ch,
                new_order,
            )
            hs.append(h)
            n += 1
        if level < levels - 1:
            h = res(sd, f'input_blocks.{n}.0', h, emb, 'down')
            hs.append(h)
            n += 1
    h = res(
        sd,
        'middle_block.2',
        attn(sd, 'middle_block.1', res(sd, 'middle_block.0', h, emb), head_ch, new_order),
        emb,
    )
    return h, hs


def official_unet(sd, x, t, y, mc, levels, nrb, head_ch, new_order):
    emb = time_emb(sd, t, mc)
    if 'label_emb.weight' in sd:
        emb = emb + sd['label_emb.weight'][y]
    h, hs = encoder(sd, x, emb, levels, nrb, head_ch, new_order)
    n = 0
    for level in reversed(range(levels)):
        for i in range(nrb + 1):
            p = f'output_blocks.{n}'
            h = res(sd, p + '.0', torch.cat([h, hs.pop()], 1), emb)
            k = 2 if p + '.1.qkv.weight' in sd else 1
            h = attn(sd, p + '.1', h, head_ch, new_order)
            if level and i == nrb:
                h = res(sd, f'{p}.{k}', h, emb, 'up')
            n += 1
    return F.conv2d(F.silu(gn(sd, 'out.0', h)), sd['out.2.weight'], sd['out.2.bias'], padding=1)


def official_classifier(sd, x, t, mc, levels, nrb, head_ch):
    h, _ = encoder(sd, x, time_emb(sd, t, mc), levels, nrb, head_ch, False)
    h = F.silu(gn(sd, 'out.0', h))
    B, C = h.shape[:2]
    h = h.reshape(B, C, -1)
    h = torch.cat([h.mean(-1, keepdim=True), h], -1) + sd['out.2.positional_embedding'][None]
    qkv = F.conv1d(h, sd['out.2.qkv_proj.weight'], sd['out.2.qkv_proj.bias'])
    a = qkv_attention(qkv, C // head_ch, True)
    return F.conv1d(a, sd['out.2.c_proj.weight'], sd['out.2.c_proj.bias'])[:, :, 0]


@pytest.mark.parametrize('new_order', [False, True])
def test_converted_unet_computes_the_official_forward(new_order, unet_ref):
    ref, flags = unet_ref
    sd = random_sd(ref['state_dict'], seed=1, std=0.05)
    model = unet_from_openai(sd, **{**flags, 'use_new_attention_order': new_order}).eval()
    x, t, y = torch.randn(2, 3, 32, 32), torch.tensor([7, 901]), torch.tensor([3, 9])
    with torch.no_grad():
        ours, theirs = model(x, t, y), official_unet(sd, x, t, y, 64, 3, 2, 32, new_order)
    assert theirs.abs().mean() > 1e-2
    # same maths, other order: rounding only
    torch.testing.assert_close(ours, theirs, atol=f32_tol(theirs, fan_in(model)), rtol=0)


def test_converted_classifier_computes_the_official_forward(clf_ref):
    ref, flags = clf_ref
    sd = random_sd(ref['state_dict'], seed=2, std=0.05)
    model = classifier_from_openai(sd, **flags).eval()
    x, t = torch.randn(2, 3, 32, 32), torch.tensor([0, 500])
    with torch.no_grad():
        ours, theirs = model(x, t), official_classifier(sd, x, t, 64, 3, 2, 32)
    assert theirs.abs().mean() > 1e-3
    torch.testing.assert_close(ours, theirs, atol=f32_tol(theirs, fan_in(model)), rtol=0)


def test_rescaled_timesteps():
    "improved-diffusion's rescale_timesteps: the model is called with original t and scales inside."
    kw = unet_kwargs_from_flags(
        image_size=32,
        num_channels=32,
        num_res_blocks=1,
        channel_mult="1,2",
        attention_resolutions="16",
        diffusion_steps=4000,
        rescale_timesteps=True,
    )
    assert kw['timestep_scale'] == 0.25
    a = randomize_(UNet(**kw))
    b = UNet(**{**kw, 'timestep_scale': 1.0})
    b.load_state_dict(a.state_dict())
    x, t = torch.randn(2, 3, 32, 32), torch.tensor([400, 3996])
    torch.testing.assert_close(a(x, t), b(x, t * 0.25))


def test_official_registry_builds():
    sizes = {}
    for name, info in OFFICIAL_CHECKPOINTS.items():
        f = parse_flags(info['flags'])
        with torch.device('meta'):
            if info['kind'] == 'unet':
                net = UNet(**unet_kwargs_from_flags(**f))
            elif info['kind'] == 'classifier':
                net = NoisyClassifier(**classifier_kwargs_from_flags(**f))
            else:
                # the upsamplers (chapter 12; tests/test_upsample.py)
                net = SuperResUNet(**sr_kwargs_from_flags(**f))
        sizes[name] = count_params(net)
    assert 290e6 < sizes['64x64_diffusion'] < 300e6
    assert (
        50e6 < sizes['cifar10_uncond_50M_500K'] < 55e6
        and 265e6 < sizes['imagenet64_cond_270M_250K'] < 280e6
    )
    kw = unet_kwargs_from_flags(**parse_flags(OFFICIAL_CHECKPOINTS['64x64_diffusion']['flags']))
    assert (
        kw['attention_resolutions'] == (32, 16, 8)
        and kw['use_new_attention_order']
        and kw['num_classes'] == 1000
    )


def test_download_offline_error(tmp_path, monkeypatch):
    def offline(*a, **k):
        raise urllib.error.URLError('no route to host')

    monkeypatch.setattr(urllib.request, 'urlopen', offline)
    with pytest.raises(DownloadError, match=f'copy it to {tmp_path}/64x64_diffusion.pt'):
        download_checkpoint('64x64_diffusion', cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match='unknown checkpoint'):
        download_checkpoint('64x64_difusion', cache_dir=tmp_path)


def test_load_from_path(tmp_path, unet_ref):
    ref, flags = unet_ref
    sd = random_sd(ref['state_dict'])
    torch.save(sd, tmp_path / 'ckpt.pt')
    m = unet_from_openai(str(tmp_path / 'ckpt.pt'), **flags)
    assert torch.equal(m.stem.weight, sd['input_blocks.0.0.weight'])


# --- the reference: OpenAI's own modules (guided-diffusion-sdk), built by their own factories ----

UNET_CASES = [  # (flags, label) for script_util.create_model: both attention orders, cond/uncond
    (dict(class_cond=True, learn_sigma=True, use_new_attention_order=False), 'cond-legacy'),
    (dict(class_cond=True, learn_sigma=True, use_new_attention_order=True), 'cond-new'),
    (dict(class_cond=False, learn_sigma=True, use_new_attention_order=True), 'uncond-new'),
    (dict(class_cond=False, learn_sigma=False, resblock_updown=False), 'uncond-eps-legacy'),
]
SMALL_UNET_FLAGS = dict(
    image_size=32,
    num_channels=32,
    num_res_blocks=1,
    channel_mult='1,2',
    attention_resolutions='16,8',
    num_head_channels=16,
    use_scale_shift_norm=True,
    resblock_updown=True,
)


def official_randomised(net, seed):
    "The official module with every parameter drawn at random (its zero-initialised layers too)."
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            gain = name.endswith(('in_layers.0.weight', 'out_layers.0.weight', 'norm.weight'))
            p.copy_(torch.randn(p.shape, generator=g) * 0.05 + (1.0 if gain else 0.0))
    return net.eval()


@pytest.mark.parametrize('flags,label', UNET_CASES, ids=[c[1] for c in UNET_CASES])
def test_unet_equals_official_unetmodel(flags, label):
    "Our U-Net, loaded through our key map, computes what guided_diffusion's UNetModel computes."
    script_util = pytest.importorskip('guided_diffusion.script_util')
    full = {**SMALL_UNET_FLAGS, **flags}
    official = official_randomised(script_util.create_model(**full), seed=5)
    ours = unet_from_openai(official.state_dict(), **full).eval()
    g = torch.Generator().manual_seed(6)
    x, t = torch.randn(3, 3, 32, 32, generator=g), torch.tensor([0, 411, 999])
    y = torch.tensor([3, 999, 512]) if full['class_cond'] else None
    with torch.no_grad():
        theirs, mine = official(x, t, y), ours(x, t, y)
    assert theirs.shape == (3, 6 if full['learn_sigma'] else 3, 32, 32)
    assert theirs.abs().mean() > 1e-2  # randomised: the comparison means something
    torch.testing.assert_close(mine, theirs, atol=f32_tol(theirs, fan_in(ours)), rtol=0)


def test_classifier_equals_official_encoderunet_attention_pool():
    "Our classifier equals guided_diffusion's EncoderUNetModel with attention pooling."
    script_util = pytest.importorskip('guided_diffusion.script_util')
    flags = dict(
        image_size=64,
        classifier_width=64,
        classifier_depth=1,
        classifier_attention_resolutions='16,8',
        classifier_use_scale_shift_norm=True,
        classifier_resblock_updown=True,
        classifier_pool='attention',
        classifier_use_fp16=False,
    )
    official = official_randomised(script_util.create_classifier(**flags), seed=7)
    ours = classifier_from_openai(official.state_dict(), **flags).eval()
    g = torch.Generator().manual_seed(8)
    x, t = torch.randn(2, 3, 64, 64, generator=g), torch.tensor([5, 700])
    with torch.no_grad():
        theirs, mine = official(x, t), ours(x, t)
    assert theirs.shape == (2, 1000) and theirs.std() > 1e-2
    torch.testing.assert_close(mine, theirs, atol=f32_tol(theirs, fan_in(ours)), rtol=0)
