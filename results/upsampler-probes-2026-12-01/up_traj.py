import torch, time
from adm_edu.pretrained import load_pretrained
from adm_edu.data import load_dataset, area_downsample
from adm_edu.sampling import sample
from adm_edu.schedule import Schedule
up, sched, _ = load_pretrained('fmnist-16-32', device='cpu')
ds = load_dataset('fashion-mnist', 'test'); x0, y = ds.images[:16], ds.labels[:16]; lr = area_downsample(x0, 16)
def rep(name, x): print(name, 'mse', round(((x - x0) ** 2).mean().item(), 4), 'agree', round(((area_downsample(x, 16) - lr) ** 2).mean().item(), 4), flush=True)
g = torch.Generator().manual_seed(0)
# SDEdit: start from q(x_t0 | x0) at t0 and run the remaining original steps (full schedule, ancestral)
for t0 in (300, 700, 950):
    ab = sched.alpha_bar[t0]; xt = ab.sqrt() * x0 + (1 - ab).sqrt() * torch.randn(x0.shape, generator=g)
    x = sample(up, sched, x0.shape, steps=list(range(t0, -1, -1)), sampler='ancestral', y=y, model_kwargs=dict(low_res=lr), noise=xt, generator=g, progress=False)
    rep(f'from q at t={t0}', x)
t1 = time.time()
x = sample(up, sched, x0.shape, steps=None, sampler='ancestral', y=y, model_kwargs=dict(low_res=lr), generator=g, progress=False)
rep(f'full 1000 ancestral ({time.time() - t1:.0f}s)', x)
