#!/usr/bin/env python3
"""Render every page of the Doxygen site in headless Chromium and check it.

    python3 tests/docs/check_site.py HTML_DIR SCREENSHOT_DIR

Called by tests/docs/check-site.sh (make site-check), which builds the site
first. Only the standard library: the browser is driven by chromedriver
over the WebDriver HTTP protocol, and the site is served from HTML_DIR by a
local HTTP server, so the check runs offline.

A page is an HTML file of the site holding a Doxygen page (marked <!-- PageDoc -->):
the main page, the chapters, Performance, How we know it works, the README.
Each is one case, loaded in a 1280 px wide window, and fails on

  - a local link, image, frame or script that points at no file, or a
    link to an anchor that the target page does not have;
  - an image or diagram that did not load;
  - the page missing from the sidebar tree (NAVTREE);
  - content wider than the page: the content area scrolls sideways, or an
    image, diagram, table or code block is wider than the content area.

For every page it saves a screenshot of the whole page at 1280 px, NAME.png,
one of its first screen, NAME-top.png, and one of the screen around each
diagram, NAME-diagram-K.png, in
SCREENSHOT_DIR. It prints one line per page and ends with one line
"N passed, N failed"; the exit status is 1 if a page failed.
"""

import base64
import functools
import html.parser
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

WIDTH = 1280
HEIGHT = 900
# Chromium draws nothing beyond this height in one screenshot.
MAX_SHOT_HEIGHT = 16000


def free_port():
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what, predicate, seconds=30.0):
    """Poll predicate() until it returns a true value; fail after seconds."""
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError("timed out waiting for " + what)
        time.sleep(0.05)


class WebDriver:
    """A minimal WebDriver client: just the commands this check needs."""

    def __init__(self, driver_path, browser_path):
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        self.proc = subprocess.Popen(
            [driver_path, "--port=%d" % self.port],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until("chromedriver to answer", self._ready)
        args = ["--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-dev-shm-usage", "--hide-scrollbars",
                "--force-device-scale-factor=1",
                "--window-size=%d,%d" % (WIDTH, HEIGHT)]
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": browser_path, "args": args}}}}
        self.session = self._call("POST", "/session", caps)["sessionId"]

    def _ready(self):
        try:
            status = self._call("GET", "/status")
        except (OSError, RuntimeError):
            return False
        return status.get("ready", False)

    def _call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.base + path, data=data, method=method,
            headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                answer = json.load(resp)
        except urllib.error.HTTPError as e:
            raise RuntimeError("webdriver %s %s: %s"
                               % (method, path, e.read()[:500])) from e
        return answer.get("value", answer)

    def cmd(self, method, path, body=None):
        """Run one command of the session (path after /session/ID)."""
        return self._call(method, "/session/%s%s" % (self.session, path),
                          body)

    def get(self, url):
        """Load url and wait for the document to finish loading."""
        self.cmd("POST", "/url", {"url": url})

    def js(self, script, *args):
        """Run script (a function body) in the page and return its value."""
        return self.cmd("POST", "/execute/sync",
                        {"script": script, "args": list(args)})

    def resize(self, width, height):
        """Resize the window (the viewport, in headless mode)."""
        self.cmd("POST", "/window/rect", {"width": width, "height": height})

    def screenshot(self, path):
        """Save a PNG of the viewport to path."""
        png = base64.b64decode(self.cmd("GET", "/screenshot"))
        with open(path, "wb") as f:
            f.write(png)

    def quit(self):
        """End the session and the driver."""
        try:
            self._call("DELETE", "/session/" + self.session)
        finally:
            self.proc.terminate()
            self.proc.wait(timeout=10)


class Anchors(html.parser.HTMLParser):
    """Collects the id= and name= attributes of a document."""

    def __init__(self):
        super().__init__()
        self.names = set()

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key in ("id", "name") and value:
                self.names.add(value)


@functools.lru_cache(maxsize=None)
def anchors_of(path):
    """The anchors of the HTML file at path."""
    parser = Anchors()
    with open(path, encoding="utf-8", errors="replace") as f:
        parser.feed(f.read())
    return frozenset(parser.names)


# Everything the check measures, in one pass through the rendered page.
MEASURE = r"""
const contents = document.querySelector('div.contents') ||
                 document.querySelector('#doc-content');
const doc = document.querySelector('#doc-content');
const box = contents.getBoundingClientRect();
const out = {problems: [], links: [], diagrams: 0, height: 0,
             viewport: document.documentElement.clientWidth};
const name = el => el.tagName.toLowerCase() +
    (el.getAttribute('src') ? ' ' + el.getAttribute('src') :
     el.getAttribute('data') ? ' ' + el.getAttribute('data') :
     el.className ? '.' + String(el.className).split(' ')[0] : '') +
    (el.matches('table, div.fragment, pre') ?
     ' ("' + el.textContent.trim().split('\n')[0].slice(0, 50) + '")' : '');
if (doc && doc.scrollWidth > doc.clientWidth + 1)
    out.problems.push('the content area scrolls sideways: ' +
        doc.scrollWidth + ' px of content in ' + doc.clientWidth + ' px');
if (document.documentElement.scrollWidth >
        document.documentElement.clientWidth + 1)
    out.problems.push('the page scrolls sideways: ' +
        document.documentElement.scrollWidth + ' px');
const wide = 'img, iframe, object, svg, table, div.fragment, pre, div.dotgraph';
for (const el of contents.querySelectorAll(wide)) {
    if (el.closest('div.fragment') && el.tagName !== 'DIV') continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0) continue;
    if (r.right > box.right + 1 || r.left < box.left - 1)
        out.problems.push(name(el) + ' is ' + Math.round(r.width) +
            ' px wide, wider than the ' + Math.round(box.width) +
            ' px of the content area');
    else if (el.scrollWidth > el.clientWidth + 1 &&
             getComputedStyle(el).overflowX !== 'visible')
        out.problems.push(name(el) + ' scrolls sideways: ' + el.scrollWidth +
            ' px of content in ' + el.clientWidth + ' px');
}
for (const img of document.querySelectorAll('img')) {
    if (!img.complete || img.naturalWidth === 0)
        out.problems.push('image did not load: ' + img.getAttribute('src'));
}
for (const el of document.querySelectorAll(
        'a[href], img[src], iframe[src], script[src], link[href], object[data]')) {
    out.links.push(el.getAttribute('href') || el.getAttribute('src') ||
                   el.getAttribute('data'));
}
out.diagrams = contents.querySelectorAll(
    'img[src^="msc_"], img[src^="dot_"], iframe[src^="dot_"], ' +
    'iframe[src^="msc_"], object[data^="dot_"]').length;
out.height = (doc ? doc.scrollHeight : document.body.scrollHeight) +
    (document.querySelector('#top') || {offsetHeight: 0}).offsetHeight + 60;
const tree = [];
const walk = nodes => { for (const n of nodes || []) {
    if (n[1]) tree.push(n[1].split('#')[0]);
    if (Array.isArray(n[2])) walk(n[2]); } };
if (typeof NAVTREE !== 'undefined') walk(NAVTREE);
out.tree = tree;
return out;
"""

SCROLL_TO_DIAGRAM = r"""
const all = document.querySelector('div.contents').querySelectorAll(
    'img[src^="msc_"], img[src^="dot_"], iframe[src^="dot_"], ' +
    'iframe[src^="msc_"], object[data^="dot_"]');
const el = all[arguments[0]];
el.scrollIntoView({block: 'start'});
const doc = document.querySelector('#doc-content');
if (doc) doc.scrollTop -= 20;
return true;
"""


def check_links(page, links, html_dir):
    """Problems with the local links of page: missing files, anchors."""
    problems = []
    for link in sorted(set(links)):
        parts = urllib.parse.urlsplit(link)
        if parts.scheme or parts.netloc or link.startswith("javascript:"):
            continue
        target = urllib.parse.unquote(parts.path) or page
        path = os.path.normpath(os.path.join(html_dir, target))
        if not os.path.isfile(path):
            problems.append("broken link: %s" % link)
            continue
        if parts.fragment and path.endswith(".html"):
            if parts.fragment not in anchors_of(path):
                problems.append("link to a missing anchor: %s" % link)
    return problems


def serve(html_dir):
    """Serve html_dir on a free local port; return the server."""
    handler = functools.partial(QuietHandler, directory=html_dir)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """A file handler that does not log every request."""

    def log_message(self, format, *args):  # noqa: A002 (the base's name)
        pass


def pages_of(html_dir):
    """The HTML files of html_dir that hold a Doxygen page, sorted."""
    pages = []
    for name in sorted(os.listdir(html_dir)):
        if not name.endswith(".html"):
            continue
        with open(os.path.join(html_dir, name), encoding="utf-8",
                  errors="replace") as f:
            if "<!-- PageDoc -->" in f.read():
                pages.append(name)
    return pages


def check_page(wd, base, page, html_dir, shots):
    """Load one page, take its screenshots; return its problems."""
    wd.resize(WIDTH, HEIGHT)
    wd.get(base + page)
    # The tree and the resizing run from jQuery's ready handler.
    wait_until("the sidebar of " + page, lambda: wd.js(
        "return document.querySelectorAll('#nav-tree-contents a').length"
        " > 0 && document.readyState === 'complete';"))
    m = wd.js(MEASURE)
    problems = list(m["problems"])
    if m["viewport"] < WIDTH - 20:
        problems.append("the window is %d px wide, not %d" %
                        (m["viewport"], WIDTH))
    if page not in m["tree"]:
        problems.append("not in the sidebar tree")
    problems += check_links(page, m["links"], html_dir)
    stem = page[:-len(".html")]
    wd.screenshot(os.path.join(shots, stem + "-top.png"))
    for k in range(m["diagrams"]):
        wd.js(SCROLL_TO_DIAGRAM, k)
        wd.screenshot(os.path.join(shots, "%s-diagram-%d.png" % (stem, k + 1)))
    wd.resize(WIDTH, min(int(m["height"]), MAX_SHOT_HEIGHT))
    wd.js("if (window.jQuery) jQuery(window).trigger('resize'); return 1;")
    wd.screenshot(os.path.join(shots, stem + ".png"))
    return problems


def main():
    """Check every page; print one line each and the summary."""
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    html_dir, shots = os.path.abspath(sys.argv[1]), sys.argv[2]
    os.makedirs(shots, exist_ok=True)
    driver = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
    browser = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if not driver or not browser:
        print("check-site: chromium and chromedriver are needed "
              "(tests/deps.sh install chromium chromedriver)",
              file=sys.stderr)
        return 1
    pages = pages_of(html_dir)
    if not pages:
        print("check-site: no pages in %s (make docs)" % html_dir,
              file=sys.stderr)
        return 1
    server = serve(html_dir)
    base = "http://127.0.0.1:%d/" % server.server_address[1]
    wd = WebDriver(driver, browser)
    passed = failed = 0
    try:
        for page in pages:
            try:
                problems = check_page(wd, base, page, html_dir, shots)
            except RuntimeError as e:
                problems = [str(e)]
            if problems:
                failed += 1
                print("not ok %s" % page)
                for p in problems:
                    print("    %s" % p)
            else:
                passed += 1
                print("ok %s" % page)
    finally:
        wd.quit()
        server.shutdown()
    print("screenshots (1280 px): %s" % shots)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
