"""CLIP-Cluster (ICCV 2023): CLIP-guided attribute hallucination, neighbour-aware proxies, GCN edge prediction.

``targets`` (prompt-row indices per hallucination), ``modules`` (the networks), ``losses``, ``model``
(:class:`CLIPClusterModel` built from a config dict) and ``score`` (whole-graph inference and clustering).
"""

import os

# Idle OpenMP threads spin by default; on a shared 2-core machine that made 2 threads 2-3x slower than 1
# (measured on score_edges). It must be set before torch loads its OpenMP runtime.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# Same seed, same numbers: MKL may otherwise pick its thread count by the machine's load (MKL_DYNAMIC) and its code
# path by memory alignment (MKL_CBWR); both change float summation order.
os.environ.setdefault("MKL_DYNAMIC", "FALSE")
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")


from clipcluster.clip_cluster.losses import (
    clip_loss,
    cosine_distance,
    cross_loss,
    edge_targets,
    id_loss,
    total_loss,
    transfer_pretrain_loss,
)
from clipcluster.clip_cluster.model import DEFAULT_CONFIG, CLIPClusterModel, model_config
from clipcluster.clip_cluster.modules import (
    FUSIONS,
    GCNEdgePredictor,
    Hallucinator,
    NeighbourGCN,
    ProxyGenerator,
    SingleQueryAttention,
    SpaceTransfer,
    adjacency,
)
from clipcluster.clip_cluster.score import knn_adjacency, naive_prune, prune_and_refine, score_edges
from clipcluster.clip_cluster.targets import hallucination_targets

__all__ = [
    "DEFAULT_CONFIG",
    "FUSIONS",
    "CLIPClusterModel",
    "GCNEdgePredictor",
    "Hallucinator",
    "NeighbourGCN",
    "ProxyGenerator",
    "SingleQueryAttention",
    "SpaceTransfer",
    "adjacency",
    "clip_loss",
    "cosine_distance",
    "cross_loss",
    "edge_targets",
    "hallucination_targets",
    "id_loss",
    "knn_adjacency",
    "model_config",
    "naive_prune",
    "prune_and_refine",
    "score_edges",
    "total_loss",
    "transfer_pretrain_loss",
]
