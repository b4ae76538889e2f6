"""The site: built strict by the one command, then read in a real browser.

The build (``mkdocs build --strict``, mkdocs.yml and docs/site/hooks.py) runs once for the
module. Its test needs nothing but the test extra; the browser's needs Chromium on the machine
(Debian's, at /usr/bin/chromium) and Playwright's Python package, and is skipped without them.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import html
import http.server
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

import pytest

from patterns.footguns import exhibits
from tests.notebook_lock import notebooks_lock

if TYPE_CHECKING:
    from playwright.sync_api import ConsoleMessage, Page, Request, ViewportSize
    from playwright.sync_api._context_manager import PlaywrightContextManager

ROOT = Path(__file__).parent.parent
CHROMIUM = Path("/usr/bin/chromium")
#: The browser test's screenshots, kept after the run (build/ is ignored by git).
SHOTS = ROOT / "build" / "site-screenshots"
RECIPES = sorted(p for p in (ROOT / "patterns").glob("*.py") if not p.name.startswith("__"))
#: A desktop's and a phone's viewport, for the screenshots.
WIDTHS: dict[str, ViewportSize] = {
    "desktop": {"width": 1280, "height": 900},
    "phone": {"width": 390, "height": 844},
}


@dataclass(frozen=True)
class Built:
    site: Path
    returncode: int
    output: str

    def pages(self) -> list[str]:
        """Every page's path from the site's root, as its URL ends: "", "recipes/semaphore/"."""
        found = (path.parent.relative_to(self.site) for path in self.site.rglob("index.html"))
        return sorted(f"{path.as_posix()}/" if path.parts else "" for path in found)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The site, built once by the README's command into a temporary folder."""
    site = tmp_path_factory.mktemp("site")
    with notebooks_lock():  # the notebooks' executions, if tests/test_notebooks.py is making them
        ran = subprocess.run(
            [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
            cwd=ROOT,
            env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
            capture_output=True,
            text=True,
            timeout=600,
        )
    return Built(site, ran.returncode, ran.stdout + ran.stderr)


def read(built: Built, page: str) -> str:
    return (built.site / page / "index.html").read_text(encoding="utf-8")


# The strict build passes, and every file the site is made of has its page: each recipe (with
# its cost where the chooser has one), each footgun with its picture, each chapter, each
# notebook with its pictures; and no page asks another host for anything.
def test_the_site_builds_strict(built: Built) -> None:
    assert built.returncode == 0, f"mkdocs build --strict failed:\n{built.output}"
    home = read(built, "")
    assert 'src="compare.png"' in home
    assert (built.site / "compare.png").stat().st_size > 0
    assert 'id="which-one"' in home
    costs = re.findall(r"\| (\d+k instr\.) \|", (ROOT / "README.md").read_text())
    assert costs, "the README's chooser has no cost column"
    for path in RECIPES:
        page = read(built, f"recipes/{path.stem}")
        assert 'id="the-file"' in page, path.name
        summary = (ast.get_docstring(ast.parse(path.read_text())) or "").splitlines()[0]
        assert html.escape(summary.split("``")[0], quote=False) in page, path.name
    for cost in costs:
        assert any(f"quotes it: {cost}" in read(built, f"recipes/{p.stem}") for p in RECIPES)
    for name in exhibits():
        page = read(built, f"footguns/{name}")
        assert f'src="../{name}.png"' in page
        for part in ('id="broken"', 'id="fixed"', "broken: ", "fixed: ", "whole-file highlight"):
            assert part in page, (name, part)
    for chapter in (ROOT / "docs").glob("*.md"):
        assert (built.site / chapter.stem / "index.html").exists(), chapter.name
    for notebook in (ROOT / "notebooks").glob("*.ipynb"):
        assert "data:image/png;base64," in read(built, f"notebooks/{notebook.stem}")
    for page in built.pages():
        text = read(built, page)
        outside = re.findall(
            r'<(?:script|link|img|iframe)\b[^>]*(?:src|href)="(https?:[^"]+)"', text
        )
        assert not outside, f"{page or 'home'} loads from another host: {outside}"


@contextmanager
def served(site: Path, problems: list[str]) -> Iterator[str]:
    """The built site over HTTP on 127.0.0.1 (file:// stops the search's worker). Every answer
    of 400 or more is a problem: the server sees every request the browser makes to the site.
    The answers may be cached (``Cache-Control``): the browser asks for each asset once, as a
    reader's would, instead of once per page."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            if isinstance(code, int) and code >= 400:
                problems.append(f"{code} for {self.path}")

        def end_headers(self) -> None:
            self.send_header("Cache-Control", "max-age=600")
            super().end_headers()

        def handle(self) -> None:
            # A page left before its last request was answered (the search's index, when the
            # test moves on) closes the connection: not the site's error.
            with contextlib.suppress(ConnectionError):
                super().handle()

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(site))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def chromium() -> Callable[[], PlaywrightContextManager]:
    """Playwright's sync API, or a skip that says what to install."""
    how = (
        "install Chromium (Debian: apt-get install chromium) and Playwright's Python package "
        "(pip install -e '.[docs]'; Playwright's own browser download is not needed)"
    )
    if not CHROMIUM.exists():
        pytest.skip(f"no browser at {CHROMIUM}: {how}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip(f"playwright is not importable: {how}")
    return sync_playwright


#: Chromium finds no host but the site's: a request to any other fails, as a route that refused
#: it would, without a round trip to Python for each of the site's own requests (a route would
#: also turn the browser's cache off). :func:`watch` reports it.
ONLY_HERE = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    ONLY_HERE,
]


def watch(page: Page, base: str, problems: list[str]) -> None:
    """Every console error, page error and failed request on ``page``, and every request to
    another host (refused: the site must need none), into ``problems``. (An answer of 400 or
    more is the server's to report: :func:`served`.)"""

    def console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            problems.append(f"console error on {page.url}: {msg.text}")

    def outside(request: Request) -> None:
        if not request.url.startswith((base, "data:")):
            problems.append(f"a request to another host from {page.url}: {request.url}")

    def failed(request: Request) -> None:
        # ERR_ABORTED: the page was left before the request ended (the favicon, the search
        # index); a request that reached the server and failed is a status, in served().
        if request.url.startswith(base) and request.failure != "net::ERR_ABORTED":
            problems.append(f"request failed on {page.url}: {request.url} ({request.failure})")

    page.on("console", console)
    page.on("pageerror", lambda error: problems.append(f"page error on {page.url}: {error}"))
    page.on("request", outside)  # listened to, not routed: the browser does not wait for it
    page.on("requestfailed", failed)


# In headless Chromium, every page loads with no console error, no page error, no failed or
# outside request and no broken image; the chooser's links lead to their recipes; each recipe's
# copy button copies its file byte for byte; the search finds the throttle for "deadlock"; and
# the home page and a recipe are photographed at a desktop's and a phone's width.
def test_the_site_in_a_browser(built: Built, capsys: pytest.CaptureFixture[str]) -> None:
    sync_playwright = chromium()
    assert built.returncode == 0, f"mkdocs build --strict failed:\n{built.output}"
    problems: list[str] = []
    SHOTS.mkdir(parents=True, exist_ok=True)
    with served(built.site, problems) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
        )
        context = browser.new_context(viewport=WIDTHS["desktop"])
        # Material's copy button writes the clipboard; the test reads it back.
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base.rstrip("/"))
        page = context.new_page()
        page.set_default_timeout(10_000)
        watch(page, base, problems)
        shots = every_page(Visit(page, base, problems), built)
        the_search(page)
        browser.close()
    with capsys.disabled():
        print(f"\nscreenshots of the site: {', '.join(str(s.relative_to(ROOT)) for s in shots)}")
    assert not problems, "\n".join(problems)


#: The pages photographed at each width (paths from the site's root): the home page and a recipe.
PHOTOGRAPHED = ("", "recipes/worker_pool/")


@dataclass
class Visit:
    """The browser's one page, and what it found wrong on the pages it was shown."""

    page: Page
    base: str
    problems: list[str]
    #: The chooser's links: the page each leads to, and the recipe it names.
    chooser: dict[str, str] = field(default_factory=dict)
    shots: list[Path] = field(default_factory=list)

    def check(self) -> None:
        """The page the browser is on, loaded: each picture on it loaded; the recipe a chooser's
        link names, if one leads here; on a recipe's page, the copy button copies the file shown
        whole, byte for byte; a page in :data:`PHOTOGRAPHED`, photographed at each width."""
        url, page = self.page.url, self.page
        # "load" waited for every picture: one that did not come, or is not a picture, is
        # complete with no width.
        broken = page.evaluate(
            "[...document.images].filter(i => !i.complete || i.naturalWidth === 0)"
            ".map(i => i.src.slice(0, 80))"
        )
        self.problems += [f"image not loaded on {url}: {src}" for src in broken]
        path = url.removeprefix(self.base)
        if path in PHOTOGRAPHED:
            self.shots += [screenshot(page, path, width) for width in WIDTHS]
            page.set_viewport_size(WIDTHS["desktop"])
        if url in self.chooser:
            assert self.chooser[url] in page.locator("h1").inner_text(), url
        if path.startswith("recipes/"):
            recipe = ROOT / "patterns" / f"{path.removeprefix('recipes/')[:-1]}.py"
            assert recipe.is_file(), url
            copied = copy_the_file(page)
            assert copied.encode() == recipe.read_bytes(), f"the copy of {recipe.name} differs"


def every_page(visit: Visit, built: Built) -> list[Path]:
    """Every page the build wrote, each loaded once and checked (:meth:`Visit.check`): the home
    page first, then the recipe its chooser's first link leads to, reached by clicking the
    link; the other pages by their address. The screenshots taken on the way."""
    pages = [visit.base + path for path in built.pages()]
    assert len(pages) > len(RECIPES) + len(exhibits())
    assert {visit.base + path for path in PHOTOGRAPHED} <= set(pages)
    visit.page.goto(visit.base, wait_until="load")
    visit.check()
    visit.chooser = the_chooser(visit.page)
    assert set(visit.chooser) <= set(pages), set(visit.chooser) - set(pages)
    visit.check()
    seen = {visit.base, visit.page.url}
    for url in pages:
        if url not in seen:
            visit.page.goto(url, wait_until="load")
            visit.check()
            seen.add(url)
    assert seen == set(pages)
    return visit.shots


def the_chooser(page: Page) -> dict[str, str]:
    """The home page's chooser ("Which one?"): each recipe's name and the page it links to.
    The first link is clicked: the browser is left on its page, loaded. :func:`every_page`
    follows the others."""
    table = page.locator("xpath=//h2[@id='which-one']/following::table[1]")
    links = table.locator("tbody tr td:first-child a")
    names = links.all_inner_texts()
    assert len(names) >= 6, names
    hrefs = [urljoin(page.url, href) for href in links.evaluate_all("a => a.map(l => l.href)")]
    links.first.click()
    page.wait_for_load_state("load")
    assert page.url == hrefs[0]
    return dict(zip(hrefs, names, strict=True))


def copy_the_file(page: Page) -> str:
    """What the copy button of the file shown whole puts on the clipboard. (Not emptied first:
    what an earlier page's button copied is another file, and differs from this one.)"""
    whole = page.locator(
        "xpath=//h2[@id='the-file']/following::div[contains(@class,'highlight')][1]"
    )
    whole.locator("button[data-md-type=copy], button.md-clipboard").first.click()
    copied: str = page.evaluate("navigator.clipboard.readText()")
    return copied


def the_search(page: Page) -> None:
    """Search, offline (material's worker, the site's own index), from the page the test is
    on: "deadlock" finds the throttle. Typed as a reader types it; again if the worker was not
    ready for the first keys (material then shows "Type to start searching" until the next
    key)."""
    from playwright.sync_api import Error as PlaywrightError

    box = page.locator("input.md-search__input")
    finds = (
        "[...document.querySelectorAll('.md-search-result__item a')]"
        ".some(a => new URL(a.href).pathname.endsWith('/throttle/'))"
    )
    for _ in range(5):
        box.click()
        box.fill("")
        box.press_sequentially("deadlock", delay=20)
        try:
            page.wait_for_function(finds, timeout=2_000)
            return
        except PlaywrightError:
            continue
    shown = page.locator(".md-search-result").inner_text()
    pytest.fail(f"the search for 'deadlock' did not find the throttle's page: {shown[:500]}")


def screenshot(page: Page, path: str, width: str) -> Path:
    """The page at ``width``, whole (a JPEG: a full page's PNG takes several times as long to
    encode), kept in build/site-screenshots/ under its name and width."""
    page.set_viewport_size(WIDTHS[width])
    name = "home" if not path else f"recipe-{Path(path).name}"
    shot = SHOTS / f"{name}-{width}-{WIDTHS[width]['width']}px.jpg"
    page.screenshot(path=str(shot), full_page=True, quality=85)
    return shot
