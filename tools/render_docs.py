#!/usr/bin/env python
"""Render the (executed) notebooks to a small static site with nbconvert, for when Quarto/nbdev-docs
is unavailable.

    .venv/bin/python tools/render_docs.py [NB ...] [--out _html]
        [--assets .docs_assets/node_modules]                               (make docs)
    .venv/bin/python tools/render_docs.py --src /tmp/run/nbs --out /tmp/run/html  (executed copies)

Pages read like the nbdev/Quarto site rather than like a notebook:
  * `#| hide` and `#| include: false` cells are left out (input and output), as is the
    `nbdev_export()` cell;
  * `#| default_exp` lines and every other `#|` directive line are removed from the code that is
    shown, so `#| export` code is shown without its directive (nbdev-docs itself hides exported
    source and adds `show_doc`);
  * `#| echo: false` hides the input, `#| output: false` the outputs; `show_doc(...)` cells show
    only their rendered output (markdown/HTML), as nbdev does with `output: asis, echo: false`;
  * no `In [ ]:` prompts (nbconvert 'lab' template with exclude_input_prompt/exclude_output_prompt);
  * pages are named like nbdev's (`01_schedule.ipynb` -> `schedule.html`) and links to `*.ipynb` are
    rewritten;
  * MathJax 3, RequireJS and the ipywidgets HTML manager (`@jupyter-widgets/html-manager`'s
    `embed-amd.js`) are copied from the npm folder into `OUT/assets/` so pages work offline; widget
    state that execution saved in `nb.metadata.widgets` is embedded by the lab template and rendered
    by the HTML manager;
  * a chapter's static explorer (`adm_edu.viz.StaticExplorer`: frames swapped by inline JavaScript)
    is plain HTML in its output; nbs/styles.css (appended to the site CSS, as Quarto links it) hides
    the live widget of the same cell, which a page can only show frozen."""

import argparse
import copy
import json
import re
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_DIR = Path(__file__).resolve().parent / 'docs_template'
WIDGET_STATE = 'application/vnd.jupyter.widget-state+json'
STATIC_EXPLORER = 'class="adm-explorer"'  # adm_edu.viz.StaticExplorer's HTML
COLAB_BADGE = 'https://colab.research.google.com/assets/colab-badge.svg'
_dir_re = re.compile(r'^\s*#\s*\|\s*([\w-]+)\s*:?\s*(.*?)\s*$')
_hide_line_re = re.compile(r'#\s*\|\s*hide_line\s*$')
_showdoc_re = re.compile(r'^\s*show_doc\s*\(', re.M)


def page_name(nb_path: Path) -> str:
    """nbdev's page name: the numeric prefix dropped, lower case (01_schedule.ipynb ->
    schedule.html)."""
    return re.sub(r'^\d+[a-zA-Z0-9]*_', '', nb_path.name.lower()).rsplit('.', 1)[0] + '.html'


def split_directives(src: str):
    "({name: value}, code without the leading `#|` lines) of a code cell."
    lines = src.splitlines()
    dirs, i = {}, 0
    while i < len(lines):
        l = lines[i]
        if not l.strip():
            i += 1
            continue
        m = _dir_re.match(l)
        if not m:
            break
        dirs[m.group(1)] = m.group(2)
        i += 1
    code = '\n'.join(l for l in lines[i:] if not _hide_line_re.search(l))
    return dirs, code.strip('\n')


_attr_link_re = re.compile(r'\[([^\]\n]+)\]\(([^)\s]+)\)\{([^}\n]*)\}')


def pandoc_links(md: str) -> str:
    """show_doc's Quarto link attributes `[source](url){target=\"_blank\" style=...}` as plain HTML
    anchors."""
    return _attr_link_re.sub(lambda m: f'<a href="{m.group(2)}" {m.group(3)}>{m.group(1)}</a>', md)


def _false(v):
    return str(v).strip().lower() in ('false', 'no', '0')


def _text(x):
    return ''.join(x) if isinstance(x, list) else x


def link_fixer(pages: dict):
    """Rewrite markdown/HTML links to notebooks (`nbs/01_schedule.ipynb`, `01_schedule.ipynb#x`)
    into page links."""
    pat = re.compile(r'(\]\(|href=["\'])(?:\./)?(?:nbs/)?([\w.-]+)\.ipynb(#[^)"\'\s]*)?')

    def fix(s: str) -> str:
        def sub(m):
            name = m.group(2) + '.ipynb'
            return (
                m.group(1) + pages.get(name, page_name(Path(name))) + (m.group(3) or '')
                if name in pages
                else m.group(0)
            )

        s = pat.sub(sub, s)
        return s.replace(COLAB_BADGE, 'assets/colab-badge.svg')

    return fix


def prepare(nb, fix_links):
    """A copy of `nb` with nbdev's documentation semantics applied (see the module docstring); and
    its title."""
    nb = copy.deepcopy(nb)
    cells, title = [], None
    for c in nb.cells:
        src = _text(c.source)
        if c.cell_type == 'markdown':
            dirs, _ = split_directives(src) if src.lstrip().startswith('#|') else ({}, src)
            if 'hide' in dirs or _false(dirs.get('include', 'true')):
                continue
            if src.lstrip().startswith('#|'):
                src = split_directives(src)[1]
            if title is None:
                m = re.match(r'\s*#\s+(.+)', src)
                if m:
                    title = m.group(1).strip()
            c.source = fix_links(src)
            cells.append(c)
            continue
        if c.cell_type != 'code':
            continue
        dirs, code = split_directives(src)
        if 'hide' in dirs or _false(dirs.get('include', 'true')) or 'nbdev_export(' in code:
            continue
        if not code.strip() and not c.get('outputs'):
            continue
        c.source = code
        hide_input = (
            _false(dirs.get('echo', 'true')) or bool(_showdoc_re.search(code)) or not code.strip()
        )
        if _false(dirs.get('output', 'true')):
            c.outputs = []
        outs = []
        for o in c.get('outputs', []):
            if o.get('output_type') == 'stream':
                if not _text(o.get('text', '')).strip():
                    continue  # bare newlines left by progress bars
            if o.get('output_type') in ('display_data', 'execute_result'):
                d = o.get('data', {})
                for k in ('text/markdown', 'text/html'):
                    if k in d:
                        d[k] = fix_links(_text(d[k]))
                if 'text/markdown' in d:
                    d['text/markdown'] = pandoc_links(d['text/markdown'])
            outs.append(o)
        c.outputs = outs
        if hide_input:
            if not outs:
                continue
            c.setdefault('metadata', {}).setdefault('transient', {})['remove_source'] = True
        cells.append(c)
    nb.cells = cells
    return nb, title


_code_re = re.compile(r'```.*?```|`[^`\n]*`', re.S)
_math_re = re.compile(
    r'\$\$.+?\$\$|\\\[.+?\\\]|\\\(.+?\\\)|(?<![\\$])\$(?!\s)[^$\n]+?(?<![\s\\])\$', re.S
)


def count_math(text: str) -> int:
    """Number of TeX segments ($..$, $$..$$, \\(..\\), \\[..\\]) in markdown text, code spans and
    blocks excluded."""
    return len(_math_re.findall(_code_re.sub('', text.replace('\\$', ''))))


def page_facts(nb) -> dict:
    """What the browser test expects of the rendered page: math segments in the prose, widget views
    and state."""
    md = [_text(c.source) for c in nb.cells if c.cell_type == 'markdown']
    md += [
        _text(o['data']['text/markdown'])
        for c in nb.cells
        if c.cell_type == 'code'
        for o in c.get('outputs', [])
        if 'text/markdown' in o.get('data', {})
    ]
    outs = [
        o.get('data', {}) for c in nb.cells if c.cell_type == 'code' for o in c.get('outputs', [])
    ]
    views = sum('application/vnd.jupyter.widget-view+json' in d for d in outs)
    state = (nb.metadata.get('widgets') or {}).get(WIDGET_STATE)
    return dict(
        math_segments=sum(count_math(t) for t in md),
        widget_views=views,
        widget_state=state is not None,
        widget_state_images=json.dumps(state).count('"image/png"') if state else 0,
        explorers=sum(STATIC_EXPLORER in _text(d.get('text/html', '')) for d in outs),
    )


def copy_assets(npm: Path, out: Path):
    "Copy MathJax 3, RequireJS, the widgets HTML manager and the site CSS into out/assets."
    a = out / 'assets'
    mj = npm / 'mathjax' / 'es5'
    hm = npm / '@jupyter-widgets' / 'html-manager' / 'dist'
    rq = npm / 'requirejs' / 'require.js'
    missing = [str(p) for p in (mj, hm, rq) if not p.exists()]
    if missing:
        sys.exit(
            f'render_docs: missing {", ".join(missing)}: run `make docs-assets` (npm ci in '
            '.docs_assets)'
        )
    (a / 'mathjax' / 'output' / 'chtml').mkdir(parents=True, exist_ok=True)
    shutil.copy2(mj / 'tex-chtml-full.js', a / 'mathjax' / 'tex-chtml-full.js')
    shutil.copytree(
        mj / 'output' / 'chtml' / 'fonts',
        a / 'mathjax' / 'output' / 'chtml' / 'fonts',
        dirs_exist_ok=True,
    )
    (a / 'html-manager').mkdir(exist_ok=True)
    for f in hm.iterdir():
        if (
            f.is_file()
            and not f.name.endswith('.map')
            and f.name not in ('embed.js', 'libembed-amd.js')
        ):
            shutil.copy2(f, a / 'html-manager' / f.name)
    shutil.copy2(rq, a / 'require.js')
    # nbconvert's lab CSS, linked by docs_template/index.html.j2 rather than inlined into each page
    from jupyter_core.paths import jupyter_path

    lab = next(
        Path(p) / 'nbconvert' / 'templates' / 'lab'
        for p in jupyter_path()
        if (Path(p) / 'nbconvert' / 'templates' / 'lab' / 'static' / 'index.css').exists()
    )
    (a / 'lab').mkdir(exist_ok=True)
    for f in ('index.css', 'theme-light.css'):
        shutil.copy2(lab / 'static' / f, a / 'lab' / f)
    block = (
        (lab / 'index.html.j2')
        .read_text()
        .split('{% block notebook_css %}')[-1]
        .split('{% endblock notebook_css %}')[0]
    )
    m = re.search(r'.*<style type="text/css">(.*?)</style>', block, re.S)
    (a / 'lab' / 'misc.css').write_text(m.group(1) if m and '{%' not in m.group(1) else '')
    css = (TEMPLATE_DIR / 'site.css').read_text()
    if (ROOT / 'nbs' / 'styles.css').exists():
        css += '\n/* nbs/styles.css */\n' + (ROOT / 'nbs' / 'styles.css').read_text()
    (a / 'site.css').write_text(css)
    shutil.copy2(TEMPLATE_DIR / 'colab-badge.svg', a / 'colab-badge.svg')


def site_title():
    try:
        import tomllib

        return tomllib.loads((ROOT / 'pyproject.toml').read_text())['project']['name']
    except Exception:
        return 'docs'


def render(nbs, out: Path, npm: Path):
    import nbformat
    from nbconvert import HTMLExporter

    out.mkdir(parents=True, exist_ok=True)
    if npm is not None:
        copy_assets(npm, out)  # None: pages only (tests)
    # index first, then the chapters in file order (as the Quarto sidebar lists them)
    nbs = sorted(nbs, key=lambda p: (p.name != 'index.ipynb', p.name))
    loaded = [(p, nbformat.read(p, as_version=4)) for p in nbs]
    pages = {p.name: page_name(p) for p in nbs}
    fix = link_fixer(pages)
    prepared = [(p, *prepare(nb, fix)) for p, nb in loaded]
    entries = [
        dict(href=pages[p.name], title=(t or p.stem) if p.name != 'index.ipynb' else 'Home')
        for p, _, t in prepared
    ]
    ex = HTMLExporter(
        extra_template_basedirs=[str(TEMPLATE_DIR.parent)],
        template_name=TEMPLATE_DIR.name,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        exclude_anchor_links=False,
        mathjax_url='assets/mathjax/tex-chtml-full.js',
        require_js_url='assets/require.js',
        widget_renderer_url='assets/html-manager/embed-amd.js',
        embed_images=False,
    )
    report = []
    for i, (p, nb, title) in enumerate(prepared):
        t0 = time.time()
        nb.metadata['title'] = (
            f'{title} – {site_title()}' if title and p.name != 'index.ipynb' else site_title()
        )
        res = dict(
            metadata=dict(name=p.stem, path=str(p.parent)),
            site=dict(
                title=site_title(),
                pages=entries,
                current=entries[i]['href'],
                assets='assets',
                prev=entries[i - 1] if i > 0 else None,
                next=entries[i + 1] if i + 1 < len(entries) else None,
            ),
        )
        body, _ = ex.from_notebook_node(nb, resources=res)
        dest = out / entries[i]['href']
        dest.write_text(body, encoding='utf-8')
        has_w = WIDGET_STATE in (nb.metadata.get('widgets') or {})
        n_out = sum(len(c.get('outputs', [])) for c in nb.cells if c.cell_type == 'code')
        report.append(dict(page=dest.name, source=p.name, outputs=n_out, **page_facts(nb)))
        print(
            f'{p.name:32s} -> {dest}  {dest.stat().st_size / 1024:7.1f} KiB  {n_out:3d} outputs'
            f'{"  widgets" if has_w else ""}{"" if n_out else "  (NO OUTPUTS: not executed?)"}'
        )
    (out / 'pages.json').write_text(json.dumps(report, indent=1))
    return report


def remove_stale_pages(out: Path, pages: set):
    "Pages of notebooks that no longer exist (renamed or deleted) go, so no test reads them."
    for f in out.glob('*.html'):
        if f.name not in pages:
            f.unlink()
            print(f'removed {f.name}: no notebook renders it any more')


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('nbs', nargs='*', help='notebooks (default: every nbs/*.ipynb)')
    ap.add_argument('--out', default=str(ROOT / '_html'))
    ap.add_argument(
        '--assets',
        default=str(ROOT / '.docs_assets' / 'node_modules'),
        help='npm node_modules with the assets',
    )
    ap.add_argument(
        '--src',
        default=str(ROOT / 'nbs'),
        help='folder of the notebooks when none are named (e.g. executed copies)',
    )
    a = ap.parse_args(argv)
    nbs = [Path(n) for n in a.nbs] or sorted(Path(a.src).glob('*.ipynb'))
    if not nbs:
        sys.exit(f'render_docs: no notebooks in {a.src}')
    t0 = time.time()
    render(nbs, Path(a.out), Path(a.assets))
    if not a.nbs:
        remove_stale_pages(Path(a.out), {page_name(p) for p in nbs})
    print(f'{len(nbs)} pages in {time.time() - t0:.1f} s; open {Path(a.out) / "index.html"}')


if __name__ == '__main__':
    main()
