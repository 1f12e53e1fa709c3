"""The guard that makes the e2e runs see only the README's first command's packages does block what it must."""

from __future__ import annotations

import subprocess
import sys

import main_install


def test_main_closure_has_the_report_dependency_and_not_the_test_extra():
    closure = main_install.main_closure()
    assert {"snakemake", "torch", "pygments", "fer", "clipcluster"} <= closure  # pygments: snakemake --report
    assert not {"pytest", "ruff", "onnx"} & closure
    assert {"pytest", "ruff", "onnx"} <= main_install.blocked_modules()


def test_blocked_imports_fail_in_a_subprocess_and_main_ones_work(tmp_path):
    code = (
        "import importlib.util, numpy, pygments, snakemake, torchvision\n"  # torchvision probes for onnx
        "assert importlib.util.find_spec('onnx') is None\n"
        "try:\n    import pytest\nexcept ModuleNotFoundError as e:\n    print('blocked', e.name)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=main_install.env(tmp_path), capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "blocked pytest"
