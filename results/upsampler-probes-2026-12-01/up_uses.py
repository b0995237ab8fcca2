import json, torch
from adm_edu.pretrained import load_pretrained
from adm_edu.data import load_dataset, area_downsample
up, sched, _ = load_pretrained('fmnist-16-32', device='cpu')
ds = load_dataset('fashion-mnist', 'test'); x0, y = ds.images[:64], ds.labels[:64]; lr = area_downsample(x0, 16)
wrong = lr.roll(1, 0)
g = torch.Generator().manual_seed(0)
for t in (100, 500, 800, 900, 950, 990):
    tt = torch.full((64,), t); noise = torch.randn(x0.shape, generator=g)
    ab = sched.alpha_bar[t]
    ab = torch.as_tensor(ab, dtype=torch.float32)
    xt = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
    with torch.no_grad():
        res = {}
        for name, l in (('right', lr), ('wrong', wrong), ('zeros', torch.zeros_like(lr))):
            eps = up(xt, tt, y, low_res=l)[:, :1]
            x0h = ((xt - (1 - ab).sqrt() * eps) / ab.sqrt()).clamp(-1, 1)
            res[name] = (round(((eps - noise) ** 2).mean().item(), 5), round(((area_downsample(x0h, 16) - lr) ** 2).mean().item(), 4))
    print(json.dumps(dict(t=t, alpha_bar=float(ab), **{k: dict(eps_mse=v[0], x0hat_lowres_mse=v[1]) for k, v in res.items()})))
