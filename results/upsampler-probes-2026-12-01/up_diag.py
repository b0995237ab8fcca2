"""Diagnostic of an upsampler: real 16x16 training images through it (25 ancestral steps), scored as cascade-table's real-16+ADM-U-25 row,
and the agreement of its outputs with the low-resolution input on 64 test images."""
import sys, json, time, torch
from adm_edu.experiments import real_row
from adm_edu.metrics import evaluate_images
from adm_edu.data import load_dataset, area_downsample
from adm_edu.pretrained import load_pretrained
from adm_edu.sampling import sample
from adm_edu.device import describe_device
up_name, n = sys.argv[1], int(sys.argv[2])
t0 = time.time()
im, y, sec = real_row(dict(model='real', size=16, upsampler=up_name, up_steps=25, up_sampler='ancestral'), n, 0, 250, None)
r = evaluate_images(im, load_dataset('fashion-mnist', 'test'), 'fmnist', k=3, labels=y, fid_se=20)
up, sched, _ = load_pretrained(up_name, device='cpu')
ds = load_dataset('fashion-mnist', 'test'); x0, yy = ds.images[:64], ds.labels[:64]; lr = area_downsample(x0, 16)
x = sample(up, sched, x0.shape, steps=25, sampler='ancestral', y=yy, model_kwargs=dict(low_res=lr), generator=torch.Generator().manual_seed(0), progress=False)
out = dict(upsampler=up_name, n=n, fid=r['fid'], fid_se=r['fid_se'], class_acc=r['class_acc'], precision=r['precision'], recall=r['recall'],
           mse_to_x0=((x - x0) ** 2).mean().item(), lowres_agreement_mse=((area_downsample(x, 16) - lr) ** 2).mean().item(),
           bilinear_mse=((torch.nn.functional.interpolate(lr, size=32, mode='bilinear', align_corners=False) - x0) ** 2).mean().item(),
           seconds=round(time.time() - t0, 1), hardware=describe_device(), command=' '.join(['python'] + sys.argv))
print(json.dumps(out))
