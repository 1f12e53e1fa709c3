"""Thresholds chosen on the training part (clipcluster.evaluation.tuning): the sweep, its tie rule, each run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from clipcluster.errors import DataError
from clipcluster.evaluation.tuning import read_chosen, sweep, tune_infomap, write_sweep
from clipcluster.evaluation.tuning_scores import tune_edge_threshold


def _two_groups_with_a_bridge() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Two 6-node identities; every node lists its 5 mates (similarity 0.9, score 0.95) and 3 nodes of the other
    identity (similarity 0.6, score 0.3): a floor or tau between the two separates them, a low one merges them."""
    n, per = 12, 6
    truth = np.repeat([0, 1], per)
    nbrs = np.zeros((n, 8), dtype=np.int64)
    sims = np.zeros((n, 8), dtype=np.float32)
    scores = np.zeros((n, 8), dtype=np.float32)
    for u in range(n):
        mates = [v for v in range(n) if truth[v] == truth[u] and v != u]
        others = [v for v in range(n) if truth[v] != truth[u]][:3]
        nbrs[u] = [*mates, *others]
        sims[u] = [0.9] * 5 + [0.6] * 3
        scores[u] = [0.95] * 5 + [0.3] * 3
    return nbrs, sims, scores, truth


def test_sweep_picks_the_best_f_and_reports_every_value():
    truth = np.repeat([0, 1, 2], 4)
    one = np.zeros(12, dtype=np.int64)

    def run(v: float) -> np.ndarray:
        return truth if v == 0.7 else one

    out = sweep([0.5, 0.7, 0.9], run, truth, param="tau", fewer_links="higher", fixed=0.6)
    assert out["chosen"] == 0.7 and out["chosen_f"] == 100.0 and out["best"] == 0.7
    assert out["grid"] == [0.5, 0.7, 0.9] and len(out["f_pairwise"]) == 3
    assert out["fixed"] == 0.6 and out["fixed_f"] < 100.0  # the fixed value is run and reported, never chosen


def test_one_standard_error_rule_takes_the_value_with_fewest_links_among_the_near_best():
    rng = np.random.default_rng(0)
    truth = np.repeat(np.arange(20), 10)
    noisy = np.where(rng.random(truth.size) < 0.9, truth, rng.integers(0, 20, truth.size))
    worse = np.where(rng.random(truth.size) < 0.5, truth, rng.integers(0, 20, truth.size))
    runs = {0.2: worse, 0.4: truth, 0.6: noisy, 0.8: np.zeros_like(truth)}  # 0.4 perfect; 0.8 one cluster
    out = sweep(list(runs), runs.__getitem__, truth, param="floor", fewer_links="higher", rule="one_se")
    f = dict(zip(out["grid"], out["f_pairwise"], strict=True))
    assert out["best"] == 0.4 and out["se"] == 0.0  # perfect labels: no jackknife spread
    assert out["chosen"] == 0.4
    flat = sweep([0.3, 0.5, 0.7], lambda v: truth, truth, param="tau", fewer_links="higher", rule="one_se")
    assert flat["chosen"] == 0.7  # indistinguishable: the one keeping fewest links
    low = sweep([0.3, 0.5, 0.7], lambda v: truth, truth, param="tau", fewer_links="lower", rule="one_se")
    assert low["chosen"] == 0.3
    assert sweep([0.3, 0.5, 0.7], lambda v: truth, truth, param="tau", fewer_links="higher")["chosen"] == 0.3  # best
    runs2 = {0.4: noisy, 0.6: noisy}
    noisy_best = sweep([0.4, 0.6], runs2.__getitem__, truth, param="t", fewer_links="higher", rule="one_se")
    assert noisy_best["se"] > 0 and noisy_best["chosen"] == 0.6
    with pytest.raises(DataError, match="rule"):
        sweep([0.5], lambda v: truth, truth, param="tau", fewer_links="higher", rule="median")
    assert f[0.2] < f[0.6] < f[0.4]


def test_sweep_rejects_bad_grids_and_label_counts():
    truth = np.zeros(4, dtype=np.int64)
    with pytest.raises(DataError, match="finite"):
        sweep([], lambda v: truth, truth, param="tau", fewer_links="higher")
    with pytest.raises(DataError, match="finite"):
        sweep([float("nan")], lambda v: truth, truth, param="tau", fewer_links="higher")
    with pytest.raises(DataError, match="3 labels for 4"):
        sweep([0.5], lambda v: truth[:3], truth, param="tau", fewer_links="higher")
    with pytest.raises(DataError, match="fewer_links"):
        sweep([0.5], lambda v: truth, truth, param="tau", fewer_links="up")


def test_tune_infomap_finds_a_floor_that_cuts_the_bridge():
    nbrs, sims, _, truth = _two_groups_with_a_bridge()
    out = tune_infomap(nbrs, sims, truth, [0.5, 0.8], fixed=0.58)
    assert out["param"] == "sim_floor" and out["chosen"] == 0.8 and out["chosen_f"] == 100.0
    assert out["f_pairwise"][0] < 100.0 and out["fixed_f"] < 100.0  # at 0.5 and 0.58 the bridge merges them


@pytest.mark.parametrize("refine", ["infomap", "naive", "facet", "mhc"])
def test_tune_edge_threshold_runs_each_methods_own_clustering(refine):
    nbrs, sims, scores, truth = _two_groups_with_a_bridge()
    out = tune_edge_threshold(nbrs, scores, sims, truth, [0.1, 0.5], refine=refine, fixed=0.5)
    assert out["param"] == "tau" and len(out["f_pairwise"]) == 2
    if refine != "mhc":  # pruning and union-find chain through the bridge at 0.1, not at 0.5
        assert out["chosen"] == 0.5 and out["chosen_f"] == 100.0 and out["f_pairwise"][0] < 100.0
    else:  # density peaks: F within one standard error of the best; fewer links = the lower tau
        assert out["chosen_f"] >= out["best_f"] - out["se"]
    with pytest.raises(DataError, match="refine"):
        tune_edge_threshold(nbrs, scores, sims, truth, [0.5], refine="magic")


def test_infomap_refinement_takes_the_best_f_and_chaining_refinements_the_one_se_value():
    """Twelve identities; tau 0.2 keeps every link, 0.8 drops the links of one identity, whose photos all look alike
    to the model only weakly."""
    truth = np.repeat(np.arange(12), 6)
    n = truth.size
    nbrs = np.array([[v for v in range(n) if truth[v] == truth[u] and v != u] for u in range(n)])
    sims = np.full(nbrs.shape, 0.9, dtype=np.float32)
    scores = np.full(nbrs.shape, 0.9, dtype=np.float32)
    scores[truth == 0, :] = 0.6  # one identity's links are all weak: tau 0.8 leaves its photos as singletons
    results = {r: tune_edge_threshold(nbrs, scores, sims, truth, [0.2, 0.8], refine=r) for r in ("infomap", "naive")}
    assert results["infomap"]["rule"] == "the best pairwise F" and "standard error" in results["naive"]["rule"]
    assert results["infomap"]["chosen"] == 0.2 == results["infomap"]["best"]
    # naive pruning: among the values within one jackknife standard error of the best, the one keeping fewest links
    naive = results["naive"]
    assert naive["chosen"] >= naive["best"] and naive["chosen_f"] >= naive["best_f"] - naive["se"]


def test_written_sweep_is_read_back_and_bad_files_name_themselves(tmp_path):
    nbrs, sims, _, truth = _two_groups_with_a_bridge()
    path = tmp_path / "infomap.json"
    write_sweep(path, tune_infomap(nbrs, sims, truth, [0.5, 0.8]), method="infomap", part="part0")
    assert read_chosen(path, "sim_floor") == 0.8
    assert json.loads(path.read_text())["part"] == "part0"
    with pytest.raises(DataError, match="expected a tuning of 'tau'"):
        read_chosen(path, "tau")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DataError, match="bad.json"):
        read_chosen(tmp_path / "bad.json", "tau")
