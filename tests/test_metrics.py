"""Tests of clipcluster.evaluation.metrics against plain-definition references (O(N^2) pairs, per-sample BCubed)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from sklearn.metrics import normalized_mutual_info_score

from clipcluster.errors import DataError
from clipcluster.evaluation.metrics import contingency, evaluate, factorize, pairwise, pairwise_f_jackknife_se

KEYS = ("pairwise_precision", "pairwise_recall", "pairwise_f", "bcubed_precision", "bcubed_recall", "bcubed_f", "nmi")


def _f(p: float, r: float) -> float:
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def reference(gt: list, pred: list) -> dict[str, float]:
    """The definitions written out literally: every unordered pair, every sample; NMI from sklearn."""
    n = len(gt)
    tp = pred_pairs = gt_pairs = 0
    for i, j in itertools.combinations(range(n), 2):
        same_pred = pred[i] == pred[j]
        same_gt = gt[i] == gt[j]
        pred_pairs += same_pred
        gt_pairs += same_gt
        tp += same_pred and same_gt
    pp = tp / pred_pairs if pred_pairs else 1.0  # no predicted pair: no wrong pair made
    pr = tp / gt_pairs if gt_pairs else 1.0  # no gt pair: nothing to find
    bp = br = 0.0
    for i in range(n):
        same_pred = [j for j in range(n) if pred[j] == pred[i]]
        same_gt = [j for j in range(n) if gt[j] == gt[i]]
        both = sum(1 for j in same_pred if gt[j] == gt[i])
        bp += both / len(same_pred)
        br += both / len(same_gt)
    bp, br = bp / n, br / n
    return {
        "pairwise_precision": pp,
        "pairwise_recall": pr,
        "pairwise_f": _f(pp, pr),
        "bcubed_precision": bp,
        "bcubed_recall": br,
        "bcubed_f": _f(bp, br),
        "nmi": float(normalized_mutual_info_score(gt, pred)),
    }


def assert_matches(got: dict, want: dict, tol: float = 1e-12) -> None:
    for key in KEYS:
        assert got[key] == pytest.approx(want[key], abs=tol), key


@pytest.mark.parametrize("seed", range(6))
def test_random_labelings_match_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for n in [1, 2, 3, 5, 17, 60, 200]:
        k_gt = int(rng.integers(1, n + 1))
        k_pred = int(rng.integers(1, n + 1))
        gt = rng.integers(0, k_gt, n)
        # Half the time a noisy copy of gt (realistic, high scores), otherwise independent.
        if rng.random() < 0.5:
            pred = np.where(rng.random(n) < 0.2, rng.integers(0, k_pred, n), gt)
        else:
            pred = rng.integers(0, k_pred, n)
        got = evaluate(gt, pred)
        assert_matches(got, reference(gt.tolist(), pred.tolist()))
        assert got["n_samples"] == n
        assert got["n_gt_clusters"] == len(set(gt.tolist()))
        assert got["n_pred_clusters"] == len(set(pred.tolist()))
        assert all(0.0 <= got[k] <= 1.0 for k in KEYS)


def test_identical_labelings_score_one() -> None:
    gt = np.array([3, 3, 1, 7, 7, 7, 2])
    got = evaluate(gt, gt)
    assert all(got[k] == pytest.approx(1.0) for k in KEYS)
    # Same partition under different label names is also perfect.
    assert all(evaluate(gt, gt * -1000 + 5)[k] == pytest.approx(1.0) for k in KEYS)


def test_all_singletons_predicted() -> None:
    gt = [0, 0, 0, 1, 1, 2]
    got = evaluate(gt, list(range(6)))
    assert got["pairwise_precision"] == 1.0  # no predicted pair, so no wrong pair
    assert got["pairwise_recall"] == 0.0
    assert got["pairwise_f"] == 0.0
    assert got["bcubed_precision"] == 1.0
    assert got["bcubed_recall"] == pytest.approx((3 * (1 / 3) + 2 * (1 / 2) + 1) / 6)
    assert_matches(got, reference(gt, list(range(6))))


def test_gt_all_singletons() -> None:
    pred = [0, 0, 1, 1, 1, 2]
    got = evaluate(list(range(6)), pred)
    assert got["pairwise_recall"] == 1.0  # no gt pair to find
    assert got["pairwise_precision"] == 0.0
    assert got["pairwise_f"] == 0.0
    assert got["bcubed_recall"] == 1.0
    assert got["nmi"] == pytest.approx(normalized_mutual_info_score(list(range(6)), pred))


def test_both_all_singletons_is_perfect() -> None:
    got = evaluate([5, 6, 7, 8], [1, 2, 3, 4])
    assert all(got[k] == pytest.approx(1.0) for k in KEYS)


def test_one_cluster_each_side() -> None:
    # Both unsplit: perfect by every measure (NMI 1.0 by sklearn's convention).
    got = evaluate([4] * 5, [9] * 5)
    assert all(got[k] == 1.0 for k in KEYS)
    # gt split in two, pred one cluster: recall 1, precision = same-gt pairs / all pairs, NMI exactly 0.
    gt = [0, 0, 0, 1, 1]
    got = evaluate(gt, [0] * 5)
    assert got["pairwise_recall"] == 1.0
    assert got["pairwise_precision"] == pytest.approx((3 + 1) / 10)
    assert got["bcubed_precision"] == pytest.approx((3 * 3 / 5 + 2 * 2 / 5) / 5)
    assert got["nmi"] == 0.0
    assert evaluate([0] * 5, gt)["nmi"] == 0.0


def test_single_sample() -> None:
    got = evaluate([42], ["x"])
    assert all(got[k] == 1.0 for k in KEYS)
    assert (got["n_samples"], got["n_gt_clusters"], got["n_pred_clusters"]) == (1, 1, 1)


def test_label_values_do_not_matter() -> None:
    rng = np.random.default_rng(7)
    gt = rng.integers(0, 12, 150)
    pred = np.where(rng.random(150) < 0.3, rng.integers(0, 20, 150), gt)
    base = evaluate(gt, pred)
    # Bijective renamings: negative, huge (beyond the dense path's span), uint64 near the top, strings, objects.
    renamings = [
        lambda x: -7 * x - 3,
        lambda x: x * 10**15 + 1,
        lambda x: np.uint64(2**64 - 1) - x.astype(np.uint64),
        lambda x: np.array([f"id{v:03d}" for v in x]),
        lambda x: [("t", int(v)) if v % 2 else int(v) for v in x],  # mixed ints and tuples via object array
        lambda x: x.astype(np.int8) - 100,
        lambda x: x.astype(np.float64) / 3,
    ]
    for rename in renamings:
        g = rename(gt)
        p = rename(pred)
        if isinstance(g, list):
            g = np.array(g + [None], dtype=object)[:-1]  # keep tuples as objects, not a 2-d array
            p = np.array(p + [None], dtype=object)[:-1]
        got = evaluate(g, p)
        assert_matches(got, base)
        assert got["n_pred_clusters"] == base["n_pred_clusters"]
    # A random permutation of the cluster ids of one side changes nothing either.
    perm = rng.permutation(20)
    assert_matches(evaluate(gt, perm[pred]), base)


def test_strings_and_ints_are_distinct_labels() -> None:
    # np.asarray([1, "1"]) would make both the string "1"; they are different labels.
    got = evaluate([1, "1", 1, "1"], [0, 0, 1, 1])
    assert got["n_gt_clusters"] == 2
    assert_matches(got, reference([1, "1", 1, "1"], [0, 0, 1, 1]))


def test_swapping_sides_swaps_precision_and_recall() -> None:
    rng = np.random.default_rng(3)
    gt = rng.integers(0, 10, 300)
    pred = rng.integers(0, 25, 300)
    a, b = evaluate(gt, pred), evaluate(pred, gt)
    for kind in ("pairwise", "bcubed"):
        assert a[f"{kind}_precision"] == pytest.approx(b[f"{kind}_recall"], abs=1e-15)
        assert a[f"{kind}_f"] == pytest.approx(b[f"{kind}_f"], abs=1e-15)
    assert a["nmi"] == pytest.approx(b["nmi"], abs=1e-15)


def test_nmi_matches_sklearn_on_larger_inputs() -> None:
    rng = np.random.default_rng(11)
    gt = rng.integers(0, 500, 20_000)
    pred = np.where(rng.random(20_000) < 0.25, rng.integers(0, 900, 20_000), gt * 2 + rng.integers(0, 2, 20_000))
    assert evaluate(gt, pred)["nmi"] == pytest.approx(normalized_mutual_info_score(gt, pred), abs=1e-12)


def test_large_counts_do_not_overflow() -> None:
    # One gt cluster of 2M split into two predicted halves: C(2M, 2) ~ 2e12 pairs overflows int32 arithmetic.
    n = 2_000_000
    gt = np.zeros(n, dtype=np.int64)
    pred = np.repeat(np.array([0, 1]), n // 2)
    got = evaluate(gt, pred)
    half = n // 2
    assert got["pairwise_precision"] == 1.0
    assert got["pairwise_recall"] == pytest.approx(2 * math.comb(half, 2) / math.comb(n, 2), rel=1e-14)
    assert got["bcubed_recall"] == pytest.approx(0.5, rel=1e-14)
    assert got["nmi"] == 0.0


def test_different_lengths_raise_clear_error() -> None:
    with pytest.raises(DataError, match=r"gt and pred have different lengths \(5 vs 4\)"):
        evaluate([0, 0, 1, 1, 2], [0, 1, 2, 3])
    with pytest.raises(DataError, match=r"^clusters/x\.labels: gt and pred have different lengths"):
        evaluate(np.zeros(3), np.zeros(2), where="clusters/x.labels")


@pytest.mark.parametrize(
    ("gt", "pred", "message"),
    [
        ([], [], "empty"),
        (np.zeros((2, 3)), np.zeros((2, 3)), "gt labels must be 1-d"),
        ([1, 2], np.zeros((2, 1)), "pred labels must be 1-d"),
        (5, 5, "must be 1-d"),
    ],
)
def test_bad_input_raises(gt: object, pred: object, message: str) -> None:
    with pytest.raises(DataError, match=message):
        evaluate(gt, pred)


def test_factorize_codes_are_dense() -> None:
    codes, k = factorize(np.array([-128, 127, 0, 127], dtype=np.int8))
    assert k == 3 and codes.tolist() == [0, 2, 1, 2]
    codes, k = factorize(np.array([2**64 - 1, 3, 2**64 - 1], dtype=np.uint64))
    assert k == 2 and codes[0] == codes[2] != codes[1]
    codes, k = factorize(np.array([np.nan, 1.0, np.nan]))
    assert k == 2 and codes[0] == codes[2] != codes[1]


def test_pairwise_f_jackknife_se_equals_leaving_each_identity_out_by_hand():

    rng = np.random.default_rng(3)
    gt = rng.integers(0, 12, 300)
    pred = np.where(rng.random(300) < 0.8, gt, rng.integers(0, 15, 300))
    loo = np.array([pairwise(contingency(gt[gt != i], pred[gt != i]))[2] for i in np.unique(gt)])
    want = np.sqrt((loo.size - 1) / loo.size * ((loo - loo.mean()) ** 2).sum())
    assert pairwise_f_jackknife_se(contingency(gt, pred)) == pytest.approx(want, rel=1e-12)
    assert pairwise_f_jackknife_se(contingency(gt, gt)) == 0.0
    assert np.isnan(pairwise_f_jackknife_se(contingency(np.zeros(5), np.arange(5))))
