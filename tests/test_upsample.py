"""The super-resolution U-Net (chapter 12) against OpenAI's own `SuperResModel`
(guided-diffusion-sdk, a dev dependency): the released 64->256 and 128->512 layouts key by key,
and the forward pass of a small converted upsampler; then its paths through the package: presets,
cascade sampling, export/checkpoint loading and `adm-edu-sample --upsampler`."""

import contextlib
import io
import warnings
from collections import OrderedDict
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from adm_edu.errors import BadArgument, BadFile, MissingResource
from adm_edu.unet import UNet, randomize_, count_params, count_flops
from adm_edu.upsample import SuperResUNet, SR_PRESETS, sr_from_preset
from adm_edu.openai import (
    OFFICIAL_CHECKPOINTS,
    parse_flags,
    sr_kwargs_from_flags,
    sr_from_openai,
    openai_key_map,
    to_openai_state_dict,
    official_network,
    CheckpointMismatchError,
)
from adm_edu.schedule import Schedule
from adm_edu.sampling import sample, sample_cascade, quantize_8bit
from tiny_nets import TINY_BASE, TINY_SR
from adm_edu.pretrained import (
    export_pretrained,
    load_pretrained,
    load_checkpoint,
    save_checkpoint,
    CKPT_FORMAT,
)
from tolerance import f32_tol, fan_in  # tests/tolerance.py

with warnings.catch_warnings():
    # the official fp16 helpers use a deprecated torch.cuda.amp decorator
    warnings.simplefilter('ignore', FutureWarning)
    reason = 'guided-diffusion-sdk (dev extra) is the reference'
    su = pytest.importorskip('guided_diffusion.script_util', reason=reason)

TINY = TINY_SR


def official_sr(flags, device=None):
    "guided-diffusion's SuperResModel for the script flags `flags`, by its own sr_create_model."
    args = {**su.sr_model_and_diffusion_defaults(), **flags}
    if device is None:
        return su.sr_create_model_and_diffusion(**args)[0]
    with torch.device(device):
        return su.sr_create_model_and_diffusion(**args)[0]


@pytest.mark.parametrize('name', ['64_256_upsampler', '128_512_upsampler'])
def test_released_layouts_map_one_to_one(name):
    "Our key map is a bijection onto the official state dict: same shapes, same order (on meta)."
    flags = parse_flags(OFFICIAL_CHECKPOINTS[name]['flags'])
    theirs = official_sr(flags, 'meta')
    ours = official_network(name, 'meta')
    assert type(ours) is SuperResUNet
    km = openai_key_map(ours)
    assert list(km.values()) == [(k, tuple(v.shape)) for k, v in theirs.state_dict().items()]
    assert len(km) == len(ours.state_dict())
    assert count_params(ours) == sum(p.numel() for p in theirs.parameters())
    # 6 input channels: x_t and the upsampled low-res image
    assert theirs.input_blocks[0][0].weight.shape[1] == ours.stem.weight.shape[1] == 6
    preset = {'64_256_upsampler': 'adm-64-256', '128_512_upsampler': 'adm-128-512'}[name]
    preset_keys = openai_key_map(sr_from_preset(preset, 'meta')).values()
    assert list(preset_keys) == list(km.values())  # the presets are these layouts
    kw = sr_kwargs_from_flags(**flags)
    differ = {k: (kw[k], v) for k, v in SR_PRESETS[preset].items() if kw[k] != v}
    assert not differ, differ


def test_converted_upsampler_computes_the_official_forward():
    "A small official SuperResModel (large_size 64: its factory's smallest), random, converted."
    flags = dict(
        large_size=64,
        small_size=16,
        num_channels=32,
        num_res_blocks=1,
        attention_resolutions='16',
        num_head_channels=32,
        class_cond=True,
        learn_sigma=True,
        resblock_updown=True,
        use_scale_shift_norm=True,
    )
    torch.manual_seed(0)
    off = official_sr(flags).eval()
    randomize_(off, std=0.05, seed=1)
    # GroupNorm gains near 1: the official ones are `*.in_layers.0`, `*.out_layers.0`, `*.norm`,
    # `out.0`
    with torch.no_grad():
        for n, p in off.named_parameters():
            if n.endswith(('layers.0.weight', 'norm.weight', 'out.0.weight')):
                p.add_(1 - p.mean())
    ours = sr_from_openai(off.state_dict(), **flags).eval()
    assert (ours.image_size, ours.small_size, ours.channel_mult) == (64, 16, (1, 2, 3, 4))
    x, t, y = torch.randn(2, 3, 64, 64), torch.tensor([20, 800]), torch.tensor([7, 993])
    lo = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        ref, got = off(x, t, low_res=lo, y=y), ours(x, t, y, low_res=lo)
    assert ref.abs().mean() > 1e-2
    torch.testing.assert_close(got, ref, rtol=0, atol=f32_tol(ref, fan_in(ours)))
    back = to_openai_state_dict(ours)  # ours -> official names -> the same tensors
    assert list(back) == list(off.state_dict())
    assert all(torch.equal(back[k], v) for k, v in off.state_dict().items())


def test_mismatch_errors_name_the_first_key():
    flags = dict(
        large_size=64,
        small_size=16,
        num_channels=32,
        num_res_blocks=1,
        attention_resolutions='16',
        num_head_channels=32,
        class_cond=True,
        learn_sigma=True,
        resblock_updown=True,
    )
    sd = official_sr(flags, 'meta').state_dict()
    sd = OrderedDict((k, torch.zeros(v.shape)) for k, v in sd.items())
    first_key = (
        r"first mismatching key 'time_embed.0.weight': "
        r"checkpoint has shape \[128, 32\], the model expects \[256, 64\]"
    )
    with pytest.raises(CheckpointMismatchError, match=first_key):
        sr_from_openai(sd, **{**flags, 'num_channels': 64})
    with pytest.raises(
        CheckpointMismatchError, match=r"label_emb.weight': present in the checkpoint"
    ):
        sr_from_openai(sd, **{**flags, 'class_cond': False})
    # a base model's checkpoint given as an upsampler: the stem has 3 input channels, not 6
    base_flags = dict(attention_resolutions='4', num_head_channels=32, resblock_updown=True)
    base_net = su.create_model(64, 32, 1, learn_sigma=True, class_cond=True, **base_flags)
    base = {k: torch.zeros(v.shape) for k, v in base_net.state_dict().items()}
    stem = (
        r"'input_blocks.0.0.weight': "
        r"checkpoint has shape \[32, 3, 3, 3\], the model expects \[32, 6, 3, 3\]"
    )
    with pytest.raises(CheckpointMismatchError, match=stem):
        sr_from_openai(base, **flags)
    with pytest.raises(ValueError, match=r'supports large_size \[64, 256, 512\]'):
        sr_kwargs_from_flags(large_size=128)


def test_conditioning_is_per_sample_and_reaches_every_parameter():
    sr = randomize_(SuperResUNet(**TINY)).eval()
    x, t, y, lo = (
        torch.randn(4, 1, 16, 16),
        torch.tensor([0, 10, 500, 999]),
        torch.tensor([0, 1, 2, 3]),
        torch.rand(4, 1, 8, 8) * 2 - 1,
    )
    with torch.no_grad():
        out = sr(x, t, y, lo)
        tol = f32_tol(out, fan_in(sr))
        for i in range(4):
            lo2 = lo.clone()
            lo2[i] = torch.rand(1, 8, 8) * 2 - 1
            d = (sr(x, t, y, lo2) - out).abs().flatten(1).amax(1)
            assert d[i] > 100 * tol and all(d[j] <= tol for j in range(4) if j != i), (i, d)
    lo_g = lo.clone().requires_grad_(True)
    sr(x, t, y, lo_g).square().mean().backward()
    assert (lo_g.grad.flatten(1).abs().sum(1) > 0).all()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in sr.parameters())
    plain = UNet(**{k: v for k, v in TINY.items() if k != 'small_size'})
    assert count_flops(sr) > count_flops(plain)
    for bad, msg in [
        (None, 'needs low_res'),
        (lo[:3], r'shape \(4, 1, 8, 8\)'),
        (torch.rand(4, 3, 8, 8), r'shape \(4, 1, 8, 8\)'),
        (torch.rand(4, 1, 16, 16), r'shape \(4, 1, 8, 8\)'),
        (torch.zeros(4, 1, 8, 8, dtype=torch.long), 'float tensor'),
    ]:
        with pytest.raises(BadArgument, match=msg):
            sr(x, t, y, bad)


def models():
    base = randomize_(
        UNet(**TINY_BASE),
        seed=1,
    ).eval()
    return base, randomize_(SuperResUNet(**TINY), seed=2).eval(), Schedule.named('cosine', 50)


def test_sample_cascade_is_the_two_stages():
    base, up, s = models()
    y = torch.tensor([1, 4, 4])
    lo, hi = sample_cascade(
        base,
        s,
        up,
        s,
        y,
        steps=(3, 2),
        sampler=('ancestral', 'ddim'),
        generator=torch.Generator().manual_seed(5),
    )
    g = torch.Generator().manual_seed(5)
    lo2 = quantize_8bit(
        sample(base, s, (3, 1, 8, 8), steps=3, sampler='ancestral', y=y, generator=g)
    )
    hi2 = sample(
        up,
        s,
        (3, 1, 16, 16),
        steps=2,
        y=y,
        generator=g,
        options=dict(model_kwargs=dict(low_res=lo2)),
    )
    assert torch.equal(lo, lo2) and torch.equal(hi, hi2)
    with pytest.raises(BadArgument, match='class-conditional: pass labels y'):
        sample_cascade(base, s, up, s, n=3)
    with pytest.raises(BadArgument, match='n must be a positive number'):
        sample_cascade(base, s, up, s, torch.tensor([], dtype=torch.long))


def test_exported_and_checkpointed_upsamplers_load(tmp_path):
    _, up, _ = models()
    export_pretrained(
        up,
        'tiny-up',
        'diffusion',
        TINY,
        dict(command='(test)'),
        schedule='cosine',
        T=50,
        weights_dir=tmp_path,
        half=False,
    )
    m, s, meta = load_pretrained('tiny-up', device='cpu', weights_dir=tmp_path)
    assert type(m) is SuperResUNet and meta['network'] == 'SuperResUNet' and s.T == 50
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), up.state_dict().values()))
    # a training checkpoint: the run's config and the network it describes
    kw = {**SR_PRESETS['fmnist-16-32'], **TINY}
    over = {k: v for k, v in kw.items() if SR_PRESETS['fmnist-16-32'][k] != v}
    net = randomize_(sr_from_preset('fmnist-16-32', **over), seed=4)
    classes = [str(c) for c in range(10)]
    network = dict(kind='super-resolution', name='SuperResUNet', kwargs=kw, classes=classes)
    config = dict(preset='fmnist-16-32', schedule='linear', T=30)
    checkpoint = dict(format=CKPT_FORMAT, kind='model', iter=1, config=config, network=network)
    save_checkpoint(
        dict(checkpoint, model={}, ema=dict(weights=net.state_dict())), tmp_path / 'model.pt'
    )
    m2, s2, _ = load_checkpoint(tmp_path / 'model.pt', device='cpu')
    assert type(m2) is SuperResUNet and s2.T == 30 and m2.diffusion_T == 30
    assert all(
        torch.equal(a, b) for a, b in zip(m2.state_dict().values(), net.state_dict().values())
    )
    for name in ('fmnist-16', 'fmnist-16-32'):
        with pytest.raises(MissingResource, match=f"the shipped model '{name}'"):
            load_pretrained(name, weights_dir=tmp_path)
    # a checkpoint that does not say which network it holds, or names an unknown one
    no_network = {k: v for k, v in checkpoint.items() if k != 'network'}
    save_checkpoint(dict(no_network, model=net.state_dict(), ema=None), tmp_path / 'bad.pt')
    with pytest.raises(BadFile, match="the checkpoint describes no network"):
        load_checkpoint(tmp_path / 'bad.pt')
    unknown = dict(network, name='SuperResUNet64')
    save_checkpoint(dict(checkpoint, network=unknown, model={}, ema=None), tmp_path / 'bad.pt')
    with pytest.raises(BadFile, match="unknown network 'SuperResUNet64'"):
        load_checkpoint(tmp_path / 'bad.pt')


def test_cli_writes_the_cascade(tmp_path):
    from adm_edu.cli import sample_cli, run_script

    base, up, _ = models()
    bkw = TINY_BASE
    export_pretrained(
        base,
        'base',
        'diffusion',
        bkw,
        dict(command='(test)'),
        schedule='cosine',
        T=50,
        weights_dir=tmp_path,
    )
    export_pretrained(
        up,
        'up',
        'diffusion',
        TINY,
        dict(command='(test)'),
        schedule='cosine',
        T=50,
        weights_dir=tmp_path,
    )
    argv = [
        '--model',
        tmp_path / 'base.pt',
        '--upsampler',
        tmp_path / 'up.pt',
        '--steps',
        3,
        '--upsample-steps',
        2,
        '--n',
        5,
    ]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        run_script(sample_cli, [*argv, '--out', tmp_path / 's.npz'])
        run_script(
            sample_cli, [*argv, '--out', tmp_path / 's.png', '--upsample-sampler', 'ancestral']
        )
    f = np.load(tmp_path / 's.npz')
    assert f['images'].shape == (5, 16, 16, 1) and f['images'].dtype == np.uint8
    assert f['labels'].tolist() == [0, 1, 2, 3, 4]
    assert (tmp_path / 's.png').stat().st_size > 100
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit):
        run_script(
            sample_cli,
            [
                '--model',
                tmp_path / 'base.pt',
                '--upsampler',
                'fmnist-16-32',
                '--out',
                tmp_path / 'x.npz',
            ],
        )
    message = err.getvalue()
    assert message.startswith('adm-edu-sample: --upsampler fmnist-16-32')
    assert message.count('\n') == 1
