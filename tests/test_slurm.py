"""The workflow on a real single-node SLURM cluster (Debian's slurm-wlm on loopback, tests/slurm/cluster.sh).

The tiny twin runs through ``snakemake --executor slurm`` with the site profile ``profiles/slurm`` (every job an
sbatch on the local slurmctld) and must give the same tables as the local run (times aside); a job that fails under
SLURM must fail the run and show its log. Needs root (to install and start the cluster): elsewhere the module is
skipped, except under CI=true, where it fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import RES, ROOT, copy_repo

pytestmark = [pytest.mark.e2e, pytest.mark.slurm]

CLUSTER = ROOT / "tests" / "slurm" / "cluster.sh"
PARTITION = "debug"  # the test cluster's only partition (cluster.sh)
RUN_TIMEOUT = 1500  # seconds for the tiny twin under SLURM: ~6 min on 2 idle cores, 11-17 min on a busy machine
# The venv's bin (not resolved: the venv's python is a symlink): jobs inherit PATH (sbatch --export=ALL), so
# `python`, `python -m snakemake` and the clipcluster package are the submitting environment's.
VENV_BIN = str(Path(sys.executable).parent)


def _unavailable(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but the SLURM test cannot run: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def slurm_cluster():
    if os.geteuid() != 0:
        have = "installed" if shutil.which("sinfo") else "not installed"
        _unavailable(f"SLURM is {have} and tests/slurm/cluster.sh needs root to install and start a test cluster")
    was_up = _cluster_up()
    res = subprocess.run(["bash", str(CLUSTER), "start"], capture_output=True, text=True, timeout=900)
    if res.returncode != 0:
        pytest.fail(f"tests/slurm/cluster.sh start failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    yield
    if not was_up:  # a cluster someone else started (another test session) is left running for them
        subprocess.run(["bash", str(CLUSTER), "stop"], capture_output=True, text=True, timeout=120)


def _cluster_up() -> bool:
    """Whether the test cluster's partition already answers (a controller is running)."""
    if shutil.which("sinfo") is None:
        return False
    try:
        res = subprocess.run(["sinfo", "-h", "-p", PARTITION, "-o", "%a"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return False
    return res.returncode == 0 and res.stdout.strip() == "up"


def slurm_snakemake(workdir: Path, *args: str, timeout: int = RUN_TIMEOUT) -> subprocess.CompletedProcess:
    """snakemake --executor slurm with the site profile, plus what suits a test on an idle single node."""
    cmd = [
        "timeout", "-k", "30", str(timeout),
        sys.executable, "-m", "snakemake",
        "--workflow-profile", str(ROOT / "profiles" / "slurm"),
        "--default-resources", f"slurm_partition={PARTITION}",
        # the local run's --cores 2: rules asking for 16 threads get 2 (and fit the node), the same as locally
        "--max-threads", "2",
        "--retries", "0",  # a failure must show, not be retried away
        "--latency-wait", "5",  # one filesystem: outputs are there at once
        "--seconds-between-status-checks", "2",
        "--slurm-init-seconds-before-status-checks", "2",
        "--slurm-keep-successful-logs",  # evidence that each job ran under SLURM
        *args,
    ]  # fmt: skip
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    for key in [k for k in env if k.startswith("SLURM_")]:  # a run inside a SLURM job must not inherit its step
        del env[key]
    return subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout + 60)


def slurm_jobs(out: str) -> tuple[str, dict[str, str]]:
    """The run's SLURM run ID and {SLURM job id: rule} of every job it submitted, from the plugin's log lines."""
    run_id = re.search(r"SLURM run ID: (\S+)", out)
    assert run_id, out[-3000:]
    jobs = dict(re.findall(r"has been submitted with SLURM jobid (\d+) \(log: \S*/slurm_logs/rule_(\w+?)/", out))
    return run_id.group(1), jobs


def squeue_states(run_id: str) -> dict[str, str]:
    """{job id: state} of the run's jobs as slurmctld reports them (finished jobs stay MinJobAge = 600 s)."""
    res = subprocess.run(
        ["squeue", "--states=all", "--noheader", "--format=%i|%T", "--name", run_id],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(line.split("|", 1) for line in res.stdout.split())


def test_tiny_twin_under_slurm_gives_the_local_tables(slurm_cluster, tiny_tables, tmp_path):
    work = copy_repo(tmp_path / "repo")
    # Table 3 alone (part1: every method, the models trained on part0), without the CLIP-Cluster ablations: about
    # a third of the DAG's jobs at ~3 s of SLURM overhead each. The executor is what this test checks; the local
    # run checks the whole DAG.
    (work / "config" / "slurm_overlay.yaml").write_text(
        "recognition: {enabled: false}\ntables: {table4: {dataset: null}}\nmethods: {clipcluster: {ablations: false}}\n"
    )
    target = f"{RES}/tables/table3.csv"
    res = slurm_snakemake(work, target, "--configfile", "config/tiny.yaml", "config/slurm_overlay.yaml")
    out = res.stdout + res.stderr
    assert res.returncode == 0, f"snakemake --executor slurm failed ({res.returncode}):\n{out[-8000:]}"

    # Every job but the target rule `all` went through sbatch and completed on the test cluster.
    run_id, jobs = slurm_jobs(out)
    planned = sum(int(n) for n in re.findall(r"^total\s+(\d+)$", out, flags=re.M)[:1])
    assert planned > 15 and len(jobs) == planned, (planned, len(jobs))
    states = squeue_states(run_id)
    assert set(states) == set(jobs) and set(states.values()) == {"COMPLETED"}, states
    logs = list((work / ".snakemake" / "slurm_logs").rglob("*.log"))
    assert len(logs) == len(jobs), len(logs)

    # The same Table 3 as the local run of the same config (snapshot taken right after that run), row for row:
    # every measured row of the SLURM run (all but the ablation's) equals the local one.
    assert sorted(p.name for p in (work / RES / "tables").glob("*.csv")) == ["table3.csv"]
    old = pd.read_csv(tiny_tables / "table3.csv")
    new = pd.read_csv(work / RES / "tables" / "table3.csv")
    new = new[new["source"] == "measured"].reset_index(drop=True)
    assert len(new) >= 7 and set(new["method"]) <= set(old["method"]), new["method"].tolist()
    old = old[old["method"].isin(set(new["method"]))].reset_index(drop=True)
    keep = [c for c in old.columns if c != "time_s"]
    pd.testing.assert_frame_equal(old[keep], new[keep], obj="table3.csv")


FAILING_SNAKEFILE = """
rule all:
    input: "b.txt"

rule ok:
    output: "a.txt"
    log: "logs/ok.log"
    threads: 1
    resources: mem_mb=100, runtime=2
    shell: "echo ok > {output} 2> {log}"

rule broken:
    input: "a.txt"
    output: "b.txt"
    log: "logs/broken.log"
    threads: 1
    resources: mem_mb=100, runtime=2
    shell: "echo broken-rule-log-marker $((40 + 2)) > {log}; exit 1"
"""


def test_failing_job_under_slurm_fails_the_run_and_shows_its_log(slurm_cluster, tmp_path):
    (tmp_path / "Snakefile").write_text(FAILING_SNAKEFILE)
    res = slurm_snakemake(tmp_path, timeout=300)
    out = res.stdout + res.stderr
    assert res.returncode not in (0, 124, 137), f"returncode {res.returncode}:\n{out[-6000:]}"
    run_id, jobs = slurm_jobs(out)
    assert sorted(jobs.values()) == ["broken", "ok"], jobs
    states = squeue_states(run_id)
    assert sorted(states[j] for j in jobs) == ["COMPLETED", "FAILED"], states
    assert "Error in rule broken" in out, out[-6000:]
    # The rule's log, written inside the SLURM job, is printed (the command only says $((40 + 2))).
    assert "broken-rule-log-marker 42" in out, out[-6000:]
    assert (tmp_path / "a.txt").exists() and not (tmp_path / "b.txt").exists()
