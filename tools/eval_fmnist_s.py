"Quality checks of the shipped fmnist-s: class accuracy of DDIM-25 samples under the independent classifier, or NLL."
import json, sys, time, torch
torch.set_num_threads(1)
from adm_edu.pretrained import load_pretrained
from adm_edu.sampling import sample
from adm_edu.metrics import load_fmnist_extractor, nll_bits_per_dim, evaluate_images
from adm_edu.data import load_dataset
m, s, meta = load_pretrained('fmnist-s', device='cpu')
what = sys.argv[1]; res = {}
t0 = time.time()
if what == 'acc':
    n = int(sys.argv[2]); y = torch.arange(10).repeat_interleave(n // 10)
    for sampler, steps in (('ddim', 25),):
        x = sample(m, s, (len(y), 1, 32, 32), steps=steps, sampler=sampler, y=y, generator=torch.Generator().manual_seed(0), progress=False)
        r = evaluate_images(x, load_dataset('fashion-mnist', 'test'), 'fmnist', labels=y)
        res[f'{sampler}{steps}'] = dict(r, seconds=round(time.time() - t0, 1))
else:
    n = int(sys.argv[2])
    res['nll'] = nll_bits_per_dim(m, s, load_dataset('fashion-mnist', 'test'), n=n, batch_size=n, class_cond=True)
    res['nll']['seconds'] = round(time.time() - t0, 1)
print(json.dumps(res, default=str))
open(f'runs/eval_{what}.json', 'w').write(json.dumps(res, indent=1, default=str))
