"""tools/render_docs.py applies nbdev's directives the way the Quarto site does (no browser, no npm
assets needed)."""

import importlib.util
import sys
from pathlib import Path
import nbformat
from nbformat.v4 import new_notebook, new_code_cell, new_markdown_cell, new_output

TOOLS = Path(__file__).resolve().parent.parent / 'tools'


def _load(name):
    spec = importlib.util.spec_from_file_location(name, TOOLS / f'{name}.py')
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def out(text):
    return [new_output('stream', name='stdout', text=text)]


def test_directives_and_links(tmp_path):
    rd = _load('render_docs')
    nbs = tmp_path / 'nbs'
    nbs.mkdir()
    nb = new_notebook(
        cells=[
            new_markdown_cell(
                '# My chapter\n\n> What it is about, with $x^2$.\n\n'
                'See [chapter 2](02_other.ipynb#part) and '
                '[the index](nbs/index.ipynb). '
                '[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]'
                '(https://colab.research.google.com/x)'
            ),
            new_code_cell('#| default_exp thing'),
            new_code_cell('#| hide\nSECRET_INPUT = 1', outputs=out('SECRET_OUTPUT\n')),
            new_code_cell('#| export\ndef shown_fn(): return 42'),
            new_code_cell('#| echo: false\nHIDDEN_ECHO = 1', outputs=out('VISIBLE_ECHO_OUTPUT\n')),
            new_code_cell(
                '#| output: false\nVISIBLE_CODE_NO_OUTPUT = 1', outputs=out('HIDDEN_OUTPUT\n')
            ),
            new_code_cell(
                'show_doc(shown_fn)',
                outputs=[
                    new_output(
                        'display_data',
                        data={
                            'text/markdown': (
                                '---\n\n'
                                '[source](https://x/y.py#L1){target="_blank" style="float:right"}'
                                '\n\n### shown_fn\n\n*Docstring DOC_MD*'
                            ),
                            'text/plain': 'plain',
                        },
                    )
                ],
            ),
            new_code_cell('#| hide\nimport nbdev; nbdev.nbdev_export()'),
        ]
    )
    nbformat.write(nb, nbs / '01_mine.ipynb')
    nbformat.write(new_notebook(cells=[new_markdown_cell('# Home')]), nbs / 'index.ipynb')
    nbformat.write(new_notebook(cells=[new_markdown_cell('# Other')]), nbs / '02_other.ipynb')
    rep = rd.render(sorted(nbs.glob('*.ipynb')), tmp_path / 'html', None)
    assert [r['page'] for r in rep] == ['index.html', 'mine.html', 'other.html']
    html = (tmp_path / 'html' / 'mine.html').read_text()
    for gone in (
        'SECRET_INPUT',
        'SECRET_OUTPUT',
        'HIDDEN_ECHO',
        'HIDDEN_OUTPUT',
        '#|',
        'nbdev_export',
        'default_exp',
        'jp-InputPrompt',
        'In [',
        'show_doc(shown_fn)',
        'colab.research.google.com/assets',
    ):
        assert gone not in html, gone
    for shown in (
        'shown_fn',
        'VISIBLE_ECHO_OUTPUT',
        'VISIBLE_CODE_NO_OUTPUT',
        'DOC_MD',
        'href="other.html#part"',
        'href="index.html"',
        'assets/colab-badge.svg',
        'assets/mathjax/tex-chtml-full.js',
        '<title>My chapter',
    ):
        assert shown in html, shown
    assert 'target="_blank"' in html and '{target=' not in html  # show_doc's Quarto link attributes
    assert rep[1]['math_segments'] == 1


def test_static_explorer_page(tmp_path):
    """A chapter's static explorer reaches the page as HTML whose controls keep their inline
    JavaScript, beside its live widget (which the site CSS hides); pages.json counts both."""
    rd = _load('render_docs')
    html = (
        '<div class="adm-explorer" id="explorer" data-frames=\'["QUJD"]\'>'
        '<select class="adm-control" oninput="SWAP()"></select><img class="adm-frame"></div>'
    )
    view = {'model_id': 'm', 'version_major': 2, 'version_minor': 0}
    outputs = [
        new_output('display_data', data={'text/html': html, 'text/plain': 'explorer'}),
        new_output(
            'display_data',
            data={'application/vnd.jupyter.widget-view+json': view, 'text/plain': 'live'},
        ),
    ]
    nbs = tmp_path / 'nbs'
    nbs.mkdir()
    nb = new_notebook(cells=[new_markdown_cell('# Explore'), new_code_cell('x', outputs=outputs)])
    nbformat.write(nb, nbs / '01_explore.ipynb')
    rep = rd.render(sorted(nbs.glob('*.ipynb')), tmp_path / 'html', None)
    assert rep[0]['explorers'] == 1 and rep[0]['widget_views'] == 1
    page = (tmp_path / 'html' / 'explore.html').read_text()
    assert 'oninput="SWAP()"' in page and 'id="explorer"' in page
    css = (TOOLS.parent / 'nbs' / 'styles.css').read_text()
    assert '.jp-Cell:has(.adm-explorer)' in css and '.cell:has(.adm-explorer)' in css
