"""The peers' non-learned clustering stages (MHC's NDDe + TPDi + density peaks, FaceT's linkage union-find).

Both peers learn a per-edge score on the kNN graph (MHC a same-identity similarity, FaceT a linkage probability)
and then cluster with a fixed, training-free procedure. This package holds those procedures, sparse throughout
(memory O(N k), nothing N x N), so the learned scores can be plugged in when they exist. Fed raw cosine
similarities instead of the learned scores they are sanity checks of the machinery, not the peers' results.
"""

from clipcluster.peers.facet_cluster import FACET_TAU, facet_cluster
from clipcluster.peers.mhc_cluster import (
    MHC_EPS,
    MHC_K,
    MHC_MAX_ITER,
    MHC_TAU,
    MhcResult,
    density_peak_clustering,
    mhc_cluster,
    ndde,
    tpdi,
    transition_matrix,
)

__all__ = [
    "FACET_TAU",
    "MHC_EPS",
    "MHC_K",
    "MHC_MAX_ITER",
    "MHC_TAU",
    "MhcResult",
    "density_peak_clustering",
    "facet_cluster",
    "mhc_cluster",
    "ndde",
    "tpdi",
    "transition_matrix",
]
