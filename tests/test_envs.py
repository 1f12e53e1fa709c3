"""The conda env files pin exactly what pyproject.toml pins (one source of versions, mirrored)."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9_.\-\[\]]+)==([0-9][0-9A-Za-z.+\-]*)$")


def _pins(reqs: list[str], where: str) -> dict[str, str]:
    out = {}
    for text in reqs:
        m = PIN.match(text.strip())
        assert m, f"{where}: {text!r} is not pinned as name==version"
        out[m.group(1).lower()] = m.group(2)
    return out


def _env_pip(path: Path) -> list[str]:
    env = yaml.safe_load(path.read_text())
    return [r for d in env["dependencies"] if isinstance(d, dict) for r in d.get("pip", [])]


def test_env_files_mirror_pyproject_pins():
    project = _pins(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"], "pyproject")
    envs = sorted((ROOT / "envs").glob("*.yaml"))
    assert envs, "no env files under envs/"
    for path in envs:
        for name, version in _pins(_env_pip(path), path.name).items():
            assert project.get(name) == version, f"{path.name}: {name}=={version}, pyproject pins {project.get(name)}"
    assert _pins(_env_pip(ROOT / "envs" / "clipcluster.yaml"), "clipcluster.yaml") == project


def test_package_import_sets_thread_settings_before_torch():
    """Any clipcluster import sets OMP/MKL settings before torch loads (a script may import the peers first)."""
    import subprocess
    import sys

    code = (
        "import os, sys\n"
        "for k in ('OMP_WAIT_POLICY', 'MKL_DYNAMIC', 'MKL_CBWR'): os.environ.pop(k, None)\n"
        "import clipcluster.peers.pipeline\n"  # imports torch
        "print(os.environ['OMP_WAIT_POLICY'], os.environ['MKL_DYNAMIC'], os.environ['MKL_CBWR'])\n"
        "print(list(sys.modules).index('clipcluster') < list(sys.modules).index('torch'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["PASSIVE", "FALSE", "AUTO,STRICT", "True"], out
