"""Probe: two more epochs of the shipped upsampler (init from fmnist-16-32), then the real-16 diagnostic."""
import time, json, torch
from adm_edu.learner import train_diffusion
t0 = time.time()
train_diffusion(dataset='fashion-mnist', preset='fmnist-16-32', loss='hybrid', schedule='cosine', T=1000, epochs=2, bs=64, lr=1e-3,
                out_dir='runs/up-ft2', init='fmnist-16-32', ckpt_every=200, mixed_precision='fp32', log_every=100, progress=False, seed=1)
print('trained', round(time.time() - t0), 's', flush=True)
