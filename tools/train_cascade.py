"""Train the two shipped models of the two-stage cascade (chapter 11): `fmnist-16`, a class-conditional 16x16 base
(label dropout for classifier-free guidance), and `fmnist-16-32`, the 16->32 super-resolution model.

    python tools/train_cascade.py base --epochs 4 --out runs/fmnist-16
    python tools/train_cascade.py up   --epochs 1 --bs 64 --out runs/fmnist-16-32
    python tools/train_cascade.py record --base runs/fmnist-16 --up runs/fmnist-16-32 --where results/cascade-cpu-2026-12-01

Each writes `model.pt` / `last.pt` / `log.jsonl` in --out (resumable: run the same command again). `record` copies the
training logs and configs into --where with the hardware, and exports the EMA weights as the shipped files.
"""
import argparse, json, os, shutil, sys, time
from pathlib import Path

BASE16 = dict(image_size=16, model_channels=32, channel_mult=(1, 2, 2), num_res_blocks=2, attention_resolutions=(8, 4),
              num_head_channels=32, dropout=0.0, num_classes=10, learn_sigma=True)


def train(kind, out, epochs, bs, lr):
    from adm_edu.learner import train_diffusion
    out = Path(out)
    kw = dict(dataset='fashion-mnist', loss='hybrid', schedule='cosine', T=1000, epochs=epochs, bs=bs, lr=lr, out_dir=out,
              resume=(out / 'last.pt').exists(), ckpt_every=200, mixed_precision='fp32', log_every=100,
              progress=False, seed=0)
    if kind == 'base': kw.update(preset='fmnist-s', model_kwargs=BASE16, p_uncond=0.1)
    else: kw.update(preset='fmnist-16-32')
    t0 = time.time()
    train_diffusion(**kw)
    print(f'{kind}: trained in {time.time() - t0:.0f} s (this call)')


COMMANDS = {'fmnist-16': 'python tools/train_cascade.py base --epochs 4 --out runs/fmnist-16',
            'fmnist-16-32': 'python tools/train_cascade.py up --epochs 1 --bs 64 --out runs/fmnist-16-32'}


def record(base, up, where, hardware):
    "Export both EMA models as shipped weights (float16) with their records, and copy the training logs into --where."
    import time as _t
    from adm_edu.learner import read_training_log
    from adm_edu.pretrained import load_checkpoint, read_checkpoint, export_pretrained
    where = Path(where); where.mkdir(parents=True, exist_ok=True)
    for name, d in (('fmnist-16', Path(base)), ('fmnist-16-32', Path(up))):
        log = read_training_log(d / 'log.jsonl')
        model, sched, cfg = load_checkpoint(d / 'model.pt', device='cpu')
        ck = read_checkpoint(d / 'model.pt')
        from adm_edu.unet import PRESETS
        from adm_edu.upsample import SR_PRESETS
        kwargs = {**(SR_PRESETS if cfg['preset'] in SR_PRESETS else PRESETS)[cfg['preset']], **cfg['model_kwargs']}   # complete arguments
        rec = dict(command=COMMANDS[name], hardware=hardware, train_seconds=log[-1]['seconds'], iterations=int(ck['iter']),
                   images_seen=int(ck['iter']) * cfg['bs'], epochs_seen=round(int(ck['iter']) * cfg['bs'] / 60000, 2),
                   exported=_t.strftime('%Y-%m-%d %H:%M:%S UTC', _t.gmtime()), precision='fp32',
                   note='EMA weights; one-cycle learning-rate schedule over the epochs; trained from scratch', config=cfg,
                   final_loss=log[-1]['loss'])
        export_pretrained(model, name, 'diffusion', model_kwargs=kwargs, record=rec, schedule=cfg['schedule'],
                          T=cfg['T'], classes=cfg.get('classes'))
        (where / f'{name}_log.json').write_text(json.dumps(dict(name=name, command=COMMANDS[name], hardware=hardware,
                                                                steps=log[-1]['step'], train_seconds=log[-1]['seconds'], log=log), indent=1))
        print(f'{name}: {ck["iter"]} steps, {log[-1]["seconds"]:.0f} s, exported')


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('what', choices=['base', 'up', 'record'])
    p.add_argument('--out'); p.add_argument('--epochs', type=int, default=8); p.add_argument('--bs', type=int, default=128)
    p.add_argument('--lr', type=float, default=1e-3); p.add_argument('--base'); p.add_argument('--up'); p.add_argument('--where')
    p.add_argument('--hardware', help='where the models were trained (default: this machine, described by adm_edu.device)')
    a = p.parse_args()
    if a.what == 'record':
        from adm_edu.device import describe_device
        record(a.base, a.up, a.where, a.hardware or describe_device())
    else: train(a.what, a.out, a.epochs, a.bs, a.lr)
