"""Sampler overhead: (total DDIM-50 sampling time) / (sum of model forward times) at batch 64, small
UNet-like model.

The sampler's own work (coefficients, the update, noise, bookkeeping) should be negligible next to
the network: target ratio <= 1.03 (1.0 is the limit). The same ratio is printed for diffusers'
DDIMScheduler loop with the same model in the same run, as the baseline.

    python bench/bench_sampling.py [--device cpu|cuda|mps] [--batch 64] [--steps 50] [--size 32]
        [--repeats 3] [--threads 1] [--json PATH]

With --json the figures go to PATH: each loop's total / model time (the baseline is the model time
measured inside that same loop) and the wall time of our loop / the diffusers loop with the same
model. More figures with the shipped fmnist-s: bf16 autocast / fp32 (where bf16 is native);
channels-last weights / the default layout (on a CPU, fp32 and native bf16); and the speed-up of
tune_malloc('keep') (what the command-line tools set) over glibc's defaults, in fresh processes
taken in turn."""

import argparse
import contextlib
import io
import statistics
import sys
import time
from pathlib import Path
import torch
from torch import nn

from adm_edu.device import default_device, autocast_dtype, cpu_has_native_bf16
from adm_edu.schedule import Schedule
from adm_edu.sampling import sample, SampleOptions


class TinyUNet(nn.Module):
    """A small UNet-like eps-model: conv stem, two resolutions with time-conditioned residual
    blocks, skip connections."""

    def __init__(self, c=3, ch=32, temb=64):
        super().__init__()
        self.temb = nn.Sequential(nn.Linear(temb, temb), nn.SiLU(), nn.Linear(temb, temb))
        self.inp = nn.Conv2d(c, ch, 3, padding=1)
        self.b1 = nn.Sequential(nn.GroupNorm(8, ch), nn.SiLU(), nn.Conv2d(ch, ch, 3, padding=1))
        self.t1 = nn.Linear(temb, ch)
        self.down = nn.Conv2d(ch, 2 * ch, 3, stride=2, padding=1)
        self.b2 = nn.Sequential(
            nn.GroupNorm(8, 2 * ch), nn.SiLU(), nn.Conv2d(2 * ch, 2 * ch, 3, padding=1)
        )
        self.t2 = nn.Linear(temb, 2 * ch)
        self.up = nn.ConvTranspose2d(2 * ch, ch, 4, stride=2, padding=1)
        self.b3 = nn.Sequential(
            nn.GroupNorm(8, 2 * ch), nn.SiLU(), nn.Conv2d(2 * ch, ch, 3, padding=1)
        )
        self.out = nn.Sequential(nn.GroupNorm(8, ch), nn.SiLU(), nn.Conv2d(ch, c, 3, padding=1))
        self.register_buffer('freqs', torch.exp(-torch.arange(temb // 2) * (9.21 / (temb // 2))))

    def forward(self, x, t, y=None):
        a = t.float()[:, None] * self.freqs[None]
        e = self.temb(torch.cat([a.sin(), a.cos()], 1))
        h1 = self.inp(x)
        h1 = h1 + self.b1(h1) + self.t1(e)[:, :, None, None]
        h2 = self.down(h1)
        h2 = h2 + self.b2(h2) + self.t2(e)[:, :, None, None]
        h = self.b3(torch.cat([self.up(h2), h1], 1))
        return self.out(h)


class Timed(nn.Module):
    """Wraps a model and accumulates the time spent in its forward calls (CUDA events on GPU, so no
    extra syncs)."""

    def __init__(self, model, device):
        super().__init__()
        self.model, self.cuda = model, device.type == 'cuda'
        self.reset()

    def reset(self):
        self.cpu_time, self.events, self.calls = 0.0, [], 0

    def forward(self, *a, **k):
        self.calls += 1
        if self.cuda:
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            out = self.model(*a, **k)
            e.record()
            self.events.append((s, e))
            return out
        t0 = time.perf_counter()
        out = self.model(*a, **k)
        self.cpu_time += time.perf_counter() - t0
        return out

    def total(self):
        if self.cuda:
            torch.cuda.synchronize()
            return sum(s.elapsed_time(e) for s, e in self.events) / 1000
        return self.cpu_time

    def parameters(self, recurse=True):
        return self.model.parameters(recurse)


def sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize()


def run_ours(timed, sched, shape, steps, device, progress):
    timed.reset()
    sync(device)
    t0 = time.perf_counter()
    # the progress bar is drawn (its cost counts) but not printed
    with contextlib.redirect_stdout(io.StringIO()):
        sample(
            timed,
            sched,
            shape,
            steps=steps,
            eta=0.0,
            generator=torch.Generator(device).manual_seed(0),
            options=SampleOptions(device=device, progress=progress),
        )
    sync(device)
    dt = time.perf_counter() - t0
    return dt / timed.total(), timed.calls, dt


def run_diffusers(timed, shape, steps, device):
    from diffusers import DDIMScheduler

    sch = DDIMScheduler(
        num_train_timesteps=1000, beta_schedule='linear', clip_sample=True, set_alpha_to_one=True
    )
    timed.reset()
    sync(device)
    t0 = time.perf_counter()
    sch.set_timesteps(steps, device=device)
    x = torch.randn(shape, generator=torch.Generator(device).manual_seed(0), device=device)
    with torch.no_grad():
        for t in sch.timesteps:
            eps = timed(x, t.expand(shape[0]))
            x = sch.step(eps, t, x, eta=0.0, use_clipped_model_output=True).prev_sample
    sync(device)
    dt = time.perf_counter() - t0
    return dt / timed.total(), timed.calls, dt


def time_fmnist_sampling(net, sched, batch, steps, device, autocast=None):
    """Wall seconds of one fmnist-s DDIM run of `batch` images (classes 0..9 in turn), same seed
    every time."""
    y = torch.arange(batch, device=device) % 10
    sync(device)
    t0 = time.perf_counter()
    sample(
        net,
        sched,
        (batch, 1, 32, 32),
        steps=steps,
        y=y,
        generator=torch.Generator(device).manual_seed(0),
        options=SampleOptions(device=device, autocast=autocast),
    )
    sync(device)
    return time.perf_counter() - t0


def layout_precision_times(device, batch, steps, repeats):
    """fmnist-s sampling in this process, interleaved: the default layout and (on a CPU)
    channels-last weights (`inference_memory_format`), each in fp32 and (where native) under bf16
    autocast. {(layout, 'fp32'|'bf16'): median s}, or None."""
    from adm_edu.pretrained import load_pretrained, available

    if 'fmnist-s' not in available():
        return None
    layouts = (
        (torch.contiguous_format, torch.channels_last)
        if device.type == 'cpu'
        else (torch.contiguous_format,)
    )
    # bf16 only where native
    amps = {
        'fp32': None,
        **({'bf16': torch.bfloat16} if autocast_dtype(device) == torch.bfloat16 else {}),
    }
    nets, sched = {}, None
    for fmt in layouts:
        nets[fmt], sched, _ = load_pretrained('fmnist-s', device=device, memory_format=fmt)
    runs = {
        (fmt, k): (
            lambda net=net, amp=amp: time_fmnist_sampling(net, sched, batch, steps, device, amp)
        )
        for fmt, net in nets.items()
        for k, amp in amps.items()
    }
    for run in runs.values():
        run()  # warm-up
    t = {k: [] for k in runs}
    for _ in range(repeats):
        for k, run in runs.items():
            t[k].append(run())
    return {k: statistics.median(v) for k, v in t.items()}


def malloc_child(mode, threads, batch, steps, q):
    """One fresh process: fmnist-s DDIM sampling time with glibc's defaults ('default') or
    tune_malloc('keep'); median of 2 after a warm-up."""
    from adm_edu.device import tune_malloc
    from adm_edu.pretrained import load_pretrained

    applied = tune_malloc('keep') if mode == 'keep' else None
    if threads:
        torch.set_num_threads(threads)
    net, sched, _ = load_pretrained('fmnist-s', device='cpu')
    run = lambda: time_fmnist_sampling(net, sched, batch, steps, torch.device('cpu'))
    run()
    q.put(dict(seconds=statistics.median([run(), run()]), applied=applied))


def malloc_ratio(threads, batch=32, steps=10, rounds=3):
    """fmnist-s sampling, tune_malloc('keep') against glibc's defaults: fresh processes,
    alternating; (default s, keep s) medians, or None."""
    from adm_edu.pretrained import available

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import _common as C

    if 'fmnist-s' not in available():
        return None
    t = {'default': [], 'keep': []}
    for _ in range(rounds):
        for mode in t:
            r = C.spawn(malloc_child, mode, threads, batch, steps)
            if mode == 'keep' and not r['applied']:
                return None  # not glibc: nothing to compare
            t[mode].append(r['seconds'])
    return statistics.median(t['default']), statistics.median(t['keep'])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--device', default=None)
    p.add_argument('--batch', type=int, default=64)
    p.add_argument('--steps', type=int, default=50)
    p.add_argument('--size', type=int, default=32)
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--json', default=None)
    p.add_argument(
        '--threads',
        type=int,
        default=1,
        help=(
            'torch CPU threads; 0 keeps torch\'s default (1 gives stable timings on a shared '
            'machine)'
        ),
    )
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    device = default_device(a.device)
    torch.manual_seed(0)
    timed = Timed(TinyUNet().to(device).eval(), device)
    sched, shape = Schedule.linear(1000), (a.batch, 3, a.size, a.size)
    run_ours(timed, sched, shape, 3, device, False)
    run_diffusers(timed, shape, 3, device)  # warm-up
    rows = {
        'adm_edu.sampling.sample': [],
        'adm_edu.sampling.sample (progress bar)': [],
        'diffusers DDIMScheduler loop': [],
    }
    for _ in range(a.repeats):  # interleaved, so that machine load hits all alike
        rows['adm_edu.sampling.sample'].append(
            run_ours(timed, sched, shape, a.steps, device, False)
        )
        rows['adm_edu.sampling.sample (progress bar)'].append(
            run_ours(timed, sched, shape, a.steps, device, True)
        )
        rows['diffusers DDIMScheduler loop'].append(run_diffusers(timed, shape, a.steps, device))
    print(
        f"DDIM-{a.steps}, batch {a.batch}, {tuple(shape[1:])}, device {device}, "
        f"{sum(p.numel() for p in timed.parameters())} params, "
        f"{torch.get_num_threads()} CPU threads, median of {a.repeats}"
    )
    print(f"{'sampler':42s} {'total / model time':>20s} {'model calls':>12s}")
    for name, r in rows.items():
        ratio = statistics.median(x for x, _, _ in r)
        print(f"{name:42s} {ratio:20.4f} {r[0][1]:12d}")
    ours = statistics.median(x for x, _, _ in rows['adm_edu.sampling.sample'])
    print(f"target <= 1.03: {'met' if ours <= 1.03 else 'NOT met'} ({ours:.4f})")
    wall = {k: statistics.median(dt for _, _, dt in r) for k, r in rows.items()}
    print(
        "wall time, ours / diffusers loop: "
        f"{wall['adm_edu.sampling.sample'] / wall['diffusers DDIMScheduler loop']:.3f}"
    )
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import figure, write_json

    lp = layout_precision_times(device, 32, 10, a.repeats) or {}
    C0, CL = torch.contiguous_format, torch.channels_last
    # (fp32 s, bf16 s), default layout
    bf = (lp[C0, 'fp32'], lp[C0, 'bf16']) if (C0, 'bf16') in lp else None
    # {precision: (default s, channels-last s)}
    cl = {k: (lp[C0, k], lp[CL, k]) for k in ('fp32', 'bf16') if (CL, k) in lp}
    if bf is None:
        print(
            "fmnist-s bf16 sampling: skipped (no native bf16 on "
            f"{device}{'' if device.type != 'cpu' else f': native_bf16={cpu_has_native_bf16()}'}, "
            "or no shipped fmnist-s)"
        )
    else:
        print(
            f"fmnist-s DDIM-10 batch 32, bf16 autocast / fp32 speed-up: {bf[0] / bf[1]:.2f}x "
            f"({bf[0]:.2f} s vs {bf[1]:.2f} s)"
        )
    for k, (c, l) in cl.items():
        print(
            f"fmnist-s DDIM-10 batch 32 ({k}), channels-last weights / default layout speed-up: "
            f"{c / l:.2f}x ({c:.2f} s vs {l:.2f} s)"
        )
    mr = malloc_ratio(a.threads)
    if mr is None:
        print(
            "fmnist-s sampling with tune_malloc('keep'): skipped (not glibc, or no shipped "
            "fmnist-s)"
        )
    else:
        print(
            "fmnist-s DDIM-10 batch 32, tune_malloc('keep') / glibc defaults speed-up: "
            f"{mr[0] / mr[1]:.2f}x ({mr[0]:.2f} s vs {mr[1]:.2f} s)"
        )
    figs = [
        figure(
            f"DDIM-{a.steps} loop time / model-forward time, {k} (batch {a.batch}, {a.size}px)",
            statistics.median(x for x, _, _ in r),
            note='overhead of the sampler itself; target <= 1.03',
            higher_is_better=False,
        )
        for k, r in rows.items()
    ]
    figs.append(
        figure(
            f"DDIM-{a.steps} sampling wall time, adm_edu.sampling.sample / diffusers "
            "DDIMScheduler loop (same model)",
            wall['adm_edu.sampling.sample'] / wall['diffusers DDIMScheduler loop'],
            wall['adm_edu.sampling.sample'],
            wall['diffusers DDIMScheduler loop'],
            's',
            higher_is_better=False,
        )
    )
    if bf is not None:
        figs.append(
            figure(
                "fmnist-s DDIM-10 sampling speed, bf16 autocast / fp32 (batch 32; the network "
                "only, native bf16)",
                bf[0] / bf[1],
                32 / bf[1],
                32 / bf[0],
                'img/s',
                higher_is_better=True,
            )
        )
    for k, (c, l) in cl.items():
        figs.append(
            figure(
                f"fmnist-s DDIM-10 sampling speed, channels-last weights / default layout ({k}, "
                "batch 32)",
                c / l,
                32 / l,
                32 / c,
                'img/s',
                higher_is_better=True,
                note=(
                    'adm_edu.device.inference_memory_format: what the command-line tools load on '
                    'a CPU'
                ),
            )
        )
    if mr is not None:
        figs.append(
            figure(
                "fmnist-s DDIM-10 sampling speed, tune_malloc('keep') / glibc defaults (batch 32; "
                "fresh processes, alternating)",
                mr[0] / mr[1],
                32 / mr[1],
                32 / mr[0],
                'img/s',
                higher_is_better=True,
                note=(
                    'what the command-line tools gain by keeping freed memory '
                    '(adm_edu.device.tune_malloc)'
                ),
            )
        )
    write_json(
        a.json,
        'bench_sampling',
        figs,
        dict(
            batch=a.batch,
            steps=a.steps,
            size=a.size,
            repeats=a.repeats,
            threads=torch.get_num_threads(),
            device=str(device),
        ),
    )


if __name__ == '__main__':
    main()
