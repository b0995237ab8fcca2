"""`adm-edu-train` trains any shipped preset (diffusion, super-resolution, classifier) from one
`TrainConfig`, and the
record of every shipped model holds an `adm-edu-train` command that makes its network again."""

import contextlib
import inspect
import io
import json
from unittest import mock

import pytest
import torch

from adm_edu.cli import run_script, train
from adm_edu.learner import CLI_SETTINGS, TrainConfig, flag_name, network_arguments
from adm_edu.pretrained import available, load_checkpoint


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def as_user_sees(*argv):
    "(exit status, stderr) of adm-edu-train run on `argv` as its console script runs it."
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            run_script(train, [str(a) for a in argv])
            code = 0
        except SystemExit as e:
            code = e.code
    return code, err.getvalue()


def parsed(*argv) -> TrainConfig:
    "The configuration adm-edu-train builds from `argv` (the training itself left out)."
    seen = []
    with mock.patch('adm_edu.learner.train_model', lambda config, **kw: seen.append(config)):
        code, err = as_user_sees(*argv)
    assert code == 0, err
    return seen[0]


@pytest.mark.parametrize(
    'preset,network', [('fmnist-16-32', 'SuperResUNet'), ('fmnist-clf', 'NoisyClassifier')]
)
def test_trains_upsampler_and_classifier(tmp_path, preset, network):
    "A few steps (a 2-second budget) of the upsampler's and the classifier's presets on the digits."
    out = tmp_path / preset
    code, err = as_user_sees(
        '--preset',
        preset,
        '--dataset',
        'digits',
        '--max-seconds',
        2,
        '--bs',
        16,
        '--log-every',
        1,
        '--out',
        out,
        '--device',
        'cpu',
    )
    assert code == 0, err
    model, sched, config = load_checkpoint(out / 'model.pt', device='cpu')
    assert type(model).__name__ == network and config['preset'] == preset and sched.T == 1000
    assert config['network']['kind'] == TrainConfig(preset=preset).kind
    assert (out / 'log.jsonl').read_text().count('\n') >= 1


def test_options_are_the_settings():
    "One option per CLI setting (and --device, --overwrite); the defaults are TrainConfig's."
    params = set(inspect.signature(train).parameters) - {'device', 'overwrite'}
    assert params == {flag_name(s)[2:].replace('-', '_') for s in CLI_SETTINGS}
    assert parsed() == TrainConfig()
    assert parsed('--preset', 'fmnist-clf') == TrainConfig(preset='fmnist-clf')


def test_sampler_is_the_old_name_of_schedule_sampler():
    seen = []
    with mock.patch('adm_edu.learner.train_model', lambda config, **kw: seen.append(config)):
        code, err = as_user_sees('--sampler', 'importance', '--loss', 'vlb')
    assert code == 0 and seen[0].schedule_sampler == 'importance'
    assert err == (
        'adm-edu-train: note: --sampler is deprecated and goes in the next release; '
        'use --schedule-sampler\n'
    )
    assert parsed('--schedule-sampler', 'importance').schedule_sampler == 'importance'


def _plain(v):
    return json.loads(json.dumps(v))


@pytest.mark.parametrize(
    'name',
    sorted(n for n, m in available().items() if m.get('kind') in ('diffusion', 'classifier')),
)
def test_shipped_record_command_makes_its_network(name, tmp_path, monkeypatch):
    "The record's command parses, and its configuration builds the shipped network and schedule."
    monkeypatch.chdir(tmp_path)  # the command's --out is checked (made and removed) here
    meta = available()[name]
    words = meta['record']['command'].split()
    assert words[0] == 'adm-edu-train' and 'tools/' not in meta['record']['command']
    config = parsed(*words[1:], '--device', 'cpu')
    preset, kw = network_arguments(config)
    assert preset.network == meta['network']
    assert _plain(kw) == _plain(meta['model_kwargs'])
    assert (config.schedule, config.T) == (meta['schedule'], meta['T'])
    assert config.kind == 'classifier' or config.p_uncond > 0 or not kw.get('class_dropout_null')
