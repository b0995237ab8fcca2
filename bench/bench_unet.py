"""CPU throughput of the `fmnist-s` UNet against a diffusers UNet2DModel of the same shape.

For each mode (fp32, channels_last, bf16 autocast; bf16 only on a CPU with native bf16, see
adm_edu.device.cpu_has_native_bf16; avx2: fp32 with oneDNN and ATen capped at AVX2, i.e. what an
AVX2-only CPU runs, plus the cost of emulated bf16 there) one fresh process builds both models and
times them interleaved (ours, diffusers, ours, ...): a training step (forward + MSE loss + backward
+ AdamW step) and a no-grad forward, median of the timed steps after warm-up. The figures are ratios
ours / diffusers of images/s in the same process; FLOPs per image (FlopCounterMode on the meta
device) and the peak resident-memory growth of one training step (ru_maxrss, one fresh process per
model, fp32, glibc returning large blocks at free: peak live memory) are context, and Dropout16
(adm_edu.unet) against nn.Dropout on one activation, interleaved in this process.

    python bench/bench_unet.py [--steps 5] [--batch 64] [--modes fp32,channels_last,bf16,avx2]
        [--json out.json]
    python bench/bench_unet.py --profile [--batch 64]
        # where the time goes: top ops of ours and diffusers (fp32)
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402


def build(which):
    from adm_edu.unet import unet_from_preset, PRESETS

    p = PRESETS['fmnist-s']
    if which == 'ours':
        return unet_from_preset('fmnist-s')
    from diffusers import UNet2DModel

    mc = p['model_channels']
    res = [p['image_size'] // 2**l for l in range(len(p['channel_mult']))]
    attn = [r in p['attention_resolutions'] for r in res]
    return UNet2DModel(
        sample_size=p['image_size'],
        in_channels=p['in_channels'],
        out_channels=2 * p['in_channels'],
        block_out_channels=tuple(mc * m for m in p['channel_mult']),
        layers_per_block=p['num_res_blocks'],
        down_block_types=tuple('AttnDownBlock2D' if a else 'DownBlock2D' for a in attn),
        up_block_types=tuple('AttnUpBlock2D' if a else 'UpBlock2D' for a in reversed(attn)),
        attention_head_dim=p['num_head_channels'],
        resnet_time_scale_shift='scale_shift',
        downsample_type='resnet',
        upsample_type='resnet',
        num_class_embeds=p['num_classes'],
        norm_num_groups=32,
        dropout=p['dropout'],
        flip_sin_to_cos=True,
        freq_shift=0,
    )


def call(which, m, x, t, y):
    return m(x, t, y) if which == 'ours' else m(x, t, class_labels=y).sample


def flops(which, batch):
    "Forward and forward+backward FLOPs per image, counted on the meta device (no compute)."
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device('meta'):
        m = build(which)
    x = torch.zeros(batch, 1, 32, 32, device='meta', requires_grad=True)
    t = torch.zeros(batch, dtype=torch.long, device='meta')
    y = torch.zeros(batch, dtype=torch.long, device='meta')
    with FlopCounterMode(display=False) as fc:
        out = call(which, m, x, t, y)
    fwd = fc.get_total_flops()
    with FlopCounterMode(display=False) as fc2:
        out.square().mean().backward()
    return (
        fwd / batch,
        (fwd + fc2.get_total_flops()) / batch,
        sum(p.numel() for p in m.parameters()),
    )


def _setup(which, mode, batch):
    import torch

    torch.manual_seed(0)
    m = build(which)
    cl, bf16 = 'channels_last' in mode, 'bf16' in mode
    x = torch.randn(batch, 1, 32, 32)
    t = torch.randint(0, 1000, (batch,))
    y = torch.randint(0, 10, (batch,))
    if cl:
        m = m.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-4)
    ctx = lambda: torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16)

    def train_step():
        with ctx():
            out = call(which, m, x, t, y)
        loss = (out.float()[:, :1] - x).square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def fwd():
        with torch.no_grad(), ctx():
            call(which, m, x, t, y)

    return m, train_step, fwd


def run_mode(mode, steps, batch, q):
    import torch
    from adm_edu.device import cpu_has_native_bf16

    ms = {w: _setup(w, 'fp32' if mode == 'avx2' else mode, batch) for w in ('ours', 'diffusers')}
    for m, _, _ in ms.values():
        m.train()
    tr = C.interleaved({w: s[1] for w, s in ms.items()}, warmup=2, repeats=steps)
    for m, _, _ in ms.values():
        m.eval()
    fw = C.interleaved({w: s[2] for w, s in ms.items()}, warmup=1, repeats=steps)
    res = dict(
        train={w: batch / C.med(v) for w, v in tr.items()},
        fwd={w: batch / C.med(v) for w, v in fw.items()},
        threads=torch.get_num_threads(),
        cpu_capability=torch.backends.cpu.get_cpu_capability(),
        native_bf16=cpu_has_native_bf16(),
    )
    # what bf16 autocast costs where it is emulated: ours, forward, a small batch
    if mode == 'avx2':
        b = 8
        fns = {k: _setup('ours', k, b)[2] for k in ('fp32', 'bf16')}
        tb = C.interleaved(fns, warmup=1, repeats=2)
        res['emulated_bf16_fwd'] = {k: b / C.med(v) for k, v in tb.items()}
    q.put(res)


def run_memory(which, batch, q):
    C.release_memory_mode()
    m, step, _ = _setup(which, 'fp32', batch)
    m.train()
    base = C.maxrss_mib()
    step()
    q.put(C.maxrss_mib() - base)


def dropout_ratio(batch, repeats=10):
    """Dropout forward + backward on one fmnist-s activation (batch, 64, 32, 32), p = 0.1: adm_edu's
    Dropout16 against nn.Dropout, interleaved; img/s each."""
    import torch
    from adm_edu.unet import Dropout16

    x = torch.randn(batch, 64, 32, 32, requires_grad=True)
    g = torch.randn(batch, 64, 32, 32)
    mods = {'ours': Dropout16(0.1).train(), 'torch': torch.nn.Dropout(0.1).train()}

    def step(m):
        def f():
            x.grad = None
            m(x).backward(g)

        return f

    t = C.interleaved({k: step(m) for k, m in mods.items()}, warmup=2, repeats=repeats)
    return {k: batch / C.med(v) for k, v in t.items()}


def profile(batch, steps=3):
    "Top CPU ops (self time) of a training step, ours and diffusers, fp32."
    import torch
    from torch.profiler import profile as prof, ProfilerActivity

    for w in ('ours', 'diffusers'):
        m, step, _ = _setup(w, 'fp32', batch)
        m.train()
        step()
        step()
        with prof(activities=[ProfilerActivity.CPU]) as p:
            for _ in range(steps):
                step()
        print(f"=== {w}: training step, batch {batch}, {steps} steps")
        print(
            p.key_averages().table(
                sort_by='self_cpu_time_total', row_limit=22, max_name_column_width=48
            )
        )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--steps', type=int, default=5)
    ap.add_argument('--batch', type=int, default=64)
    ap.add_argument('--modes', default='fp32,channels_last,bf16,avx2')
    ap.add_argument('--json', default=None)
    ap.add_argument('--profile', action='store_true')
    a = ap.parse_args(argv)
    if a.profile:
        return profile(a.batch)
    import torch
    from adm_edu.device import cpu_has_native_bf16

    native = cpu_has_native_bf16()
    # avx2: fp32 with the ISA capped at AVX2 (C.AVX2_CAP)
    modes = [m for m in a.modes.split(',') if native or 'bf16' not in m]
    skipped = [m for m in a.modes.split(',') if m not in modes]
    print(
        f"bench_unet: fmnist-s vs diffusers UNet2DModel, batch {a.batch}, median of {a.steps} "
        "timed steps (interleaved), "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    if skipped:
        print(f"  skipped {skipped}: this CPU has no native bf16 (bf16 autocast would be emulated)")
    info = {w: flops(w, a.batch) for w in ('ours', 'diffusers')}
    for w, (f, ft, n) in info.items():
        print(
            f"  {w:9s} params {n / 1e6:.2f}M  forward {f / 1e9:.3f} GFLOP/img  train (fwd+bwd) "
            f"{ft / 1e9:.3f} GFLOP/img"
        )
    mem = {w: C.spawn(run_memory, w, a.batch) for w in ('ours', 'diffusers')}
    print(
        f"  peak RSS growth of one fp32 training step: ours {mem['ours']:.0f} MiB, diffusers "
        f"{mem['diffusers']:.0f} MiB"
    )
    print(
        f"  {'mode':16s} {'ours train img/s':>16s} {'diffusers':>10s} {'ratio':>6s}   "
        f"{'ours fwd img/s':>14s} {'diffusers':>10s} {'ratio':>6s}"
    )
    figs, res = [], {}
    for mode in modes:
        r = res[mode] = C.spawn(
            run_mode, mode, a.steps, a.batch, env=C.AVX2_CAP if mode == 'avx2' else None
        )
        if mode == 'avx2' and (r['cpu_capability'] != 'AVX2' or r['native_bf16']):
            raise SystemExit(
                f"the AVX2 cap did not take: cpu capability {r['cpu_capability']}, native bf16 "
                f"{r['native_bf16']}"
            )
        tr, fw = r['train'], r['fwd']
        print(
            f"  {mode:16s} {tr['ours']:16.1f} {tr['diffusers']:10.1f} "
            f"{tr['ours'] / tr['diffusers']:6.2f}   "
            f"{fw['ours']:14.1f} {fw['diffusers']:10.1f} {fw['ours'] / fw['diffusers']:6.2f}",
            flush=True,
        )
        figs.append(
            C.figure(
                f'fmnist-s training img/s, ours / diffusers UNet2DModel ({mode}, batch {a.batch})',
                tr['ours'] / tr['diffusers'],
                tr['ours'],
                tr['diffusers'],
                'img/s',
            )
        )
        figs.append(
            C.figure(
                f'fmnist-s forward img/s, ours / diffusers UNet2DModel ({mode}, batch {a.batch})',
                fw['ours'] / fw['diffusers'],
                fw['ours'],
                fw['diffusers'],
                'img/s',
            )
        )
    if 'avx2' in res:
        e = res['avx2']['emulated_bf16_fwd']
        print(
            f"  avx2 cap: ours forward (batch 8) with bf16 autocast {e['bf16']:.1f} img/s vs fp32 "
            f"{e['fp32']:.1f}: "
            f"{e['fp32'] / e['bf16']:.1f}x slower; adm_edu's 'auto' stays in fp32 there (native "
            f"bf16 {res['avx2']['native_bf16']})"
        )
        figs.append(
            C.figure(
                'fmnist-s forward img/s under the AVX2 cap, ours: bf16 autocast / fp32 (batch 8; '
                'emulated bf16)',
                e['bf16'] / e['fp32'],
                e['bf16'],
                e['fp32'],
                'img/s',
                note=(
                    "why bf16 is used only where native: the cap hides AVX512-BF16/AMX from "
                    "oneDNN and ATen"
                ),
            )
        )
    for mode in modes:
        if mode in ('fp32', 'avx2') or 'fp32' not in res:
            continue
        o, b = res[mode]['train']['ours'], res['fp32']['train']['ours']
        print(f"  ours, {mode} vs fp32 (different processes): training {o / b:.2f}x")
        figs.append(
            C.figure(
                f'fmnist-s training img/s, ours: {mode} / fp32 (batch {a.batch}; separate '
                'processes)',
                o / b,
                o,
                b,
                'img/s',
            )
        )
    dr = dropout_ratio(a.batch)
    print(
        f"  dropout (p=0.1) forward+backward on ({a.batch}, 64, 32, 32): Dropout16 "
        f"{dr['ours']:.0f} img/s, nn.Dropout {dr['torch']:.0f} img/s"
    )
    figs.append(
        C.figure(
            'dropout p=0.1 forward+backward img/s, adm_edu Dropout16 / torch nn.Dropout (CPU, '
            f'({a.batch}, 64, 32, 32))',
            dr['ours'] / dr['torch'],
            dr['ours'],
            dr['torch'],
            'img/s',
        )
    )
    figs.append(
        C.figure(
            'fmnist-s peak RSS growth of one fp32 training step, ours / diffusers',
            mem['ours'] / mem['diffusers'],
            mem['ours'],
            mem['diffusers'],
            'MiB',
            higher_is_better=False,
            note=(
                "ru_maxrss growth, one fresh process per model, tune_malloc('release'): peak live "
                "memory"
            ),
        )
    )
    C.write_json(
        a.json,
        'bench_unet',
        figs,
        dict(
            batch=a.batch,
            steps=a.steps,
            modes=modes,
            skipped_modes=skipped,
            flops_per_image={
                w: dict(forward=f, train=ft, params=n) for w, (f, ft, n) in info.items()
            },
        ),
    )


if __name__ == '__main__':
    sys.exit(main())
