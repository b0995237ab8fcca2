"""Does the cascade beat the base model's own samples upsampled bilinearly? A paired check.

    python tools/cascade_vs_bilinear.py --n 100 --out FILE.json

Runs the two `adm-edu-sample` commands below with the same seed, so the cascade's first stage *is*
the base model's 16x16 samples (checked: the cascade's outputs, area-downsampled, agree with them),
brings those 16x16 samples to 32x32 by bilinear interpolation, and has the independent Fashion-MNIST
classifier (`metrics.load_fmnist_extractor`) recognise the intended class in both sets. Paired on
the same base samples, the discordant pairs decide (an exact two-sided sign test, McNemar's).
"""

import argparse
import json
import math
import subprocess
import tempfile
import time
from pathlib import Path

import torch.nn.functional as F

from adm_edu.data import area_downsample, atomic_write
from adm_edu.device import describe_device
from adm_edu.metrics import load_fmnist_extractor, load_sample_file

CASCADE = (
    'adm-edu-sample --model fmnist-16 --upsampler fmnist-16-32 --n {n} --steps 25'
    ' --upsample-steps 25'
)
BASE = 'adm-edu-sample --model fmnist-16 --n {n} --steps 25'


def sign_test(b: int, c: int) -> float:
    "Two-sided exact p-value of b successes against c under p = 1/2 (McNemar's exact test)."
    n, k = b + c, min(b, c)
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n) if n else 1.0


def run(cmd: str, out: Path) -> None:
    subprocess.run(cmd.split() + ['--out', str(out)], check=True, capture_output=True)


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--n', type=int, default=100)
    ap.add_argument('--out', required=True)
    args = ap.parse_args()
    t0 = time.time()
    with tempfile.TemporaryDirectory() as d:
        up_file, base_file = Path(d) / 'cascade.npz', Path(d) / 'base16.npz'
        run(CASCADE.format(n=args.n), up_file)
        run(BASE.format(n=args.n), base_file)
        up, y = load_sample_file(up_file)
        low, y_low = load_sample_file(base_file)
    assert (y == y_low).all(), 'the two commands drew different labels'
    agreement = F.mse_loss(area_downsample(up, 16), low).item()
    clf = load_fmnist_extractor(device='cpu')
    right_up = clf.classify(up)[0] == y
    right_bil = clf.classify(F.interpolate(low, size=(32, 32), mode='bilinear'))[0] == y
    only_up, only_bil = int((right_up & ~right_bil).sum()), int((~right_up & right_bil).sum())
    rec = dict(
        commands=[CASCADE.format(n=args.n), BASE.format(n=args.n)],
        tool=f'python tools/cascade_vs_bilinear.py --n {args.n} --out {args.out}',
        hardware=describe_device(),
        seconds=round(time.time() - t0, 1),
        n=args.n,
        class_acc_cascade=right_up.float().mean().item(),
        class_acc_base_bilinear=right_bil.float().mean().item(),
        only_cascade_right=only_up,
        only_bilinear_right=only_bil,
        sign_test_p=sign_test(only_up, only_bil),
        lowres_agreement_mse=agreement,
    )
    text = json.dumps(rec, indent=1) + '\n'
    atomic_write(Path(args.out), lambda f: f.write(text), mode='w')
    print(text)
