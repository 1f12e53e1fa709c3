"""edge_auc: the learned scores' and the cosine's ROC AUC over the same kNN edges."""

import numpy as np
import pytest

from clipcluster.errors import DataError
from clipcluster.evaluation.edge_quality import edge_auc


def _graph():
    # 4 nodes, two identities {0, 1} and {2, 3}; row 0 lists itself, row 3 has a missing entry
    labels = np.array([7, 7, 9, 9])
    nbrs = np.array([[0, 1, 2], [0, 2, 3], [3, 0, 1], [2, 1, -1]])
    same = labels[nbrs] == labels[:, None]
    return labels, nbrs, same


def test_perfect_and_reversed_scores():
    labels, nbrs, same = _graph()
    sims = np.where(same, 0.4, 0.6).astype(np.float32)  # the cosine ranks every edge wrongly
    out = edge_auc(nbrs, same.astype(np.float32), sims, labels)
    assert out["edges"] == 10  # 12 entries less the self edge and the missing one
    assert out["positive_rate"] == pytest.approx(4 / 10)  # 0-1, 1-0, 2-3, 3-2
    assert out["auc_model"] == 1.0 and out["auc_cosine"] == 0.0
    assert edge_auc(nbrs, (~same).astype(np.float32), sims, labels)["auc_model"] == 0.0


def test_tied_scores_give_one_half():
    labels, nbrs, _ = _graph()
    out = edge_auc(nbrs, np.full(nbrs.shape, 0.75, np.float32), np.zeros(nbrs.shape, np.float32), labels)
    assert out["auc_model"] == out["auc_cosine"] == 0.5


def test_sample_is_seeded_and_bounded():
    rng = np.random.default_rng(0)
    n, k = 500, 20
    labels = rng.integers(0, 25, n)
    nbrs = rng.integers(0, n, (n, k))
    scores, sims = rng.random((n, k)), rng.random((n, k))
    a = edge_auc(nbrs, scores, sims, labels, max_edges=1000, seed=3)
    assert a["edges"] <= 1000 and a["edges"] > 900  # sampled entries less the self edges among them
    assert a == edge_auc(nbrs, scores, sims, labels, max_edges=1000, seed=3)
    assert a != edge_auc(nbrs, scores, sims, labels, max_edges=1000, seed=4)


def test_one_class_has_no_auc():
    labels = np.zeros(3, dtype=int)
    nbrs = np.array([[1, 2], [0, 2], [0, 1]])
    out = edge_auc(nbrs, np.ones((3, 2)), np.ones((3, 2)), labels)
    assert out["positive_rate"] == 1.0 and out["auc_model"] is None and out["auc_cosine"] is None


@pytest.mark.parametrize(
    ("scores_shape", "n_labels", "message"),
    [((4, 2), 4, "need one N x k"), ((4, 3), 5, "5 labels for a kNN graph of 4 rows")],
)
def test_bad_shapes_fail_with_one_line(scores_shape, n_labels, message):
    _, nbrs, _ = _graph()
    with pytest.raises(DataError, match=message):
        edge_auc(nbrs, np.zeros(scores_shape), np.zeros(nbrs.shape), np.zeros(n_labels))
