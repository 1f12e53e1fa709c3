"""STAR-FC's structure-preserving subgraph sampling, used by CLIP-Cluster for training (paper section 3.5).

Why: the training part (MS1M part0, ~0.5M faces) is too large for one GCN forward/backward pass, and a uniform
random subset of faces would destroy the local structure the edge predictor must learn (neighbours of a face
are mostly faces of *similar-looking* identities, the hard negatives). STAR-FC (Shen et al., CVPR 2021)
samples at the identity level instead:

1. compute the centre of every identity (mean of its L2-normalised features, re-normalised);
2. build a kNN graph over the centres;
3. per subgraph pick ``n_seeds`` seed identities and take each seed's ``k_classes`` nearest identities (the seed
   itself included): these neighbourhoods are the preserved "structure";
4. keep a random subset (``class_keep``) of those identities and, of each kept identity, a random subset
   (``node_keep``) of its faces; stop adding identities at the node budget ``max_nodes``;
5. rebuild the kNN graph (``knn_k``, CLIP-Cluster's training k = 80, capped by the subgraph size) inside the
   subgraph, and label each edge 1 when its two faces share an identity.

The randomness in 3 and 4 is what makes every epoch see different graphs over the same identities.

Parameter values. CLIP-Cluster only says it uses STAR-FC's sampling and k = 80 for training. The STAR-FC paper's
own numbers were not available to us; the defaults below are those of STAR-FC's released training code for MS1M
(``sstzal/STAR-FC``, ``src/train_gcn.py`` and ``src/configs/cfg_gcn_ms1m.py``): one seed identity per subgraph,
every identity a seed once per epoch (in a shuffled order here; the released code walks them in label order),
its 1500 nearest identities (``cluster_num + 200``, the seed included), 1300 of them kept at random
(``class_keep = 1300 / 1500``), 90 % of each kept identity's faces (``int(0.9 * size)``), subgraphs with fewer than
100 or more than 100,000 faces skipped there, k = 80.

Deviation: where the released code *skips* a subgraph over the node budget, we stop adding identities at the
budget (identities in their random order, whole identity subsets only, except a single identity larger than the
budget, which is cut to it), so small budgets on large parts still give subgraphs. Subgraphs under ``min_nodes``
are skipped as there.

Determinism: an epoch's subgraphs depend only on ``(seed, epoch index)`` (each subgraph on ``(seed, epoch index,
subgraph index)``), never on how many epochs ran before in this process, so a resumed run sees the same graphs.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from clipcluster.errors import DataError
from clipcluster.graph.knn import INDEXES, build_knn

log = logging.getLogger(__name__)

# STAR-FC released code (MS1M): cluster_num = 1300, searched cluster_num + 200 nearest centres, 90 % of faces.
STARFC_K_CLASSES = 1500
STARFC_CLASS_KEEP = 1300 / 1500
STARFC_NODE_KEEP = 0.9
STARFC_MIN_NODES = 100
STARFC_MAX_NODES = 100_000
TRAIN_KNN_K = 80  # CLIP-Cluster section 4.1: k = 80 for GCN training ("more wrong edges to balance" the labels)

# Distinct tags in the seed sequences: numpy's SeedSequence pads with zeros, so [s, e] and [s, e, 0] collide.
_TAG_ORDER = 1
_TAG_SUBGRAPH = 2


@dataclass(frozen=True, eq=False)  # eq on arrays is ambiguous
class Subgraph:
    """One sampled training subgraph.

    Attributes:
        epoch: epoch index it was sampled for.
        index: its position within the epoch (skipped subgraphs keep their index, so gaps are possible).
        seed_classes: label values of the seed identities.
        classes: label values of the identities whose faces were taken (sorted).
        nodes: indices of its faces into the training part (sorted ascending, int64).
        labels: label of each node (``labels[i]`` is the identity of ``nodes[i]``).
        nbrs: n x k local kNN (indices into ``nodes``, self excluded, ``-1`` = missing), most similar first.
        sims: n x k cosine similarities of those neighbours (float32, ``-inf`` where missing).
        pair_labels: n x k bool, True where node i and its neighbour share an identity (False where missing).
    """

    epoch: int
    index: int
    seed_classes: np.ndarray
    classes: np.ndarray
    nodes: np.ndarray
    labels: np.ndarray
    nbrs: np.ndarray
    sims: np.ndarray
    pair_labels: np.ndarray

    @property
    def n(self) -> int:
        """Number of faces (nodes)."""
        return int(self.nodes.shape[0])

    @property
    def k(self) -> int:
        """Neighbours per node in the local kNN graph."""
        return int(self.nbrs.shape[1])

    @property
    def valid(self) -> np.ndarray:
        """n x k mask of real (not missing) neighbours."""
        return self.nbrs >= 0

    def edges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The valid kNN edges as flat ``(src, dst, same_identity)`` arrays, local indices, row-major order."""
        valid = self.valid
        src = np.broadcast_to(np.arange(self.n, dtype=np.int64)[:, None], self.nbrs.shape)[valid]
        return src, self.nbrs[valid], self.pair_labels[valid]


class SubgraphSampler:
    """Structure-preserving subgraph sampler over one labelled training part (see the module docstring).

    Args:
        feats: N x D features of the training part, L2-normalised rows (float32 or castable).
        labels: N identity labels (any integers; need not be contiguous).
        n_seeds: seed identities per subgraph. STAR-FC code: 1.
        k_classes: nearest identities per seed, the seed included (capped at the number of identities).
            STAR-FC code: 1500 (``cluster_num + 200``).
        class_keep: fraction of the seeds' neighbourhood identities kept, in (0, 1]; at least one is kept.
            STAR-FC code: 1300 / 1500.
        node_keep: fraction of each kept identity's faces taken, in (0, 1] (``int(node_keep * size)``, at least
            one). STAR-FC code: 0.9.
        max_nodes: node budget per subgraph; identities are added in random order until the next would exceed it.
            STAR-FC code: 100,000 (there, larger subgraphs are skipped instead).
        min_nodes: subgraphs with fewer faces are skipped (never fewer than 2, a kNN needs a neighbour).
            STAR-FC code: 100.
        knn_k: neighbours per face in the rebuilt kNN graph, capped at ``subgraph size - 1``. CLIP-Cluster: 80.
        subgraphs_per_epoch: subgraphs per epoch; ``None`` makes every identity a seed once per epoch
            (``ceil(n_classes / n_seeds)``), as STAR-FC's code does. Larger values wrap around the shuffled order.
        seed: base seed; each epoch's subgraphs depend only on ``(seed, epoch index)``.
        knn_index: :func:`clipcluster.graph.knn.build_knn` back end for the rebuilt graphs (``exact``: our default, the
            subgraphs are small enough; STAR-FC used exact faiss search too).
        knn_threads: faiss threads for those builds (``None``: faiss default).
    """

    def __init__(
        self,
        feats: np.ndarray,
        labels: np.ndarray,
        *,
        n_seeds: int = 1,
        k_classes: int = STARFC_K_CLASSES,
        class_keep: float = STARFC_CLASS_KEEP,
        node_keep: float = STARFC_NODE_KEEP,
        max_nodes: int = STARFC_MAX_NODES,
        min_nodes: int = STARFC_MIN_NODES,
        knn_k: int = TRAIN_KNN_K,
        subgraphs_per_epoch: int | None = None,
        seed: int = 0,
        knn_index: str = "exact",
        knn_threads: int | None = None,
    ) -> None:
        feats, labels = _check_inputs(feats, labels)
        _check_int("n_seeds", n_seeds, 1)
        _check_int("k_classes", k_classes, 1)
        _check_fraction("class_keep", class_keep)
        _check_fraction("node_keep", node_keep)
        _check_int("max_nodes", max_nodes, 2)
        _check_int("min_nodes", min_nodes, 0)
        _check_int("knn_k", knn_k, 1)
        _check_int("seed", seed, 0)
        if subgraphs_per_epoch is not None:
            _check_int("subgraphs_per_epoch", subgraphs_per_epoch, 1)
        if knn_index not in INDEXES:
            raise DataError("sampler", f"knn_index must be one of {INDEXES}, got {knn_index!r}")
        if min_nodes > max_nodes:
            raise DataError("sampler", f"min_nodes ({min_nodes}) exceeds max_nodes ({max_nodes})")

        self.feats = feats
        self.labels = labels
        self.n_seeds = int(n_seeds)
        self.class_keep = float(class_keep)
        self.node_keep = float(node_keep)
        self.max_nodes = int(max_nodes)
        self.min_nodes = max(2, int(min_nodes))
        self.knn_k = int(knn_k)
        self.seed = int(seed)
        self.knn_index = knn_index
        self.knn_threads = knn_threads

        self.classes, inverse = np.unique(labels, return_inverse=True)
        self.n_classes = int(self.classes.shape[0])
        self._members_order = np.argsort(inverse, kind="stable").astype(np.int64)
        self._members_start = np.concatenate([[0], np.cumsum(np.bincount(inverse, minlength=self.n_classes))])
        self.centres = _class_centres(feats, inverse, self.n_classes)
        self.k_classes = min(int(k_classes), self.n_classes)
        self.structure = self._class_neighbourhoods()
        self.subgraphs_per_epoch = (
            math.ceil(self.n_classes / self.n_seeds) if subgraphs_per_epoch is None else int(subgraphs_per_epoch)
        )

    def _class_neighbourhoods(self) -> np.ndarray:
        """n_classes x k_classes: each identity followed by its ``k_classes - 1`` nearest identities (centres)."""
        own = np.arange(self.n_classes, dtype=np.int64)[:, None]
        if self.k_classes == 1:
            return own
        graph = build_knn(self.centres, self.k_classes - 1, index="exact", progress=False, threads=self.knn_threads)
        return np.concatenate([own, graph.nbrs], axis=1)

    def members(self, class_index: int) -> np.ndarray:
        """Indices (into the part) of the faces of identity ``self.classes[class_index]``, ascending."""
        return self._members_order[self._members_start[class_index] : self._members_start[class_index + 1]]

    def seed_order(self, epoch: int) -> np.ndarray:
        """The shuffled identity indices whose consecutive groups of ``n_seeds`` seed this epoch's subgraphs."""
        _check_int("epoch", epoch, 0)
        rng = np.random.default_rng([self.seed, epoch, _TAG_ORDER])
        need = self.subgraphs_per_epoch * self.n_seeds
        rounds = [rng.permutation(self.n_classes) for _ in range(math.ceil(need / self.n_classes))]
        return np.concatenate(rounds)[:need].astype(np.int64)

    def epoch(self, epoch: int) -> Iterator[Subgraph]:
        """Yield this epoch's subgraphs (lazily: each kNN graph is built when its subgraph is reached)."""
        order = self.seed_order(epoch)
        skipped = 0
        for i in range(self.subgraphs_per_epoch):
            sub = self._sample(epoch, i, order[i * self.n_seeds : (i + 1) * self.n_seeds])
            if sub is None:
                skipped += 1
                continue
            yield sub
        if skipped:
            n_all, floor = self.subgraphs_per_epoch, self.min_nodes
            log.info("epoch %d: skipped %d of %d subgraphs under min_nodes=%d", epoch, skipped, n_all, floor)

    def subgraph(self, epoch: int, index: int) -> Subgraph | None:
        """Subgraph ``index`` of ``epoch`` (``None`` where it falls under ``min_nodes``): random access for tests."""
        _check_int("index", index, 0)
        if index >= self.subgraphs_per_epoch:
            raise DataError("sampler", f"subgraph index {index} >= subgraphs_per_epoch {self.subgraphs_per_epoch}")
        order = self.seed_order(epoch)
        return self._sample(epoch, index, order[index * self.n_seeds : (index + 1) * self.n_seeds])

    def _sample(self, epoch: int, index: int, seeds: np.ndarray) -> Subgraph | None:
        rng = np.random.default_rng([self.seed, epoch, _TAG_SUBGRAPH, index])
        candidates = np.unique(self.structure[seeds].ravel())
        n_keep = max(1, int(round(self.class_keep * candidates.shape[0])))
        chosen = rng.choice(candidates, size=n_keep, replace=False)  # random order: the budget's cut order

        parts: list[np.ndarray] = []
        kept: list[int] = []
        total = 0
        for c in chosen:
            members = self.members(int(c))
            take = max(1, int(self.node_keep * members.shape[0]))
            if kept and total + take > self.max_nodes:
                break
            take = min(take, self.max_nodes)  # a lone identity larger than the budget is cut to it
            parts.append(rng.choice(members, size=take, replace=False))
            kept.append(int(c))
            total += take
        if total < self.min_nodes:
            return None

        nodes = np.sort(np.concatenate(parts)).astype(np.int64)
        local_labels = self.labels[nodes]
        k = min(self.knn_k, nodes.shape[0] - 1)
        graph = build_knn(self.feats[nodes], k, index=self.knn_index, progress=False, threads=self.knn_threads)
        valid = graph.nbrs >= 0
        pair = valid & (local_labels[np.where(valid, graph.nbrs, 0)] == local_labels[:, None])
        return Subgraph(
            epoch=epoch,
            index=index,
            seed_classes=self.classes[seeds],
            classes=np.sort(self.classes[np.asarray(kept, dtype=np.int64)]),
            nodes=nodes,
            labels=local_labels,
            nbrs=graph.nbrs,
            sims=graph.sims,
            pair_labels=pair,
        )


def _class_centres(feats: np.ndarray, inverse: np.ndarray, n_classes: int) -> np.ndarray:
    """Re-normalised mean feature of each identity (a sparse one-hot product: no N x D copy)."""
    n = feats.shape[0]
    onehot = sp.csr_matrix((np.ones(n, dtype=np.float32), (inverse, np.arange(n))), shape=(n_classes, n))
    sums = np.asarray(onehot @ feats, dtype=np.float32)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    if (norms <= 1e-12).any():
        bad = int(np.argmax(norms[:, 0] <= 1e-12))
        raise DataError("labels", f"identity index {bad} has a zero mean feature; its centre has no direction")
    return np.ascontiguousarray(sums / norms, dtype=np.float32)


def _check_inputs(feats: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(feats, np.ndarray) or feats.ndim != 2:
        raise DataError("features", f"expected an N x D array, got {getattr(feats, 'shape', type(feats))}")
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.shape[0] != feats.shape[0]:
        raise DataError("labels", f"expected {feats.shape[0]} labels (one per feature row), got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise DataError("labels", f"identity labels must be integers, got dtype {labels.dtype}")
    if feats.shape[0] < 2:
        raise DataError("features", f"need at least 2 rows to sample subgraphs, got {feats.shape[0]}")
    feats = np.ascontiguousarray(feats, dtype=np.float32)
    if not np.isfinite(feats).all():
        raise DataError("features", "contain NaN or infinite values")
    return feats, labels.astype(np.int64, copy=False)


def _check_int(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise DataError("sampler", f"{name} must be an integer >= {low}, got {value!r}")


def _check_fraction(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 < float(value) <= 1.0:
        raise DataError("sampler", f"{name} must be a fraction in (0, 1], got {value!r}")
