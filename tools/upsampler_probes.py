"""Why the 16->32 upsampler falls short: four probes of a super-resolution model, on library calls.

    python tools/upsampler_probes.py uses [--model fmnist-16-32] [--n 64]
    python tools/upsampler_probes.py diag [--model fmnist-16-32] [--n 300] [--out FILE.json]
    python tools/upsampler_probes.py traj [--model fmnist-16-32] [--n 16]
    python tools/upsampler_probes.py train {finetune,linear} [--work runs]

`uses`: does the network use its low-resolution input? Test images noised to t
(`Schedule.q_sample`), the error of its eps and of its x0-hat's 16x16 (`Schedule.p_mean_variance`)
against the input, with the right, another image's and a zero low-resolution input (one JSON line
per t).
`diag`: real 16x16 training images through the upsampler (25 ancestral steps), scored as
cascade-table's real-16+ADM-U-25 row, and the agreement of its outputs with the input on 64 test
images (one JSON record). `traj`: the reverse process started from the real image noised to t
instead of from noise (SDEdit's start), against all steps from noise. `train`: the two training
probes, more epochs from the shipped weights (`finetune`) and the official upsamplers' linear
schedule (`linear`), through the experiments' training path; `diag WORK/up-NAME/model.pt` scores
them. The records of a run on 2026-12-01 are in results/upsampler-probes-2026-12-01/ (README).
"""

import argparse
import json
import time

import torch
import torch.nn.functional as F

from adm_edu.data import area_downsample, load_dataset
from adm_edu.device import describe_device
from adm_edu.experiments.runner import real_row, score, train_run
from adm_edu.pretrained import load_pretrained
from adm_edu.sampling import sample

TRAINING = dict(  # fmnist-16-32's recipe (chapter 12), the training probes' base
    dataset='fashion-mnist',
    preset='fmnist-16-32',
    loss='hybrid',
    T=1000,
    bs=64,
    lr=1e-3,
    ckpt_every=200,
    mixed_precision='fp32',
    log_every=100,
)
PROBES = {  # name -> the run's settings on top of TRAINING
    'finetune': dict(schedule='cosine', epochs=2, init='fmnist-16-32', seed=1),  # 3 epochs in all
    'linear': dict(schedule='linear', epochs=1, seed=0),  # as fmnist-16-32, the linear schedule
}


def test_batch(n: int) -> tuple:
    "The first `n` test images, their labels and their 16x16 versions (the upsampler's input)."
    ds = load_dataset('fashion-mnist', 'test')
    x0, y = ds.images[:n], ds.labels[:n]
    return x0, y, area_downsample(x0, 16)


def mse(a, b) -> float:
    "Mean squared difference of two batches."
    return ((a - b) ** 2).mean().item()


def uses(model: str, n: int):
    "One JSON line per t: eps and x0-hat errors with the right, a wrong and a zero low-res input."
    up, sched, _ = load_pretrained(model, device='cpu')
    x0, y, low = test_batch(n)
    g = torch.Generator().manual_seed(0)
    inputs = {'right': low, 'wrong': low.roll(1, 0), 'zeros': torch.zeros_like(low)}
    for t in (100, 500, 800, 900, 950, 990):
        tt = torch.full((n,), t)
        noise = torch.randn(x0.shape, generator=g)
        xt = sched.q_sample(x0, tt, noise)
        out = {}
        for name, lr in inputs.items():
            with torch.no_grad():
                pred = up(xt, tt, y, low_res=lr)
            x0_hat = sched.p_mean_variance(pred, xt, tt)['pred_x0']
            eps_mse = round(mse(pred[:, : x0.shape[1]], noise), 5)
            low_mse = round(mse(area_downsample(x0_hat, 16), low), 4)
            out[name] = dict(eps_mse=eps_mse, x0hat_lowres_mse=low_mse)
        print(json.dumps(dict(t=t, alpha_bar=float(sched.alpha_bar[t]), **out)), flush=True)


def diag(model: str, n: int, out: str | None):
    "Real 16x16 images through the upsampler, scored; and its agreement with the input."
    t0 = time.time()
    row = dict(model='real', size=16, upsampler=model, up_steps=25, up_sampler='ancestral')
    im, y, _ = real_row(row, n)
    r = score(im, y)
    up, sched, _ = load_pretrained(model, device='cpu')
    x0, yy, low = test_batch(64)
    opts = dict(model_kwargs=dict(low_res=low))
    gen = torch.Generator().manual_seed(0)
    x = sample(up, sched, x0.shape, 25, 'ancestral', y=yy, generator=gen, options=opts)
    bilinear = F.interpolate(low, size=x0.shape[-1], mode='bilinear', align_corners=False)
    rec = dict(upsampler=model, n=n, **{k: r[k] for k in ('fid', 'fid_se', 'class_acc')})
    rec.update(precision=r['precision'], recall=r['recall'], mse_to_x0=mse(x, x0))
    rec.update(
        lowres_agreement_mse=mse(area_downsample(x, 16), low), bilinear_mse=mse(bilinear, x0)
    )
    rec.update(seconds=round(time.time() - t0, 1), hardware=describe_device())
    text = json.dumps(rec)
    print(text)
    if out:
        with open(out, 'w') as f:
            f.write(text + '\n')


def traj(model: str, n: int):
    "The reverse process from the real image noised to t0 (every original step, ancestral)."
    up, sched, _ = load_pretrained(model, device='cpu')
    x0, y, low = test_batch(n)
    opts = dict(model_kwargs=dict(low_res=low))
    g = torch.Generator().manual_seed(0)

    def report(name, x):
        agree = mse(area_downsample(x, 16), low)
        print(f'{name} mse {mse(x, x0):.4f} agree {agree:.4f}', flush=True)

    for t0 in (300, 700, 950):
        xt = sched.q_sample(x0, torch.full((n,), t0), torch.randn(x0.shape, generator=g))
        steps = list(range(t0, -1, -1))
        x = sample(
            up, sched, x0.shape, steps, 'ancestral', y=y, generator=g, noise=xt, options=opts
        )
        report(f'from q at t={t0}', x)
    t1 = time.time()
    x = sample(up, sched, x0.shape, None, 'ancestral', y=y, generator=g, options=opts)
    report(f'full {sched.T} ancestral ({time.time() - t1:.0f}s)', x)


def train(name: str, work: str):
    "One training probe (`PROBES`), through the experiments' training path; resumable."
    wdir = f'{work}/up-{name}'
    t0 = time.time()
    train_run({**TRAINING, **PROBES[name]}, wdir, f'probe {name}')
    print('trained', round(time.time() - t0), 's into', wdir, flush=True)


COMMANDS = {  # probe -> what it runs, from the parsed arguments
    'uses': lambda a: uses(a.model, a.n or 64),
    'diag': lambda a: diag(a.model, a.n or 300, a.out),
    'traj': lambda a: traj(a.model, a.n or 16),
    'train': lambda a: train(a.name, a.work),
}


if __name__ == '__main__':
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument('probe', choices=tuple(COMMANDS))
    ap.add_argument('name', nargs='?', choices=tuple(PROBES), help='train: which probe')
    ap.add_argument('--model', default='fmnist-16-32', help='shipped name or model file')
    ap.add_argument('--n', type=int, help='images (uses: 64, diag: 300, traj: 16)')
    ap.add_argument('--out', help='diag: also write the record here')
    ap.add_argument('--work', default='runs', help='train: where the runs go')
    args = ap.parse_args()
    if args.probe == 'train' and args.name is None:
        ap.error('train needs a probe name: ' + ' or '.join(PROBES))
    COMMANDS[args.probe](args)
