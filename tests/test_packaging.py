"""The distribution builds where pyproject.toml says it does, carries its licence, and states its
version in one place. Read from the files and the installed metadata: nothing is built here."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

import patterns

ROOT = Path(__file__).parent.parent
DISTRIBUTION = "concurrency-patterns-cookbook"
# The MIT licence as SPDX publishes it, after its copyright line.
MIT_TERMS = """
Permission is hereby granted, free of charge, to any person obtaining a copy of this software and
associated documentation files (the "Software"), to deal in the Software without restriction,
including without limitation the rights to use, copy, modify, merge, publish, distribute,
sublicense, and/or sell copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT
NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES
OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN
CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
"""


def pyproject() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)


def words(text: str) -> list[str]:
    return text.split()


# patterns.__version__ is the installed distribution's version, which is pyproject.toml's.
def test_version_has_one_source() -> None:
    assert patterns.__version__ == version(DISTRIBUTION) == pyproject()["project"]["version"]


# Importing the package does not read the version: importlib.metadata loads only when asked.
def test_version_is_read_lazily() -> None:
    code = (
        "import sys, patterns; assert 'importlib.metadata' not in sys.modules; "
        "patterns.__version__; assert 'importlib.metadata' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# LICENSE, at the root and named by pyproject.toml, is the MIT licence with our copyright line.
def test_license_is_mit() -> None:
    project = pyproject()["project"]
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]
    lines = (ROOT / "LICENSE").read_text().splitlines()
    assert lines[:3] == ["MIT License", "", "Copyright (c) 2026 The patterns cookbook authors"]
    assert words("\n".join(lines[3:])) == words(MIT_TERMS)


# A `license` string (an SPDX expression, PEP 639) needs setuptools >= 77 to build: older ones
# reject it, so the build-system's floor for setuptools is at least 77.
def test_build_floor_reads_license_expressions() -> None:
    data = pyproject()
    if not isinstance(data["project"].get("license"), str):
        pytest.skip("`license` is not an SPDX expression")
    requires = [Requirement(r) for r in data["build-system"]["requires"]]
    (setuptools,) = [r for r in requires if r.name == "setuptools"]
    floors = [Version(s.version) for s in setuptools.specifier if s.operator in (">=", "~=", "==")]
    assert floors, f"{setuptools} has no lower bound"
    assert max(floors) >= Version("77")
    assert not setuptools.specifier.contains("76.1.0")


# The Pythons the package declares are the ones the README names, from requires-python's
# floor up, and the one running the tests is among them.
def test_supported_pythons_are_declared_alike() -> None:
    project = pyproject()["project"]
    declared = [
        c.rsplit(" :: ", 1)[1]
        for c in project["classifiers"]
        if c.startswith("Programming Language :: Python :: 3.")
    ]
    assert project["requires-python"] == f">={declared[0]}"
    readme = (ROOT / "README.md").read_text()
    assert f"Python {declared[0]}–{declared[-1]}" in readme
    assert f"{sys.version_info.major}.{sys.version_info.minor}" in declared
