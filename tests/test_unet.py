"Tests for adm_edu.unet and the classifier network (fast, CPU)."

import math
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from adm_edu.unet import (
    UNet,
    ResBlock,
    AttentionBlock,
    timestep_embedding,
    split_qkv,
    unet_from_preset,
    PRESETS,
    count_params,
    count_flops,
    randomize_,
    example_inputs,
)
from adm_edu.classifier import NoisyClassifier, classifier_from_preset, CLASSIFIER_PRESETS

from tolerance import f32_tol, fan_in  # tests/tolerance.py
from tiny_nets import TINY_SR


def small_unet(**kw):
    "A 16x16 class-conditional U-Net: the tiny upsampler's layout without its low-res input."
    base = {k: v for k, v in TINY_SR.items() if k != 'small_size'}
    return UNet(**{**base, **kw})


def test_timestep_embedding_matches_diffusers():
    embeddings = pytest.importorskip('diffusers.models.embeddings')  # the reference
    get_timestep_embedding = embeddings.get_timestep_embedding

    t = torch.tensor([0, 3, 77, 999])
    for d in (16, 64, 130):
        ref = get_timestep_embedding(t, d, flip_sin_to_cos=True, downscale_freq_shift=0)
        # float32 sin/cos of arguments up to max t: the argument's rounding, eps * t
        torch.testing.assert_close(
            timestep_embedding(t, d),
            ref,
            atol=2 * torch.finfo(torch.float32).eps * float(t.max()),
            rtol=0,
        )


def naive_official_attention(x, blk):
    "QKVAttentionLegacy / QKVAttention from the official equations, on a fused (B, 3C, L) layout."
    B, C, H, W = x.shape
    n = blk.heads
    d = C // n
    qkv = F.conv1d(blk.norm(x).reshape(B, C, -1), blk.qkv.weight[..., None], blk.qkv.bias)
    if blk.qkv_order == 'legacy':
        q, k, v = qkv.reshape(B * n, 3 * d, -1).split(d, dim=1)
    else:
        q, k, v = (u.reshape(B * n, d, -1) for u in qkv.chunk(3, dim=1))
    s = d**-0.25
    w = torch.einsum('bct,bcs->bts', q * s, k * s).float().softmax(-1)
    a = torch.einsum('bts,bcs->bct', w, v).reshape(B, C, -1)
    return x + F.conv1d(a, blk.proj.weight[..., None], blk.proj.bias).reshape(B, C, H, W)


@pytest.mark.parametrize('order', ['legacy', 'new'])
@pytest.mark.parametrize(
    'kw',
    [dict(num_heads=1), dict(num_heads=4), dict(num_head_channels=16), dict(num_head_channels=64)],
)
def test_attention_orders_match_official(order, kw):
    torch.manual_seed(0)
    blk = AttentionBlock(64, qkv_order=order, **kw)
    nn.init.normal_(blk.proj.weight, std=0.2)
    x = torch.randn(2, 64, 4, 8)
    torch.testing.assert_close(blk(x), naive_official_attention(x, blk), atol=1e-4, rtol=1e-4)


def test_orders_differ():
    """The two layouts are genuinely different readings of the same weights (so a wrong flag would
    be caught)."""
    torch.manual_seed(0)
    a = AttentionBlock(64, num_heads=4, qkv_order='legacy')
    b = AttentionBlock(64, num_heads=4, qkv_order='new')
    b.load_state_dict(a.state_dict())
    nn.init.normal_(a.proj.weight)
    b.proj.weight.data.copy_(a.proj.weight)
    x = torch.randn(1, 64, 4, 4)
    assert not torch.allclose(a(x), b(x), atol=1e-3)


def test_split_qkv_layout():
    idx = torch.arange(12.0)[None, None]  # C = 4, 2 heads of 2
    q, k, v = split_qkv(idx, 2, 'legacy')
    assert q[0, :, 0].tolist() == [[0, 1], [6, 7]] and v[0, :, 0].tolist() == [[4, 5], [10, 11]]
    q, k, v = split_qkv(idx, 2, 'new')
    assert q[0, :, 0].tolist() == [[0, 1], [2, 3]] and k[0, :, 0].tolist() == [[4, 5], [6, 7]]
    with pytest.raises(ValueError, match="'legacy' or 'new'"):
        split_qkv(idx, 2, 'old')


def test_resblock_modes_and_identity_init():
    x, e = torch.randn(2, 32, 8, 8), torch.randn(2, 64)
    for ss in (True, False):
        for rs, hw in ((None, 8), ('down', 4), ('up', 16)):
            b = ResBlock(32, 64, 64, use_scale_shift_norm=ss, resample=rs)
            assert b(x, e).shape == (2, 64, hw, hw)
    torch.testing.assert_close(
        ResBlock(32, 64, resample='up')(x, e), F.interpolate(x, scale_factor=2.0)
    )
    torch.testing.assert_close(ResBlock(32, 64, rescale=True)(x, e), x / math.sqrt(2))


def test_addition_mode_formula():
    torch.manual_seed(0)
    b = ResBlock(32, 64, use_scale_shift_norm=False)
    nn.init.normal_(b.out_conv.weight, std=0.05)
    x, e = torch.randn(2, 32, 8, 8), torch.randn(2, 64)
    h = b.in_conv(F.silu(b.in_norm(x))) + b.emb_proj(F.silu(e))[..., None, None]
    ref = x + b.out_conv(F.silu(F.group_norm(h, 32, b.out_norm.weight, b.out_norm.bias)))
    torch.testing.assert_close(b(x, e), ref, atol=1e-5, rtol=1e-5)


def test_unet_shapes_and_errors():
    m = small_unet()
    x, t, y = torch.randn(3, 1, 16, 16), torch.tensor([0, 5, 999]), torch.tensor([0, 4, 9])
    assert m(x, t, y).shape == (3, 2, 16, 16)
    with pytest.raises(ValueError, match='class-conditional'):
        m(x, t)
    with pytest.raises(ValueError, match=r'\[0, 10\)'):
        m(x, t, torch.tensor([0, 1, 10]))
    with pytest.raises(ValueError, match=r'\(B, 1, 16, 16\)'):
        m(torch.randn(3, 3, 16, 16), t, y)
    with pytest.raises(ValueError, match=r'\(B, 1, 16, 16\)'):
        m(torch.randn(3, 1, 32, 32), t, y)
    with pytest.raises(ValueError, match=r'shape \(B,\)'):
        m(x, t[:, None], y)
    with pytest.raises(TypeError):
        m(x, [0, 1, 2], y)
    with pytest.raises(ValueError, match='unconditional'):
        small_unet(num_classes=None)(x, t, y)
    with pytest.raises(ValueError, match='feature-map sizes'):
        small_unet(attention_resolutions=(4,))
    with pytest.raises(ValueError, match='num_head_channels=48'):
        small_unet(num_head_channels=48)
    with pytest.raises(ValueError, match='out_channels'):
        small_unet(out_channels=1)
    with pytest.raises(ValueError, match='cannot be halved'):
        small_unet(image_size=18, channel_mult=(1, 2, 2), attention_resolutions=())


def test_unet_depends_on_inputs_and_is_batch_independent():
    torch.manual_seed(0)
    m = randomize_(small_unet(dropout=0.0)).eval()
    x, t, y = torch.randn(3, 1, 16, 16), torch.tensor([1, 500, 999]), torch.tensor([2, 2, 7])
    o = m(x, t, y)
    assert o.abs().mean() > 1e-3
    assert not torch.allclose(o, m(x, t.flip(0), y), atol=1e-4)
    assert not torch.allclose(o, m(x, t, y.flip(0)), atol=1e-4)
    # batch independence up to float32 rounding (convolutions pick different kernels for different
    # batch sizes)
    torch.testing.assert_close(m(x[2:], t[2:], y[2:]), o[2:], atol=f32_tol(o, fan_in(m)), rtol=0)


def test_ddpm_style_unet_and_checkpointing():
    torch.manual_seed(0)
    kw = dict(
        resblock_updown=False,
        use_scale_shift_norm=False,
        num_head_channels=-1,
        num_heads=1,
        rescale_residual=True,
    )
    a, b = randomize_(small_unet(**kw)), small_unet(use_checkpoint=True, **kw)
    b.load_state_dict(a.state_dict())
    a.train()
    b.train()
    x, t, y = torch.randn(2, 1, 16, 16), torch.tensor([3, 4]), torch.tensor([1, 2])
    oa, ob = a(x, t, y), b(x, t, y)
    torch.testing.assert_close(oa, ob)
    oa.square().sum().backward()
    ob.square().sum().backward()
    for (n, pa), pb in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(pa.grad, pb.grad, atol=1e-5, rtol=1e-4, msg=n)


def test_autocast_and_channels_last():
    torch.manual_seed(0)
    m = randomize_(small_unet()).eval()
    x, t, y = torch.randn(2, 1, 16, 16), torch.tensor([3, 4]), torch.tensor([1, 2])
    ref = m(x, t, y)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        ob = m(x, t, y)
    assert ob.dtype == torch.float32 and (ob - ref).abs().mean() < 0.05 * ref.abs().mean()
    mcl = m.to(memory_format=torch.channels_last)
    torch.testing.assert_close(
        mcl(x.to(memory_format=torch.channels_last), t, y),
        ref,
        atol=f32_tol(ref, fan_in(m)),
        rtol=0,
    )


def test_null_class():
    m = small_unet(class_dropout_null=True)
    assert m.label_emb.num_embeddings == 11 and m.null_class == 10
    assert m(torch.randn(1, 1, 16, 16), torch.tensor([0]), torch.tensor([10])).shape == (
        1,
        2,
        16,
        16,
    )
    assert small_unet().null_class is None
    with pytest.raises(ValueError, match='needs num_classes'):
        small_unet(num_classes=None, class_dropout_null=True)


def test_presets():
    m = unet_from_preset('fmnist-s')
    assert 2e6 <= count_params(m) <= 6e6
    x, t, y = example_inputs(m, 2)
    assert m(x, t, y).shape == (2, 2, 32, 32)
    big = unet_from_preset('adm-imagenet64', device='meta')
    assert 290e6 < count_params(big) < 300e6
    base = unet_from_preset('ablation-baseline', device='meta')
    assert base.middle.attn.heads == 1 and [
        lv.resolution for lv in base.down if lv.blocks[0].attn is not None
    ] == [16]
    assert unet_from_preset('fmnist-s', num_classes=None).label_emb is None
    with pytest.raises(ValueError, match='fmnist-s'):
        unet_from_preset('nope')
    assert set(PRESETS) >= {'fmnist-s', 'fmnist-m', 'adm-imagenet64', 'ablation-baseline'}


def test_count_flops_closed_form():
    "Stem conv + everything else: the FLOPs of one attention block are exactly its closed form."
    with torch.device('meta'):
        a = small_unet(attention_resolutions=(), num_head_channels=32)
        b = small_unet(attention_resolutions=(8,), num_head_channels=32)
    # level 1 of small_unet: 8x8, 64 channels; one encoder and two decoder blocks get attention
    L, C = 8 * 8, 64
    per_block = 2 * L * C * 3 * C + 2 * 2 * L * L * C + 2 * L * C * C
    assert count_flops(b) - count_flops(a) == 3 * per_block


def test_classifier_network():
    clf = NoisyClassifier(
        image_size=32,
        in_channels=3,
        model_channels=64,
        num_classes=10,
        num_res_blocks=2,
        attention_resolutions=(16, 8),
        channel_mult=(1, 2, 2),
        num_head_channels=32,
    )
    # the official EncoderUNetModel of the reference configuration
    assert count_params(clf) == 3_260_938
    x, t = torch.randn(2, 3, 32, 32), torch.tensor([0, 10])
    assert clf(x, t).shape == (2, 10)
    with pytest.raises(ValueError, match='predicts the class'):
        clf(x, t, torch.tensor([0, 1]))
    c = classifier_from_preset('fmnist-clf')
    assert c(torch.randn(1, 1, 32, 32), torch.tensor([5])).shape == (1, 10)
    assert 'adm-imagenet64-clf' in CLASSIFIER_PRESETS
