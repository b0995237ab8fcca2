"""Headless-Chromium checks of the rendered course (make docs-test runs these with
ADM_EDU_BROWSER_TEST=1).

Skipped in a plain `make test`/`pytest`: they need the rendered site (_html/, from `make docs`), the
npm assets and a Chromium (tools/setup_browser.sh). The logic lives in tools/browser_test.py."""

import importlib.util
import json
import os
import sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(
    os.environ.get('ADM_EDU_BROWSER_TEST') != '1',
    reason='browser tests run with `make docs-test` (ADM_EDU_BROWSER_TEST=1)',
)


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / 'tools' / f'{name}.py')
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope='module')
def bt():
    pytest.importorskip('playwright')
    mod = _load('browser_test')
    if not mod.chromium_path():
        pytest.fail('no Chromium: run tools/setup_browser.sh')
    return mod


SHOTS = Path(os.environ.get('ADM_EDU_SHOTS', ROOT / '_browser'))
HTML = Path(os.environ.get('ADM_EDU_HTML', ROOT / '_html'))


def test_rendered_pages(bt):
    """Every page of the rendered site: no console errors, images loaded, math typeset, saved
    widgets rendered, no code block or equation cut off on the right."""
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
    good = new_notebook(
        cells=[
            new_markdown_cell('# Good\n\nFine math: $x^2$ and $$\\int_0^1 x\\,dx = \\tfrac12.$$')
        ]
    )
    bad = new_notebook(
        cells=[
            new_markdown_cell(
                '# Bad\n\nA missing figure ![fig](missing.png) and bad TeX $\\frac{a}{b$ here.'
            ),
            new_code_cell(
                'w',
                outputs=[
                    new_output(
                        'display_data',
                        data={
                            'application/vnd.jupyter.widget-view+json': {
                                'model_id': 'nope',
                                'version_major': 2,
                                'version_minor': 0,
                            },
                            'text/plain': 'w',
                        },
                    )
                ],
            ),
        ]
    )
    bad.metadata['widgets'] = {
        'application/vnd.jupyter.widget-state+json': {
            'state': {},
            'version_major': 2,
            'version_minor': 0,
        }
    }
    nbs = tmp_path / 'nbs'
    nbs.mkdir()
    nbformat.write(good, nbs / 'index.ipynb')
    nbformat.write(bad, nbs / '01_bad.ipynb')
    rd.render(
        sorted(nbs.glob('*.ipynb')), tmp_path / 'html', ROOT / '.docs_assets' / 'node_modules'
    )
    res = bt.check_site(tmp_path / 'html', tmp_path / 'shots')
    assert res['index.html'] == []
    probs = ' | '.join(res['bad.html'])
    assert 'images not loaded' in probs and 'widget views rendered' in probs
    assert 'MathJax errors' in probs or 'raw TeX' in probs or 'typeset equations' in probs


def test_checker_catches_cut_off_code_and_math(bt, tmp_path):
    """The overflow check is not vacuous: in a 1280-px window a 200-character code line and an
    equation wider than the column are reported as cut off; a code line of `LINE_LENGTH`
    characters and an ordinary equation are not."""
    import nbformat
    from nbformat.v4 import new_notebook, new_markdown_cell, new_code_cell

    rd = _load('render_docs')
    longest_ok = 'x = 1  # ' + 'a' * (bt.LINE_LENGTH - 9)
    assert len(longest_ok) == bt.LINE_LENGTH
    wide_sum = ' + '.join(f'a_{{{i}}} b_{{{i}}}' for i in range(60))
    fine = new_notebook(
        cells=[
            new_markdown_cell('# Fine\n\n$$\\int_0^1 x\\,dx = \\tfrac12.$$'),
            new_code_cell(longest_ok),
        ]
    )
    wide = new_notebook(
        cells=[
            new_markdown_cell(f'# Wide\n\nA wide sum:\n\n$$s = {wide_sum}$$'),
            new_code_cell('y = 2  # ' + 'b' * 191),
        ]
    )
    nbs = tmp_path / 'nbs'
    nbs.mkdir()
    nbformat.write(fine, nbs / 'index.ipynb')
    nbformat.write(wide, nbs / '01_wide.ipynb')
    rd.render(
        sorted(nbs.glob('*.ipynb')), tmp_path / 'html', ROOT / '.docs_assets' / 'node_modules'
    )
    res = bt.check_site(tmp_path / 'html', tmp_path / 'shots')
    assert res['index.html'] == []
    probs = ' | '.join(res['wide.html'])
    assert '1 code blocks cut off on the right' in probs, probs
    assert '1 equations cut off on the right' in probs, probs
    # the code column's width is measured, not assumed: 200 characters do not fit it
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = bt.launch(p)
        try:
            page = bt.new_page(browser, [])
            page.goto((tmp_path / 'html' / 'index.html').as_uri())
            assert bt.overflow_problems(page) == []
            too_long = bt.overflow_problems(page, chars=200)
            assert len(too_long) == 1 and 'a 200-character code line is' in too_long[0]
        finally:
            browser.close()


def test_live_widget(bt):
    """The schedule chapter served by voila on localhost (its export, slow and GPU cells left out):
    moving the first slider of its schedule explorer redraws the explorer's figure."""
    pytest.importorskip('voila')
    res = bt.live_widget_check(bt.schedule_chapter(), shots=SHOTS)
    assert res['ok'], res
