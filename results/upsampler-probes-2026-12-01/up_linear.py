"""Probe: the 16->32 upsampler trained as fmnist-16-32 (1 epoch of 64, lr 1e-3, one-cycle, seed 0) but with the linear schedule of the official upsamplers."""
import time
from adm_edu.learner import train_diffusion
t0 = time.time()
train_diffusion(dataset='fashion-mnist', preset='fmnist-16-32', loss='hybrid', schedule='linear', T=1000, epochs=1, bs=64, lr=1e-3,
                out_dir='runs/up-linear', ckpt_every=200, mixed_precision='fp32', log_every=100, progress=False, seed=0)
print('trained', round(time.time() - t0), 's', flush=True)
