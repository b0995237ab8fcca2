"""Headless-Chromium checks of the rendered course (make docs-test runs these with ADM_EDU_BROWSER_TEST=1).

Skipped in a plain `make test`/`pytest`: they need the rendered site (_html/, from `make docs`), the npm assets
and a Chromium (tools/setup_browser.sh). The logic lives in tools/browser_test.py."""
import importlib.util, json, os, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(os.environ.get('ADM_EDU_BROWSER_TEST') != '1',
                                reason='browser tests run with `make docs-test` (ADM_EDU_BROWSER_TEST=1)')

def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / 'tools' / f'{name}.py')
    mod = importlib.util.module_from_spec(spec); sys.modules[name] = mod; spec.loader.exec_module(mod)
    return mod

@pytest.fixture(scope='module')
def bt():
    pytest.importorskip('playwright')
    mod = _load('browser_test')
    if not mod.chromium_path(): pytest.fail('no Chromium: run tools/setup_browser.sh')
    return mod

SHOTS = Path(os.environ.get('ADM_EDU_SHOTS', ROOT / '_browser'))
HTML = Path(os.environ.get('ADM_EDU_HTML', ROOT / '_html'))

def test_rendered_pages(bt):
    "Every page of the rendered site: no console errors, images loaded, math typeset, saved widgets rendered."
    assert (HTML / 'index.html').exists(), f'{HTML} has no index.html: run `make docs` first'
    res = bt.check_site(HTML, SHOTS)
    bad = {k: v for k, v in res.items() if v}
    assert not bad, json.dumps(bad, indent=1)
    assert len(list(SHOTS.glob('*.png'))) >= 3

def test_checker_catches_planted_faults(bt, tmp_path):
    "The page check is not vacuous: a broken image, bad TeX and an unrendered widget are reported."
    import nbformat
    from nbformat.v4 import new_notebook, new_markdown_cell, new_code_cell, new_output
    rd = _load('render_docs')
    good = new_notebook(cells=[new_markdown_cell('# Good\n\nFine math: $x^2$ and $$\\int_0^1 x\\,dx = \\tfrac12.$$')])
    bad = new_notebook(cells=[new_markdown_cell('# Bad\n\nA missing figure ![fig](missing.png) and bad TeX $\\frac{a}{b$ here.'),
                              new_code_cell('w', outputs=[new_output('display_data', data={
                                  'application/vnd.jupyter.widget-view+json': {'model_id': 'nope', 'version_major': 2, 'version_minor': 0},
                                  'text/plain': 'w'})])])
    bad.metadata['widgets'] = {'application/vnd.jupyter.widget-state+json': {'state': {}, 'version_major': 2, 'version_minor': 0}}
    nbs = tmp_path / 'nbs'; nbs.mkdir()
    nbformat.write(good, nbs / 'index.ipynb'); nbformat.write(bad, nbs / '01_bad.ipynb')
    rd.render(sorted(nbs.glob('*.ipynb')), tmp_path / 'html', ROOT / '.docs_assets' / 'node_modules')
    res = bt.check_site(tmp_path / 'html', tmp_path / 'shots')
    assert res['index.html'] == []
    probs = ' | '.join(res['bad.html'])
    assert 'images not loaded' in probs and 'widget views rendered' in probs
    assert 'MathJax errors' in probs or 'raw TeX' in probs or 'typeset equations' in probs

def test_live_widget(bt):
    """Chapter 00 served by voila on localhost (its export, slow and GPU cells left out): moving the first slider of its
    schedule explorer redraws the explorer's figure."""
    pytest.importorskip('voila')
    res = bt.live_widget_check(ROOT / 'nbs' / '00_schedule.ipynb', shots=SHOTS)   # chapter 00's schedule explorer
    assert res['ok'], res
