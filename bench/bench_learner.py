"""Training throughput of the fastai Learner vs a bare PyTorch loop on the same model (fmnist-s,
batch 64), fp32 and bf16 autocast, with peak RSS. Each configuration runs in its own process (so
peak RSS is its own).

    python bench/bench_learner.py [--steps N] [--bs 64] [--preset fmnist-s]
        [--modes learner,bare,learner-bf16,bare-bf16]

Images/s: batch size / the median of the per-step times after the first 2 (warm-up) steps; both
paths do the same work per step: draw t and noise, q_sample, forward, L_hybrid, backward, clip to
norm 1, AdamW step, EMA update. The bf16 modes run only on a CPU with native bf16
(adm_edu.device.cpu_has_native_bf16) or on a GPU. With --json PATH the figures (Learner / bare loop,
bf16 / fp32: ratios of images/s in the same run) go to PATH."""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _data(bs, steps):
    from adm_edu.data import load_dataset, ImageDataset

    ds = load_dataset('fashion-mnist', 'train', fallback='digits')
    n = bs * steps
    return ImageDataset(ds.images[:n], ds.labels[:n], ds.classes, ds.name)


def worker(mode, steps, bs, preset):
    import torch
    from adm_edu.schedule import Schedule
    from adm_edu.unet import unet_from_preset
    from adm_edu.device import default_device

    torch.manual_seed(0)
    dev = default_device()
    ds = _data(bs, steps)
    model = unet_from_preset(preset).to(dev)
    sched = Schedule.named('cosine', 1000)
    bf16 = mode.endswith('bf16')
    times = []
    if mode.startswith('learner'):
        from adm_edu.learner import TrainConfig, TrainOptions, diffusion_dls, diffusion_learner
        from fastai.callback.core import Callback

        class Clock(Callback):
            order = 100

            def after_batch(self):
                if self.training:
                    if dev.type == 'cuda':
                        torch.cuda.synchronize()
                    times.append(time.perf_counter())

        dls = diffusion_dls(ds, bs=bs, valid=ImageDataset_head(ds, bs), device=dev)
        options = TrainOptions(
            mixed_precision='bf16' if bf16 else 'fp32', grad_clip=1.0, progress=False
        )
        config = TrainConfig(preset=preset, loss='hybrid', lr=1e-4, ema=0.9999, options=options)
        learn = diffusion_learner(dls, model, sched, config, cbs=[Clock()])
        learn.fit(1, 1e-4)
    else:
        from adm_edu import losses  # noqa: F401  (Schedule.training_losses)
        from adm_edu.resample import UniformSampler
        import copy

        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)
        ema = copy.deepcopy(model).requires_grad_(False)
        sampler, g = UniformSampler(sched.T), torch.Generator().manual_seed(0)
        x_all, y_all = ds.images, ds.labels
        perm = torch.randperm(len(ds), generator=g)
        model.train()
        for i in range(steps):
            idx = perm[i * bs : (i + 1) * bs]
            x0, y = x_all[idx].to(dev), y_all[idx].to(dev)
            t, w = sampler.sample(bs, device=dev, generator=g)
            noise = torch.randn_like(x0)
            xt = sched.q_sample(x0, t, noise)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
                out = model(xt, t, y)
            terms = sched.training_losses(out.float(), x0, xt, t, noise, loss_type='hybrid')
            loss = (terms['loss'] * w).mean()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad()
            with torch.no_grad():
                torch._foreach_lerp_(list(ema.parameters()), list(model.parameters()), 1 - 0.9999)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss at step {i}")
            if dev.type == 'cuda':
                torch.cuda.synchronize()
            times.append(time.perf_counter())
    # step i's time; steps 1 and 2 are warm-up
    steps_s = [b - a for a, b in zip(times, times[1:])][1:]
    ips = bs / statistics.median(steps_s)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    print(
        json.dumps(
            dict(
                mode=mode,
                images_per_s=ips,
                peak_rss_mib=rss,
                steps=len(times),
                device=str(dev),
                threads=torch.get_num_threads(),
            )
        )
    )


def ImageDataset_head(ds, n):
    from adm_edu.data import ImageDataset

    return ImageDataset(ds.images[:n], ds.labels[:n], ds.classes, ds.name)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--steps', type=int, default=int(os.environ.get('BENCH_STEPS', 8)))
    ap.add_argument('--bs', type=int, default=64)
    ap.add_argument('--preset', default='fmnist-s')
    ap.add_argument('--modes', default='bare,learner,bare-bf16,learner-bf16')
    ap.add_argument('--repeats', type=int, default=1)
    ap.add_argument('--worker', default=None)
    ap.add_argument('--json', default=None)
    a = ap.parse_args()
    if a.worker:
        return worker(a.worker, a.steps, a.bs, a.preset)
    from adm_edu.device import cpu_has_native_bf16, default_device

    modes = a.modes.split(',')
    if default_device().type == 'cpu' and not cpu_has_native_bf16():
        print(f"skipping {[m for m in modes if 'bf16' in m]}: this CPU has no native bf16")
        modes = [m for m in modes if 'bf16' not in m]
    res = {}
    for r in range(a.repeats):
        for m in modes:
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    '--worker',
                    m,
                    '--steps',
                    str(a.steps),
                    '--bs',
                    str(a.bs),
                    '--preset',
                    a.preset,
                ],
                capture_output=True,
                text=True,
                env={**os.environ, 'PYTHONWARNINGS': 'ignore'},
            )
            if out.returncode:
                print(out.stderr[-3000:])
                raise SystemExit(f"{m} failed")
            d = json.loads(out.stdout.strip().splitlines()[-1])
            best = res.get(m)
            if best is None or d['images_per_s'] > best['images_per_s']:
                res[m] = d
    print(
        f"training throughput, {a.preset}, batch {a.bs}, median step of {a.steps - 2} after 2 "
        f"warm-up (best of {a.repeats}), device {next(iter(res.values()))['device']}"
    )
    print(f"{'mode':>14} {'images/s':>10} {'peak RSS MiB':>13}")
    for m, d in res.items():
        print(f"{m:>14} {d['images_per_s']:10.1f} {d['peak_rss_mib']:13.0f}")
    for sfx in ('', '-bf16'):
        if f'learner{sfx}' in res and f'bare{sfx}' in res:
            ov = 1 - res[f'learner{sfx}']['images_per_s'] / res[f'bare{sfx}']['images_per_s']
            print(
                f"Learner overhead{sfx or ' (fp32)'}: {100 * ov:+.1f}% "
                f"({'OK' if ov < 0.05 else 'over'} the 5% budget)"
            )
    if 'bare' in res and 'bare-bf16' in res:
        print(
            "bf16 autocast vs fp32 (bare loop): "
            f"{res['bare-bf16']['images_per_s'] / res['bare']['images_per_s']:.2f}x"
        )
    from _common import figure, write_json

    figs = []
    for sfx in ('', '-bf16'):
        if f'learner{sfx}' in res and f'bare{sfx}' in res:
            o, b = res[f'learner{sfx}']['images_per_s'], res[f'bare{sfx}']['images_per_s']
            figs.append(
                figure(
                    f"{a.preset} training img/s, fastai Learner / bare PyTorch loop "
                    f"({'bf16' if sfx else 'fp32'}, batch {a.bs})",
                    o / b,
                    o,
                    b,
                    'img/s',
                )
            )
    for w in ('bare', 'learner'):
        if w in res and f'{w}-bf16' in res:
            o, b = res[f'{w}-bf16']['images_per_s'], res[w]['images_per_s']
            figs.append(
                figure(
                    f"{a.preset} training img/s, bf16 autocast / fp32 ({w}, batch {a.bs})",
                    o / b,
                    o,
                    b,
                    'img/s',
                )
            )
    write_json(
        a.json, 'bench_learner', figs, dict(bs=a.bs, steps=a.steps, repeats=a.repeats, runs=res)
    )


if __name__ == '__main__':
    main()
