"""End-to-end Snakemake runs of the tiny twin in a copy of the repository.

One session-scoped run of ``config/tiny.yaml`` (the README's check of a change; the ``repo`` fixture in conftest.py,
shared with test_slurm.py); the tests then ask what a user relies on: tables with measured rows, nothing to do on a
rerun, a parameter change rerunning only what depends on it, the features source reading learn-to-cluster files to
the same numbers, and one-line errors for bad input.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import RES, snakemake  # the session-scoped `repo` fixture (one tiny run) lives in conftest.py

from clipcluster.config import load as load_config
from clipcluster.recognition.pipeline import run as recognition_run

pytestmark = pytest.mark.e2e

METHODS = ["infomap", "kmeans", "dbscan", "hac", "aro", "cdp"]
SUBSETS = ["part1", "part1-3", "part1-5", "part1-7", "part1-9"]


def planned_jobs(repo: Path, *args: str) -> dict[str, int]:
    """Rule -> job count of a dry run (Snakemake's job-stats table)."""
    out = snakemake(repo, "-n", "--quiet", "rules", *args).stdout
    jobs: dict[str, int] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] not in ("total", "job"):
            jobs[parts[0]] = int(parts[1])
    return jobs


def write_config(repo: Path, name: str, cfg: dict) -> str:
    path = repo / "config" / name
    path.write_text(yaml.safe_dump(cfg))  # sorted keys: reordering keys must not count as a change
    return f"config/{name}"


def test_tables_have_measured_rows(repo):
    t3 = pd.read_csv(repo / RES / "tables" / "table3.csv")
    measured = t3[t3["source"] == "measured"]
    fixed_floor = json.loads((repo / RES / "metrics" / "infomap" / "part1.json").read_text())["params"]["sim_floor"]
    tuned_floor = json.loads((repo / RES / "tuning" / "infomap.json").read_text())["chosen"]
    infomap_rows = [
        f"Infomap alone (floor {fixed_floor:g}, fixed)",
        f"Infomap alone (floor {tuned_floor:g}, chosen on the training part)",
    ]
    assert sorted(measured["method"]) == sorted(
        [
            "K-Means",
            "DBSCAN",
            "HAC",
            "ARO",
            "CDP",
            *infomap_rows,
            "FaceT",
            "MHC",
            "Pair baseline + Infomap",
            "CLIP-Cluster (ours)",
            "CLIP-Cluster, no hallucination",
        ]
    )
    # the learned models' floor: the pair baseline alone, fit (not trained) on part0, tau chosen on part0
    assert (repo / RES / "models" / "clipcluster_baseline_history.jsonl").read_text() == ""
    assert json.loads((repo / RES / "tuning" / "pair_baseline.json").read_text())["part"] == "part0"
    base = json.loads((repo / RES / "clusters" / "pair_baseline" / "part1.json").read_text())
    assert base["params"]["model"] == "baseline" and base["edge_auc"]["auc_model"] is not None
    # the tuned row ran at the floor chosen on the training part, whose sweep never saw a test part
    tuned = json.loads((repo / RES / "metrics" / "infomap_tuned" / "part1.json").read_text())
    assert tuned["params"]["sim_floor"] == tuned_floor and tuned["method"] == "infomap_tuned"
    assert json.loads((repo / RES / "tuning" / "infomap.json").read_text())["part"] == "part0"
    for col in ("precision", "recall", "f_pairwise", "f_bcubed", "nmi"):
        assert measured[col].between(0, 100).all(), col
    assert (measured["time_s"] >= 0).all()
    # quoted rows carry only paper numbers
    quoted = t3[t3["source"] == "quoted"]
    assert len(quoted) > 0 and quoted["f_pairwise"].isna().all() and quoted["paper_f_pairwise"].notna().all()
    # every number in the table is the one the evaluate rule measured
    m = json.loads((repo / RES / "metrics" / "infomap" / "part1.json").read_text())
    row = measured.set_index("method").loc[infomap_rows[0]]
    assert row["f_pairwise"] == pytest.approx(100 * m["pairwise_f"], abs=1e-4)  # CSV keeps 4 decimals
    t5 = pd.read_csv(repo / RES / "tables" / "table5.csv")
    for subset in SUBSETS:
        assert t5.loc[t5["source"] == "measured", f"{subset} F_P"].notna().all(), subset
    for ext in (".md", ".tex"):
        assert (repo / RES / "tables" / f"table3{ext}").stat().st_size > 0
    assert "quoted" in (repo / RES / "tables" / "table3.md").read_text().lower()


def test_figure4_and_table4_have_measured_rows(repo):
    assert (repo / RES / "figures" / "figure4.png").stat().st_size > 0
    assert (repo / RES / "figures" / "figure4.pdf").stat().st_size > 0
    f4 = pd.read_csv(repo / RES / "tables" / "figure4.csv").set_index("labels")
    measured = f4[f4["source"] == "measured"]
    assert {"CLIP-Cluster (ours)", "Infomap alone", "ground truth (upper bound)"} <= set(measured.index)
    cols = [c for c in f4.columns if c.startswith(("0 (", "part1"))]
    assert len(cols) == 3  # part0 alone, part1, part1-9 (config/tiny.yaml)
    refs = [label for label in measured.index if label.endswith("no training (reference)")]
    # the twin's Figure 4 network reads the CLIP view: both inputs' own rank-1 are the references
    assert refs == ["input CLIP embeddings, no training (reference)", "input face features, no training (reference)"]
    assert measured.loc[refs[0], cols[0]] < measured.loc[refs[1], cols[0]]  # identity is weak in CLIP
    runs = measured.drop(index=refs)
    assert runs[cols].notna().all().all() and runs[cols].apply(lambda c: c.between(0, 100)).all().all()
    # each cell is the rank-1 its training run measured
    run = json.loads((repo / RES / "recognition" / "clipcluster" / "part1-9.json").read_text())
    cell = runs.loc["CLIP-Cluster (ours)", [c for c in cols if c.startswith("part1-9")][0]]
    assert cell == pytest.approx(100 * run["rank1"], abs=1e-4)
    assert run["ratio"] > 5 and run["pseudo_rows"] + run["dropped_singletons"] == run["unlabelled_rows"]
    assert f4.loc[f4["source"] == "quoted", cols[0]].tolist() == [58.2]  # the paper's point, labelled quoted
    t4 = pd.read_csv(repo / RES / "tables" / "table4.csv").set_index("method")
    rows = t4[t4["source"] == "measured"]
    infomap_rows = {m for m in rows.index if m.startswith("Infomap alone (floor ")}
    assert len(infomap_rows) == 2 and any(m.endswith("chosen on the training part)") for m in infomap_rows)
    assert set(rows.index) - infomap_rows == {
        "K-Means", "DBSCAN", "HAC", "ARO", "CDP", "Pair baseline + Infomap", "CLIP-Cluster (ours)"
    }  # fmt: skip
    assert rows["f_pairwise"].between(0, 100).all() and rows["f_bcubed"].notna().all()
    m = json.loads((repo / "results" / "twin_webface_tiny" / "metrics" / "kmeans" / "test.json").read_text())
    assert rows.loc["K-Means", "f_pairwise"] == pytest.approx(100 * m["pairwise_f"], abs=1e-4)
    assert t4.loc["STAR-FC", "source"] == "quoted" and np.isnan(t4.loc["STAR-FC", "f_pairwise"])


def test_infomap_clusters_the_tiny_twin(repo):
    m = json.loads((repo / RES / "metrics" / "infomap" / "part1.json").read_text())
    assert m["n_samples"] == len(np.loadtxt(repo / RES / "parts" / "part1.meta"))
    assert m["pairwise_f"] > 0.8, m  # identities are well separated at the tiny preset


def test_twin_card_written(repo):
    card = json.loads((repo / RES / "twin_card.json").read_text())
    assert card["params"]["preset"] == "tiny"
    assert card["face"]["intra"]["mean"] > card["face"]["inter"]["mean"]
    assert (repo / RES / "twin_card.png").stat().st_size > 0


def test_clip_cluster_trains_and_infers(repo):
    """The model rules ran: B, four model variants with per-epoch histories, Tables 1 and 2, the curves."""
    models = repo / RES / "models"
    assert json.loads((models / "B.json").read_text())["epochs"] == 2
    for variant in ("cross", "average", "self", "nohall"):
        hist = [json.loads(x) for x in (models / f"clipcluster_{variant}_history.jsonl").read_text().splitlines()]
        assert len(hist) == 2 and all(np.isfinite(h["losses"]["total"]) for h in hist), variant
    for table, rows in (("table1", 3), ("table2", 4)):  # Table 2: Infomap alone at both floors
        t = pd.read_csv(repo / RES / "tables" / f"{table}.csv")
        assert len(t) == rows and (t["source"] == "measured").all(), t
        # every row has its paper figure beside it, but the part0-chosen Infomap floor, which the paper never ran
        ours = t["method"].str.endswith("chosen on the training part)")
        assert ours.sum() == (table == "table2") and t.loc[ours, "paper_f_pairwise"].isna().all()
        assert t["f_pairwise"].between(0, 100).all() and t.loc[~ours, "paper_f_pairwise"].notna().all()
    info = json.loads((repo / RES / "clusters" / "clipcluster" / "part1-9.json").read_text())
    assert info["seconds"] == pytest.approx(info["score_seconds"] + info["refine_seconds"])
    # the edge-quality report: both AUCs on the same sampled kNN edges, carried into the metrics and Table 3's notes
    auc = info["edge_auc"]
    assert auc["edges"] > 0 and 0 < auc["positive_rate"] < 1
    assert 0 <= auc["auc_model"] <= 1 and 0 <= auc["auc_cosine"] <= 1
    m = json.loads((repo / RES / "metrics" / "clipcluster" / "part1.json").read_text())
    note = f"{m['edge_auc']['auc_model']:.3f} vs {m['edge_auc']['auc_cosine']:.3f}"
    assert note in (repo / RES / "tables" / "table3.md").read_text()
    assert (repo / RES / "figures" / "training_curves.png").stat().st_size > 0
    means = json.loads((repo / RES / "figures" / "hallucination.json").read_text())["means"]
    assert set(means) == {"face features f (before)", "proxy features v (after)"}
    f = means["face features f (before)"]
    assert f["same_equal"] > f["same_different"] > f["other"]  # the twin's attribute sub-clusters, seen in f


def test_peers_train_and_cluster_every_subset(repo):
    """FaceT and MHC: trained once on part0 (history, report), then run on every subset with their times."""
    models = repo / RES / "models"
    for peer in ("facet", "mhc"):
        hist = [json.loads(x) for x in (models / f"{peer}_history.jsonl").read_text().splitlines()]
        assert len(hist) == 2 and all(np.isfinite(h["losses"]["total"]) for h in hist), peer
        assert json.loads((models / f"{peer}.json").read_text())["epochs"] == 2
        for subset in SUBSETS:
            info = json.loads((repo / RES / "clusters" / peer / f"{subset}.json").read_text())
            assert info["seconds"] == pytest.approx(info["score_seconds"] + info["cluster_seconds"]), (peer, subset)
            assert 0 <= info["edge_auc"]["auc_model"] <= 1 and 0 <= info["edge_auc"]["auc_cosine"] <= 1
            m = json.loads((repo / RES / "metrics" / peer / f"{subset}.json").read_text())
            assert m["method"] == peer and 0 < m["pairwise_f"] <= 1 and m["seconds"] == info["seconds"], m
    t5 = pd.read_csv(repo / RES / "tables" / "table5.csv").set_index("method")
    assert t5.loc["MHC", "part1-9 paper F_P"] == 86.94  # quoted from MHC's own Table 1
    assert t5.loc[["FaceT", "MHC"], [f"{s} F_P" for s in SUBSETS]].notna().all().all()


def test_peer_inference_parameter_does_not_retrain(repo):
    cfg = yaml.safe_load((repo / "config" / "tiny.yaml").read_text())
    cfg["methods"]["mhc"]["tau"] = 0.6
    jobs = planned_jobs(repo, "--configfile", write_config(repo, "tiny_mhc_tau.yaml", cfg))
    # the tuning record re-measures the configured tau beside its grid on the training part (no retraining)
    assert jobs == {"all": 1, "tune_peer": 1, "infer_peer": 5, "evaluate": 5, "table3": 1, "table5": 1}, jobs
    cfg["methods"]["mhc"]["epochs"] = 3
    jobs = planned_jobs(repo, "--configfile", write_config(repo, "tiny_mhc_epochs.yaml", cfg))
    assert jobs["train_peer"] == 1 and jobs["infer_peer"] == 5 and "train_clipcluster" not in jobs, jobs


def test_rerun_does_nothing(repo):
    res = snakemake(repo, "-n", "--configfile", "config/tiny.yaml")
    assert "Nothing to be done" in res.stdout + res.stderr, res.stdout


def test_parameter_change_reruns_only_dependents(repo):
    cfg = yaml.safe_load((repo / "config" / "tiny.yaml").read_text())
    cfg["methods"]["dbscan"]["eps"] = 0.3
    name = write_config(repo, "tiny_eps.yaml", cfg)
    jobs = planned_jobs(repo, "--configfile", name)
    # ... and in Table 4's run (the module), whose config is the main one's on its own dataset
    assert jobs == {"all": 1, "cluster_dbscan": 5, "evaluate": 5, "table3": 1, "table5": 1,
                    "table4_cluster_dbscan": 1, "table4_evaluate": 1, "table4": 1}, jobs  # fmt: skip


def test_a_preset_whose_values_change_regenerates_its_twin(repo):
    """The twin rules' params hold the generative values the preset resolves to, not just its name: when a preset
    changes in the package (as `small` took the calibrated ageing), a cached run regenerates its parts and reruns
    what depends on them instead of keeping the stale ones. The copy's package is edited for one dry run."""
    gen = repo / "clipcluster" / "twin" / "generate.py"
    text = gen.read_text()
    old = '"tiny": {**_BASE, "ids_per_part": 12,'
    assert old in text
    try:
        gen.write_text(text.replace(old, '"tiny": {**_BASE, "hard_pull": 0.6, "ids_per_part": 12,'))
        jobs = planned_jobs(repo, "--configfile", "config/tiny.yaml")
    finally:
        gen.write_text(text)
    assert jobs["twin_part"] == 10 and jobs["twin_card"] == 1 and jobs["twin_prompts"] == 1, jobs
    assert jobs["train_clipcluster"] >= 1 and jobs["table3"] == 1, jobs
    assert not any(rule.startswith("table4_twin") for rule in jobs), jobs  # Table 4's preset did not change
    assert planned_jobs(repo, "--configfile", "config/tiny.yaml") == {}


def test_model_defaults_are_part_of_the_training_params(repo):
    """The training rule's params hold CLIP-Cluster's whole model config, defaults resolved at parse time: a key
    written out at its default is no change, one off its default retrains every CLIP-Cluster model (the pair
    baseline's included: its config holds the key too), and an unknown model key stops the run before any job."""
    cfg = yaml.safe_load((repo / "config" / "tiny.yaml").read_text())
    cfg["methods"]["clipcluster"]["model"]["centre_correction"] = True
    assert planned_jobs(repo, "--configfile", write_config(repo, "tiny_centre_default.yaml", cfg)) == {}
    cfg["methods"]["clipcluster"]["model"]["centre_correction"] = False
    jobs = planned_jobs(repo, "--configfile", write_config(repo, "tiny_uncentred.yaml", cfg))
    assert jobs["train_clipcluster"] == 5 and jobs["table4_train_clipcluster"] == 2, jobs
    assert "train_peer" not in jobs and "pretrain_B" not in jobs, jobs
    cfg["methods"]["clipcluster"]["model"] = {"centre": True}
    res = snakemake(repo, "-n", "--configfile", write_config(repo, "tiny_model_typo.yaml", cfg), check=False)
    out = res.stdout + res.stderr
    assert res.returncode != 0 and "Building DAG" not in out
    lines = [ln for ln in out.splitlines() if "unknown key(s) ['centre']" in ln]
    assert lines and lines[0].strip().startswith("clip_cluster config:"), out[-2000:]


def test_inference_parameter_does_not_retrain(repo):
    cfg = yaml.safe_load((repo / "config" / "tiny.yaml").read_text())
    cfg["methods"]["clipcluster"]["tau"] = 0.6
    jobs = planned_jobs(repo, "--configfile", write_config(repo, "tiny_tau.yaml", cfg))
    # new clusters are new pseudo-labels: Figure 4's CLIP-Cluster runs retrain (part1, part1-9 in tiny.yaml)
    # ... and the tuning records re-measure the configured tau beside their grids on the training part
    # (the pair baseline + Infomap row too: it is a CLIP-Cluster model, with tau's key)
    assert jobs == {"all": 1, "tune_clipcluster": 6, "infer_clipcluster": 18, "evaluate": 18, "table1": 1,
                    "table2": 1, "table3": 1, "table5": 1, "train_recognition": 2, "figure4": 1,
                    "table4_tune_clipcluster": 2, "table4_infer_clipcluster": 2, "table4_evaluate": 2,
                    "table4": 1}, jobs  # fmt: skip


def test_features_source_matches_twin(repo):
    """Pointing a features dataset at the twin's .bin/.meta files gives the same Infomap numbers."""
    cfg = {
        "dataset": "feat",
        "datasets": {
            "feat": {
                "source": "features",
                "features": {
                    "root": str(repo / RES),
                    "bin": "{root}/faces/{part}.bin",
                    "meta": "{root}/parts/{part}.meta",
                },
            }
        },
        "knn": {"k": 10},
        "methods": {
            **{m: {"enabled": m == "infomap", "k": 10} if m != "kmeans" else {"enabled": False} for m in METHODS},
            **{m: {"enabled": False} for m in ("clipcluster", "facet", "mhc")},
        },
        "tables": {"table5_subsets": ["part1", "part1-3"], "table4": {"dataset": None}},
    }
    # Figure 4 from user-supplied probe and distractor features: the twin run's identification set written as files
    with np.load(repo / RES / "recognition" / "identification.npz") as z:
        z["probe_face"].astype("<f4").tofile(repo / "probe.bin")
        z["distractor_face"].astype("<f4").tofile(repo / "distractors.bin")
        (repo / "probe.meta").write_text("".join(f"{v}\n" for v in z["probe_labels"]))
    tiny = yaml.safe_load((repo / "config" / "tiny.yaml").read_text())["recognition"]
    cfg["recognition"] = {
        **tiny,
        "methods": ["infomap"],
        "subsets": ["part1"],
        "identification": {
            "probe_bin": str(repo / "probe.bin"),
            "probe_meta": str(repo / "probe.meta"),
            "distractor_bin": str(repo / "distractors.bin"),
        },
    }
    name = write_config(repo, "feat.yaml", cfg)
    snakemake(repo, "--configfile", name)
    for subset in ("part1", "part1-3"):
        ours = json.loads((repo / "results/feat/metrics/infomap" / f"{subset}.json").read_text())
        twin = json.loads((repo / RES / "metrics" / "infomap" / f"{subset}.json").read_text())
        for key in ("pairwise_f", "bcubed_f", "nmi", "n_pred_clusters"):
            assert ours[key] == twin[key], (subset, key)
    assert not (repo / "results/feat/twin_card.json").exists()
    # the features run's network reads the face features (a features dataset has no CLIP identification set); it
    # must measure what the recognition pipeline measures on the twin's own face files and identification set
    full = load_config(repo / "config" / "config.yaml", cfg)
    rec = {k: full["recognition"][k] for k in ("model", "arcface", "train", "min_cluster_size")}
    for run, subset_parts, pseudo in (
        ("part0/none", [], None),
        ("infomap/part1", ["part1"], repo / RES / "clusters" / "infomap" / "part1.labels"),
        ("truth/part1", ["part1"], None),
    ):
        ours = json.loads((repo / "results/feat/recognition" / f"{run}.json").read_text())
        _, direct, _ = recognition_run(
            face0=repo / RES / "faces" / "part0.bin",
            meta0=repo / RES / "parts" / "part0.meta",
            subset_faces=[repo / RES / "faces" / f"{p}.bin" for p in subset_parts],
            subset_metas=[repo / RES / "parts" / f"{p}.meta" for p in subset_parts],
            pseudo=pseudo,
            ident=[repo / RES / "recognition" / "identification.npz"],
            dim=256,
            cfg=rec,
            checkpoint_dir=repo / "direct_checkpoints" / run,
            seed=full["seed"],
            device=full["recognition"]["device"],
            threads=1,
            view="face",
            progress=False,
        )
        assert (ours["rank1"], ours["pairs"], ours["classes"]) == (direct["rank1"], direct["pairs"], direct["classes"])


def _features_copy(repo: Path, name: str) -> Path:
    root = repo / name
    for sub in ("faces", "parts"):
        shutil.copytree(repo / RES / sub, root / sub)
    return root


def _features_cfg(root: Path) -> dict:
    return {
        "dataset": "bad",
        "datasets": {
            "bad": {
                "source": "features",
                "features": {"root": str(root), "bin": "{root}/faces/{part}.bin", "meta": "{root}/parts/{part}.meta"},
            }
        },
        "knn": {"k": 10},
        "methods": {"infomap": {"k": 10}, "kmeans": {"enabled": False}, "dbscan": {"enabled": False},
                    "hac": {"enabled": False}, "aro": {"enabled": False}, "cdp": {"enabled": False},
                    "clipcluster": {"enabled": False},
                    "facet": {"enabled": False}, "mhc": {"enabled": False}},
        "subsets": {"part1": ["part1"]},
        "tables": {"table3_subset": "part1", "table5_subsets": ["part1"], "table4": {"dataset": None}},
        "recognition": {"enabled": False},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("truncate", r"faces/part1\.bin: size \d+ bytes is not a multiple of one 256-d float32 row"),
        ("meta", r"parts/part1\.meta: has \d+ labels but .*faces/part1\.bin has \d+ rows"),
        ("missing", r"parts/part1\.meta: file not found"),
        ("nan", r"faces/part1\.bin: row 7 has a NaN or infinite value"),
    ],
)
def test_bad_features_fail_with_one_line(repo, damage, message):
    """What needs no data reading stops the workflow as it starts (a dry run shows it, before any job); a NaN value
    stops the job that reads it. Either way one line names the file."""
    import re

    root = _features_copy(repo, f"bad_{damage}")
    at_start = damage != "nan"
    if damage == "missing":
        (root / "parts/part1.meta").unlink()
    elif damage == "truncate":
        with open(root / "faces/part1.bin", "r+b") as fh:
            fh.truncate((root / "faces/part1.bin").stat().st_size - 3)
    elif damage == "meta":
        lines = (root / "parts/part1.meta").read_text().splitlines()
        (root / "parts/part1.meta").write_text("\n".join(lines[:-1]) + "\n")
    else:
        feats = np.fromfile(root / "faces/part1.bin", dtype="<f4").reshape(-1, 256)
        feats[7, 3] = np.nan
        feats.tofile(root / "faces/part1.bin")
    name = write_config(repo, f"bad_{damage}.yaml", _features_cfg(root))
    shutil.rmtree(repo / "results/bad", ignore_errors=True)
    res = snakemake(repo, *(["-n"] if at_start else []), "--configfile", name, check=False)
    assert res.returncode != 0
    out = res.stdout + res.stderr
    lines = [ln.strip() for ln in out.splitlines() if re.search(message, ln)]
    assert lines, out[-3000:]
    if at_start:
        assert "Building DAG" not in out and not (repo / "results/bad").exists()  # stopped before any job
    assert not (repo / "results/bad/knn/part1_k10.npz").exists()  # no half-written output left behind


def test_unknown_config_key_fails_with_one_line(repo):
    cfg = yaml.safe_load((repo / "config" / "tiny.yaml").read_text())
    cfg["methods"]["infomap"]["simfloor"] = 0.5
    name = write_config(repo, "typo.yaml", cfg)
    res = snakemake(repo, "-n", "--configfile", name, check=False)
    assert res.returncode != 0
    lines = [ln for ln in (res.stdout + res.stderr).splitlines() if "simfloor" in ln]
    assert lines and lines[0].strip().startswith("config: methods.infomap.simfloor: unknown key (allowed:"), lines


def test_same_seed_same_tables_after_retraining(repo):
    """Delete every trained model and checkpoint, retrain and rerun: all tables come back identical (times aside)."""
    tables = repo / RES / "tables"
    names = ("table1", "table2", "table3", "table4", "table5", "figure4")
    before = {t: pd.read_csv(tables / f"{t}.csv") for t in names}
    stamps = {tables / f"{t}.csv": (tables / f"{t}.csv").stat().st_mtime_ns for t in names}
    for trained in (RES + "/models", RES + "/recognition", "results/twin_webface_tiny/models"):
        shutil.rmtree(repo / trained)
    # Snakemake does not remake a deleted intermediate file whose consumers are up to date: force the training
    # rules, so everything downstream of them (inference, evaluation, tables) runs again too.
    train_rules = [
        "pretrain_B",
        "train_clipcluster",
        "train_peer",
        "train_recognition",
        "table4_pretrain_B",
        "table4_train_clipcluster",
    ]
    planned = planned_jobs(repo, "--configfile", "config/tiny.yaml", "--forcerun", *train_rules)
    # CLIP-Cluster's four models and its pair baseline (fit, not trained)
    want = {"pretrain_B": 1, "train_clipcluster": 5, "train_peer": 2, "train_recognition": 7}
    assert (want | {"table4_pretrain_B": 1, "table4_train_clipcluster": 2}).items() <= planned.items()
    snakemake(repo, "--configfile", "config/tiny.yaml", "--forcerun", *train_rules)
    assert all(p.stat().st_mtime_ns > t for p, t in stamps.items()), "the tables were not rewritten"
    for name, old in before.items():
        new = pd.read_csv(tables / f"{name}.csv")
        keep = [c for c in old.columns if c != "time_s"]
        pd.testing.assert_frame_equal(old[keep], new[keep], obj=name)
