"""benchmarks/diagnose_clipcluster_edges.py's grouping of edge AUC by the two ends' true poses."""

from __future__ import annotations

import numpy as np
from conftest import load_benchmark


def _bench():
    return load_benchmark("diagnose_clipcluster_edges")


def test_auc_by_pose_groups_edges_by_how_many_ends_are_profiles():
    # nodes 0-3 frontal, 4-7 profile; identities {0, 1, 4, 5} and {2, 3, 6, 7}
    truth = np.array([0, 0, 1, 1, 0, 0, 1, 1])
    profile = np.arange(8) >= 4
    nbrs = np.array([[1, 2], [0, 6], [3, 6], [2, 0], [5, 6], [4, 1], [7, 2], [6, 4]])
    ok = nbrs >= 0
    # a score right on frontal-frontal edges, wrong on profile-profile ones, right on frontal-profile ones
    src = np.repeat(np.arange(8), 2).reshape(8, 2)
    same = truth[src] == truth[nbrs]
    n_prof = profile[src].astype(int) + profile[nbrs]
    score = np.where(n_prof == 2, 1.0 - same, same).astype(float)
    out = _bench()._by_pose(profile, nbrs, ok, truth, {"model": score, "flat": np.full((8, 2), 0.5)})
    assert "by true pose, AUC model / flat" in out
    assert "FF (6 edges) 1.0000 / 0.5000" in out
    assert "FP (4 edges) 1.0000 / 0.5000" in out
    assert "PP (6 edges) 0.0000 / 0.5000" in out
    # a group with no edges (all frontal here) or with one class only has no AUC and is left out
    frontal = _bench()._by_pose(np.zeros(8, bool), nbrs, ok, truth, {"model": score})
    assert "FF (16 edges)" in frontal and "FP" not in frontal and "PP" not in frontal
