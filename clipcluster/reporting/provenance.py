"""The reproducibility record a run leaves beside its results.

After every run that executed jobs, the Snakefile's ``onsuccess`` hook writes
``results/{ds}/provenance/{UTC time}.json`` (and ``latest.json``): the resolved config with its seeds, the versions
of the pinned packages as installed (and any that differ from the pins), the git revision of the workflow, the
machine (CPU, memory, GPUs) and the Snakemake command line. What a table says can then be traced to what made it.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

from clipcluster.atomic import write_json


def pinned_versions(pyproject: str | Path) -> dict[str, dict[str, str | None]]:
    """name -> {"pinned", "installed"} for every dependency pyproject.toml pins (installed None: missing).

    Without the file (a copy of the workflow without it) the installed clipcluster package's own metadata,
    written from the same file by pip, gives the pins."""
    if Path(pyproject).exists():
        deps = tomllib.loads(Path(pyproject).read_text())["project"]["dependencies"]
    else:
        deps = [r for r in importlib.metadata.requires("clipcluster") or [] if "extra ==" not in r]
    out: dict[str, dict[str, str | None]] = {}
    for req in deps:
        name, _, pin = req.partition("==")
        try:
            installed: str | None = importlib.metadata.version(name.strip())
        except importlib.metadata.PackageNotFoundError:
            installed = None
        out[name.strip()] = {"pinned": pin.strip() or None, "installed": installed}
    return out


def git_revision(workdir: str | Path) -> dict[str, Any]:
    """Commit and whether the work tree differs from it; {"commit": None} outside a git checkout."""
    if shutil.which("git") is None:
        return {"commit": None, "why": "git not installed"}

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *args], cwd=workdir, capture_output=True, text=True, timeout=30)

    head = git("rev-parse", "HEAD")
    if head.returncode != 0:
        return {"commit": None, "why": head.stderr.strip().splitlines()[-1] if head.stderr.strip() else "not a repo"}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": head.stdout.strip(), "dirty": bool(status.stdout.strip())}


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    m = re.search(r"^model name\s*:\s*(.+)$", text, flags=re.M)
    return m.group(1).strip() if m else platform.machine()


def _memory_gib() -> float | None:
    try:
        m = re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), flags=re.M)
    except OSError:
        return None
    return round(int(m.group(1)) / 2**20, 1) if m else None


def _gpus() -> list[str]:
    """GPU names and memory from nvidia-smi (without importing torch, which takes seconds); [] when none."""
    if shutil.which("nvidia-smi") is None:
        return []
    res = subprocess.run(
        ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return [line.strip() for line in res.stdout.splitlines() if line.strip()] if res.returncode == 0 else []


def machine() -> dict[str, Any]:
    """Where the run's driver ran (jobs on a cluster log their own host in their log files)."""
    return {
        "host": platform.node(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gib": _memory_gib(),
        "gpus": _gpus(),
        "python": sys.version.split()[0],
    }


def seeds(config: dict[str, Any]) -> dict[str, Any]:
    """The seeds this run used: the run's, and its dataset's own (a twin's generator, a photo split's)."""
    out: dict[str, Any] = {"seed": config.get("seed")}
    name = config.get("dataset")
    ds = config.get("datasets", {}).get(name, {})
    # the schema gives every dataset every section; only the source's own seeds were used
    used = {"twin": {"twin"}, "mxrecord": {"split"}, "imagefolder": {"split"}, "features": set()}.get(ds.get("source"))
    for key, section in ds.items():
        if isinstance(section, dict) and "seed" in section and (used is None or key in used):
            out[f"datasets.{name}.{key}.seed"] = section["seed"]
    return out


def record(config: dict[str, Any], workdir: str | Path, log: str | None = None) -> dict[str, Any]:
    """The whole record of a run (see the module docstring)."""
    workdir = Path(workdir)
    versions = pinned_versions(workdir / "pyproject.toml")
    return {
        "finished_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": sys.argv,
        "snakemake_log": log,
        "dataset": config.get("dataset"),
        "seeds": seeds(config),
        "git": git_revision(workdir),
        "machine": machine(),
        "packages": versions,
        # a local version label (torch's +cpu) satisfies the pin, as it does for pip
        "packages_not_as_pinned": sorted(
            n for n, v in versions.items() if (v["installed"] or "").split("+")[0] != v["pinned"]
        ),
        "config": config,
    }


def write_record(results: str | Path, config: dict[str, Any], workdir: str | Path, log: str | None = None) -> Path:
    """Write the record to ``results/provenance/<UTC time>.json`` and ``latest.json`` (atomically); return the path."""
    rec = record(config, workdir, log)
    folder = Path(results) / "provenance"
    path = folder / f"{rec['finished_utc'].replace(':', '')}.json"
    write_json(path, rec)
    write_json(folder / "latest.json", rec)
    return path
