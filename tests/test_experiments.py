"""The experiments package against its committed records: every record loads, every experiment
with records is registered (its `adm-edu-experiment` name works), its claims are judged, and the
counts the chapters print stay what they are. Reads records only: nothing is trained or sampled."""

from pathlib import Path

import pytest

import adm_edu.experiments as E
from adm_edu.errors import BadArgument
from adm_edu.sampling import SAMPLERS

ROOT = Path(__file__).resolve().parents[1]
RECORDS = ROOT / 'results' / 'experiments'
COMMITTED = sorted(p.name for p in RECORDS.iterdir() if p.is_dir())


def test_package_has_one_module_per_paper():
    pkg = ROOT / 'adm_edu' / 'experiments'
    assert {p.stem for p in pkg.glob('*.py')} == {
        '__init__',
        'runner',
        'ddim',
        'iddpm',
        'adm',
        'cascade',
    }
    assert not (ROOT / 'adm_edu' / 'experiments.py').exists()


def test_no_code_under_results():
    assert not list((ROOT / 'results').rglob('*.py'))


@pytest.mark.parametrize('name', COMMITTED)
def test_committed_records_load_and_are_registered(name):
    recs = E.load_records(name)
    assert recs and all(r['status'] == 'done' for r in recs.values())
    exp = E.EXPERIMENTS[name]  # the `adm-edu-experiment` name still works
    assert set(recs) <= set(exp.rows), set(recs) - set(exp.rows)
    claims = exp.claims(recs)
    assert claims and all(c['verdict'] != 'not measured' for c in claims)


def test_verdict_counts_stay_as_printed():
    L = E.load_records
    iddpm = E.iddpm_claims(L('iddpm-table'), L('iddpm-steps'), L('iddpm-widths'))
    assert E.verdict_counts(iddpm) == {
        'holds': 13,
        'does not hold': 2,
        'within noise': 3,
        'other': 0,
    }
    abl = E.verdict_counts(E.ablation_claims(L('adm-ablations')))
    assert abl == {'holds': 3, 'does not hold': 1, 'within noise': 15, 'other': 0}
    t4 = E.verdict_counts(E.iddpm_table4_claims(L('iddpm-table4')))
    assert t4 == {'holds': 1, 'does not hold': 0, 'within noise': 0, 'other': 4}  # P/R: direction
    seeds = L('adm-ablations-seeds')
    assert len(seeds) == len(E.EXPERIMENTS['adm-ablations-seeds'].rows)  # 8 rows x 3 seeds
    three = E.seed_claims(seeds)
    assert E.verdict_counts(three) == {
        'holds': 1,
        'does not hold': 1,
        'within noise': 11,
        'other': 0,
    }
    assert E.left_noise(E.seed_verdict_changes(E.ablation_claims(L('adm-ablations')), three)) == 1
    rows = {r['experiment']: r for r in E.records_index()}
    minutes = sum(rows[n]['minutes'] for n in ('iddpm-table', 'iddpm-steps', 'iddpm-widths'))
    assert minutes in (422, 423, 424)  # 423 minutes in all, each row rounded


def test_rows_name_registered_samplers():
    for exp in E.EXPERIMENTS.values():
        for row in exp.rows.values():
            for key in ('sampler', 'up_sampler'):
                assert row.get(key, 'ancestral') in SAMPLERS, (exp.name, row)


def test_bad_request_fails_before_any_work(tmp_path):
    with pytest.raises(BadArgument, match='unknown experiment'):
        E.run_experiment('nope', root=tmp_path, work=tmp_path)
    with pytest.raises(BadArgument, match="unknown runs"):
        E.run_experiment('iddpm-table', only=['zzz'], root=tmp_path, work=tmp_path)
    with pytest.raises(BadArgument, match='--scale'):
        E.run_experiment('toy', scale='gpu', root=tmp_path, work=tmp_path)
    assert not list(tmp_path.iterdir())


def test_records_name_the_tensors_not_the_file(tmp_path):
    "`weights_of`: a record-only change keeps the tensors' hash; another weight changes it."
    import torch

    from adm_edu.experiments.runner import weights_of
    from adm_edu.pretrained import export_pretrained, update_record
    from adm_edu.unet import UNet

    kw = dict(image_size=8, in_channels=1, model_channels=8, channel_mult=(1,), num_res_blocks=1)
    kw.update(attention_resolutions=(), norm_groups=8)
    net = UNet(**kw)
    f = export_pretrained(
        net, 'm', 'diffusion', kw, dict(command='(test)'), 'cosine', 10, None, tmp_path
    )
    before = weights_of(str(f))
    update_record('m', tmp_path, note='a record-only change')
    assert weights_of(str(f)) == before
    with torch.no_grad():
        next(net.parameters()).add_(1.0)
    export_pretrained(
        net, 'm', 'diffusion', kw, dict(command='(test)'), 'cosine', 10, None, tmp_path
    )
    after = weights_of(str(f))
    assert after['tensors_sha256'] != before['tensors_sha256'] and after['file'] == 'm.pt'
