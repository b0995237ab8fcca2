"""`adm-edu-upsample`: your own low-resolution images (an .npz or a folder of PNGs) through a
super-resolution model, from pure noise (ADM-U) or from SDEdit's noised bilinear start, and its
one-line errors; `adm-edu-sample --upsample-start-t`; the per-timestep diagnostic's record."""

import numpy as np
import pytest
import torch
from PIL import Image

from adm_edu.cli import sample_cli, sdedit_start, upsample_cli
from adm_edu.pretrained import export_pretrained, update_record
from adm_edu.schedule import Schedule
from adm_edu.unet import UNet, randomize_
from adm_edu.upsample import SuperResUNet
from script_run import as_user_sees as run
from tiny_nets import TINY_BASE, TINY_SR as TINY_UP

NAMES = [f'class {k}' for k in range(10)]


@pytest.fixture(scope='module')
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp('models')
    up = randomize_(SuperResUNet(**TINY_UP), seed=2).eval()
    base = randomize_(UNet(**TINY_BASE), seed=1).eval()
    for net, name, kw in ((up, 'up', TINY_UP), (base, 'base', TINY_BASE)):
        export_pretrained(
            net, name, 'diffusion', kw, dict(command='(test)'), 'cosine', 50, NAMES, d, half=False
        )
    return d


@pytest.fixture(scope='module')
def low(tmp_path_factory):
    "Six 8x8 uint8 images with labels, as an .npz (`images`, `labels`) and as `arr_0` only."
    d = tmp_path_factory.mktemp('low')
    g = np.random.default_rng(0)
    imgs = g.integers(0, 256, (6, 8, 8, 1), dtype=np.uint8)
    np.savez(d / 'low.npz', images=imgs, labels=np.arange(6))
    np.savez(d / 'arr.npz', arr_0=imgs)
    return d, imgs


def test_upsamples_an_npz_keeping_its_labels(models, low, tmp_path):
    d, imgs = low
    code, out, err = run(
        upsample_cli,
        '--input',
        d / 'low.npz',
        '--model',
        models / 'up.pt',
        '--steps',
        3,
        '--out',
        tmp_path / 'up.npz',
    )
    assert code == 0, err
    f = np.load(tmp_path / 'up.npz')
    assert f['images'].shape == (6, 16, 16, 1) and f['images'].dtype == np.uint8
    assert f['labels'].tolist() == list(range(6)) and np.array_equal(f['arr_0'], f['images'])
    assert 'from pure noise (ADM-U)' in out


def test_sdedit_start_stays_near_the_bilinear_image(models, low, tmp_path):
    "From t0 = 1 the output is Up(low) up to one step's noise; from pure noise it is not."
    d, imgs = low
    argv = ('--input', d / 'low.npz', '--model', models / 'up.pt', '--steps', 2)
    run(upsample_cli, *argv, '--start-t', 1, '--out', tmp_path / 'sd.npz')
    run(upsample_cli, *argv, '--out', tmp_path / 'noise.npz')
    x = torch.as_tensor(imgs).permute(0, 3, 1, 2).float()
    up = torch.nn.functional.interpolate(x, size=(16, 16), mode='bilinear').permute(0, 2, 3, 1)
    dist = lambda f: float(((np.load(f)['images'] - up.numpy()) ** 2).mean())
    assert dist(tmp_path / 'sd.npz') < dist(tmp_path / 'noise.npz') / 20


def test_a_folder_of_pngs_and_its_class_names(models, tmp_path):
    "adm-edu-sample's file names (`CLASS_000003.png`) give the labels back; others need --classes."
    (tmp_path / 'in').mkdir()
    g = np.random.default_rng(1)
    for i, k in enumerate((3, 5, 3)):
        pic = g.integers(0, 256, (8, 8), dtype=np.uint8)
        Image.fromarray(pic).save(tmp_path / 'in' / f'class-{k}_{i:06d}.png')
    code, _, err = run(
        upsample_cli,
        '--input',
        tmp_path / 'in',
        '--model',
        models / 'up.pt',
        '--steps',
        2,
        '--out',
        f'{tmp_path}/out/',
    )
    assert code == 0, err
    names = sorted(p.name for p in (tmp_path / 'out').iterdir())
    # in the sorted order of the input files, each with its class
    assert names == ['class-3_000000.png', 'class-3_000001.png', 'class-5_000002.png'], names
    assert Image.open(tmp_path / 'out' / names[0]).size == (16, 16)


@pytest.mark.parametrize(
    'argv, says',
    [
        (('--input', 'MISSING.npz'), 'no such file or folder'),
        (('--input', '{low}/arr.npz'), 'give --classes'),
        (('--input', '{low}/low.npz', '--start-t', 50), '--start-t must lie in [0, T=50)'),
        (('--input', '{low}/low.npz', '--model', '{models}/base.pt'), 'not a super-resolution'),
        (('--input', '{low}/low.npz', '--sampler', 'rk4'), '--sampler must be one of'),
        ((), '--input is required'),
    ],
)
def test_bad_input_is_one_line(models, low, tmp_path, argv, says):
    fill = lambda a: str(a).format(low=low[0], models=models)
    argv = [fill(a) for a in argv]
    if '--model' not in argv:
        argv += ['--model', models / 'up.pt']
    code, _, err = run(upsample_cli, *argv, '--out', tmp_path / 'x.npz')
    assert code == 1 and err.count('\n') == 1 and says in err, err
    assert not (tmp_path / 'x.npz').exists()


def test_wrong_size_names_what_was_expected(models, tmp_path):
    np.savez(tmp_path / 'big.npz', images=np.zeros((2, 16, 16, 1), np.uint8))
    code, _, err = run(
        upsample_cli, '--input', tmp_path / 'big.npz', '--model', models / 'up.pt', '--classes', 0
    )
    assert code == 1 and 'holds 1×16×16 images; expected 8×8 images with 1 channel' in err, err


def test_the_shipped_start_is_the_default(models, tmp_path):
    "A record's `sampling.start_t` is what both commands run by default; 0 turns it off."
    T = Schedule.named('cosine', 50).T
    meta = dict(record=dict(sampling=dict(start_t=30)))
    assert sdedit_start(None, meta, T) == 30 and sdedit_start(0, meta, T) is None
    assert sdedit_start(10, meta, T) == 10 and sdedit_start(None, {}, T) is None
    update_record('up', models, sampling=dict(start_t=30))
    argv = ['--model', models / 'base.pt', '--upsampler', models / 'up.pt', '--n', 2]
    code, out, err = run(sample_cli, *argv, '--steps', 2, '--out', tmp_path / 's.npz')
    assert code == 0 and "from SDEdit's t0 = 30" in out, (out, err)
    code, out, err = run(sample_cli, *argv, '--upsample-start-t', 0, '--out', tmp_path / 't.npz')
    assert code == 0 and 'SDEdit' not in out, (out, err)
    update_record('up', models, sampling={})


def test_a_super_resolution_run_logs_the_diagnostic(tmp_path):
    "The training log of an upsampler holds, per logged step, t -> [eps MSE, bilinear reference]."
    from adm_edu.learner import TrainConfig, read_training_log, train_model
    from adm_edu.metrics import DIAGNOSTIC_TS

    small = dict(model_channels=32, channel_mult=(1, 2), num_res_blocks=1, attention_resolutions=())
    config = TrainConfig(
        preset='fmnist-16-32',
        model_kwargs=small,
        dataset='digits',
        epochs=1,
        bs=16,
        max_seconds=8,
        out_dir=str(tmp_path / 'run'),
        options=dict(log_every=2, ckpt_every=0, n_valid=64, progress=False),
    )
    config.options.mixed_precision = 'fp32'
    train_model(config, device='cpu')
    rows = read_training_log(tmp_path / 'run' / 'log.jsonl')
    assert rows and all(set(r['diagnostic']) == {str(t) for t in DIAGNOSTIC_TS} for r in rows)
    for r in rows:
        for t, (eps_mse, reference) in r['diagnostic'].items():
            assert eps_mse > 0 and reference > 0, (t, eps_mse, reference)


def test_a_v_network_is_stored_as_one_and_loads_outputting_eps(tmp_path):
    "--parameterization v (beyond ADM): the checkpoint, the export and the loaders keep it."
    from adm_edu.learner import export_run
    from adm_edu.pretrained import build_network, load_checkpoint, load_pretrained
    from adm_edu.cli import train

    run_dir = tmp_path / 'run'
    argv = ['--preset', 'fmnist-16-32', '--dataset', 'digits', '--parameterization', 'v']
    code, out, err = run(train, *argv, '--max-seconds', 3, '--bs', 8, '--out', run_dir)
    assert code == 0, err
    model, sched, stored = load_checkpoint(run_dir / 'model.pt', device='cpu')
    assert stored['parameterization'] == 'v' and model.parameterization == 'v'
    exported = export_run(run_dir, 'upv', weights_dir=tmp_path / 'w')
    loaded, sched2, meta = load_pretrained(exported, device='cpu')
    assert meta['parameterization'] == 'v' and loaded.parameterization == 'v'
    raw = build_network(stored['network']['name'], stored['network']['kwargs'])
    raw.load_state_dict(loaded.state_dict())  # the same weights, without the conversion
    assert getattr(raw.eval(), 'parameterization', 'eps') == 'eps'
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 1, 32, 32, generator=g)
    low = torch.rand(3, 1, 16, 16, generator=g) * 2 - 1
    t, y = torch.tensor([10, 500, 990]), torch.tensor([1, 2, 3])
    with torch.no_grad():
        out, v = loaded(x, t, y, low_res=low), raw(x, t, y, low_res=low)
    torch.testing.assert_close(out[:, :1], sched2.eps_from_v(x, t, v[:, :1]), rtol=0, atol=1e-5)
    torch.testing.assert_close(out[:, 1:], v[:, 1:])  # the variance channel is not converted


def test_an_unknown_parameterization_is_one_line(tmp_path):
    "adm-edu-train refuses a parameterization it does not know before any work."
    from adm_edu.cli import train

    code, out, err = run(train, '--parameterization', 'x0', '--out', tmp_path / 'r')
    assert code == 1 and err.strip().count('\n') == 0, err
    assert "--parameterization must be 'eps' or 'v', got 'x0'" in err, err
    assert not (tmp_path / 'r').exists()
