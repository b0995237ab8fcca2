"""GPU benchmark, prepared to run in one go on one H100/H200 (< 8 minutes); `--smoke` runs the same
code tiny on the CPU.

Part A, fmnist-s training throughput (batch 256, the real step: draw t and noise, q_sample, forward,
L_hybrid, backward, AdamW step), one fresh model per mode, same seed, same data order and noise
draws:
  eager-fp32          AdamW (foreach), 500 steps, loss curve recorded
  eager-fp32-nocheck  as eager-fp32 with UNet._check_inputs disabled (it reads y.min()/y.max():
                      a host sync a step)
  eager-bf16          bf16 autocast (fewer steps)
  compiled-fp32       torch.compile(mode='reduce-overhead') + fused AdamW, static batch, 500 steps,
                      loss curve
  compiled-bf16       as compiled-fp32 under bf16 autocast
Images/s are measured over the steps after `--warmup` (compilation and CUDA-graph capture happen in
the warm-up); losses are kept on the device and read once at the end (no per-step sync). Figures:
ratios against eager-fp32.

Part B, the official sizes vs the official code (bench/bench_official.py's models: the 296M 64x64
ADM U-Net and the 256x256 classifier, converted with adm_edu.openai): fp32 outputs checked equal
(TF32 off for the check), then forward / training step (Adam) / DDIM-25 images/s, ours / official,
in fp32, bf16 autocast and bf16 + channels_last (ours uses scaled_dot_product_attention; the
official code its einsum attention), and peak device memory.

    python bench/gpu_bench.py           # on the GPU machine: JSON to $OUT/gpu_bench.json (or --out)
    python bench/gpu_bench.py --smoke   # CPU, tiny sizes, < 1 minute: checks that everything runs
"""

import argparse
import json
import math
import os
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import _common as C  # noqa: E402
import bench_official as O  # noqa: E402

import torch  # noqa: E402


class Dev:
    """Device-neutral sync and peak-memory helpers (the device is chosen once, by
    adm_edu.device.default_device)."""

    def __init__(self, device):
        from adm_edu.device import default_device

        self.d = default_device(device)
        self.mod = getattr(torch, self.d.type, None) if self.d.type != 'cpu' else None

    def sync(self):
        if self.mod is not None and hasattr(self.mod, 'synchronize'):
            self.mod.synchronize()

    def reset_peak(self):
        if self.mod is not None and hasattr(self.mod, 'reset_peak_memory_stats'):
            self.mod.reset_peak_memory_stats()
        self._rss0 = C.maxrss_mib()

    def peak_mib(self):
        if self.mod is not None and hasattr(self.mod, 'max_memory_allocated'):
            return self.mod.max_memory_allocated() / 2**20
        return C.maxrss_mib() - self._rss0  # CPU: growth of ru_maxrss

    def name(self):
        from adm_edu.device import describe_device

        return describe_device(self.d)


# ---- Part A: fmnist-s training, eager vs compiled ------------------------------------------------


def fmnist_data(n, dev, smoke):
    from adm_edu.data import load_dataset

    if smoke:
        g = torch.Generator().manual_seed(0)
        return (
            (torch.rand(n, 1, 32, 32, generator=g) * 2 - 1).to(dev),
            torch.randint(0, 10, (n,), generator=g).to(dev),
            'random (smoke)',
        )
    try:
        ds = load_dataset('fashion-mnist', 'train', fallback='digits')
        x, y, name = ds.images[:n], ds.labels[:n], ds.name
    except Exception as e:  # no data on the machine: a fixed random set (curves then mean little)
        print(f"  (no dataset: {e}; using random images)")
        g = torch.Generator().manual_seed(0)
        x = torch.rand(n, 1, 32, 32, generator=g) * 2 - 1
        y = torch.randint(0, 10, (n,), generator=g)
        name = 'random'
    return x.to(dev), y.to(dev), name


def train_mode(mode, D, x_all, y_all, bs, steps, warmup):
    from adm_edu.unet import unet_from_preset, UNet
    from adm_edu.schedule import Schedule
    from adm_edu import losses  # noqa: F401  (Schedule.training_losses)
    from adm_edu.device import autocast_dtype

    dev = D.d
    torch.manual_seed(0)
    model = unet_from_preset('fmnist-s').to(dev).train()
    sched = Schedule.named('cosine', 1000)
    compiled, bf16 = mode.startswith('compiled'), 'bf16' in mode
    opt = torch.optim.AdamW(
        model.parameters(),
        lr=2e-4,
        weight_decay=0.0,
        **({'fused': True} if compiled and dev.type != 'cpu' else {}),
    )
    net = model
    restore = None
    if 'nocheck' in mode:
        restore, UNet._check_inputs = UNet._check_inputs, lambda self, x, t, y: None
    if compiled:
        if dev.type == 'cpu':
            net = torch.compile(model, backend='eager')  # --smoke on a CPU: dynamo only
        else:
            net = torch.compile(model, mode='reduce-overhead')
    mark = (
        getattr(getattr(torch, 'compiler', None), 'cudagraph_mark_step_begin', None)
        if compiled and dev.type != 'cpu'
        else None
    )
    dt = autocast_dtype(dev) if bf16 else None
    g = torch.Generator(device=dev).manual_seed(1)
    perm_g = torch.Generator().manual_seed(2)
    n = len(x_all)
    nb = n // bs
    order = torch.cat(
        [
            torch.randperm(n, generator=perm_g)[: nb * bs].view(nb, bs)
            for _ in range(math.ceil(steps / nb))
        ]
    )[:steps].to(dev)
    lossbuf = torch.zeros(steps, device=dev)
    D.reset_peak()
    t_start = None
    try:
        for i in range(steps):
            if i == warmup:
                D.sync()
                t_start = time.perf_counter()
            idx = order[i]
            x0, y = x_all[idx], y_all[idx]
            t = torch.randint(0, sched.T, (bs,), device=dev, generator=g)
            noise = torch.randn(x0.shape, device=dev, generator=g)
            xt = sched.q_sample(x0, t, noise)
            if mark is not None:
                mark()
            with torch.autocast(dev.type, dtype=dt or torch.bfloat16, enabled=dt is not None):
                out = net(xt, t, y)
            loss = sched.training_losses(out.float(), x0, xt, t, noise, loss_type='hybrid')[
                'loss'
            ].mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            lossbuf[i] = loss.detach()
        D.sync()
    finally:
        if restore is not None:
            UNet._check_inputs = restore
    el = time.perf_counter() - t_start
    losses_ = lossbuf.cpu().tolist()
    return dict(
        mode=mode,
        images_per_s=bs * (steps - warmup) / el,
        timed_steps=steps - warmup,
        seconds=el,
        peak_mib=D.peak_mib(),
        first_losses=losses_[:5],
        final_loss_mean_last50=statistics.fmean(losses_[-50:]),
        finite=all(math.isfinite(v) for v in losses_),
    ), losses_


# ---- Part B: official sizes vs official code -----------------------------------------------------


def official_part(D, batch, ddim_steps, repeats, smoke, modes):
    dev = D.d
    uflags = (
        O.UNET64
        if not smoke
        else (
            O.UNET64.replace('--num_channels 192', '--num_channels 64')
            .replace('--num_res_blocks 3', '--num_res_blocks 1')
            .replace('--image_size 64', '--image_size 32 --channel_mult 1,2')
        )
    )
    cflags = (
        O.CLF256
        if not smoke
        else (
            O.CLF256.replace('--image_size 256', '--image_size 64')
            .replace('--classifier_width 128', '--classifier_width 64')
            .replace('--classifier_depth 2', '--classifier_depth 1')
        )
    )
    out = {}
    for kind in ('unet', 'classifier'):
        t_kind = time.perf_counter()
        off = O.official_unet(uflags) if kind == 'unet' else O.official_classifier(cflags)
        ours = O.ours_from(off, kind, uflags if kind == 'unet' else cflags)
        off, ours = off.to(dev).eval(), ours.to(dev).eval()
        size = int(O._flags(uflags if kind == 'unet' else cflags)['image_size'])
        g = torch.Generator().manual_seed(0)
        x = torch.randn(batch, 3, size, size, generator=g).to(dev)
        t = torch.randint(0, 1000, (batch,), generator=g).to(dev)
        y = torch.randint(0, 1000, (batch,), generator=g).to(dev)
        call = {
            'ours': (lambda m: m(x, t, y)) if kind == 'unet' else (lambda m: m(x, t)),
            'official': (lambda m: m(x, t, y=y)) if kind == 'unet' else (lambda m: m(x, t)),
        }
        tf32 = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        with torch.no_grad():
            check = O.diff_stats(call['ours'](ours), call['official'](off))
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
        res = dict(
            params=sum(p.numel() for p in ours.parameters()),
            batch=batch,
            output_check_fp32=check,
            modes={},
        )
        print(
            f"  {kind}: {res['params'] / 1e6:.1f}M params, fp32 outputs "
            f"{'EQUAL' if check['equal'] else 'DIFFER'} (max |diff| {check['max_abs_diff']:.2e})",
            flush=True,
        )
        models = {'ours': ours, 'official': off}
        opts = {
            w: torch.optim.Adam(
                m.parameters(), lr=1e-4, **({'fused': True} if dev.type != 'cpu' else {})
            )
            for w, m in models.items()
        }
        for mode in modes:
            if 'channels_last' in mode:
                for m in models.values():
                    m.to(memory_format=torch.channels_last)
            xx = x.contiguous(memory_format=torch.channels_last) if 'channels_last' in mode else x
            ac = (
                (lambda: torch.autocast(dev.type, dtype=torch.bfloat16))
                if 'bf16' in mode
                else (lambda: torch.autocast(dev.type, enabled=False))
            )

            def fwd(w):
                def f():
                    with torch.no_grad(), ac():
                        (
                            models[w](xx, t, y)
                            if kind == 'unet' and w == 'ours'
                            else models[w](xx, t, y=y)
                            if kind == 'unet'
                            else models[w](xx, t)
                        )

                return f

            def train(w):
                def f():
                    models[w].train()
                    with ac():
                        o = (
                            models[w](xx, t, y)
                            if kind == 'unet' and w == 'ours'
                            else models[w](xx, t, y=y)
                            if kind == 'unet'
                            else models[w](xx, t)
                        )
                        loss = (
                            (o.float()[:, :3] - xx).square().mean()
                            if kind == 'unet'
                            else torch.nn.functional.cross_entropy(o.float(), y)
                        )
                    opts[w].zero_grad(set_to_none=True)
                    loss.backward()
                    opts[w].step()
                    models[w].eval()

                return f

            r = {}
            tf = C.interleaved(
                {w: fwd(w) for w in models}, warmup=0 if smoke else 2, repeats=repeats, device=dev
            )
            r['forward_img_s'] = {w: batch / C.med(v) for w, v in tf.items()}
            peaks = {}
            for w in models:
                D.sync()
                D.reset_peak()
                train(w)()
                D.sync()
                peaks[w] = D.peak_mib()
            tt = C.interleaved(
                {w: train(w) for w in models}, warmup=0 if smoke else 1, repeats=repeats, device=dev
            )
            r['train_img_s'] = {w: batch / C.med(v) for w, v in tt.items()}
            r['train_peak_mib'] = peaks
            if kind == 'unet' and ddim_steps:
                ro, rf, smp = (
                    O.sampler_fns(ours, off, batch, ddim_steps)
                    if not smoke
                    else _small_sampler(ours, off, batch, ddim_steps, uflags)
                )

                def wrap(fn):
                    def f():
                        with ac():
                            fn()

                    return f

                ts = C.interleaved(
                    {'ours': wrap(ro), 'official': wrap(rf)},
                    warmup=0 if smoke else 1,
                    repeats=max(1, repeats // 2),
                    device=dev,
                )
                r['ddim'] = dict(
                    steps=ddim_steps,
                    img_s={w: batch / C.med(v) for w, v in ts.items()},
                    sample_check=O.diff_stats(
                        smp['ours'].to('cpu').float(), smp['official'].to('cpu').float()
                    ),
                )
            res['modes'][mode] = r
            line = '  '.join(
                f"{k.replace('_img_s', '')} {v['ours'] / v['official']:.2f}"
                for k, v in r.items()
                if k.endswith('img_s')
            )
            if 'ddim' in r:
                line += (
                    f"  ddim{ddim_steps} "
                    f"{r['ddim']['img_s']['ours'] / r['ddim']['img_s']['official']:.2f}"
                )
            print(
                f"    {mode:22s} ours/official img/s: {line}   train peak MiB ours "
                f"{peaks['ours']:.0f} official {peaks['official']:.0f}",
                flush=True,
            )
        out[kind] = res
        print(f"    ({kind} part: {time.perf_counter() - t_kind:.0f} s)", flush=True)
        del models, opts, ours, off
        if D.mod is not None and hasattr(D.mod, 'empty_cache'):
            D.mod.empty_cache()
    return out


def _small_sampler(ours, off, batch, steps, uflags):
    "bench_official.sampler_fns for the --smoke model (its image size and device)."
    from adm_edu.schedule import Schedule
    from adm_edu.sampling import sample
    from guided_diffusion.script_util import create_gaussian_diffusion

    f = O._flags(uflags)
    dev = next(ours.parameters()).device
    diff = create_gaussian_diffusion(
        steps=f['diffusion_steps'],
        learn_sigma=True,
        noise_schedule=f['noise_schedule'],
        timestep_respacing=f'ddim{steps}',
    )
    sched = Schedule.named(f['noise_schedule'], f['diffusion_steps'])
    g = torch.Generator().manual_seed(5)
    noise = torch.randn(batch, 3, f['image_size'], f['image_size'], generator=g).to(dev)
    y = torch.randint(0, 1000, (batch,), generator=g).to(dev)
    out = {}

    def ro():
        out['ours'] = sample(
            ours,
            sched,
            noise.shape,
            steps=steps,
            sampler='ddim',
            eta=0.0,
            y=y,
            noise=noise.clone(),
        )

    def rf():
        out['official'] = diff.ddim_sample_loop(
            off,
            noise.shape,
            noise=noise.clone(),
            clip_denoised=True,
            model_kwargs={'y': y},
            progress=False,
            eta=0.0,
        )

    return ro, rf, out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        '--smoke',
        action='store_true',
        help='CPU-sized run (< 1 minute) to check that the script works',
    )
    ap.add_argument(
        '--device', default=None, help="default: adm_edu.device.default_device() (CPU with --smoke)"
    )
    ap.add_argument(
        '--out',
        default=None,
        help='JSON path (default $OUT/gpu_bench.json, else results/bench/gpu_bench.json)',
    )
    ap.add_argument('--bs', type=int, default=256)
    ap.add_argument('--steps', type=int, default=500)
    ap.add_argument('--warmup', type=int, default=30)
    ap.add_argument('--short-steps', type=int, default=150)
    ap.add_argument('--official-batch', type=int, default=32)
    ap.add_argument('--repeats', type=int, default=5)
    ap.add_argument('--parts', default='train,official')
    ap.add_argument(
        '--budget-s',
        type=float,
        default=440,
        help='skip what is left once this much time has passed',
    )
    a = ap.parse_args(argv)
    if a.smoke:
        a.device = a.device or 'cpu'
        a.bs, a.steps, a.warmup, a.short_steps, a.official_batch, a.repeats = 4, 3, 1, 3, 1, 1
    import warnings

    warnings.filterwarnings('ignore', category=FutureWarning)
    D = Dev(a.device)
    t0 = time.perf_counter()
    out_path = Path(
        a.out
        or (
            Path(os.environ['OUT']) / 'gpu_bench.json'
            if os.environ.get('OUT')
            else C.ROOT / 'results' / 'bench' / 'gpu_bench.json'
        )
    )
    res = dict(
        created=time.strftime('%Y-%m-%dT%H:%M:%S%z'),
        device=D.name(),
        hardware=C.hardware(D.d),
        smoke=a.smoke,
        args=vars(a),
        train={},
        loss_curves={},
        official=None,
        skipped=[],
        figures=[],
    )
    print(f"gpu_bench on {D.name()}{' (smoke)' if a.smoke else ''}", flush=True)

    def save():
        res['seconds'] = round(time.perf_counter() - t0, 1)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(res, indent=1) + '\n')

    if 'train' in a.parts:
        x_all, y_all, dname = fmnist_data(max(a.bs * 20, 4096) if not a.smoke else 64, D.d, a.smoke)
        res['train_data'] = dname
        plan = [
            ('eager-fp32', a.steps),
            ('compiled-fp32', a.steps),
            ('eager-fp32-nocheck', a.short_steps),
            ('eager-bf16', a.short_steps),
            ('compiled-bf16', a.short_steps),
        ]
        if a.smoke:
            plan = plan[:3]  # dynamo tracing on the CPU is slow; the bf16 paths are the same code
        for mode, steps in plan:
            if time.perf_counter() - t0 > a.budget_s * 0.6:
                res['skipped'].append(mode)
                continue
            try:
                r, curve = train_mode(mode, D, x_all, y_all, a.bs, steps, min(a.warmup, steps - 1))
            except Exception as e:  # e.g. compile unavailable: record, go on
                res['train'][mode] = dict(error=f'{type(e).__name__}: {e}'[:500])
                print(f"  {mode}: FAILED {e}")
                save()
                continue
            res['train'][mode] = r
            if steps == a.steps:
                res['loss_curves'][mode] = curve
            print(
                f"  fmnist-s {mode:20s} {r['images_per_s']:9.0f} img/s (batch {a.bs}, "
                f"{r['timed_steps']} timed steps)  "
                f"peak {r['peak_mib']:.0f} MiB  mean loss of the last 50 steps "
                f"{r['final_loss_mean_last50']:.4f}",
                flush=True,
            )
            save()
        base = res['train'].get('eager-fp32', {}).get('images_per_s')
        for mode, r in res['train'].items():
            if base and 'images_per_s' in r and mode != 'eager-fp32':
                res['figures'].append(
                    C.figure(
                        f'fmnist-s training img/s, {mode} / eager-fp32 (batch {a.bs})',
                        r['images_per_s'] / base,
                        r['images_per_s'],
                        base,
                        'img/s',
                    )
                )
        ce, cc = res['loss_curves'].get('eager-fp32'), res['loss_curves'].get('compiled-fp32')
        if ce and cc:
            d = [abs(p - q) for p, q in zip(ce, cc)]
            res['loss_curve_compare'] = dict(
                max_abs_diff=max(d),
                mean_abs_diff=statistics.fmean(d),
                mean_last50=dict(
                    eager=statistics.fmean(ce[-50:]), compiled=statistics.fmean(cc[-50:])
                ),
                note=(
                    'same seed, data order and noise draws; dropout masks differ between eager '
                    'and compiled'
                ),
            )
            print(
                f"  loss curves eager vs compiled (fp32, {len(ce)} steps): mean |diff| "
                f"{res['loss_curve_compare']['mean_abs_diff']:.4f}, "
                f"last-50 means {res['loss_curve_compare']['mean_last50']['eager']:.4f} / "
                f"{res['loss_curve_compare']['mean_last50']['compiled']:.4f}"
            )
        save()
    if 'official' in a.parts:
        if time.perf_counter() - t0 > a.budget_s:
            res['skipped'].append('official')
        else:
            modes = (
                ['fp32', 'bf16', 'bf16+channels_last']
                if not a.smoke
                else ['fp32', 'bf16+channels_last']
            )
            res['official'] = official_part(
                D, a.official_batch, 25 if not a.smoke else 2, a.repeats, a.smoke, modes
            )
            for kind, r in res['official'].items():
                for mode, m in r['modes'].items():
                    for k in ('forward_img_s', 'train_img_s'):
                        res['figures'].append(
                            C.figure(
                                f"official {kind} {k.replace('_img_s', '')} img/s, ours / "
                                f"official ({mode}, batch {a.official_batch})",
                                m[k]['ours'] / m[k]['official'],
                                m[k]['ours'],
                                m[k]['official'],
                                'img/s',
                            )
                        )
                    if 'ddim' in m:
                        v = m['ddim']['img_s']
                        res['figures'].append(
                            C.figure(
                                f"official unet DDIM-{m['ddim']['steps']} img/s, ours / official "
                                f"({mode}, batch {a.official_batch})",
                                v['ours'] / v['official'],
                                v['ours'],
                                v['official'],
                                'img/s',
                            )
                        )
    save()
    print(f"wrote {out_path} in {res['seconds']:.0f} s")


if __name__ == '__main__':
    main()
