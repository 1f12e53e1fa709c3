"""What a finished run leaves for a reader: the Snakemake report with every table and figure, and the run's
reproducibility record. Both read the session's tiny twin run (tests/conftest.py)."""

from __future__ import annotations

import base64
import json
import re

import pytest
from conftest import RES, snakemake

pytestmark = pytest.mark.e2e

# every table and figure the report must hold, as the run wrote them
REPORTED = {f"tables/table{n}.html": "text/html" for n in (1, 2, 3, 4, 5)} | {
    "figures/training_curves.png": "image/png",
    "figures/figure4.png": "image/png",
    "figures/hallucination.png": "image/png",
    "twin_card.png": "image/png",
}


def test_report_holds_every_table_and_figure_offline(repo):
    out = repo / "results" / "report.html"
    snakemake(repo, "--configfile", "config/tiny.yaml", "--report", str(out))
    html = out.read_text()
    for rel, mime in REPORTED.items():
        path = repo / RES / rel
        m = re.search(rf"data:{mime};charset=utf8;filename={re.escape(path.name)};base64,([A-Za-z0-9+/=]+)", html)
        assert m, f"{rel} is not embedded in the report"
        assert base64.b64decode(m.group(1)) == path.read_bytes(), f"the report's {rel} is not the run's"
    # captions are rendered with this run's config (jinja), not shipped as raw templates
    assert "every method on part1" in html and "twin_tiny</tt>" in html and "snakemake.config" not in html
    # self-contained: nothing is fetched from the network when it opens
    assert not re.search(r"<(script|link|img|iframe)\b[^>]*\b(src|href)=[\"']https?://", html)


def test_run_leaves_a_reproducibility_record(repo):
    rec = json.loads((repo / RES / "provenance" / "latest.json").read_text())
    assert rec["dataset"] == "twin_tiny" and rec["config"]["dataset"] == "twin_tiny"
    assert rec["seeds"] == {"seed": 0, "datasets.twin_tiny.twin.seed": 0}
    assert rec["config"]["methods"]["infomap"]["k"] == 10  # the resolved config, tiny.yaml merged over the default
    assert rec["packages"]["snakemake"]["installed"] == rec["packages"]["snakemake"]["pinned"]
    assert rec["machine"]["cpu_count"] >= 1
    assert "commit" in rec["git"]  # None here: the test's copy of the workflow is not a git checkout
    assert any(p.name != "latest.json" for p in (repo / RES / "provenance").glob("*.json"))
