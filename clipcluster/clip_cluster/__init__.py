"""CLIP-Cluster (ICCV 2023): CLIP-guided attribute hallucination, neighbour-aware proxies, GCN edge prediction.

``targets`` (prompt-row indices per hallucination), ``modules`` (the networks), ``losses``, ``model``
(:class:`CLIPClusterModel` built from a config dict) and ``score`` (whole-graph inference and clustering).
"""

# Thread and MKL settings that must precede torch: clipcluster/__init__.py (imported before this package).

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
