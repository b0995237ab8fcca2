"Train the shipped fmnist-s (the recorded run): python tools/train_fmnist_s.py EPOCHS [--resume]; THREADS env sets torch threads."
import time, json, torch, sys
torch.set_num_threads(int(__import__("os").environ.get("THREADS", "1")))
from adm_edu.learner import train_diffusion
t0 = time.time()
learn = train_diffusion(dataset='fashion-mnist', preset='fmnist-s', loss='hybrid', schedule='cosine', T=1000,
                        sampler='uniform', epochs=int(sys.argv[1]) if len(sys.argv) > 1 else 4, bs=64, lr=1e-3, ema=0.9999,
                        out_dir='runs/fmnist-s', resume='--resume' in sys.argv, seed=0, ckpt_every=200,
                        mixed_precision='fp32', progress=False, p_uncond=0.1)
print(json.dumps(dict(seconds=time.time() - t0, final=[float(v) for v in learn.recorder.values[-1]])))
