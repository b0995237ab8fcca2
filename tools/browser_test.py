#!/usr/bin/env python
"""Open every rendered page (make docs -> _html/) in headless Chromium and check what a learner would see.

    .venv/bin/python tools/browser_test.py [--html _html] [--shots _browser]        (make docs-test)
    .venv/bin/python tools/browser_test.py --live                                     (the live-widget check only)

Per page: no console errors or uncaught exceptions, no failed or off-machine requests (only file:// and localhost are
allowed; anything else is blocked and reported), every <img> loaded (naturalWidth > 0), MathJax finished and left no
raw TeX delimiters in the visible text (code excluded), at least as many typeset equations as the page's prose has TeX
segments (counted by render_docs.py into pages.json), and, where widget state was saved, every widget view rendered
(and showing a figure when the saved state holds one). Three screenshots go to --shots.

--live: serves chapter 00 with voila on 127.0.0.1, waits for its schedule explorer, moves its first slider with the keyboard
and checks that the figure (the <img> src) changes.

Chromium: $CHROMIUM, else chromium / chromium-browser / google-chrome on PATH (tools/setup_browser.sh installs
Debian's). It is driven by Playwright's Python package through executable_path, so no browser is downloaded.
"""
import argparse, json, os, re, shutil, socket, subprocess, sys, time, urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RAW_TEX = re.compile(r'\$\$|\\\(|\\\)|\\\[|\\\]|\\begin\{|\$\\[a-zA-Z]')
# MathJax and the widgets manager both finish asynchronously: every wait below is bounded by these.
PAGE_TIMEOUT_MS = 60_000
WIDGET_TIMEOUT_MS = 20_000


def chromium_path():
    for c in (os.environ.get('CHROMIUM'), 'chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'):
        if c and (p := shutil.which(c)): return p
    return None


def launch(p):
    exe = chromium_path()
    if not exe: raise RuntimeError('no Chromium found: run tools/setup_browser.sh (or set $CHROMIUM)')
    return p.chromium.launch(executable_path=exe, headless=True,
                             args=['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'])


def _local(url: str) -> bool:
    return url.startswith(('file:', 'data:', 'blob:', 'about:')) or re.match(r'^(https?|wss?)://(127\.0\.0\.1|localhost)(:\d+)?/', url) is not None


def new_page(browser, log):
    "A page that records console errors, uncaught exceptions and failed requests into `log`, and blocks the network."
    page = browser.new_page(viewport={'width': 1280, 'height': 900})
    page.on('console', lambda m: log.append(f'console {m.type}: {m.text[:300]}') if m.type == 'error' else None)
    page.on('pageerror', lambda e: log.append(f'uncaught exception: {str(e)[:300]}'))
    page.on('requestfailed', lambda r: log.append(f'request failed: {r.url[:200]} ({r.failure})') if _local(r.url) else None)
    def route(r):
        if _local(r.request.url): return r.continue_()
        log.append(f'off-machine request blocked: {r.request.url[:200]}'); return r.abort()
    page.route('**/*', route)
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    return page


JS_FACTS = r"""() => {
  const hidden = new Set(['SCRIPT', 'STYLE', 'PRE', 'CODE', 'MJX-CONTAINER', 'MJX-ASSISTIVE-MML', 'TEXTAREA', 'NOSCRIPT']);
  const parts = [];
  const walk = (n) => {
    if (n.nodeType === 3) { parts.push(n.textContent); return; }
    if (n.nodeType !== 1 || hidden.has(n.tagName)) return;
    if (n.classList && (n.classList.contains('highlight') || n.classList.contains('jp-InputArea'))) return;
    for (const c of n.childNodes) walk(c);
  };
  walk(document.querySelector('main') || document.body);
  const imgs = [...document.images];
  const views = [...document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]')];
  return {
    text: parts.join(' '),
    n_math: document.querySelectorAll('mjx-container').length,
    mathjax_errors: document.querySelectorAll('mjx-merror, mjx-container [data-mjx-error]').length,
    imgs: imgs.map(i => ({src: i.src.slice(0, 80), ok: i.complete && i.naturalWidth > 0})),
    views: views.length,
    views_rendered: views.filter(s => s.parentElement.querySelector('.jupyter-widgets:not(script), .widget-subarea .lm-Widget')).length,
    views_with_img: views.filter(s => s.parentElement.querySelector('img')).length,
    sliders: document.querySelectorAll('.widget-slider').length,
  };
}"""


def check_page(browser, path: Path, facts: dict) -> tuple:
    "(problems, seconds) for one rendered page."
    log, probs, t0 = [], [], time.time()
    page = new_page(browser, log)
    try:
        page.goto(path.resolve().as_uri(), wait_until='load')
        try: page.wait_for_function("document.body.getAttribute('data-mathjax') === 'done'", timeout=PAGE_TIMEOUT_MS)
        except Exception: probs.append('MathJax did not finish typesetting')
        if facts.get('widget_state') and facts.get('widget_views'):
            try:
                page.wait_for_function("""n => [...document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]')]
                    .filter(s => s.parentElement.querySelector('.widget-subarea .lm-Widget')).length >= n""",
                                       arg=facts['widget_views'], timeout=WIDGET_TIMEOUT_MS)
            except Exception: pass   # reported below from the facts
        try:
            page.wait_for_function("[...document.images].every(i => i.complete)", timeout=PAGE_TIMEOUT_MS)
        except Exception: pass
        f = page.evaluate(JS_FACTS)
        bad = [i['src'] for i in f['imgs'] if not i['ok']]
        if bad: probs.append(f'{len(bad)} of {len(f["imgs"])} images not loaded: {bad[:3]}')
        raw = sorted({m.group(0) for m in RAW_TEX.finditer(f['text'])})
        if raw:
            i = RAW_TEX.search(f['text']).start()
            probs.append(f'raw TeX left in the text {raw}: ...{f["text"][max(0, i - 60):i + 60]!r}...')
        if f['n_math'] < facts.get('math_segments', 0):
            probs.append(f'{f["n_math"]} typeset equations, but the source has {facts["math_segments"]} TeX segments')
        if f['mathjax_errors']: probs.append(f'{f["mathjax_errors"]} MathJax errors')
        n_views = max(facts.get('widget_views', 0), f['views'])   # the manager may drop views it cannot render
        if n_views:
            if not facts.get('widget_state', True): probs.append('widget views without saved widget state')
            if f['views_rendered'] < n_views: probs.append(f'{f["views_rendered"]} of {n_views} widget views rendered')
            elif facts.get('widget_state_images') and not f['views_with_img']:
                probs.append('the saved widget state holds figures, but no widget view shows one')
        probs.extend(log)
        return probs, time.time() - t0, page, f
    except Exception as e:
        return probs + log + [f'{type(e).__name__}: {str(e)[:300]}'], time.time() - t0, page, {}


def check_site(html: Path, shots: Path, verbose=True) -> dict:
    "Check every page of `html`; returns {page: problems}; writes 3 screenshots into `shots`."
    from playwright.sync_api import sync_playwright
    html, t_all = Path(html), time.time()
    manifest = {d['page']: d for d in json.loads((html / 'pages.json').read_text())} if (html / 'pages.json').exists() else {}
    pages = sorted(html.glob('*.html'))
    if not pages: raise RuntimeError(f'no pages in {html}: run `make docs` first')
    shots.mkdir(parents=True, exist_ok=True)
    with_math = [p for p in pages if manifest.get(p.name, {}).get('math_segments')]
    with_widget = [p for p in pages if manifest.get(p.name, {}).get('widget_views')]
    want = {pages[0].name if not (html / 'index.html').exists() else 'index.html': 'page',
            (with_math[1] if len(with_math) > 1 else pages[0]).name: 'math',
            (with_widget[0] if with_widget else pages[-1]).name: 'widget'}
    results = {}
    with sync_playwright() as p:
        browser = launch(p)
        try:
            for path in pages:
                probs, secs, page, f = check_page(browser, path, manifest.get(path.name, {}))
                results[path.name] = probs
                if verbose:
                    print(f'{"FAIL" if probs else "ok  "} {path.name:28s} {secs:5.1f} s  {f.get("n_math", 0):4d} equations  '
                          f'{len(f.get("imgs", [])):3d} images  {f.get("views_rendered", 0)}/{f.get("views", 0)} widgets')
                    for m in probs: print(f'     {m}')
                if path.name in want:
                    try:
                        if want[path.name] == 'widget' and f.get('sliders'):
                            page.locator('.widget-slider').first.scroll_into_view_if_needed()
                        elif want[path.name] == 'math':
                            page.locator('mjx-container[display="true"]').first.scroll_into_view_if_needed()
                        page.screenshot(path=str(shots / f'{want[path.name]}_{path.stem}.png'))
                    except Exception as e: print(f'     screenshot failed: {e}')
                page.close()
        finally: browser.close()
    if verbose:
        n_bad = sum(bool(v) for v in results.values())
        print(f'{len(pages)} pages checked in {time.time() - t_all:.1f} s: {n_bad} with problems; screenshots in {shots}')
    return results


# ---------------------------------------------------------------------------------------------- live widget (voila)
def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def _wait_http(url, proc, timeout):
    """Wait until the server accepts connections. (Not a GET of the page: voila runs the notebook in a new kernel for every
    request, so probing the page with short time-outs would start kernel after kernel.)"""
    import socket
    from urllib.parse import urlparse
    u, t0 = urlparse(url), time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None: raise RuntimeError(f'voila exited with status {proc.returncode}')
        try:
            with socket.create_connection((u.hostname, u.port), timeout=2): return
        except OSError: time.sleep(0.3)
    raise TimeoutError(f'{url} did not answer within {timeout} s')


def live_widget_check(nb=ROOT / 'nbs' / '00_schedule.ipynb', shots=None, timeout=180, verbose=True) -> dict:
    """Serve `nb` with voila on 127.0.0.1, move its FloatSlider with the keyboard in Chromium and check that the figure
    changes. Returns {'ok', 'before', 'after', 'value_before', 'value_after', 'seconds', 'problems'}."""
    from playwright.sync_api import sync_playwright
    import nbformat, tempfile
    nb, t0 = Path(nb).resolve(), time.time()
    # serve a copy without the cells nbdev-test leaves out (library export, slow, GPU-only), in a scratch folder
    book = nbformat.read(nb, as_version=4)
    book.cells = [c for c in book.cells if not (c.cell_type == 'code' and ('nbdev_export' in c.source or c.source.lstrip().startswith(('#| slow', '#| gpu'))))]
    tmpd = Path(tempfile.mkdtemp(prefix='live-')); nb = tmpd / nb.name; nbformat.write(book, nb)
    port = _free_port()
    voila = Path(sys.executable).parent / 'voila'
    cmd = [str(voila) if voila.exists() else 'voila', str(nb), '--no-browser', f'--port={port}', '--Voila.ip=127.0.0.1',
           '--show_tracebacks=True', f'--ExecutePreprocessor.timeout={timeout}']
    env = {**os.environ, 'IN_TEST': ''}; env.pop('IN_TEST')
    if shots: Path(shots).mkdir(parents=True, exist_ok=True)
    logf = open(Path(shots) / 'voila.log' if shots else os.devnull, 'w')
    proc = subprocess.Popen(cmd, cwd=nb.parent, env=env, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
    res = dict(ok=False, problems=[])
    try:
        _wait_http(f'http://127.0.0.1:{port}/', proc, timeout)
        with sync_playwright() as p:
            browser = launch(p)
            try:
                log = []
                page = new_page(browser, log)
                page.goto(f'http://127.0.0.1:{port}/', wait_until='domcontentloaded', timeout=timeout * 1000)   # voila runs the chapter first
                # the explorer: an ipywidgets `interactive` box holding the slider and the figure it draws
                img = '.widget-interact .widget-output img'
                page.wait_for_selector('.widget-interact .widget-slider .noUi-handle', timeout=timeout * 1000)
                page.wait_for_selector(img, timeout=timeout * 1000)
                box = page.locator('.widget-interact').first
                before = box.locator('.widget-output img').first.get_attribute('src')
                val = lambda: box.locator('.widget-slider .widget-readout').first.inner_text()
                res['value_before'] = val()
                handle = box.locator('.widget-slider .noUi-handle').first
                handle.focus()
                for _ in range(4): page.keyboard.press('ArrowRight')   # four steps of the explorer's first slider
                page.wait_for_function("""([sel, old]) => { const i = document.querySelector(sel);
                                             return i && i.complete && i.naturalWidth > 0 && i.src !== old; }""",
                                       arg=[img, before], timeout=timeout * 1000)
                page.wait_for_timeout(500)  # let interactive's last redraw land (it redraws per key press)
                after = box.locator('.widget-output img').first.get_attribute('src')
                res.update(before=before[:60], after=after[:60], value_after=val(), changed=after != before)
                if shots: page.screenshot(path=str(Path(shots) / 'live_widget.png'))
                res['problems'] = [m for m in log if 'favicon' not in m]
                res['ok'] = res['changed'] and res['value_after'] != res['value_before']
                if not res['ok']: res['problems'].append('the figure or the readout did not change')
            finally: browser.close()
    except Exception as e:
        res['problems'].append(f'{type(e).__name__}: {str(e)[:400]}')
    finally:
        proc.terminate()
        try: proc.wait(timeout=20)
        except subprocess.TimeoutExpired: proc.kill(); proc.wait(timeout=10)
        logf.close()
    res['seconds'] = round(time.time() - t0, 1)
    if verbose:
        print(f'{"ok  " if res["ok"] else "FAIL"} live widget via voila: slider {res.get("value_before")} -> '
              f'{res.get("value_after")}, figure changed: {res.get("changed")}  ({res["seconds"]} s)')
        for m in res['problems']: print(f'     {m}')
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--html', default=str(ROOT / '_html'))
    ap.add_argument('--shots', default=str(ROOT / '_browser'), help='folder for the screenshots (gitignored)')
    ap.add_argument('--live', action='store_true', help='only the live-widget check')
    ap.add_argument('--no-live', action='store_true', help='skip the live-widget check')
    a = ap.parse_args(argv)
    t0, bad = time.time(), False
    if not a.live:
        res = check_site(Path(a.html), Path(a.shots))
        bad |= any(res.values())
    if not a.no_live:
        bad |= not live_widget_check(shots=Path(a.shots))['ok']
    print(f'browser test {"FAILED" if bad else "passed"} in {time.time() - t0:.1f} s')
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
