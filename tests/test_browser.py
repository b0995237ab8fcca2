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


def explorer_page(frames_differ: bool):
    """A notebook whose one output is a static explorer over 2 x 3 frames (each frame a different
    figure, or every frame the same)."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from nbformat.v4 import new_notebook, new_markdown_cell, new_code_cell, new_output
    from adm_edu.viz import StaticExplorer, figure_png

    frames = []
    for k in range(6):
        fig, ax = plt.subplots(figsize=(2, 1.5))
        ax.plot([0, 1], [0, k if frames_differ else 1])
        frames.append(figure_png(fig))
    ex = StaticExplorer(frames, {'kind': ['a', 'b'], 'slope': [0, 1, 2]})
    data = ex._repr_mimebundle_()
    cell = new_code_cell('explorer', outputs=[new_output('display_data', data=data)])
    return new_notebook(cells=[new_markdown_cell('# Explorer'), cell])


def test_checker_moves_static_explorers(bt, tmp_path):
    """Each control of a static explorer is moved in the browser: an explorer whose frames differ
    passes, one whose frames are all the same ("moves" but shows nothing new) is reported, and so
    is a link to `page#explorer` where that page has no explorer."""
    import nbformat

    rd = _load('render_docs')
    nbs = tmp_path / 'nbs'
    nbs.mkdir()
    from nbformat.v4 import new_notebook, new_markdown_cell

    frozen = explorer_page(False)
    links = '[a good one](index.ipynb#explorer), [none](02_plain.ipynb#explorer)'
    frozen.cells.append(new_markdown_cell(f'Explorers elsewhere: {links}.'))
    nbformat.write(explorer_page(True), nbs / 'index.ipynb')
    nbformat.write(frozen, nbs / '01_frozen.ipynb')
    nbformat.write(new_notebook(cells=[new_markdown_cell('# Plain')]), nbs / '02_plain.ipynb')
    rd.render(
        sorted(nbs.glob('*.ipynb')), tmp_path / 'html', ROOT / '.docs_assets' / 'node_modules'
    )
    res = bt.check_site(tmp_path / 'html', tmp_path / 'shots')
    assert res['index.html'] == []
    probs = ' | '.join(res['frozen.html'])
    assert "moving 'kind' (0 -> 1) did not change the figure" in probs, probs
    assert "moving 'slope' (0 -> 2) did not change the figure" in probs, probs
    # the links to explorers: one to a page without an explorer is reported
    assert 'link to plain.html#explorer: no such explorer' in probs, probs
    assert 'index.html#explorer' not in probs, probs


@pytest.mark.parametrize('module', ['schedule', 'resample'])
def test_live_widget(bt, module):
    """The chapters of the schedule and importance-sampling explorers served by voila on localhost
    (their export, slow and GPU cells left out): moving the first slider of the explorer redraws
    its figure, with no console error and no request off the machine."""
    pytest.importorskip('voila')
    assert module in bt.LIVE_MODULES
    res = bt.live_widget_check(bt.chapter_exporting(module), shots=SHOTS)
    assert res['ok'], res
