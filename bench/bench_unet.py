"""CPU throughput of the `fmnist-s` UNet against a diffusers UNet2DModel of the same shape.

Prints, for batch 64 on 32x32x1: training images/s (forward + backward + AdamW), forward images/s, FLOPs per image
(FlopCounterMode on the meta device; training = forward + backward counted the same way), achieved GFLOP/s and the
peak resident-memory increase of the training loop (each configuration runs in a fresh process). Throughputs use
the fastest of the timed steps, so load from other processes inflates them less. The last line is the
ratio of achieved training GFLOP/s, ours / diffusers, in fp32. Usage: python bench/bench_unet.py [--steps N] [--batch B]
"""
import argparse, multiprocessing as mp, resource, sys, time


def build(which):
    import torch
    from adm_edu.unet import unet_from_preset, PRESETS
    p = PRESETS['fmnist-s']
    if which == 'ours': return unet_from_preset('fmnist-s')
    from diffusers import UNet2DModel
    mc = p['model_channels']; res = [p['image_size'] // 2 ** l for l in range(len(p['channel_mult']))]
    attn = [r in p['attention_resolutions'] for r in res]
    return UNet2DModel(sample_size=p['image_size'], in_channels=p['in_channels'], out_channels=2 * p['in_channels'],
                       block_out_channels=tuple(mc * m for m in p['channel_mult']), layers_per_block=p['num_res_blocks'],
                       down_block_types=tuple('AttnDownBlock2D' if a else 'DownBlock2D' for a in attn),
                       up_block_types=tuple('AttnUpBlock2D' if a else 'UpBlock2D' for a in reversed(attn)),
                       attention_head_dim=p['num_head_channels'], resnet_time_scale_shift='scale_shift',
                       downsample_type='resnet', upsample_type='resnet', num_class_embeds=p['num_classes'],
                       norm_num_groups=32, dropout=p['dropout'], flip_sin_to_cos=True, freq_shift=0)


def call(which, m, x, t, y):
    return m(x, t, y) if which == 'ours' else m(x, t, class_labels=y).sample


def flops(which, batch):
    "Forward and forward+backward FLOPs per image, counted on the meta device (no compute)."
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    with torch.device('meta'): m = build(which)
    x = torch.zeros(batch, 1, 32, 32, device='meta', requires_grad=True)
    t = torch.zeros(batch, dtype=torch.long, device='meta'); y = torch.zeros(batch, dtype=torch.long, device='meta')
    with FlopCounterMode(display=False) as fc: out = call(which, m, x, t, y)
    fwd = fc.get_total_flops()
    with FlopCounterMode(display=False) as fc2: out.square().mean().backward()
    return fwd / batch, (fwd + fc2.get_total_flops()) / batch, sum(p.numel() for p in m.parameters())


def run(which, mode, steps, batch, q):
    import torch
    torch.manual_seed(0)
    m = build(which)
    cl = 'channels_last' in mode; bf16 = 'bf16' in mode
    if cl: m = m.to(memory_format=torch.channels_last)
    x = torch.randn(batch, 1, 32, 32); t = torch.randint(0, 1000, (batch,)); y = torch.randint(0, 10, (batch,))
    if cl: x = x.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-4)
    ctx = (lambda: torch.autocast('cpu', dtype=torch.bfloat16)) if bf16 else (lambda: torch.autocast('cpu', enabled=False))
    def train_step():
        with ctx(): out = call(which, m, x, t, y)
        loss = (out.float()[:, :1] - x).square().mean()
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    m.train(); train_step(); train_step()                      # warm-up
    times = []
    for _ in range(steps):
        t0 = time.perf_counter(); train_step(); times.append(time.perf_counter() - t0)
    train = batch / min(times)                                 # best step: robust to other load on the machine
    peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024   # MiB (ru_maxrss is KiB on Linux)
    m.eval()
    with torch.no_grad():
        with ctx(): call(which, m, x, t, y)
        times = []
        for _ in range(steps):
            t0 = time.perf_counter()
            with ctx(): call(which, m, x, t, y)
            times.append(time.perf_counter() - t0)
        fwd = batch / min(times)
    q.put((train, fwd, peak))


def measure(which, mode, steps, batch):
    ctx = mp.get_context('spawn'); q = ctx.Queue()
    p = ctx.Process(target=run, args=(which, mode, steps, batch, q)); p.start(); r = q.get(); p.join()
    return r


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--steps', type=int, default=4); ap.add_argument('--batch', type=int, default=64)
    ap.add_argument('--modes', default='fp32,bf16,channels_last,channels_last+bf16')
    a = ap.parse_args(argv)
    import torch
    print(f"bench_unet: fmnist-s vs diffusers UNet2DModel, batch {a.batch}, {a.steps} timed steps, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    info = {w: flops(w, a.batch) for w in ('ours', 'diffusers')}
    for w, (f, ft, n) in info.items():
        print(f"  {w:9s} params {n / 1e6:.2f}M  forward {f / 1e9:.3f} GFLOP/img  train (fwd+bwd) {ft / 1e9:.3f} GFLOP/img")
    print(f"  {'model':9s} {'mode':20s} {'train img/s':>11s} {'train GFLOP/s':>13s} {'fwd img/s':>9s} {'fwd GFLOP/s':>11s} {'peak MiB':>8s}")
    res = {}
    for mode in a.modes.split(','):
        for w in ('ours', 'diffusers'):
            tr, fw, peak = res[w, mode] = measure(w, mode, a.steps, a.batch)
            f, ft, _ = info[w]
            print(f"  {w:9s} {mode:20s} {tr:11.1f} {tr * ft / 1e9:13.1f} {fw:9.1f} {fw * f / 1e9:11.1f} {peak:8.0f}", flush=True)
    best = max((m for m in a.modes.split(',')), key=lambda m: res['ours', m][0])
    r = lambda mode: (res['ours', mode][0] * info['ours'][1]) / (res['diffusers', mode][0] * info['diffusers'][1])
    print(f"  fastest CPU path for ours: {best} ({res['ours', best][0]:.1f} img/s training)")
    for mode in a.modes.split(','):
        print(f"  ratio of achieved training GFLOP/s, ours / diffusers ({mode}): {r(mode):.2f}"
              f"  (img/s ratio {res['ours', mode][0] / res['diffusers', mode][0]:.2f})")


if __name__ == '__main__':
    sys.exit(main())
