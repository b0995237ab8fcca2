#!/usr/bin/env python
"""Open every rendered page (make docs -> _html/) in headless Chromium and check what a learner
would see.

    .venv/bin/python tools/browser_test.py [--html _html] [--shots _browser]    (make docs-test)
    .venv/bin/python tools/browser_test.py --pages ddim,metrics --no-live       (two pages only)
    .venv/bin/python tools/browser_test.py --live                  (the live-widget check only)

Per page, in a 1280 x 900 window: no console errors or uncaught exceptions, no failed or
off-machine requests (only file:// and localhost are allowed; anything else is blocked and
reported), every <img> loaded (naturalWidth > 0), MathJax finished and left no raw TeX delimiters
in the visible text (code excluded), at least as many typeset equations as the page's prose has TeX
segments (counted by render_docs.py into pages.json), where widget state was saved, every widget
view rendered (and showing a figure when the saved state holds one), and nothing cut off on the
right: no code block (a code cell's input or a code block in the prose) and no equation wider than
its box or reaching past the main column, and a line of `LINE_LENGTH` characters fits a code cell.
Three screenshots go to --shots.

Every static explorer (adm_edu.viz.StaticExplorer) is moved: each control set to the far end of its
range and its input/change events dispatched; the frame must change (its src) and load, and the live
widget of the same cell must be hidden. A live widget without a static form is a problem.

--live: serves the chapters of `adm_edu.schedule` and `adm_edu.resample` (`LIVE_MODULES`) with voila
on 127.0.0.1 (its lab template without the CDN stylesheets: docs_template/voila/), waits for each
live explorer, moves its first slider with the keyboard and checks that the figure (the <img> src)
changes, with no console error and no request off the machine.

Chromium: $CHROMIUM, else chromium / chromium-browser / google-chrome on PATH
(tools/setup_browser.sh installs Debian's). It is driven by Playwright's Python package through
executable_path, so no browser is downloaded."""

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
RAW_TEX = re.compile(r'\$\$|\\\(|\\\)|\\\[|\\\]|\\begin\{|\$\\[a-zA-Z]')
# MathJax and the widgets manager both finish asynchronously: every wait below is bounded by these.
PAGE_TIMEOUT_MS = 60_000
WIDGET_TIMEOUT_MS = 20_000
VIEWPORT = {'width': 1280, 'height': 900}
LINE_LENGTH = 100  # the longest code line (ruff's line-length): it must fit a code cell
WIDGET_VIEW = 'script[type="application/vnd.jupyter.widget-view+json"]'
BROWSERS = ('chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable')


def chromium_path():
    "The Chromium to drive: $CHROMIUM, else the first of `BROWSERS` on PATH (None: none found)."
    for c in (os.environ.get('CHROMIUM'), *BROWSERS):
        if c and (p := shutil.which(c)):
            return p
    return None


def launch(p):
    "A headless Chromium from Playwright `p`, without downloading a browser."
    exe = chromium_path()
    if not exe:
        raise RuntimeError('no Chromium found: run tools/setup_browser.sh (or set $CHROMIUM)')
    args = ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run']
    return p.chromium.launch(executable_path=exe, headless=True, args=args)


def _local(url: str) -> bool:
    "True for a URL on this machine (file:, data:, localhost)."
    if url.startswith(('file:', 'data:', 'blob:', 'about:')):
        return True
    return re.match(r'^(https?|wss?)://(127\.0\.0\.1|localhost)(:\d+)?/', url) is not None


def new_page(browser, log):
    """A page that records console errors, uncaught exceptions and failed requests into `log`, and
    blocks the network."""
    page = browser.new_page(viewport=VIEWPORT)

    def on_console(m):
        if m.type == 'error':
            log.append(f'console {m.type}: {m.text[:300]}')

    def on_failed(r):
        if _local(r.url):
            log.append(f'request failed: {r.url[:200]} ({r.failure})')

    def route(r):
        if _local(r.request.url):
            return r.continue_()
        log.append(f'off-machine request blocked: {r.request.url[:200]}')
        return r.abort()

    page.on('console', on_console)
    page.on('pageerror', lambda e: log.append(f'uncaught exception: {str(e)[:300]}'))
    page.on('requestfailed', on_failed)
    page.route('**/*', route)
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    return page


# What a page shows, read in the browser: its visible prose (code and typeset math left out),
# equations, images and widget views.
JS_FACTS = r"""() => {
  const hidden = new Set(['SCRIPT', 'STYLE', 'PRE', 'CODE', 'MJX-CONTAINER', 'MJX-ASSISTIVE-MML',
                          'TEXTAREA', 'NOSCRIPT']);
  const isCode = (n) => n.classList.contains('highlight') || n.classList.contains('jp-InputArea');
  const parts = [];
  const walk = (n) => {
    if (n.nodeType === 3) { parts.push(n.textContent); return; }
    if (n.nodeType !== 1 || hidden.has(n.tagName) || isCode(n)) return;
    for (const c of n.childNodes) walk(c);
  };
  walk(document.querySelector('main') || document.body);
  const views = [...document.querySelectorAll('%(view)s')];
  const shows = (s, sel) => s.parentElement.querySelector(sel) !== null;
  return {
    text: parts.join(' '),
    n_math: document.querySelectorAll('mjx-container').length,
    mathjax_errors: document.querySelectorAll('mjx-merror, mjx-container [data-mjx-error]').length,
    imgs: [...document.images].map(i => ({src: i.src.slice(0, 80),
                                          ok: i.complete && i.naturalWidth > 0})),
    views: views.length,
    views_rendered: views.filter(s => shows(s, '.jupyter-widgets:not(script), '
                                               + '.widget-subarea .lm-Widget')).length,
    views_with_img: views.filter(s => shows(s, 'img')).length,
    sliders: document.querySelectorAll('.widget-slider').length,
  };
}""" % dict(view=WIDGET_VIEW)

JS_VIEWS_RENDERED = r"""n => [...document.querySelectorAll('%(view)s')]
  .filter(s => s.parentElement.querySelector('.widget-subarea .lm-Widget')).length >= n""" % dict(
    view=WIDGET_VIEW
)

# What is cut off on the right. A code block overflows when its text is wider than its box
# (scrollWidth > clientWidth: the lab template hides what does not fit) or when the box itself
# reaches past the main column or the window; an equation likewise (a display equation scrolls
# inside its box, an inline one runs past the column). `fits`: whether a line of `chars` characters
# fits the first code cell's box, in the code font.
JS_OVERFLOW = r"""(chars) => {
  const main = document.querySelector('main') || document.body;
  const pad = parseFloat(getComputedStyle(main).paddingRight) || 0;
  const right = Math.min(window.innerWidth, main.getBoundingClientRect().right - pad) + 1;
  const longest = (el) => el.textContent.split('\n')
    .reduce((a, b) => (b.length > a.length ? b : a), '');
  const past = (el) => Math.max(el.scrollWidth - el.clientWidth - 1,
                                el.getBoundingClientRect().right - right);
  const cut = (sel) => [...document.querySelectorAll(sel)].filter(el => past(el) > 0)
    .map(el => ({px: Math.ceil(past(el)), chars: longest(el).length,
                 text: longest(el).trim().slice(0, 70)}));
  let fits = null;
  const editor = document.querySelector('.jp-InputArea-editor pre');
  if (editor) {
    const probe = editor.cloneNode(false);
    const line = probe.appendChild(document.createElement('span'));
    line.textContent = 'x'.repeat(chars);
    editor.parentElement.appendChild(probe);
    const style = getComputedStyle(probe);
    const column = probe.clientWidth - parseFloat(style.paddingLeft)
                   - parseFloat(style.paddingRight);
    const text = line.getBoundingClientRect().width;
    fits = {chars: chars, text_px: Math.round(text * 10) / 10,
            column_px: Math.round(column * 10) / 10, ok: text <= column + 0.5};
    probe.remove();
  }
  return {code: cut('.jp-InputArea-editor pre, .jp-RenderedMarkdown pre'),
          math: cut('mjx-container'), fits: fits};
}"""


# Each static explorer (adm_edu.viz.StaticExplorer): every control moved as a learner would (its
# value set to the far end of its range, then the input and change events) and back; whether the
# frame's src changed and the new frame decoded; whether a live widget of the same cell is visible.
JS_EXPLORERS = r"""async () => {
  const fire = (c) => ['input', 'change']
    .forEach(e => c.dispatchEvent(new Event(e, {bubbles: true})));
  const views = 'script[type="application/vnd.jupyter.widget-view+json"]';
  const out = [];
  for (const b of document.querySelectorAll('.adm-explorer')) {
    const img = b.querySelector('img.adm-frame');
    const cell = b.closest('.jp-Cell, .cell');
    const live = cell ? [...cell.querySelectorAll(views)]
      .filter(s => s.parentElement.checkVisibility()).length : 0;
    const r = {img: img !== null && img.checkVisibility(), live_shown: live, moved: []};
    for (const c of (img ? b.querySelectorAll('.adm-control') : [])) {
      const before = img.src, old = c.value, n = Number(c.dataset.n);
      c.value = String(Number(old) === n - 1 ? 0 : n - 1);
      fire(c);
      let ok = true;
      try { await img.decode(); } catch (e) { ok = false; }
      r.moved.push({name: c.name, from: old, to: c.value, changed: img.src !== before,
                    loaded: ok && img.naturalWidth > 0});
      c.value = old;
      fire(c);
    }
    out.push(r);
  }
  return out;
}"""


def explorer_problems(page, facts: dict) -> list:
    """Static explorers that do not move: a control whose far value shows the same frame (or one
    that does not load), an explorer without a frame or controls, one missing from the page, a live
    widget shown frozen beside it, a live widget without a static form."""
    found = page.evaluate(JS_EXPLORERS)
    probs = []
    if len(found) < facts.get('explorers', 0):
        probs.append(
            f'{facts["explorers"]} static explorers in the source, {len(found)} on the page'
        )
    if facts.get('widget_views', 0) > facts.get('explorers', 0):
        probs.append(
            f'{facts["widget_views"]} live widgets but {facts.get("explorers", 0)} static '
            'explorers: a widget without a static form is frozen on a web page'
        )
    for k, r in enumerate(found, 1):
        if not r['img'] or not r['moved']:
            probs.append(f'explorer {k}: no visible frame or no control')
        if r['live_shown']:
            probs.append(f'explorer {k}: its live widget is shown (frozen) beside it')
        for m in r['moved']:
            if not m['changed']:
                probs.append(
                    f'explorer {k}: moving {m["name"]!r} ({m["from"]} -> {m["to"]}) did not '
                    'change the figure'
                )
            elif not m['loaded']:
                probs.append(f'explorer {k}: the frame for {m["name"]}={m["to"]} did not load')
    return probs


def overflow_problems(page, chars: int = LINE_LENGTH) -> list:
    "What a learner would find cut off on the right of `page`, one line per kind of problem."
    o = page.evaluate(JS_OVERFLOW, chars)
    probs = []
    for what, cut in (('code blocks', o['code']), ('equations', o['math'])):
        if cut:
            worst = max(cut, key=lambda c: c['px'])
            probs.append(
                f'{len(cut)} {what} cut off on the right in a {VIEWPORT["width"]}-px window; '
                f'worst by {worst["px"]} px ({worst["chars"]} characters): {worst["text"]!r}'
            )
    fits = o['fits']
    if fits and not fits['ok']:
        probs.append(
            f'a {chars}-character code line is {fits["text_px"]} px wide, the code column '
            f'{fits["column_px"]} px'
        )
    return probs


def _wait(page, script, arg=None, timeout=PAGE_TIMEOUT_MS) -> bool:
    "Wait until `script` is true in `page`; False when it timed out."
    try:
        page.wait_for_function(script, arg=arg, timeout=timeout)
        return True
    except Exception:
        return False


def load(page, path: Path, facts: dict) -> list:
    "Open `path` and wait for MathJax, the saved widgets and the images; problems found so far."
    page.goto(path.resolve().as_uri(), wait_until='load')
    probs = []
    if not _wait(page, "document.body.getAttribute('data-mathjax') === 'done'"):
        probs.append('MathJax did not finish typesetting')
    if facts.get('widget_state') and facts.get('widget_views'):
        # a timeout is reported from the facts
        _wait(page, JS_VIEWS_RENDERED, facts['widget_views'], WIDGET_TIMEOUT_MS)
    _wait(page, "[...document.images].every(i => i.complete)")
    return probs


def fact_problems(f: dict, facts: dict) -> list:
    "Problems in what the page shows (`f`, from JS_FACTS) against what its source holds (`facts`)."
    probs = []
    bad = [i['src'] for i in f['imgs'] if not i['ok']]
    if bad:
        probs.append(f'{len(bad)} of {len(f["imgs"])} images not loaded: {bad[:3]}')
    raw = sorted({m.group(0) for m in RAW_TEX.finditer(f['text'])})
    if raw:
        i = RAW_TEX.search(f['text']).start()
        around = f['text'][max(0, i - 60) : i + 60]
        probs.append(f'raw TeX left in the text {raw}: ...{around!r}...')
    if f['n_math'] < facts.get('math_segments', 0):
        probs.append(
            f'{f["n_math"]} typeset equations, but the source has {facts["math_segments"]} '
            'TeX segments'
        )
    if f['mathjax_errors']:
        probs.append(f'{f["mathjax_errors"]} MathJax errors')
    return probs + widget_problems(f, facts)


def widget_problems(f: dict, facts: dict) -> list:
    "Saved widget views that did not render (or render without their figure)."
    n_views = max(facts.get('widget_views', 0), f['views'])  # the manager may drop views
    if not n_views:
        return []
    probs = []
    if not facts.get('widget_state', True):
        probs.append('widget views without saved widget state')
    if f['views_rendered'] < n_views:
        probs.append(f'{f["views_rendered"]} of {n_views} widget views rendered')
    elif facts.get('widget_state_images') and not f['views_with_img']:
        probs.append('the saved widget state holds figures, but no widget view shows one')
    return probs


def check_page(browser, path: Path, facts: dict) -> tuple:
    "(problems, seconds, page, facts read in the browser) for one rendered page."
    log, t0 = [], time.time()
    page = new_page(browser, log)
    probs = []
    try:
        probs = load(page, path, facts)
        f = page.evaluate(JS_FACTS)
        probs += fact_problems(f, facts) + overflow_problems(page)
        probs += explorer_problems(page, facts)
        return probs + log, time.time() - t0, page, f
    except Exception as e:
        return probs + log + [f'{type(e).__name__}: {str(e)[:300]}'], time.time() - t0, page, {}


def select_pages(html: Path, names=None) -> list:
    "The pages of `html` to check: every *.html, or those named (`ddim` or `ddim.html`)."
    pages = sorted(html.glob('*.html'))
    if not pages:
        raise RuntimeError(f'no pages in {html}: run `make docs` first')
    if not names:
        return pages
    want = {n if n.endswith('.html') else f'{n}.html' for n in names}
    missing = want - {p.name for p in pages}
    if missing:
        raise RuntimeError(f'no such pages in {html}: {", ".join(sorted(missing))}')
    return [p for p in pages if p.name in want]


def screenshot_plan(html: Path, pages: list, manifest: dict) -> dict:
    "{page name: 'page' | 'math' | 'widget'}: the three pages to take a screenshot of."
    with_math = [p for p in pages if manifest.get(p.name, {}).get('math_segments')]
    with_widget = [p for p in pages if manifest.get(p.name, {}).get('widget_views')]
    home = 'index.html' if (html / 'index.html') in pages else pages[0].name
    plan = {home: 'page'}
    # three different pages: the first with a widget, then the first other one with math
    widget = next((p for p in with_widget if p.name not in plan), pages[-1])
    plan.setdefault(widget.name, 'widget')
    math = next((p for p in with_math if p.name not in plan), pages[0])
    plan.setdefault(math.name, 'math')
    return plan


def screenshot(page, kind: str, dest: Path):
    """A screenshot of `page` scrolled to what `kind` shows (a static explorer or a widget slider, a
    display equation)."""
    targets = {
        'widget': ('.adm-explorer', '.widget-slider'),  # a static explorer, else a live widget
        'math': ('mjx-container[display="true"]',),
    }.get(kind, ())
    shown = [page.locator(t).first for t in targets if page.locator(t).count()]
    shown = [loc for loc in shown if loc.is_visible()]
    if shown:
        shown[0].scroll_into_view_if_needed()
    page.screenshot(path=str(dest))


def report(path: Path, probs: list, secs: float, f: dict):
    "One line per page, then its problems."
    views = f'{f.get("views_rendered", 0)}/{f.get("views", 0)} widgets'
    print(
        f'{"FAIL" if probs else "ok  "} {path.name:28s} {secs:5.1f} s  '
        f'{f.get("n_math", 0):4d} equations  {len(f.get("imgs", [])):3d} images  {views}'
    )
    for m in probs:
        print(f'     {m}')


def anchor_problems(html: Path, paths: list) -> dict:
    """{page: problems} for links to a chapter's explorer (`page.html#explorer`, the front page's
    table) whose page has no element with that id."""
    probs = {}
    for path in paths:
        for target in sorted(set(re.findall(r'href="([\w.-]+\.html)#explorer"', path.read_text()))):
            page = html / target
            if not page.exists() or 'id="explorer"' not in page.read_text(encoding='utf-8'):
                probs.setdefault(path.name, []).append(
                    f'link to {target}#explorer: no such explorer'
                )
    return probs


def check_site(html: Path, shots: Path, verbose=True, pages=None) -> dict:
    """Check the pages of `html` (every one, or those named in `pages`); returns {page: problems};
    writes up to 3 screenshots into `shots`."""
    from playwright.sync_api import sync_playwright

    html, shots, t_all = Path(html), Path(shots), time.time()
    manifest_file = html / 'pages.json'
    manifest = {}
    if manifest_file.exists():
        manifest = {d['page']: d for d in json.loads(manifest_file.read_text())}
    paths = select_pages(html, pages)
    shots.mkdir(parents=True, exist_ok=True)
    plan = screenshot_plan(html, paths, manifest)
    results = {}
    with sync_playwright() as p:
        browser = launch(p)
        try:
            for path in paths:
                probs, secs, page, f = check_page(browser, path, manifest.get(path.name, {}))
                results[path.name] = probs
                if verbose:
                    report(path, probs, secs, f)
                if path.name in plan:
                    kind = plan[path.name]
                    try:
                        screenshot(page, kind, shots / f'{kind}_{path.stem}.png')
                    except Exception as e:
                        print(f'     screenshot failed: {e}')
                page.close()
        finally:
            browser.close()
    for name, probs in anchor_problems(html, paths).items():
        results[name] = results.get(name, []) + probs
        if verbose:
            print(f'FAIL {name}: ' + '; '.join(probs))
    if verbose:
        n_bad = sum(bool(v) for v in results.values())
        print(
            f'{len(paths)} pages checked in {time.time() - t_all:.1f} s: {n_bad} with problems; '
            f'screenshots in {shots}'
        )
    return results


# ---- live widget (voila) -------------------------------------------------------------------------
# the chapters whose live explorer is moved under voila, by the module they export: the schedule
# explorer (chapter 01) and the importance-sampling explorer (chapter 07)
LIVE_MODULES = ('schedule', 'resample')


def chapter_exporting(module: str, nbs: Path = ROOT / 'nbs') -> Path:
    "The chapter that exports `adm_edu.<module>`."
    for nb in sorted(nbs.glob('*.ipynb')):
        pat = rf'#\s*\|\s*default_exp\s+{module}\b'
        if re.search(pat, nb.read_text(encoding='utf-8')):
            return nb
    raise FileNotFoundError(f'no notebook in {nbs} exports adm_edu.{module}')


def schedule_chapter(nbs: Path = ROOT / 'nbs') -> Path:
    "The chapter that exports `adm_edu.schedule` (it holds the schedule explorer)."
    return chapter_exporting('schedule', nbs)


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _wait_http(url, proc, timeout):
    """Wait until the server accepts connections. (Not a GET of the page: voila runs the notebook in
    a new kernel for every request, so probing the page with short time-outs would start kernel
    after kernel.)"""
    u, t0 = urlparse(url), time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f'voila exited with status {proc.returncode}')
        try:
            with socket.create_connection((u.hostname, u.port), timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f'{url} did not answer within {timeout} s')


def servable_copy(nb: Path) -> Path:
    """A copy of `nb` in a scratch folder without the cells nbdev-test leaves out (library export,
    slow, GPU-only)."""
    import nbformat

    def left_out(c):
        src = c.source.lstrip()
        return c.cell_type == 'code' and (
            'nbdev_export' in src or src.startswith(('#| slow', '#| gpu'))
        )

    book = nbformat.read(nb, as_version=4)
    book.cells = [c for c in book.cells if not left_out(c)]
    copy = Path(tempfile.mkdtemp(prefix='live-')) / nb.name
    nbformat.write(book, copy)
    return copy


# voila's lab template without its CDN stylesheets: docs_template/voila/templates/offline
VOILA_TEMPLATES = Path(__file__).resolve().parent / 'docs_template'


def start_voila(nb: Path, port: int, timeout: int, log):
    """voila serving `nb` on 127.0.0.1:`port` with the offline template (IN_TEST unset: the chapter
    runs in full)."""
    voila = Path(sys.executable).parent / 'voila'
    cmd = [
        str(voila) if voila.exists() else 'voila',
        str(nb),
        '--no-browser',
        f'--port={port}',
        '--Voila.ip=127.0.0.1',
        '--show_tracebacks=True',
        '--template=offline',
        f'--ExecutePreprocessor.timeout={timeout}',
    ]
    env = {k: v for k, v in os.environ.items() if k != 'IN_TEST'}
    env['JUPYTER_PATH'] = os.pathsep.join(
        p for p in (str(VOILA_TEMPLATES), os.environ.get('JUPYTER_PATH')) if p
    )
    return subprocess.Popen(
        cmd, cwd=nb.parent, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


# the explorer: an ipywidgets `interactive` box holding the slider and the figure it draws
EXPLORER_IMG = '.widget-interact .widget-output img'
EXPLORER_HANDLE = '.widget-interact .widget-slider .noUi-handle'
JS_NEW_FIGURE = r"""([sel, old]) => {
  const i = document.querySelector(sel);
  return i && i.complete && i.naturalWidth > 0 && i.src !== old;
}"""


def move_slider(page, url: str, timeout_ms: int) -> dict:
    """Open the served chapter, press the right arrow four times on the explorer's first slider;
    the figure and the slider's readout before and after."""
    page.goto(url, wait_until='domcontentloaded', timeout=timeout_ms)  # voila runs the chapter
    page.wait_for_selector(EXPLORER_HANDLE, timeout=timeout_ms)
    page.wait_for_selector(EXPLORER_IMG, timeout=timeout_ms)
    box = page.locator('.widget-interact').first
    readout = box.locator('.widget-slider .widget-readout').first
    before = box.locator('.widget-output img').first.get_attribute('src')
    value_before = readout.inner_text()
    box.locator('.widget-slider .noUi-handle').first.focus()
    for _ in range(4):
        page.keyboard.press('ArrowRight')
    page.wait_for_function(JS_NEW_FIGURE, arg=[EXPLORER_IMG, before], timeout=timeout_ms)
    page.wait_for_timeout(500)  # let interactive's last redraw land (it redraws per key press)
    after = box.locator('.widget-output img').first.get_attribute('src')
    return dict(
        before=before[:60],
        after=after[:60],
        value_before=value_before,
        value_after=readout.inner_text(),
        changed=after != before,
    )


def live_widget_check(nb=None, shots=None, timeout=180, verbose=True) -> dict:
    """Serve `nb` (default: the schedule chapter) with voila on 127.0.0.1, move its explorer's first
    slider with the keyboard in Chromium and check that the figure changes, with no console error
    and no request off the machine. Returns {'ok', 'before', 'after', 'value_before',
    'value_after', 'seconds', 'problems'}."""
    from playwright.sync_api import sync_playwright

    t0 = time.time()
    name = Path(nb or schedule_chapter()).stem
    nb = servable_copy(Path(nb or schedule_chapter()).resolve())
    port = _free_port()
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
    logf = open(Path(shots) / f'voila_{name}.log' if shots else os.devnull, 'w')
    proc = start_voila(nb, port, timeout, logf)
    res = dict(ok=False, problems=[])
    try:
        _wait_http(f'http://127.0.0.1:{port}/', proc, timeout)
        with sync_playwright() as p:
            browser = launch(p)
            try:
                log = []
                page = new_page(browser, log)
                res.update(move_slider(page, f'http://127.0.0.1:{port}/', timeout * 1000))
                if shots:
                    page.screenshot(path=str(Path(shots) / f'live_widget_{name}.png'))
                res['problems'] = [m for m in log if 'favicon' not in m]
                moved = res['changed'] and res['value_after'] != res['value_before']
                if not moved:
                    res['problems'].append('the figure or the readout did not change')
                res['ok'] = not res['problems']
            finally:
                browser.close()
    except Exception as e:
        res['problems'].append(f'{type(e).__name__}: {str(e)[:400]}')
    finally:
        stop(proc)
        logf.close()
    res['seconds'] = round(time.time() - t0, 1)
    if verbose:
        print(
            f'{"ok  " if res["ok"] else "FAIL"} live widget via voila ({name}): slider '
            f'{res.get("value_before")} -> {res.get("value_after")}, '
            f'figure changed: {res.get("changed")}  ({res["seconds"]} s)'
        )
        for m in res['problems']:
            print(f'     {m}')
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--html', default=str(ROOT / '_html'))
    ap.add_argument(
        '--shots', default=str(ROOT / '_browser'), help='folder for the screenshots (gitignored)'
    )
    ap.add_argument('--pages', default='', help='comma-separated page names (default: every page)')
    ap.add_argument('--live', action='store_true', help='only the live-widget check')
    ap.add_argument('--no-live', action='store_true', help='skip the live-widget check')
    a = ap.parse_args(argv)
    t0, bad = time.time(), False
    if not a.live:
        pages = [n for n in a.pages.split(',') if n]
        res = check_site(Path(a.html), Path(a.shots), pages=pages)
        bad |= any(res.values())
    if not a.no_live:
        for module in LIVE_MODULES:
            bad |= not live_widget_check(chapter_exporting(module), shots=Path(a.shots))['ok']
    print(f'browser test {"FAILED" if bad else "passed"} in {time.time() - t0:.1f} s')
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
