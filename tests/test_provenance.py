"""The reproducibility record: what it holds, and that it tells a dirty or missing git tree and unpinned packages."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from clipcluster.reporting import provenance

ROOT = Path(__file__).resolve().parent.parent


def test_pinned_versions_reads_pyproject_and_flags_missing(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\ndependencies = ["numpy==0.0.1", "no-such-distribution-here==1.0"]\n'
    )
    got = provenance.pinned_versions(tmp_path / "pyproject.toml")
    import numpy

    assert got["numpy"] == {"pinned": "0.0.1", "installed": numpy.__version__}
    assert got["no-such-distribution-here"] == {"pinned": "1.0", "installed": None}


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_git_revision_clean_dirty_and_outside(tmp_path):
    assert provenance.git_revision(tmp_path)["commit"] is None
    run = lambda *a: subprocess.run(["git", *a], cwd=tmp_path, check=True, capture_output=True)  # noqa: E731
    run("init", "-q")
    (tmp_path / "f").write_text("a")
    run("add", "f")
    run("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x")
    clean = provenance.git_revision(tmp_path)
    assert len(clean["commit"]) == 40 and clean["dirty"] is False
    (tmp_path / "f").write_text("b")
    assert provenance.git_revision(tmp_path)["dirty"] is True


def test_seeds_are_the_run_and_its_dataset():
    cfg = {"seed": 3, "dataset": "twin", "datasets": {"twin": {"source": "twin", "twin": {"preset": "tiny", "seed": 7}},
                                                       "other": {"twin": {"seed": 9}}}}  # fmt: skip
    assert provenance.seeds(cfg) == {"seed": 3, "datasets.twin.twin.seed": 7}
    cfg["datasets"]["twin"]["split"] = {"seed": 5}  # a section the twin does not use (schema defaults fill it)
    assert provenance.seeds(cfg) == {"seed": 3, "datasets.twin.twin.seed": 7}
    photos = {"seed": 1, "dataset": "p", "datasets": {"p": {"source": "imagefolder", "split": {"seed": 4}}}}
    assert provenance.seeds(photos) == {"seed": 1, "datasets.p.split.seed": 4}


def test_write_record_is_complete_json(tmp_path):
    cfg = {"seed": 0, "dataset": "twin", "datasets": {"twin": {"twin": {"seed": 0}}}}
    path = provenance.write_record(tmp_path / "res", cfg, ROOT, log="x.log")
    rec = json.loads(path.read_text())
    assert rec == json.loads((tmp_path / "res" / "provenance" / "latest.json").read_text())
    assert (
        rec["config"] == cfg
        and rec["seeds"] == {"seed": 0, "datasets.twin.twin.seed": 0}
        and rec["snakemake_log"] == "x.log"
    )
    assert rec["machine"]["cpu_count"] >= 1 and rec["machine"]["cpu"]
    assert rec["packages"]["torch"]["installed"].startswith(rec["packages"]["torch"]["pinned"])
    assert "torch" not in rec["packages_not_as_pinned"]  # 2.14.1+cu130 satisfies ==2.14.1, as for pip


def test_packages_not_as_pinned(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = ["numpy==0.0.1"]\n')
    rec = provenance.record({"seed": 0}, tmp_path)
    assert rec["packages_not_as_pinned"] == ["numpy"] and rec["git"]["commit"] is None
    assert not list((tmp_path / "res" / "provenance").glob(".*"))  # no temporary files left


def test_pins_come_from_the_installed_package_without_pyproject(tmp_path):
    got = provenance.pinned_versions(tmp_path / "pyproject.toml")  # absent: a copy of the workflow without it
    assert got["torch"]["pinned"] == "2.14.1" and got["snakemake"]["installed"] == got["snakemake"]["pinned"]
    assert "pytest" not in got  # the test extra is not a run dependency
