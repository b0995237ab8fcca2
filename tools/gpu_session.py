"""Retrain the shipped `fmnist-s` and `fmnist-clf` on a lent GPU, and ship them:

    python tools/gpu_session.py OUT [--train-seconds S] [--clf-seconds S] [--init fmnist-s]

Both train side by side with `adm-edu-train` under a wall-time budget; `export_run` ships each run
with the record it writes from the run's files; `adm-edu-eval` measures the new `fmnist-s`."""

import argparse
import json
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent  # where the console scripts are


def train_commands(a) -> dict:
    "The adm-edu-train command of each model to train."
    cmds = {'fmnist-s': f'--lr {a.lr} --p-uncond 0.1 --max-seconds {a.train_seconds}'.split()}
    cmds['fmnist-s'] += ['--init', a.init] if a.init else []
    if a.clf_seconds > 0:
        cmds['fmnist-clf'] = ['--max-seconds', str(a.clf_seconds)]
    common = f'--epochs 1000 --bs {a.bs} --ckpt-every 500 --log-every 100'.split()
    exe = str(BIN / 'adm-edu-train')
    return {n: [exe, '--preset', n, *c, *common, '--out', str(a.out / n)] for n, c in cmds.items()}


def train(a) -> list:
    "Train the models side by side; the names of those that finished."
    procs = {}
    for name, cmd in train_commands(a).items():
        with open(a.out / f'train_{name}.log', 'w') as log:
            procs[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    return [name for name, p in procs.items() if p.wait() == 0]


def classifier_accuracy(run_dir: Path) -> dict:
    "The record's test accuracy of a noisy classifier against t."
    from adm_edu.data import load_dataset
    from adm_edu.metrics import accuracy_vs_t
    from adm_edu.pretrained import load_classifier_checkpoint

    clf, sched, _ = load_classifier_checkpoint(run_dir / 'model.pt')
    test = load_dataset('fashion-mnist', 'test')
    acc = accuracy_vs_t(clf, sched, test.images, test.labels, (0, 100, 250, 500, 750, 999))
    acc = {str(t): round(v, 4) for t, v in acc.items()}
    return dict(test_accuracy_vs_t=acc, test_images=len(test))


def evaluate(a):
    "`adm-edu-eval` of the new fmnist-s (DDIM-25), quoted in its record."
    from adm_edu.pretrained import update_record

    out = a.out / 'eval.json'
    cmd = [str(BIN / 'adm-edu-eval'), '--model', 'fmnist-s', '--n', str(a.n_eval), '--n-nll', '0']
    subprocess.run([*cmd, '--out', str(out)], check=True)
    m = json.loads(out.read_text())['metrics']
    scores = {k: round(m[k], 3) for k in ('fid', 'precision', 'recall', 'class_acc')}
    update_record('fmnist-s', evaluation=dict(where=f'{out} (adm-edu-eval)', ddim25_eta0=scores))


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('out', type=Path, help='where the runs, logs and eval.json go')
    p.add_argument('--train-seconds', type=float, default=270, help="fmnist-s's wall-time budget")
    p.add_argument('--clf-seconds', type=float, default=180, help="fmnist-clf's (0: not retrained)")
    p.add_argument('--bs', type=int, default=256)
    p.add_argument('--lr', type=float, default=1e-3, help="fmnist-s's peak learning rate")
    p.add_argument('--init', default=None, help="continue training these weights, e.g. 'fmnist-s'")
    p.add_argument('--n-eval', type=int, default=1000, help='samples for the evaluation')
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    from adm_edu.learner import export_run

    for name in train(a):
        extra = classifier_accuracy(a.out / name) if name == 'fmnist-clf' else {}
        export_run(a.out / name, name, log_dir=a.out, **extra)
        if name == 'fmnist-s':
            evaluate(a)
