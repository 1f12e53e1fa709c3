"""Tables: measured and quoted numbers never mix, paper values land beside the right rows."""

import numpy as np
import pandas as pd

from clipcluster.reporting import tables

M = {
    "pairwise_precision": 0.9,
    "pairwise_recall": 0.8,
    "pairwise_f": 0.847,
    "bcubed_f": 0.8,
    "nmi": 0.95,
    "seconds": 1.5,
    "n_samples": 1000,
    "knn_seconds": 2.0,
}


def test_table3_measured_and_quoted_rows():
    df = tables.table3({"kmeans": M, "infomap": M, "hac": {"skipped": "too big", "seconds": None}}).set_index("method")
    assert df.loc["K-Means", "source"] == tables.MEASURED
    assert df.loc["K-Means", "f_pairwise"] == 84.7
    assert df.loc["K-Means", "paper_f_pairwise"] == 60.18  # quoted from Table 3
    assert df.loc["Infomap alone", "paper_f_pairwise"] == 93.98  # quoted from Table 2
    assert df.loc["Infomap alone", "paper_source"] == "CLIP-Cluster Table 2"
    assert np.isnan(df.loc["HAC", "f_pairwise"]) and df.loc["HAC", "note"] == "skipped: too big"
    # rows this workflow does not run are quoted only: no measured value in them
    quoted = df[df.source == tables.QUOTED]
    assert "STAR-FC" in quoted.index and "DBSCAN" in quoted.index
    assert quoted[["precision", "recall", "f_pairwise", "time_s"]].isna().all().all()
    # the paper's own method closes the table, our extra rows come before it
    assert list(df.index)[-1] == "CLIP-Cluster (Ours)"


def test_table5_scales():
    subsets = ["part1", "part1-3"]
    df = tables.table5({"kmeans": {"part1": M, "part1-3": M}, "infomap": {"part1": M}}, subsets).set_index("method")
    assert df.loc["K-Means", "part1-3 F_P"] == 84.7
    assert df.loc["K-Means", "part1-3 paper F_P"] == 73.04
    assert df.loc["K-Means", "part1 paper F_P"] == 60.18
    assert np.isnan(df.loc["K-Means", "part1 paper F_B"])  # the paper gives none at 584K
    assert df.loc["Infomap alone", "note"] == "part1-3: not run"
    assert df.loc["STAR-FC", "source"] == tables.QUOTED and np.isnan(df.loc["STAR-FC", "part1 F_P"])


def test_write_table_four_formats(tmp_path):
    df = tables.table3({"kmeans": M})
    notes = tables.table_notes("table3", "twin", "twin", {"kmeans": {"part1": M}}, ["part1"])
    tables.write_table(df, tmp_path / "table3", "Table 3", notes)
    back = pd.read_csv(tmp_path / "table3.csv")
    assert back.loc[back.method == "K-Means", "f_pairwise"].item() == 84.7
    md = (tmp_path / "table3.md").read_text()
    assert "| K-Means" in md and "part1 = 1,000 samples" in md and "QUOTED" in md and "nan" not in md
    tex = (tmp_path / "table3.tex").read_text()
    assert "\\begin{tabular}" in tex and "K-Means" in tex
    page = (tmp_path / "table3.html").read_text()
    assert ">K-Means</td>" in page and ">84.70</td>" in page and "part1 = 1,000 samples" in page and "nan" not in page
    # quoted rows are styled apart from measured ones; the page is the same bytes every time
    quoted_row = df.index[df["source"] == tables.QUOTED][0]
    assert f"#T_t_row{quoted_row}_col0" in page and tables.QUOTED_ROW_CSS.split(";")[0] in page
    assert "#T_t_row0_col0" not in page  # K-Means, measured: no quoted style
    tables.write_table(df, tmp_path / "again", "Table 3", notes)
    assert (tmp_path / "again.html").read_text() == page


def test_peers_rows_quote_their_own_papers():
    """FaceT and MHC rows are measured; their paper columns come from each one's own MS1M table."""
    df = tables.table3({"infomap": M, "facet": M, "mhc": M}).set_index("method")
    assert df.loc["FaceT", "source"] == tables.MEASURED and df.loc["FaceT", "f_pairwise"] == 84.7
    assert df.loc["FaceT", "paper_f_pairwise"] == 91.12  # FaceT Table 2, part1
    assert "facet" in df.loc["FaceT", "paper_source"]
    # CLIP-Cluster's Table 3 quotes MHC: our measured row takes that row's place, not a second one
    assert df.loc["MHC", "source"] == tables.MEASURED and df.loc["MHC", "paper_f_pairwise"] == 93.22
    assert (df.index == "MHC").sum() == 1
    subsets = ["part1", "part1-9"]
    t5 = tables.table5({"facet": {"part1": M, "part1-9": M}, "mhc": {"part1": M}}, subsets).set_index("method")
    assert (t5.loc["FaceT", "part1 paper F_P"], t5.loc["FaceT", "part1 paper F_B"]) == (91.12, 90.50)
    assert (t5.loc["MHC", "part1-9 paper F_P"], t5.loc["MHC", "part1-9 paper F_B"]) == (86.94, 86.06)
    assert t5.loc["FaceT", "part1-9 F_P"] == 84.7 and np.isnan(t5.loc["MHC", "part1-9 F_P"])
    notes = tables.table_notes("table5", "twin", "twin", {"facet": {"part1": M}, "mhc": {"part1": M}}, subsets)
    assert any("peers_ms1m.csv" in n and "FaceT and MHC" in n for n in notes)


def test_table4_measured_rows_beside_the_webface_quotes():
    df = tables.table4({"kmeans": M, "infomap": M, "clipcluster": M}).set_index("method")
    assert df.loc["K-Means", "source"] == tables.MEASURED and df.loc["K-Means", "f_bcubed"] == 80.0
    assert df.loc["K-Means", "paper_f_bcubed"] == 78.29  # quoted from CLIP-Cluster Table 4
    assert df.loc["CLIP-Cluster (ours)", "paper_f_pairwise"] == 99.16
    assert df.loc["STAR-FC", "source"] == tables.QUOTED and np.isnan(df.loc["STAR-FC", "f_pairwise"])
    # Infomap alone has no Table 4 row: measured, no quote, placed before the paper's own method
    assert np.isnan(df.loc["Infomap alone", "paper_f_pairwise"])
    assert list(df.index)[-2:] == ["Infomap alone", "CLIP-Cluster (ours)"]


def test_edge_auc_note_names_each_model_and_subset():
    auc = {"edges": 100, "positive_rate": 0.8, "auc_model": 0.6312, "auc_cosine": 0.93}
    measured = {
        "infomap": {"part1": {"n_samples": 10}},
        "clipcluster": {"part1": {"n_samples": 10, "edge_auc": auc}, "part1-3": {"edge_auc": auc}},
        "clipcluster_nohall": {"part1": {"n_samples": 10, "edge_auc": {**auc, "auc_model": None}}},
    }
    notes = tables.table_notes("table3", "twin", "twin", measured, ["part1"])
    [note] = [n for n in notes if n.startswith("Edge scores vs raw cosine")]
    assert "CLIP-Cluster (ours) on part1 0.631 vs 0.930" in note
    assert "part1-3" not in note and "no hallucination" not in note  # other subsets; no AUC (one class)
    assert "Where a model is below the cosine" in note
    above = {"clipcluster": {"part1": {"n_samples": 10, "edge_auc": {**auc, "auc_model": 0.97}}}}
    [note] = [n for n in tables.table_notes("table3", "twin", "twin", above, ["part1"]) if n.startswith("Edge")]
    assert "0.970 vs 0.930" in note and "Every model is above the cosine" in note and "below" not in note
    plain = {m: {s: {k: v for k, v in d.items() if k != "edge_auc"} for s, d in x.items()} for m, x in measured.items()}
    notes = tables.table_notes("table3", "twin", "twin", plain, ["part1"])
    assert not any(n.startswith("Edge scores") for n in notes)
