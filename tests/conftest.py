"""Shared fixtures: one local run of the tiny twin per test session, used by the end-to-end and SLURM tests.

``repo`` is a copy of the workflow after ``snakemake --cores 2 --configfile config/tiny.yaml``; ``tiny_tables`` is a
snapshot of that run's table CSVs, taken right after the run, before any test changes the copy's results (retraining,
parameter changes). Every Snakemake run of the tests imports only what the README's first command installs
(tests/main_install.py): the test extra is invisible to it.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import main_install
import pytest

ROOT = Path(__file__).resolve().parent.parent
# What a run needs from the repository (envs/: the rules' conda: files, which Snakemake records even without conda).
COPY = ["Snakefile", "workflow", "scripts", "config", "profiles", "clipcluster", "envs"]
RES = "results/twin_tiny"


def pytest_configure(config):
    config.addinivalue_line("markers", "slurm: runs jobs on a real single-node SLURM cluster (tests/slurm/cluster.sh)")


@cache
def main_install_env() -> dict[str, str]:
    """The environment Snakemake runs in: only what the README's first command installs is importable."""
    return main_install.env(Path(tempfile.mkdtemp(prefix="main_install_")))


def snakemake(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """``snakemake --cores 2 *args`` in ``repo``, importing only what the README's first command installs."""
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", *args]
    res = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=900, env=main_install_env())
    if check and res.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout[-4000:]}\n{res.stderr[-6000:]}")
    return res


def load_benchmark(name: str) -> Any:
    """A script of benchmarks/ as a module (they are scripts, not a package), to test its functions."""
    path = ROOT / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def copy_repo(dst: Path) -> Path:
    """A fresh copy of what a run needs (no results)."""
    dst.mkdir(parents=True, exist_ok=True)
    for name in COPY:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dst / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dst / name)
    return dst


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> tuple[Path, Path]:
    """(repo, tables): a copy of the workflow after a full local tiny run, and a snapshot of its table CSVs."""
    dst = copy_repo(tmp_path_factory.mktemp("repo"))
    snakemake(dst, "--configfile", "config/tiny.yaml")
    snap = tmp_path_factory.mktemp("tiny_tables")
    for csv in sorted((dst / RES / "tables").glob("*.csv")):
        shutil.copy2(csv, snap / csv.name)
    return dst, snap


@pytest.fixture(scope="session")
def repo(tiny_run) -> Path:
    """A copy of the workflow after a full tiny run (tests may change its results)."""
    return tiny_run[0]


@pytest.fixture(scope="session")
def tiny_tables(tiny_run) -> Path:
    """The local tiny run's table CSVs as they were right after the run."""
    return tiny_run[1]
