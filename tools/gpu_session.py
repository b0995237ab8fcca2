"""Train and evaluate the shipped Fashion-MNIST models in one run on a lent GPU, writing everything to OUT.

    python tools/gpu_session.py all OUT [--train-seconds S] [--clf-seconds S] [--n-eval N] [--deadline S]

`all` runs, as separate processes: `adm-edu-train` for `fmnist-s` and `train_classifier` for `fmnist-clf` (side by
side, each under a wall-time budget), a smoke test of every evaluation path on the models shipped before (so a
broken path stops the run within a minute), then the exports and the evaluations (class accuracy, FID/sFID/IS/P/R,
grids, NLL on test images with the per-t VLB terms, the Table 4 guidance sweep, the skip-a-prefix experiment and
DDIM steps x eta). Every phase has a deadline; results go to OUT/results (JSON, PNG, logs), packed into
PACK/results.tar.gz, and the exported weights to PACK/weights.tar (PACK: --pack, default OUT). Any phase can be run alone:
`python tools/gpu_session.py PHASE OUT [options]`.
"""
import argparse, json, os, signal, subprocess, sys, tarfile, time, traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
T0 = time.time()

def log(*a): print(f"[{time.time() - T0:6.1f}s]", *a, flush=True)

def hardware() -> str:
    from adm_edu.device import describe_device
    return describe_device()

def dump(res, path):
    Path(path).write_text(json.dumps(res, indent=1, default=lambda o: o.tolist() if hasattr(o, 'tolist') else str(o)) + '\n')

# ---------------------------------------------------------------------------------------------------------------- phases
def train_s(a):
    "fmnist-s with the command-line tool, exactly as a user runs it."
    script = a.runs / 'adm-edu-train'  # what pip's console-script wrapper holds (fastcore's call_parse wants a script file)
    script.write_text("import sys\nfrom adm_edu.cli import train\nif __name__ == '__main__':\n    sys.exit(train())\n")
    cmd = [sys.executable, str(script), '--dataset', 'fashion-mnist', '--preset', 'fmnist-s',
           '--loss', 'hybrid', '--schedule', 'cosine', '--epochs', '1000', '--bs', str(a.bs), '--lr', str(a.lr),
           '--ema', '0.9999', '--p-uncond', '0.1', '--max-seconds', str(a.train_seconds), '--ckpt-every', '500',
           '--out', os.path.relpath(a.runs / 'fmnist-s', ROOT)] + (['--init', a.init] if a.init else [])
    (a.res / 'train_s_command.txt').write_text(' '.join(cmd[2:]) + '\n')
    return subprocess.call(cmd, cwd=ROOT)

def train_clf(a):
    from adm_edu.learner import train_classifier
    t = time.time()
    learn = train_classifier(dataset='fashion-mnist', preset='fmnist-clf', schedule='cosine', T=1000, epochs=1000, bs=a.bs, lr=a.lr,
                             wd=0.05, ema=0.999, crop_pad=2, seed=0, ckpt_every=500, out_dir=a.runs / 'fmnist-clf',
                             max_seconds=a.clf_seconds, progress=False)
    dump(dict(seconds=time.time() - t, iters=learn.train_iter, final=[float(v) for v in learn.recorder.values[-1]] if learn.recorder.values else None), a.res / 'train_clf.json')

def smoke(a):
    "Every evaluation path once, tiny, on the previously shipped models: fails fast if something breaks on this device."
    import torch
    from adm_edu.pretrained import load_pretrained
    from adm_edu.sampling import sample
    from adm_edu.metrics import nll_bits_per_dim, evaluate_images
    from adm_edu.experiments import guidance_table
    from adm_edu.metrics import accuracy_vs_t
    from adm_edu.data import load_dataset
    m, s, _ = load_pretrained('fmnist-s'); clf, _, _ = load_pretrained('fmnist-clf')
    test = load_dataset('fashion-mnist', 'test')
    y = torch.arange(10)
    x = sample(m, s, (10, 1, 32, 32), steps=5, y=y, progress=False)
    evaluate_images(x, test, 'fmnist', labels=y)
    nll_bits_per_dim(m, s.respace(range(0, 1000, 100)), test, n=4, batch_size=4, class_cond=True)
    guidance_table(m, s, clf, n_per_class=1, steps=3, settings=[('unconditional', 'classifier', 1.0), ('conditional', 'cfg', 1.0)])
    accuracy_vs_t(clf, s, test.images[:20], test.labels[:20], (0, 500))
    log('smoke: all evaluation paths ran on', hardware())

def _total_epochs(rec):
    "Epochs over all the runs that led to a record (its own and those it was initialised from)."
    return (rec.get('epochs_seen') or 0) + (_total_epochs(rec['init']) if rec.get('init') else 0)

def _precision(cmd:str) -> str:
    "What `--mixed-precision` meant for the run (its 'auto' is bf16 on CUDA, fp32 elsewhere)."
    import torch
    w = cmd.split(); mp = w[w.index('--mixed-precision') + 1] if '--mixed-precision' in w else 'auto'
    if mp == 'auto': mp = 'bf16' if torch.cuda.is_available() else 'fp32'
    return 'fp32' if mp == 'fp32' else f"{mp} autocast ({f'fastai to_{mp}' if torch.cuda.is_available() else 'AutocastCallback'})"

def export(a):
    "The EMA weights of both runs become the shipped `fmnist-s` and `fmnist-clf`, each with its record."
    import torch
    from adm_edu.pretrained import export_pretrained, load_checkpoint, load_classifier_checkpoint, read_checkpoint
    from adm_edu.unet import PRESETS
    from adm_edu.metrics import accuracy_vs_t
    from adm_edu.data import load_dataset
    hw = hardware()
    wd = a.out / 'weights'; wd.mkdir(exist_ok=True)
    ck = read_checkpoint(a.runs / 'fmnist-s' / 'last.pt')
    m, _, cfg = load_checkpoint(a.runs / 'fmnist-s' / 'last.pt', device='cpu')   # its EMA weights
    kw = {**PRESETS[cfg['preset']], **cfg.get('model_kwargs', {})}
    kw = {k: list(v) if isinstance(v, tuple) else v for k, v in kw.items()}
    cmd = (a.res / 'train_s_command.txt').read_text().strip()
    prev = None   # a run started with --init continues the shipped model: keep how that one was made
    if '--init' in cmd.split() and (ROOT / 'adm_edu' / 'weights' / 'fmnist-s.json').exists():
        old = json.loads((ROOT / 'adm_edu' / 'weights' / 'fmnist-s.json').read_text())['record']
        prev = {k: old.get(k) for k in ('command', 'hardware', 'train_seconds', 'iterations', 'images_seen', 'epochs_seen', 'exported')}
        if old.get('init'): prev['init'] = old['init']
    import re
    text = (a.res / 'train_s.log').read_text().replace('\r', '\n') if (a.res / 'train_s.log').exists() else ''
    epochs = [l.strip() for l in text.splitlines() if l.startswith('epoch ') or re.match(r'^\d+ +[\d.]+ +[\d.]+', l)]
    last = epochs[-1].split() if len(epochs) > 1 else None
    rec = dict(command='adm-edu-train ' + cmd, hardware=hw,
               train_seconds=ck.get('train_seconds'), iterations=int(ck['iter']), images_seen=int(ck['iter']) * cfg['bs'],
               epochs_seen=round(int(ck['iter']) * cfg['bs'] / 60000, 2), ema_updates=int(ck['ema'].get('num_updates', 0)),
               exported=time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime()), precision=_precision(cmd),
               note='one-cycle learning-rate schedule stretched over the wall-time budget (TimeLimitCallback); EMA weights',
               config=cfg, epoch_table=epochs,
               final_loss=dict(epoch=int(last[0]) + 1, train_loss=float(last[1]), valid_loss=float(last[2])) if last else None)
    if prev:
        rec['init'] = prev
        rec['epochs_total'] = round(rec['epochs_seen'] + _total_epochs(prev), 2)
        rec['note'] += f"; started from the shipped fmnist-s weights (see init): {rec['epochs_total']} epochs in all"
    for d in (wd, ROOT / 'adm_edu' / 'weights'):
        export_pretrained(m, 'fmnist-s', 'diffusion', kw, rec, schedule=cfg['schedule'], T=cfg['T'], classes=cfg['classes'], weights_dir=d)
    if not (a.runs / 'fmnist-clf' / 'last.pt').exists() or a.clf_seconds <= 0:
        log('exported', rec['iterations'], 'diffusion steps; classifier not retrained'); return
    clf, sched, ccfg = load_classifier_checkpoint(a.runs / 'fmnist-clf' / 'last.pt')
    cck = read_checkpoint(a.runs / 'fmnist-clf' / 'last.pt')
    test = load_dataset('fashion-mnist', 'test')
    k = min(len(test), 10 * a.n_eval)
    acc = accuracy_vs_t(clf, sched, test.images[:k], test.labels[:k], (0, 100, 250, 500, 750, 999))
    crec = dict(command="adm_edu.learner.train_classifier(dataset='fashion-mnist', preset='fmnist-clf', schedule='cosine', T=1000, "
                        f"epochs=1000, bs={a.bs}, lr={a.lr}, wd=0.05, ema=0.999, crop_pad=2, seed=0, ckpt_every=500, "
                        f"max_seconds={a.clf_seconds})  (tools/gpu_session.py train_clf)", hardware=hw,
                train_seconds=cck.get('train_seconds'), iterations=int(cck['iter']), images_seen=int(cck['iter']) * ccfg['bs'],
                test_accuracy_vs_t={str(k): round(v, 4) for k, v in acc.items()}, test_images=k, config=ccfg,
                exported=time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime()), note='EMA weights')
    for d in (wd, ROOT / 'adm_edu' / 'weights'):
        export_pretrained(clf.cpu(), 'fmnist-clf', 'classifier', ccfg['model_kwargs'], crec, schedule=ccfg['schedule'], T=ccfg['T'],
                          classes=ccfg['classes'], weights_dir=d)
    log('exported', rec['iterations'], 'diffusion steps,', crec['iterations'], 'classifier steps; classifier acc vs t', crec['test_accuracy_vs_t'])

def eval_samples(a):
    "Issue 6's quality bar and grids: DDIM-25 class accuracy + FID family on n samples; DDIM-50 and ancestral-100 grids."
    import torch, numpy as np
    from adm_edu.pretrained import load_pretrained
    from adm_edu.metrics import evaluate_images
    from adm_edu.data import load_dataset, to_uint8
    from adm_edu.experiments import generate, ddim_steps_eta
    from adm_edu.viz import save_grid
    m, s, _ = load_pretrained('fmnist-s'); test = load_dataset('fashion-mnist', 'test')
    y = torch.arange(10).repeat_interleave(a.n_eval // 10)
    res = {}
    imgs, _, sec = generate(m, s, len(y), 25, 'ddim', 0.0, y, seed=0, batch_size=1000)
    res['ddim25'] = dict(evaluate_images(imgs, test, 'fmnist', labels=y), seconds=sec)
    np.savez_compressed(a.res / 'samples_ddim25.npz', images=imgs, labels=y.numpy())
    dump(res, a.res / 'eval_samples.json'); log('ddim25', res['ddim25'])
    imgs, _, sec = generate(m, s, len(y), 25, 'ddim', 1.0, y, seed=0, batch_size=1000)
    res['ddim25_eta1'] = dict(evaluate_images(imgs, test, 'fmnist', labels=y), seconds=sec)
    dump(res, a.res / 'eval_samples.json'); log('ddim25_eta1', res['ddim25_eta1'])
    g = torch.arange(10).repeat_interleave(10)
    for name, steps, sampler in (('ddim50', 50, 'ddim'), ('ancestral100', 100, 'ancestral')):
        im, _, sec = generate(m, s, 100, steps, sampler, 0.0, g, seed=1, batch_size=100)
        save_grid(im, a.res / f'grid_{name}.png', nrow=10, scale=3)
        res[f'grid_{name}'] = dict(evaluate_images(im, test, 'fmnist', labels=g), seconds=sec)
    dump(res, a.res / 'eval_samples.json')
    # DDIM's Table 1 at our scale: steps x eta
    if a.eta_steps:
        res['ddim_steps_eta'] = ddim_steps_eta(m, s, test, n=a.n_eval, steps_list=a.eta_steps, log=log)
        dump(res, a.res / 'eval_samples.json')

def eval_nll(a):
    "NLL in bits/dim (full VLB) on the first n test images, conditional and unconditional; per-t terms on 250 of them."
    import torch
    from adm_edu.pretrained import load_pretrained
    from adm_edu.metrics import nll_bits_per_dim
    from adm_edu.guidance import as_unconditional
    from adm_edu.data import load_dataset
    m, s, _ = load_pretrained('fmnist-s'); test = load_dataset('fashion-mnist', 'test')
    res = {}
    n = a.nll_n or a.n_eval
    t = time.time(); res['conditional'] = dict(nll_bits_per_dim(m, s, test, n=n, batch_size=500, class_cond=True), seconds=time.time() - t)
    dump(res, a.res / 'eval_nll.json'); log('nll', res)
    if a.nll_cond_only: return
    dev = next(m.parameters()).device
    k = min(250, a.n_eval)
    r = s.nll_bpd(m, test.images[:k].to(dev), y=test.labels[:k].to(dev), progress=False,
                  generator=torch.Generator(device=dev).manual_seed(1))
    res['per_t'] = dict(n=k, vb_mean=r['vb'].mean(0).cpu(), mse_mean=r['mse'].mean(0).cpu(), prior_bpd=r['prior_bpd'].mean().item(),
                        total_bpd=r['total_bpd'].mean().item())
    dump(res, a.res / 'eval_nll.json')
    t = time.time(); res['unconditional'] = dict(nll_bits_per_dim(as_unconditional(m), s, test, n=n, batch_size=500), seconds=time.time() - t)
    dump(res, a.res / 'eval_nll.json'); log('nll', {k: v for k, v in res.items() if k != 'per_t'})

def eval_guidance(a):
    "The seed's Table 4 at our scale (issue 7), with sample grids; then the skip-a-prefix experiment (issue 4, Figure 4 idea)."
    import torch
    from adm_edu.pretrained import load_pretrained
    from adm_edu.experiments import guidance_table, skip_prefix
    from adm_edu.viz import plot_sample_grids
    from adm_edu.data import load_dataset
    m, s, _ = load_pretrained('fmnist-s'); clf, _, _ = load_pretrained('fmnist-clf'); test = load_dataset('fashion-mnist', 'test')
    rows, samples = guidance_table(m, s, clf, n_per_class=a.n_eval // 10, steps=50, sampler='ancestral', batch_size=500)
    dump(rows, a.res / 'table4.json'); log('table4', *[(r['model'], r['guidance'], r['scale'], round(r['fid'], 2), round(r['class_acc'], 3)) for r in rows])
    plot_sample_grids(samples, n_per_class=6).savefig(a.res / 'table4_grids.png', dpi=110)
    # skip the first fraction f of the reverse process: start from N(0, I) at t = (1-f)T with 50 DDIM steps below it
    dump(skip_prefix(m, s, test, n=a.n_eval, log=log), a.res / 'skip_prefix.json')

def record_eval(a):
    "Write the measured quality (eval_samples.json, and nll_compare.json when present) into the shipped `fmnist-s` record."
    from adm_edu.pretrained import load_pretrained, export_pretrained
    ev = json.loads((a.res / 'eval_samples.json').read_text())
    r3 = lambda r: {k: round(r[k], 3) for k in ('fid', 'precision', 'recall', 'class_acc')}
    block = dict(where=f"{a.where or a.res} (tools/gpu_session.py eval_samples; tools/nll_compare.py)",
                 **{name: r3(ev[key]) for name, key in (('ddim25_eta0', 'ddim25'), ('ddim25_eta1', 'ddim25_eta1'),
                                                        ('grid_ancestral100', 'grid_ancestral100')) if key in ev})
    if (a.res / 'nll_compare.json').exists():   # tools/nll_compare.py PREVIOUS fmnist-s --out OUT/results/nll_compare.json
        nll = json.loads((a.res / 'nll_compare.json').read_text()); d = nll['b_minus_a']
        block.update(nll_bpd_20_test=round(nll['b']['bpd'], 3), nll_bpd_20_test_init=round(nll['a']['bpd'], 3),
                     nll_change_paired=f"{d['mean']:+.3f} +- {d['sem']:.3f} bits/dim (same {d['n']} images and noise)")
    m, _, meta = load_pretrained('fmnist-s', device='cpu'); rec = meta['record']; rec['evaluation'] = block
    for d in (a.out / 'weights', ROOT / 'adm_edu' / 'weights'):
        d.mkdir(exist_ok=True)
        export_pretrained(m.float(), 'fmnist-s', 'diffusion', meta['model_kwargs'], rec, schedule=meta['schedule'], T=meta['T'],
                          classes=meta['classes'], weights_dir=d)
    log('evaluation recorded', block)

PHASES = dict(train_s=train_s, train_clf=train_clf, smoke=smoke, export=export, eval_samples=eval_samples, eval_nll=eval_nll,
              eval_guidance=eval_guidance, record_eval=record_eval)

# ---------------------------------------------------------------------------------------------------------------- driver
def spawn(a, phase):
    f = open(a.res / f'{phase}.log', 'w')
    args = [sys.executable, __file__, phase, str(a.out), '--train-seconds', str(a.train_seconds), '--clf-seconds', str(a.clf_seconds),
            '--n-eval', str(a.n_eval), '--bs', str(a.bs), '--lr', str(a.lr), '--runs', str(a.runs), '--nll-n', str(a.nll_n),
            '--eta-steps', ','.join(map(str, a.eta_steps))] + (['--init', a.init] if a.init else []) + (['--nll-cond-only'] if a.nll_cond_only else [])
    p = subprocess.Popen(args, stdout=f, stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ, 'PYTHONUNBUFFERED': '1'})
    p.phase = phase; log('started', phase, 'pid', p.pid); return p

def stop(p):
    if p.poll() is None:
        try: os.killpg(p.pid, signal.SIGTERM); p.wait(5)
        except Exception:
            try: os.killpg(p.pid, signal.SIGKILL)
            except Exception: pass

def wait(procs, until, fail_fast=()):
    "Wait for `procs` until time `until` (since start); a failing process in `fail_fast` stops everything: returns False."
    while any(p.poll() is None for p in procs) and time.time() - T0 < until:
        for p in procs:
            if p.poll() not in (None, 0) and p.phase in fail_fast:
                log(f'{p.phase} FAILED (rc {p.returncode}); stopping'); [stop(q) for q in procs]; return False
        time.sleep(1)
    for p in procs:
        if p.poll() is None: log(f'{p.phase} over its deadline: stopped'); stop(p)
        else: log(f'{p.phase} finished rc={p.returncode}')
    return all(p.returncode == 0 or p.phase not in fail_fast for p in procs)

def pack(a):
    a.pack.mkdir(parents=True, exist_ok=True)
    with tarfile.open(a.pack / 'results.tar.gz', 'w:gz') as t: t.add(a.res, arcname='results')
    if (a.out / 'weights').exists():
        with tarfile.open(a.pack / 'weights.tar', 'w') as t: t.add(a.out / 'weights', arcname='weights')
    last = a.runs / 'fmnist-s' / 'last.pt'   # the full training state, in parts under the 16 MB per-file limit of the device tool
    if last.exists():                         # rejoin: cat fmnist-s-last.pt.part* > runs/fmnist-s/last.pt (then --resume)
        data = last.read_bytes()
        for i in range(0, len(data), 15 << 20): (a.pack / f'fmnist-s-last.pt.part{i // (15 << 20)}').write_bytes(data[i:i + (15 << 20)])
    log('packed', sorted(p.name for p in a.pack.iterdir()))

def run_all(a):
    ok = True
    try:
        log('hardware', hardware())
        tr = [spawn(a, 'train_s')] + ([spawn(a, 'train_clf')] if a.clf_seconds > 0 else [])  # --clf-seconds 0: keep the shipped classifier
        time.sleep(2); sm = spawn(a, 'smoke')
        ok = wait([sm], 90, fail_fast=('smoke',)) and ok
        # training must be alive (or done) after the smoke test, else stop and report now
        for p in tr:
            if p.poll() not in (None, 0): ok = False; log(f'{p.phase} FAILED early (rc {p.returncode})')
        if not ok: [stop(p) for p in tr]; return
        ok = wait(tr, a.train_seconds + 60, fail_fast=('train_s',))
        if not (a.runs / 'fmnist-s' / 'last.pt').exists(): log('no fmnist-s checkpoint: nothing to evaluate'); return
        ex = spawn(a, 'export'); wait([ex], time.time() - T0 + 60)
        if ex.returncode != 0: log('export failed'); return
        ev = [spawn(a, 'eval_samples'), spawn(a, 'eval_nll'), spawn(a, 'eval_guidance')]
        wait(ev, a.deadline)
        if (a.res / 'eval_samples.json').exists(): record_eval(a)   # seconds: the record quotes what was measured
    except Exception: traceback.print_exc()
    finally:
        pack(a)

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('phase', choices=['all'] + list(PHASES)); ap.add_argument('out', type=Path)
    ap.add_argument('--train-seconds', type=float, default=270); ap.add_argument('--clf-seconds', type=float, default=180)
    ap.add_argument('--n-eval', type=int, default=1000); ap.add_argument('--deadline', type=float, default=500)
    ap.add_argument('--bs', type=int, default=256); ap.add_argument('--lr', type=float, default=1e-3)
    ap.add_argument('--init', default=None, help="train_s: continue training these weights (e.g. 'fmnist-s') as a new run")
    ap.add_argument('--pack', type=Path, default=None, help='where results.tar.gz and weights.tar go (default: OUT)')
    ap.add_argument('--runs', type=Path, default=ROOT / 'runs' / 'gpu', help='training directories (RUNS/fmnist-s/last.pt, RUNS/fmnist-clf)')
    ap.add_argument('--nll-n', type=int, default=0, help='eval_nll: test images for the NLL (default: --n-eval)')
    ap.add_argument('--nll-cond-only', action='store_true', help='eval_nll: only the conditional NLL (no per-t terms, no unconditional)')
    ap.add_argument('--where', default=None, help='record_eval: the results folder the record names (default: OUT/results)')
    ap.add_argument('--eta-steps', default='10,20,50,100', help="eval_samples: step counts of the DDIM steps x eta table ('' skips it)")
    a = ap.parse_args()
    a.out = a.out.resolve(); a.pack = (a.pack or a.out).resolve(); a.res = a.out / 'results'; a.runs = a.runs.resolve()
    a.eta_steps = [int(v) for v in a.eta_steps.split(',') if v.strip()]
    a.res.mkdir(parents=True, exist_ok=True); a.runs.mkdir(parents=True, exist_ok=True)
    if a.phase == 'all': run_all(a)
    else:
        try: sys.exit(PHASES[a.phase](a) or 0)
        except SystemExit: raise
        except BaseException: traceback.print_exc(); sys.exit(1)
