"""Paired NLL comparison of two diffusion models on the same test images and the same noise draws.

    python tools/nll_compare.py MODEL_A MODEL_B --n 50 --out FILE.json

Each model is a shipped name, an exported file or a training checkpoint
(`adm_edu.pretrained.load_pretrained`). Both get the first N test images of Fashion-MNIST with their
labels and the same generator seed, so the per-image difference of the full variational bound
(bits/dim, T terms) has a much smaller standard error than either mean: a few dozen images tell
whether a further training run improved the likelihood, at a fraction of the cost of 1,000 images.
"""

import argparse
import json
import math
import time
import torch
from adm_edu.pretrained import load_pretrained
from adm_edu.data import load_dataset


def per_image_bpd(name, n, seed=0, device='cpu'):
    """Full-VLB bits/dim of each of the first `n` test images under model `name` (one batch, one
    generator)."""
    m, s, _ = load_pretrained(name, device=device)
    test = load_dataset('fashion-mnist', 'test')
    with torch.no_grad():
        r = s.nll_bpd(
            m,
            test.images[:n].to(device),
            y=test.labels[:n].to(device),
            progress=False,
            generator=torch.Generator(device=device).manual_seed(seed),
        )
    return r['total_bpd'].double().cpu()


if __name__ == '__main__':
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument('a')
    ap.add_argument('b')
    ap.add_argument('--n', type=int, default=50)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--out', default=None)
    a = ap.parse_args()
    res = {}
    for k, name in (('a', a.a), ('b', a.b)):
        t = time.time()
        v = per_image_bpd(name, a.n, a.seed)
        res[k] = dict(
            model=name,
            bpd=v.mean().item(),
            bpd_sem=(v.std() / math.sqrt(len(v))).item(),
            seconds=time.time() - t,
            per_image=v.tolist(),
        )
        print(
            k,
            name,
            f"{res[k]['bpd']:.4f} +- {res[k]['bpd_sem']:.4f} bits/dim ({res[k]['seconds']:.0f} s)",
            flush=True,
        )
    d = torch.tensor(res['b']['per_image']) - torch.tensor(res['a']['per_image'])
    res['b_minus_a'] = dict(
        mean=d.mean().item(), sem=(d.std() / math.sqrt(len(d))).item(), n=a.n, seed=a.seed
    )
    print(
        f"b - a: {res['b_minus_a']['mean']:+.4f} +- {res['b_minus_a']['sem']:.4f} bits/dim "
        f"(paired, n={a.n})"
    )
    if a.out:
        open(a.out, 'w').write(json.dumps(res, indent=1) + '\n')
