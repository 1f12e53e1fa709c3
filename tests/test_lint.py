"""Static checks that CI must keep green: ruff on the code, snakemake --lint on the workflow."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _tool(name: str) -> str:
    return shutil.which(name, path=str(Path(sys.executable).parent)) or name


def test_ruff_clean():
    for args in (["check", "."], ["format", "--check", "."]):
        res = subprocess.run([_tool("ruff"), *args], cwd=ROOT, capture_output=True, text=True)
        assert res.returncode == 0, res.stdout + res.stderr


def test_snakemake_lint_clean():
    res = subprocess.run(
        [_tool("snakemake"), "--lint", "--configfile", "config/tiny.yaml"], cwd=ROOT, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stdout + res.stderr
