"""Run a subprocess as if only the README's first command had installed packages (no test extra).

The workflow runs from the test environment, which also holds the test extra (pytest, ruff, onnx) and everything
those pull in; a rule or command that needs one of them works here and fails for a user. :func:`env` returns an
environment whose Python refuses to import any module of an installed distribution outside the closure of
``pyproject.toml``'s ``dependencies`` plus ``envs/no-deps.txt`` (installed without their own requirements) and the
project itself, through a ``sitecustomize`` on PYTHONPATH.
"""

from __future__ import annotations

import os
import re
import tomllib
from functools import cache
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@cache
def main_closure() -> frozenset[str]:
    """Normalised names of the distributions the main install list brings in (its requirements, recursively)."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    no_deps = (ROOT / "envs" / "no-deps.txt").read_text().splitlines()
    todo = [Requirement(d) for d in deps]
    # the project itself, envs/no-deps.txt (installed without its requirements) and what `python3 -m venv` puts in
    # every fresh environment (pip; setuptools on Python 3.11)
    seen = {"clipcluster", "pip", "setuptools"}
    seen |= {_norm(Requirement(line).name) for line in no_deps if line.strip() and line[0] != "#"}
    while todo:
        req = todo.pop()
        name = _norm(req.name)
        if name in seen or (req.marker is not None and not req.marker.evaluate({"extra": ""})):
            continue
        seen.add(name)
        try:
            todo += [Requirement(r) for r in metadata.requires(req.name) or []]
        except metadata.PackageNotFoundError:
            continue  # a conditional requirement not installed on this platform
    return frozenset(seen)


@cache
def blocked_modules() -> frozenset[str]:
    """Top-level modules provided only by installed distributions outside :func:`main_closure`."""
    closure = main_closure()
    return frozenset(
        mod for mod, dists in metadata.packages_distributions().items() if not any(_norm(d) in closure for d in dists)
    )


SITECUSTOMIZE = '''\
import importlib.machinery
import sys

BLOCKED = {blocked!r}


class _MainInstallOnly(importlib.machinery.PathFinder):
    """The path finder, blind to distributions the README's first command does not install: importing one fails,
    and ``importlib.util.find_spec`` returns None for it, exactly as when it is absent."""

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname.partition(".")[0] in BLOCKED:
            return None
        return super().find_spec(fullname, path, target)


sys.meta_path[:] = [_MainInstallOnly if f is importlib.machinery.PathFinder else f for f in sys.meta_path]
'''


def env(folder: Path) -> dict[str, str]:
    """``os.environ`` plus a PYTHONPATH whose ``sitecustomize`` (written to ``folder``) blocks the test extra."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE.format(blocked=sorted(blocked_modules())))
    out = dict(os.environ)
    out["PYTHONPATH"] = os.pathsep.join(p for p in (str(folder), out.get("PYTHONPATH", "")) if p)
    return out
