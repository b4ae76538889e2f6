"""The site's build: mkdocs hooks that make every page from the files the repository already has.

Nothing here is a second copy of any text. At build time:

- the home page is README.md, with a picture of a compare run drawn under the recorded one;
- a page per copyable file at the top of ``patterns/``: its docstring's sections rendered, its
  Cost quoted from the README chooser's last column, then the file whole, with a copy button;
- a page per footgun exhibit: broken beside fixed, the picture and the measured verdicts of a
  real run;
- the chapters, docs/*.md, whose links to the repository (``../patterns/x.py``, ``../README.md``,
  ``../notebooks/x.ipynb``) are rewritten to the pages made of those files;
- the notebooks, as a recorded run: executed once, by the test suite or by this build, and kept
  in ``build/notebooks/`` (see :func:`executed_notebooks`).

Real runs (the compare picture, the exhibits no notebook draws) are started in processes of
their own as soon as the build has read its config, and run while the pages are made, two at a
time; they are kept in
``build/site-cache/`` under a key of the command and the package's source: a build after a
change to ``patterns/`` draws them again, any other build reuses them.
"""

from __future__ import annotations

import ast
import asyncio
import concurrent.futures
import datetime
import functools
import hashlib
import html
import inspect
import json
import logging
import os
import posixpath
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

log = logging.getLogger("mkdocs.hooks.site")

#: The notebooks the site shows, executed: written here by tests/test_notebooks.py (and by this
#: build when one is missing or its notebook changed), each with the hash of its source.
NOTEBOOK_CACHE = Path("build/notebooks")
#: The pictures of real runs, and the notebooks as the site shows them.
RUN_CACHE = Path("build/site-cache")
#: The docstring section whose page shows the chooser's cost cell.
COST_SECTION = "Cost (measured)"
#: The home picture: the README's compare at a tenth of its latencies (same seed, same shape).
COMPARE = ["compare", "--latency", "0.05", "0.15"]
#: Where a footgun's page says what its run measured, before the run is done.
VERDICTS = "@@measured {}@@"
#: A notebook's cell that runs an exhibit and shows its picture: one such call in the cell.
FOOTGUN_CELL = re.compile(r"""await exhibit\(\s*["']([\w-]+)["']\s*\)""")
#: A line that opens or closes a fence.
FENCE = re.compile(r"^\s*(`{3,}|~{3,})")


@dataclass
class Run:
    """A real run of ``python -m patterns ARGS --plot FILE``, or one read from a notebook."""

    png: Path
    text: Callable[[], str]
    wait: Callable[[], None]


class Site:
    """What one build knows: the repository, the pages it makes, and the runs it waits for."""

    def __init__(self, config: MkDocsConfig) -> None:
        self.root = Path(config.config_file_path).resolve().parent
        self.docs = Path(config.docs_dir).resolve()
        self.cache = self.root / RUN_CACHE
        #: repository path (posix, from the root) → the page or file made of it (src_uri)
        self.pages: dict[str, str] = {}
        #: src_uri → the repository file a page comes from (its links are relative to it)
        self.sources: dict[str, str] = {}
        #: src_uri → the page's markdown, made when mkdocs reads the page
        self.makers: dict[str, Callable[[], str]] = {}
        #: The runs that spend the CPU (exhibits), two at a time on a build that spends it too;
        #: the ones that wait (compare), beside them.
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=2)
        self.waiting = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        self.runs: list[concurrent.futures.Future[None]] = []
        self.used: set[Path] = set()
        #: src_uri → the executed notebook it shows
        self.notebook_files: dict[str, str] = {}
        #: exhibit → its run, whose verdicts go on its page
        self.measured: dict[str, Run] = {}
        #: The runs started first thing (on_config): the home's compare, and each exhibit no
        #: notebook draws.
        self.compare: Run | None = None
        self.exhibit_runs: dict[str, Run] = {}

    def start_runs(self) -> None:
        """Every real run the build needs, started now, beside everything else it does."""
        from patterns.footguns import exhibits

        self.compare = self.run(COMPARE, waits=True)
        sources = [self.root / "notebooks" / path.name for path in self.notebooks()]
        shown = set(notebook_exhibits(sources, outputs=False))
        for name in exhibits():
            if name not in shown:
                self.exhibit_runs[name] = self.run(["footgun", name])

    # The repository's files, found, never listed.

    def recipes(self) -> list[Path]:
        """Every copyable file at the top of patterns/, in the README's order, then by name."""
        found = [
            path
            for path in sorted((self.root / "patterns").glob("*.py"))
            if not path.name.startswith("__")
        ]
        return self.readme_order(found)

    def chapters(self) -> list[Path]:
        found = sorted(path for path in self.docs.glob("*.md"))
        return self.readme_order(found)

    def notebooks(self) -> list[Path]:
        return sorted((self.root / "notebooks").glob("*.ipynb"))

    def readme_order(self, paths: list[Path]) -> list[Path]:
        """The paths in the order the README first links them; the others after, by name."""
        readme = (self.root / "README.md").read_text(encoding="utf-8")
        order = [self.rel(self.root / target) for target in LINK.findall(readme)]

        def rank(path: Path) -> tuple[int, str]:
            rel = self.rel(path)
            return (order.index(rel) if rel in order else len(order), rel)

        return sorted(paths, key=rank)

    def rel(self, path: Path) -> str:
        return Path(os.path.normpath(path)).relative_to(self.root).as_posix()

    # Real runs, cached.

    def run(self, args: list[str], *, waits: bool = False) -> Run:
        """``python -m patterns ARGS --plot FILE`` in a process of its own, unless a run of the
        same command on the same source is in the cache."""
        slug = re.sub(r"[^\w]+", "-", " ".join(args)).strip("-")
        where = self.cache / "runs" / f"{slug}-{self.source_key(args)[:16]}"
        png, out = where / "plot.png", where / "stdout.txt"
        self.used.add(where)
        done = concurrent.futures.Future[None]()
        if png.exists() and out.exists():
            done.set_result(None)
        else:

            def record() -> None:
                self.cache.mkdir(parents=True, exist_ok=True)
                tmp = Path(tempfile.mkdtemp(dir=self.cache))
                plot = tmp / "plot.png"
                cmd = [sys.executable, "-m", "patterns", *args, "--plot", str(plot)]
                try:
                    # A run whose versions did not behave (exit 1) on a busy machine: once more.
                    for _ in range(2):
                        ran = subprocess.run(
                            cmd, cwd=self.root, capture_output=True, text=True, timeout=300
                        )
                        if ran.returncode == 0 and plot.exists():
                            break
                    else:
                        raise PluginError(
                            f"`python -m patterns {' '.join(args)} --plot FILE` failed "
                            f"(exit {ran.returncode}):\n{ran.stdout}\n{ran.stderr}"
                        )
                    (tmp / "stdout.txt").write_text(ran.stdout, encoding="utf-8")
                    shutil.rmtree(where, ignore_errors=True)
                    where.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(tmp, where)
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)

            self.cache.mkdir(parents=True, exist_ok=True)
            done = (self.waiting if waits else self.pool).submit(record)
        self.runs.append(done)

        def wait() -> None:
            done.result()

        def text() -> str:
            wait()
            return out.read_text(encoding="utf-8")

        return Run(png, text, wait)

    def source_key(self, args: list[str]) -> str:
        digest = hashlib.sha256(json.dumps([args, sys.version_info[:2]]).encode())
        for path in sorted((self.root / "patterns").rglob("*.py")):
            digest.update(self.rel(path).encode())
            digest.update(path.read_bytes())
        return digest.hexdigest()

    def prune(self) -> None:
        """Drop the cached runs of older source of the commands this build ran."""
        runs = self.cache / "runs"
        slugs = {path.name.rsplit("-", 1)[0] for path in self.used}
        for path in runs.glob("*") if runs.is_dir() else ():
            if path not in self.used and path.name.rsplit("-", 1)[0] in slugs:
                shutil.rmtree(path, ignore_errors=True)


SITE: Site | None = None
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)\s]*)?\)")


def site() -> Site:
    if SITE is None:
        raise PluginError("the site's hooks ran before on_config")
    return SITE


# The nav: found, in the README's order, so a new recipe, chapter or notebook needs no edit.


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    global SITE
    SITE = here = Site(config)
    here.start_runs()
    from patterns.footguns import exhibits

    config.nav = [
        {"Home": "index.md"},
        {"Recipes": [{path.stem: f"recipes/{path.stem}.md"} for path in here.recipes()]},
        {"Chapters": [path.name for path in here.chapters()]},
        {"Footguns": ["footguns/index.md", *(f"footguns/{name}.md" for name in exhibits())]},
        {"Notebooks": [f"notebooks/{path.name}" for path in here.notebooks()]},
    ]
    # mkdocs-jupyter keeps its converted pages by the notebook's content: beside the others.
    for name, plugin in config.plugins.items():
        if name.endswith("mkdocs-jupyter"):
            plugin.config["cache_dir"] = str(here.cache / "jupyter")
    return config


# The pages, made before mkdocs-jupyter sees the files (so it takes the notebooks).


@event_priority(100)
def on_files(files: Files, config: MkDocsConfig) -> Files:
    here = site()
    for path in here.chapters():
        here.pages[here.rel(path)] = path.name
        here.sources[path.name] = here.rel(path)

    def page(src_uri: str, source: str, make: Callable[[], str]) -> None:
        files.append(File.generated(config, src_uri, content="(made when read)"))
        here.pages.setdefault(source, src_uri)
        here.sources[src_uri] = source
        here.makers[src_uri] = make

    def picture(src_uri: str, png: Path) -> None:
        files.append(File.generated(config, src_uri, abs_src_path=str(png)))

    # Home: the README, and under its recorded compare, a picture of a real one.
    if here.compare is None:
        raise PluginError("the site's runs were not started (on_config)")
    picture("compare.png", here.compare.png)
    page("index.md", "README.md", lambda: home(here))

    costs = chooser_costs(here)
    for path in here.recipes():
        page(
            f"recipes/{path.stem}.md", here.rel(path), functools.partial(recipe, here, path, costs)
        )

    # The exhibits a notebook draws come from its recorded run; the others were started with
    # the build (Site.start_runs), and run while the notebooks (if they must be) and the pages
    # are made.
    from patterns.footguns import exhibits

    runs = here.exhibit_runs
    books = executed_notebooks(here)
    for path, book in books.items():
        src_uri = f"notebooks/{path.name}"
        files.append(File.generated(config, src_uri, abs_src_path=str(book)))
        here.pages[here.rel(path)] = src_uri
        here.notebook_files[src_uri] = str(book)

    drawn = notebook_exhibits(list(books.values()))
    for name, exhibit in exhibits().items():
        run = runs.get(name) or drawn.get(name) or here.run(["footgun", name])
        picture(f"footguns/{name}.png", run.png)
        page(f"footguns/{name}.md", f"footguns/{name}", functools.partial(footgun, exhibit, run))
    page("footguns/index.md", "footguns", lambda: footguns_index(here))

    # Any other repository file a page links to (patterns/lab/toy.py): a page showing it whole.
    for src_uri, source in list(here.sources.items()):
        text = markdown_of(here, src_uri, source)
        for target in LINK.findall(text):
            linked = resolve(here, source, target)
            if linked is None or linked in here.pages or not (here.root / linked).is_file():
                continue
            page(f"source/{linked}.md", linked, functools.partial(whole_file, here, linked))
    return files


def on_nav(nav: Any, config: MkDocsConfig, files: Files) -> Any:
    """mkdocs-jupyter wraps each notebook's file, and its wrapper finds no path for a file that
    is not in docs/: give it the executed notebook's."""
    for src_uri, path in site().notebook_files.items():
        wrapped = files.get_file_from_path(src_uri)
        if wrapped is not None:
            wrapped.abs_src_path = path
    return nav


def markdown_of(here: Site, src_uri: str, source: str) -> str:
    path = here.root / source
    if src_uri.endswith(".md") and path.suffix == ".md":
        return path.read_text(encoding="utf-8")
    return ""


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Links to repository files, written for GitHub's reader, made links to the site's pages."""
    here = site()
    make = here.makers.get(page.file.src_uri)
    if make is not None:  # a page made of the repository's files, made now
        markdown = make()
        if page.file.src_uri.startswith("footguns/") and page.file.src_uri != "footguns/index.md":
            page.meta["hide"] = ["navigation"]  # broken beside fixed: the width for both
    source = here.sources.get(page.file.src_uri)
    if source is None:
        return markdown
    return outside_fences(markdown, lambda line: relink(here, source, page.file.src_uri, line))


def on_env(env: Any, config: MkDocsConfig, files: Files) -> Any:
    """Every run's picture exists before mkdocs copies the files."""
    here = site()
    for done in here.runs:
        done.result()
    here.prune()
    return env


def on_post_page(output: str, page: Page, config: MkDocsConfig) -> str:
    """What a footgun's run measured, now that every run is done (on_env waited for them)."""

    def measured(match: re.Match[str]) -> str:
        run = site().measured[match.group(1)]
        lines = [line.strip() for line in run.text().splitlines() if line.startswith("  ")]
        said = "\n".join(line for line in lines if line.startswith(("broken:", "fixed:")))
        return html.escape(said, quote=False)

    return re.sub(VERDICTS.format(r"([\w-]+)"), measured, output)


def on_shutdown() -> None:
    if SITE is not None:
        SITE.pool.shutdown(wait=False, cancel_futures=True)
        SITE.waiting.shutdown(wait=False, cancel_futures=True)


# Links.


def resolve(here: Site, source: str, target: str) -> str | None:
    """A relative link in ``source`` as a repository path, or None for a URL or an anchor."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith(("/", "#")):
        return None
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(source), target))
    return None if joined.startswith("..") else joined


def relink(here: Site, source: str, src_uri: str, line: str) -> str:
    def one(match: re.Match[str]) -> str:
        target, anchor = match.group(2), match.group(3) or ""
        rel = resolve(here, source, target)
        if rel is None or rel not in here.pages:
            return match.group(0)  # a link mkdocs checks itself: broken, the build fails
        to = posixpath.relpath(here.pages[rel], posixpath.dirname(src_uri) or ".")
        return f"{match.group(1)}{to}{anchor})"

    return re.sub(r"(\]\()([^)\s#]+)(#[^)\s]*)?\)", one, line)


def fences(lines: list[str]) -> Iterator[tuple[int, int]]:
    """Each fenced block of ``lines``: the numbers of its opening and its closing line (the last
    line, for a fence never closed). A fence closes on a line of its own character at least as
    long as the one that opened it."""
    start, fence = None, ""
    for n, line in enumerate(lines):
        opened = FENCE.match(line)
        if start is None:
            if opened:
                start, fence = n, opened.group(1)
        elif opened and opened.group(1).startswith(fence):
            yield start, n
            start = None
    if start is not None:
        yield start, len(lines) - 1


def fenced_lines(lines: list[str]) -> set[int]:
    """The numbers of the lines in a fenced block, its fences included."""
    return {n for start, end in fences(lines) for n in range(start, end + 1)}


def outside_fences(markdown: str, change: Callable[[str], str]) -> str:
    lines = markdown.splitlines(keepends=True)
    inside = fenced_lines(lines)
    return "".join(line if n in inside else change(line) for n, line in enumerate(lines))


def fenced(text: str, lang: str = "") -> str:
    """``text`` in a fence longer than any run of backticks in it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{text}{'' if text.endswith(chr(10)) else chr(10)}{fence}\n"


# Home.


def home(here: Site) -> str:
    readme = (here.root / "README.md").read_text(encoding="utf-8")
    lines = readme.splitlines(keepends=True)
    # The recorded compare is the fence that holds rich's table: the picture goes under it.
    for start, end in fences(lines):
        if any("┏" in row for row in lines[start:end]):
            caption = (
                "The same comparison, drawn by "
                f"`python -m patterns {' '.join(COMPARE)} --plot compare.png` when this "
                "site was built: the workload above at a tenth of its latencies (the same "
                "seed draws the same calls, each a tenth as long)."
            )
            figure = f"\n![A compare run, drawn](compare.png)\n\n*{caption}*\n\n"
            return "".join([*lines[: end + 1], figure, *lines[end + 1 :]])
    raise PluginError("README.md has no recorded compare (a fence with rich's table) to draw")


def chooser_costs(here: Site) -> dict[str, str]:
    """The README chooser's last column by recipe file, read by the package's own reader of
    the one place the costs are written (``python -m patterns.lab.costs --write README.md``)."""
    from patterns.lab.costs import chooser_costs as read
    from patterns.lab.registry import PATTERNS

    costs = read((here.root / "README.md").read_text(encoding="utf-8"))
    for name in PATTERNS:
        if not costs.get(name):
            log.warning(
                "README.md's chooser has no cost for the registry's %r: "
                "run python -m patterns.lab.costs --write README.md",
                name,
            )
    return {f"patterns/{name}.py": cost for name, cost in costs.items() if cost}


# Recipes.


def recipe(here: Site, path: Path, costs: dict[str, str]) -> str:
    text = path.read_text(encoding="utf-8")
    module = __import__(f"patterns.{path.stem}", fromlist=["_"])
    doc = inspect.cleandoc(module.__doc__ or "")
    rel = here.rel(path)
    summary, _, rest = doc.partition("\n")
    cost = costs.get(rel)
    body = docstring_markdown(rest, cost)
    if cost and f"## {COST_SECTION}" not in body:
        body += f"\n## {COST_SECTION}\n\n{cost_note(cost)}\n"
    copy = "" if rel == "patterns/contract.py" else " with [`contract.py`](contract.md) beside it"
    return (
        f"# `{path.stem}`\n\n{summary}\n{body}\n"
        f"## The file\n\n`{rel}`, whole: copy it{copy} (the button at the top right of the "
        f"code copies it, byte for byte).\n\n{fenced(text, '{ .python .whole-file }')}"
    )


def cost_note(cost: str) -> str:
    return (
        f'!!! note "Plumbing per item, as the chooser quotes it: {cost}"\n'
        "    CPU instructions the recipe's own plumbing runs per item (limit 100, asyncio), "
        "from the [chooser](../index.md#which-one)'s last column, written there by "
        "`python -m patterns.lab.costs --write README.md`.\n"
    )


def docstring_markdown(doc: str, cost: str | None) -> str:
    """A recipe docstring as markdown: a heading line followed by an indented body is a
    section; fences are left whole; ``:class:`X``` roles become code."""
    lines = doc.splitlines()
    inside = fenced_lines(lines)
    out: list[str] = []
    n = 0
    while n < len(lines):
        line = lines[n]
        if n in inside:
            out.append(line)
        elif (
            line.strip()
            and not line[0].isspace()
            and n + 1 < len(lines)
            and lines[n + 1].startswith("    ")
            and lines[n + 1].strip()
        ):
            out += ["", f"## {line.strip()}", ""]
            if line.strip() == COST_SECTION and cost:
                out += [cost_note(cost)]
            body = []
            n += 1
            while n < len(lines) and (not lines[n].strip() or lines[n].startswith("    ")):
                body.append(lines[n])
                n += 1
            out += textwrap.dedent("\n".join(body)).splitlines()
            continue
        else:
            out.append(line)
        n += 1
    text = "\n".join(out)
    return re.sub(r":(?:class|meth|func|mod|attr|data|exc):`~?([^`]+)`", r"`\1`", text)


def whole_file(here: Site, rel: str) -> str:
    text = (here.root / rel).read_text(encoding="utf-8")
    lang = {".py": "python", ".md": "markdown", ".toml": "toml"}.get(Path(rel).suffix, "text")
    shown = fenced(text, f"{{ .{lang} .whole-file }}")
    return f"# `{rel}`\n\nThe repository's file, whole.\n\n{shown}"


# Footguns.


def footgun(exhibit: Any, run: Run) -> str:
    from patterns.footguns import exhibits

    number = list(exhibits()).index(exhibit.name) + 1
    module = Path(inspect.getsourcefile(exhibit.broken) or "")
    whole = module.read_text(encoding="utf-8")
    broken, fixed = versions(whole, exhibit.broken.__name__, exhibit.fixed.__name__)
    site().measured[exhibit.name] = run
    verdicts = VERDICTS.format(exhibit.name)  # written in when the run is done: on_post_page
    source = f"article {exhibit.article}" if exhibit.article[:1].isdigit() else exhibit.article
    return (
        f"# {number}. {exhibit.title}\n\n"
        f"*Source: {source}.* Run it: `python -m patterns footgun {exhibit.name}`.\n\n"
        f"![{exhibit.name}: the broken and the fixed run]({exhibit.name}.png)\n\n"
        f"What the run above measured:\n\n{fenced(verdicts, 'text')}\n"
        f"**Why.** {exhibit.why}\n\n"
        '<div class="grid" markdown>\n\n<div markdown>\n\n### Broken\n\n'
        f"{fenced(broken, 'python')}\n</div>\n\n<div markdown>\n\n### Fixed\n\n"
        f"{fenced(fixed, 'python')}\n</div>\n\n</div>\n\n"
        f'??? example "The whole exhibit, with what both versions share: '
        f'`patterns/footguns/{module.name}`"\n\n'
        f"{textwrap.indent(fenced(whole, '{ .python .whole-file }'), '    ')}"
    )


def versions(source: str, broken: str, fixed: str) -> tuple[str, str]:
    """The code of each version: its function, and the module's functions and classes only it
    reaches (what the two share is in the whole exhibit)."""
    tree = ast.parse(source)
    defs = {
        node.name: node
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    }

    def reach(name: str) -> set[str]:
        seen, todo = set(), [name]
        while todo:
            if (now := todo.pop()) in seen or now not in defs:
                continue
            seen.add(now)
            todo += [n.id for n in ast.walk(defs[now]) if isinstance(n, ast.Name)]
        return seen

    lines = source.splitlines(keepends=True)

    def code(names: set[str]) -> str:
        nodes = sorted((defs[name] for name in names), key=lambda node: node.lineno)
        starts = [min([node.lineno, *(d.lineno for d in node.decorator_list)]) for node in nodes]
        return (
            "\n\n".join(
                "".join(lines[start - 1 : node.end_lineno]).rstrip()
                for start, node in zip(starts, nodes, strict=True)
            )
            + "\n"
        )

    mine, theirs = reach(broken), reach(fixed)
    return code(mine - (theirs - {fixed}) | {broken}), code(theirs - (mine - {broken}) | {fixed})


def footguns_index(here: Site) -> str:
    from patterns.footguns import exhibits

    rows = "\n".join(
        f"| {n}. [{ex.title}]({name}.md) | `{name}` | {ex.article} |"
        for n, (name, ex) in enumerate(exhibits().items(), 1)
    )
    return (
        "# Footguns\n\nEach exhibit runs the same scenario twice, broken and fixed, and draws "
        "both: `python -m patterns footgun` lists them, `python -m patterns footgun NAME "
        "--plot FILE.png` runs one. The pictures here are of real runs.\n\n"
        f"| exhibit | name | from |\n|---|---|---|\n{rows}\n"
    )


def notebook_exhibits(books: list[Path], *, outputs: bool = True) -> dict[str, Run]:
    """The exhibits a notebook runs and draws, each in a cell of its own (one ``await
    exhibit("name")`` in the cell): from an executed notebook, its picture and printed
    verdicts. With
    ``outputs=False``, the exhibits it would draw (their runs are empty)."""
    import base64

    import nbformat

    drawn: dict[str, Run] = {}
    for book in books:
        notebook = nbformat.read(str(book), as_version=4)  # type: ignore[no-untyped-call]
        for number, cell in enumerate(notebook.cells):
            called = FOOTGUN_CELL.findall(cell.source) if cell.cell_type == "code" else []
            if len(called) != 1:
                continue
            name = called[0]
            if not outputs:
                drawn[name] = Run(Path(), str, lambda: None)
                continue
            images = [
                o["data"]["image/png"] for o in cell.outputs if "image/png" in o.get("data", {})
            ]
            text = "".join(o.get("text", "") for o in cell.outputs if o.get("name") == "stdout")
            if len(images) == 1 and text:
                png = book.parent / f"{book.stem}-{number}-{name}.png"
                png.write_bytes(base64.b64decode(images[0]))
                drawn[name] = Run(png, functools.partial(str, text), lambda: None)
    return drawn


# Notebooks: a recorded run, executed once.


def executed_notebooks(here: Site) -> dict[Path, Path]:
    """Each notebook, executed, as the site shows it. The test suite's execution is kept in
    build/notebooks/ with its source's hash; one that is missing or out of date is executed
    here, the way the tests do (PATTERNS_NOTEBOOK_SMALL=1), all at once."""
    import nbformat

    kept = here.root / NOTEBOOK_CACHE
    stale = [path for path in here.notebooks() if recorded(kept / path.name) != source_hash(path)]
    if stale:
        log.info("executing %s (none recorded for this source)", ", ".join(p.name for p in stale))
        for path, book in zip(stale, execute(stale), strict=True):
            record(kept / path.name, book, source_hash(path), "the site's build")
    shown = here.cache / "notebooks"
    shown.mkdir(parents=True, exist_ok=True)
    books = {}
    for path in here.notebooks():
        book = nbformat.read(str(kept / path.name), as_version=4)  # type: ignore[no-untyped-call]
        about = book.metadata.get("patterns", {})
        note = nbformat.v4.new_markdown_cell(  # type: ignore[no-untyped-call]
            f"*A recorded run: executed headless by {about.get('by', '?')} on "
            f"{about.get('executed', '?')}, Python {about.get('python', '?')}, on the test "
            "suite's small workload (`PATTERNS_NOTEBOOK_SMALL=1`). Open the notebook in "
            "Jupyter (`pip install -e '.[notebook]'`) for the full one.*"
        )
        # The same id at each build: the page's converted notebook stays in mkdocs-jupyter's
        # cache (kept by the notebook's content) until the notebook's run changes.
        note.id = "recorded-run"
        at = 1 if book.cells and book.cells[0].cell_type == "markdown" else 0
        book.cells.insert(at, note)
        nbformat.write(book, str(shown / path.name))  # type: ignore[no-untyped-call]
        books[path] = shown / path.name
    return books


def source_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def recorded(path: Path) -> str | None:
    try:
        about = json.loads(path.read_text(encoding="utf-8"))["metadata"]["patterns"]
        return str(about["source_sha256"])
    except (OSError, ValueError, KeyError):
        return None


def record(path: Path, book: Any, digest: str, by: str) -> None:
    """Keep an executed notebook for the site (tests/test_notebooks.py does the same)."""
    import nbformat

    book.metadata["patterns"] = {
        "source_sha256": digest,
        "by": by,
        "executed": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": ".".join(map(str, sys.version_info[:3])),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as tmp:
        nbformat.write(book, tmp)  # type: ignore[no-untyped-call]
    os.replace(tmp.name, path)


def execute(paths: list[Path]) -> list[Any]:
    import nbformat
    from nbclient import NotebookClient

    async def one(path: Path, where: str) -> Any:
        book = nbformat.read(str(path), as_version=4)  # type: ignore[no-untyped-call]
        client = NotebookClient(
            book, timeout=240, kernel_name="python3", resources={"metadata": {"path": where}}
        )
        return await client.async_execute()

    async def every() -> list[Any]:
        with tempfile.TemporaryDirectory() as where:
            return await asyncio.gather(*(one(path, where) for path in paths))

    with environment(PATTERNS_NOTEBOOK_SMALL="1", JUPYTER_PLATFORM_DIRS="1"):
        return asyncio.run(every())


@contextmanager
def environment(**values: str) -> Iterator[None]:
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
