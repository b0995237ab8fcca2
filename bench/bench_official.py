"""The official sizes against the official code (guided-diffusion-sdk's copy of OpenAI's
guided_diffusion) on this machine.

Models, with random weights (the official initialisation, and its zero-initialised layers re-drawn
with PyTorch's default so that outputs are not trivially zero):
  * the released 64x64 ADM (flags of 64x64_diffusion.pt, use_fp16 False; 296M parameters);
  * the 256x256 noisy classifier (flags of 256x256_classifier.pt: width 128, depth 2, attention pool
    at 32,16,8).
Each official state dict is converted with `adm_edu.openai.unet_from_openai` /
`classifier_from_openai`, and the outputs are checked equal in fp32 (max abs difference, relative to
the output's RMS).

Timing, in one process, ours and the official interleaved (ours, official, ours, ...), median of the
timed runs after a warm-up: forward (no grad), training step (forward + MSE / cross-entropy loss +
backward + Adam step), and for the U-Net DDIM sampling (ours:
adm_edu.sampling.sample(sampler='ddim', steps=N, eta=0); official:
create_gaussian_diffusion(timestep_respacing=f'ddim{N}').ddim_sample_loop(eta=0)) from the same
noise; the first timed pair also gives the sample-equality check. Figures are images/s ratios
ours / official.

Peak memory: growth of ru_maxrss (peak resident set, *not* tracemalloc, which does not see
PyTorch's allocations) over the built model, in one fresh process per model: after a forward, then
after a training step. glibc is set to return every block of 64 KiB or more to the system at free
(adm_edu.device.tune_malloc('release')), so the growth is the peak of live memory rather than the
allocator's heap layout (with glibc's defaults the forward figure, ours / official, was 1.26 in one
run and 1.15 in the next on the same machine).

    python bench/bench_official.py [--batch 1] [--repeats 3] [--ddim-steps 25] [--ddim-runs 2]
        [--json out.json]
"""

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

UNET64 = (
    "--attention_resolutions 32,16,8 --class_cond True --diffusion_steps 1000 --dropout 0.1 "
    "--image_size 64 "
    "--learn_sigma True --noise_schedule cosine --num_channels 192 --num_head_channels 64 "
    "--num_res_blocks 3 "
    "--resblock_updown True --use_new_attention_order True --use_fp16 False "
    "--use_scale_shift_norm True"
)
CLF256 = (
    "--image_size 256 --classifier_attention_resolutions 32,16,8 --classifier_depth 2 "
    "--classifier_width 128 "
    "--classifier_pool attention --classifier_resblock_updown True "
    "--classifier_use_scale_shift_norm True"
)
DIFFUSION_KEYS = ('diffusion_steps', 'noise_schedule', 'learn_sigma', 'use_fp16')


def _flags(s):
    from adm_edu.openai import parse_flags

    return parse_flags(s)


def official_unet(flags=UNET64):
    import torch
    from guided_diffusion.script_util import create_model, model_and_diffusion_defaults

    f = _flags(flags)
    kw = {
        k: v
        for k, v in {**model_and_diffusion_defaults(), **f}.items()
        if k in create_model.__code__.co_varnames[: create_model.__code__.co_argcount]
    }
    torch.manual_seed(0)
    return _redraw_zeros(create_model(**kw))


def official_classifier(flags=CLF256):
    import torch
    from guided_diffusion.script_util import create_classifier, classifier_defaults

    kw = {
        k: v
        for k, v in {**classifier_defaults(), **_flags(flags)}.items()
        if k in create_classifier.__code__.co_varnames[: create_classifier.__code__.co_argcount]
    }
    torch.manual_seed(1)
    return _redraw_zeros(create_classifier(**kw))


def _redraw_zeros(m):
    """The official init zeroes the last layer of every residual branch and the output conv; draw
    those like PyTorch's default."""
    import torch

    with torch.no_grad():
        for p in m.parameters():
            if p.dim() > 1 and not p.any():
                torch.nn.init.kaiming_uniform_(p, a=math.sqrt(5))
    return m


def ours_from(official, kind, flags=None):
    from adm_edu.openai import unet_from_openai, classifier_from_openai

    if kind == 'unet':
        return unet_from_openai(
            official.state_dict(),
            **{k: v for k, v in _flags(flags or UNET64).items() if k != 'use_fp16'},
        )
    return classifier_from_openai(official.state_dict(), **_flags(flags or CLF256))


def ours_empty(kind):
    "Ours with the same configuration, random weights (for the memory processes)."
    from adm_edu.openai import unet_kwargs_from_flags, classifier_kwargs_from_flags
    from adm_edu.unet import UNet
    from adm_edu.classifier import NoisyClassifier

    if kind == 'unet':
        return UNet(
            **unet_kwargs_from_flags(**{k: v for k, v in _flags(UNET64).items() if k != 'use_fp16'})
        )
    return NoisyClassifier(**classifier_kwargs_from_flags(**_flags(CLF256)))


def inputs(kind, batch, seed=0):
    import torch

    g = torch.Generator().manual_seed(seed)
    size = 64 if kind == 'unet' else 256
    x = torch.randn(batch, 3, size, size, generator=g)
    t = torch.randint(0, 1000, (batch,), generator=g)
    y = torch.randint(0, 1000, (batch,), generator=g)
    return x, t, y


def fns(kind, who, m, batch):
    "forward and training-step closures for model `m` (ours or official)."
    import torch
    import torch.nn.functional as F

    x, t, y = inputs(kind, batch)
    if kind == 'unet':
        call = (lambda: m(x, t, y)) if who == 'ours' else (lambda: m(x, t, y=y))
    else:
        call = lambda: m(x, t)
    opt = torch.optim.Adam(m.parameters(), lr=1e-4)

    def fwd():
        with torch.no_grad():
            return call()

    def train():
        out = call()
        loss = (out[:, :3] - x).square().mean() if kind == 'unet' else F.cross_entropy(out, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return fwd, train, opt


def sampler_fns(ours, official, batch, steps):
    import torch
    from adm_edu.schedule import Schedule
    from adm_edu.sampling import sample, SampleOptions
    from guided_diffusion.script_util import create_gaussian_diffusion

    f = _flags(UNET64)
    diff = create_gaussian_diffusion(
        steps=f['diffusion_steps'],
        learn_sigma=True,
        noise_schedule=f['noise_schedule'],
        timestep_respacing=f'ddim{steps}',
    )
    sched = Schedule.named(f['noise_schedule'], f['diffusion_steps'])
    g = torch.Generator().manual_seed(5)
    noise = torch.randn(batch, 3, 64, 64, generator=g)
    y = torch.randint(0, 1000, (batch,), generator=g)
    out = {}

    def run_ours():
        out['ours'] = sample(
            ours,
            sched,
            noise.shape,
            steps=steps,
            sampler='ddim',
            eta=0.0,
            y=y,
            noise=noise.clone(),
            options=SampleOptions(clip_denoised=True),
        )

    def run_official():
        out['official'] = diff.ddim_sample_loop(
            official,
            noise.shape,
            noise=noise.clone(),
            clip_denoised=True,
            model_kwargs={'y': y},
            progress=False,
            eta=0.0,
        )

    return run_ours, run_official, out


def diff_stats(a, b):
    a, b = a.detach().float(), b.detach().float()
    d = (a - b).abs().max().item()
    rms = b.square().mean().sqrt().item()
    return dict(
        max_abs_diff=d,
        rms=rms,
        rel=d / max(rms, 1e-30),
        equal=bool(d <= 1e-3 * max(rms, 1e-30) + 1e-5),
    )


def compare(kind, batch, repeats, ddim_steps, ddim_runs, q):
    import torch

    t0 = time.perf_counter()
    official = official_unet() if kind == 'unet' else official_classifier()
    ours = ours_from(official, kind)
    n_params = sum(p.numel() for p in ours.parameters())
    assert n_params == sum(p.numel() for p in official.parameters())
    build_s = time.perf_counter() - t0
    ours.eval()
    official.eval()
    F = {w: fns(kind, w, m, batch) for w, m in (('ours', ours), ('official', official))}
    check = diff_stats(F['ours'][0](), F['official'][0]())
    res = dict(kind=kind, params=n_params, batch=batch, build_s=build_s, output_check=check)
    tf = C.interleaved({w: f[0] for w, f in F.items()}, warmup=1, repeats=repeats)
    res['forward_img_s'] = {w: batch / C.med(v) for w, v in tf.items()}
    if kind == 'unet' and ddim_runs:
        ro, rf, out = sampler_fns(ours, official, batch, ddim_steps)
        ts = C.interleaved({'ours': ro, 'official': rf}, warmup=0, repeats=ddim_runs)
        res['ddim'] = dict(
            steps=ddim_steps,
            runs=ddim_runs,
            img_s={w: batch / C.med(v) for w, v in ts.items()},
            seconds={w: C.med(v) for w, v in ts.items()},
            sample_check=diff_stats(out['ours'], out['official']),
        )
    ours.train()
    official.train()
    tt = C.interleaved({w: f[1] for w, f in F.items()}, warmup=1, repeats=repeats)
    res['train_img_s'] = {w: batch / C.med(v) for w, v in tt.items()}
    res['threads'] = torch.get_num_threads()
    q.put(res)


def memory(kind, who, batch, q):
    import torch

    C.release_memory_mode()
    m = (
        (official_unet() if kind == 'unet' else official_classifier())
        if who == 'official'
        else ours_empty(kind)
    )
    fwd, train, _ = fns(kind, who, m, batch)
    m.eval()
    base = C.maxrss_mib()
    fwd()
    f = C.maxrss_mib() - base
    m.train()
    train()
    t = C.maxrss_mib() - base
    q.put(
        dict(
            forward_mib=f, train_mib=t, model_mib=sum(p.numel() for p in m.parameters()) * 4 / 2**20
        )
    )


spawn = C.spawn


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--batch', type=int, default=1)
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--ddim-steps', type=int, default=25)
    ap.add_argument('--ddim-runs', type=int, default=2)
    ap.add_argument('--kinds', default='unet,classifier')
    ap.add_argument('--no-memory', action='store_true')
    ap.add_argument('--json', default=None)
    a = ap.parse_args(argv)
    import os
    import torch
    import warnings

    warnings.filterwarnings('ignore', category=FutureWarning)
    # the spawned workers too (torch.cuda.amp.custom_fwd)
    os.environ.setdefault('PYTHONWARNINGS', 'ignore::FutureWarning')
    print(
        f"bench_official: ours vs guided_diffusion (official code), batch {a.batch}, median of "
        f"{a.repeats} timed runs "
        f"(interleaved), torch {torch.__version__}, {torch.get_num_threads()} threads",
        flush=True,
    )
    figs, ctx = [], {}
    names = dict(unet='ADM 64x64 U-Net (296M)', classifier='256x256 classifier')
    for kind in a.kinds.split(','):
        r = spawn(compare, kind, a.batch, a.repeats, a.ddim_steps, a.ddim_runs)
        mem = (
            {}
            if a.no_memory
            else {w: spawn(memory, kind, w, a.batch) for w in ('ours', 'official')}
        )
        ctx[kind] = dict(r, memory=mem)
        nm, c = names[kind], r['output_check']
        print(
            f"  {nm}: {r['params'] / 1e6:.1f}M params; fp32 outputs "
            f"{'EQUAL' if c['equal'] else 'DIFFER'} "
            f"(max |diff| {c['max_abs_diff']:.2e}, output RMS {c['rms']:.3g})"
        )
        rows = [('forward', r['forward_img_s']), ('training step (Adam)', r['train_img_s'])]
        if 'ddim' in r:
            d = r['ddim']
            sc = d['sample_check']
            rows.append((f"DDIM-{d['steps']} sampling", d['img_s']))
            print(
                f"    DDIM-{d['steps']} samples from the same noise "
                f"{'EQUAL' if sc['equal'] else 'DIFFER'} "
                f"(max |diff| {sc['max_abs_diff']:.2e}, RMS {sc['rms']:.3g}); median of "
                f"{d['runs']} runs: "
                f"ours {d['seconds']['ours']:.1f} s, official {d['seconds']['official']:.1f} s"
            )
        for what, v in rows:
            ratio = v['ours'] / v['official']
            print(
                f"    {what:24s} ours {v['ours']:8.3f} img/s  official {v['official']:8.3f} "
                f"img/s  ratio {ratio:.2f}"
            )
            figs.append(
                C.figure(
                    f"{nm} {what} img/s, ours / official (batch {a.batch})",
                    ratio,
                    v['ours'],
                    v['official'],
                    'img/s',
                )
            )
        for ph in ('forward', 'train'):
            if not mem:
                break
            o, b = mem['ours'][f'{ph}_mib'], mem['official'][f'{ph}_mib']
            print(
                f"    peak RSS growth, {ph:8s} ours {o:7.0f} MiB  official {b:7.0f} MiB  ratio "
                f"{o / max(b, 1e-9):.2f}"
            )
            figs.append(
                C.figure(
                    f"{nm} peak memory ({ph}), ours / official (batch {a.batch})",
                    o / max(b, 1e-9),
                    o,
                    b,
                    'MiB',
                    higher_is_better=False,
                    note=(
                        "ru_maxrss growth over the built model, one fresh process per model, "
                        "tune_malloc('release'): peak live memory"
                    ),
                )
            )
        figs.append(
            C.figure(
                f"{nm} fp32 output max |ours - official| / RMS",
                c['rel'],
                c['max_abs_diff'],
                c['rms'],
                '',
                higher_is_better=False,
                note='equality check, not a speed ratio',
            )
        )
        sys.stdout.flush()
    C.write_json(
        a.json,
        'bench_official',
        figs,
        dict(batch=a.batch, repeats=a.repeats, unet_flags=UNET64, classifier_flags=CLF256, **ctx),
    )


if __name__ == '__main__':
    sys.exit(main())
