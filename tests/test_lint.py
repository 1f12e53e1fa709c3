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


# (snakemake 9.27's CLI accepts --lint json but prints text, so the text is parsed.)
def test_snakemake_lint_clean():
    res = subprocess.run(
        [_tool("snakemake"), "--lint", "--configfile", "config/tiny.yaml"], cwd=ROOT, capture_output=True, text=True
    )
    out = res.stdout + res.stderr
    lints = [line.strip() for line in out.splitlines() if line.startswith("    * ")]
    assert res.returncode == 0 and not lints and "Traceback" not in out, out


def _rule_graph(dot: str) -> tuple[set[str], set[tuple[str, str]]]:
    """Rules and dependencies of a --rulegraph dot text (Snakemake numbers nodes and orders edges run to run)."""
    import re

    names = dict(re.findall(r'^\s*(\d+)\[label = "([^"]+)"', dot, flags=re.M))
    edges = {(names[a], names[b]) for a, b in re.findall(r"^\s*(\d+) -> (\d+)", dot, flags=re.M)}
    return set(names.values()), edges


def test_readme_rule_graph_is_current():
    """docs/rulegraph.dot (drawn as docs/rulegraph.svg in the README) is what the workflow's rule graph is now."""
    res = subprocess.run([_tool("snakemake"), "--rulegraph"], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    now, committed = _rule_graph(res.stdout), _rule_graph((ROOT / "docs" / "rulegraph.dot").read_text())
    assert len(now[0]) > 20 and len(now[1]) > 30, now
    assert now == committed, (
        "the rule graph changed: snakemake --rulegraph | tee docs/rulegraph.dot | dot -Tsvg > docs/rulegraph.svg"
    )
