"""A cookbook of bounded concurrency: interchangeable ways to run many slow calls at once.

Every recipe module offers the same two entry points, so any one can be swapped for another::

    from patterns import worker_pool

    async with worker_pool.stream(fetch, urls, limit=10) as results:
        async for page in results:  # in completion order
            ...

    pages = await worker_pool.run(fetch, urls, limit=10)  # all of them, in input order

Every module at the top of the package is a page to copy: a recipe, which needs only anyio and
``contract.py`` beside it. The folders are how the cookbook measures and shows them: ``lab``
(the workload, the service, the harness, the report), ``show`` (tables, sentences, pictures),
``door`` (the command line) and ``footguns`` (each mistake, broken beside fixed).
"""

from __future__ import annotations

# Not even `typing` is imported here: see __getattr__ below. Type checkers read this as True.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from patterns.lab.core import Outcome, Pattern, collect_errors
    from patterns.lab.registry import PATTERNS, get_pattern

    # The distribution's version, from its installed metadata (pyproject.toml is the one place
    # it is written). Outside an install, reading it raises importlib.metadata's
    # PackageNotFoundError rather than reporting a made-up version.
    __version__: str

__all__ = ["PATTERNS", "Outcome", "Pattern", "collect_errors", "get_pattern"]


def __getattr__(name: str) -> Any:
    # Loaded on first use, not on import: `python -m patterns` imports this package before
    # its __main__ can catch a Ctrl+C, so the less it does here, the shorter that window.
    if name in ("Outcome", "Pattern", "collect_errors"):
        from patterns.lab import core

        return getattr(core, name)
    if name in ("PATTERNS", "get_pattern"):
        from patterns.lab import registry

        return getattr(registry, name)
    if name == "__version__":
        from importlib.metadata import version

        # Kept, so that the metadata is read once.
        globals()["__version__"] = found = version("concurrency-patterns-cookbook")
        return found
    raise AttributeError(f"module 'patterns' has no attribute {name!r}")


#: Where the modules that moved into the lab, show and door folders used to be: the old import
#: paths keep working, with a DeprecationWarning that names the new one.
MOVED = {
    **{
        name: f"patterns.lab.{name}"
        for name in (
            "core", "harness", "http", "on_cluster", "probe", "registry", "service",
            "threads_vs_async", "workload",
        )
    },
    "plots": "patterns.show.plots",
    "present": "patterns.show.present",
    "cli": "patterns.door.cli",
    "commands": "patterns.door.commands",
}  # fmt: skip
#: Moved without a word: an install made before the move has a ``patterns`` script that imports
#: ``patterns.cli``, and its user can do nothing about that but reinstall.
QUIET = {"cli"}


class _Moved:
    """A meta path finder that answers ``import patterns.harness`` with the module that now
    lives at ``patterns.lab.harness``: the same module object, so patching one patches both."""

    @staticmethod
    def find_spec(fullname: str, path: object = None, target: object = None) -> Any:
        package, _, name = fullname.partition(".")
        if package != __name__ or name not in MOVED:
            return None
        import importlib
        import importlib.util
        import warnings

        if name not in QUIET:
            message = f"{fullname} has moved: import {MOVED[name]}"
            warnings.warn(message, DeprecationWarning, stacklevel=2)
        module = importlib.import_module(MOVED[name])
        origin = getattr(module, "__file__", None)
        return importlib.util.spec_from_loader(fullname, _Existing(module), origin=origin)


class _Existing:
    """A loader that hands back a module already imported, under its old name too, and leaves
    it as it was (its own ``__spec__``, so that ``importlib.reload`` and ``importlib.resources``
    still see where it lives); ``python -m`` on the old name runs the module's code."""

    def __init__(self, module: Any) -> None:
        self.module = module
        self.spec = module.__spec__

    def create_module(self, spec: object) -> Any:
        return self.module

    def exec_module(self, module: Any) -> None:
        module.__spec__ = self.spec  # the import system set it to the old name's

    def load_module(self, fullname: str) -> Any:
        return self.module

    def get_code(self, fullname: str) -> Any:
        return self.spec.loader.get_code(self.spec.name)


def _install() -> None:
    import sys

    # Once, even when this package is reloaded: a reload brings a new class of the same name.
    sys.meta_path[:] = [
        finder for finder in sys.meta_path if type(finder).__qualname__ != "_Moved"
        or type(finder).__module__ != __name__
    ]  # fmt: skip
    sys.meta_path.append(_Moved())


_install()
