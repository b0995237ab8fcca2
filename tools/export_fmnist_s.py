"Export the EMA weights of runs/fmnist-s/last.pt as the shipped model `fmnist-s`."
import json, platform, subprocess, sys, time, torch
from pathlib import Path
from adm_edu.learner import _load
from adm_edu.unet import PRESETS, UNet
from adm_edu.pretrained import export_pretrained
ck = _load('runs/fmnist-s/last.pt')
cfg = ck['config']
kw = {**PRESETS[cfg['preset']], **cfg.get('model_kwargs', {})}
kw = {k: list(v) if isinstance(v, tuple) else v for k, v in kw.items()}
m = UNet(**kw); m.load_state_dict(ck['ema']['weights']); m.eval()
cpu = [l.split(':', 1)[1].strip() for l in subprocess.run(['lscpu'], capture_output=True, text=True).stdout.splitlines() if l.startswith('Model name')]
start = Path('runs/train_start.txt').read_text().split('started ', 1)[1].strip()
record = dict(
    command="python -c \"from adm_edu.learner import train_diffusion; train_diffusion(dataset='fashion-mnist', preset='fmnist-s', "
            "loss='hybrid', schedule='cosine', T=1000, sampler='uniform', epochs=2, bs=64, lr=1e-3, ema=0.9999, out_dir='runs/fmnist-s', "
            "seed=0, ckpt_every=200, mixed_precision='fp32', p_uncond=0.1)\"  (2 torch threads; equivalent: adm-edu-train --epochs 2 --lr 1e-3 --p-uncond 0.1)",
    stopped_early=f"stopped at iteration {ck['iter']} of {ck.get('n_iter') * ck.get('n_epoch')} ({ck.get('n_epoch')} epochs of {ck.get('n_iter')} iterations) for lack of CPU time in the session; EMA weights of that checkpoint",
    hardware=f"{cpu[0] if cpu else platform.processor()} (2 cores, no GPU), shared with other jobs for part of the run",
    started=start, exported=time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime()),
    iterations=int(ck['iter']), images_seen=int(ck['iter']) * 64, ema_updates=int(ck['ema'].get('num_updates', 0)),
    config=cfg)
p = export_pretrained(m, 'fmnist-s', 'diffusion', kw, record, schedule=cfg['schedule'], T=cfg['T'], classes=cfg['classes'])
print(p, p.stat().st_size, json.dumps(record, default=str)[:400])
