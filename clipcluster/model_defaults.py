"""CLIP-Cluster's model keys, their defaults and their checks, without torch.

Apart from :mod:`clipcluster.clip_cluster.model` so that the workflow can resolve a model's whole config (defaults
included) when it parses the Snakefile: the config then sits in the training rule's params, and a changed default
retrains the models that it changes instead of leaving them stale.
"""

from __future__ import annotations

from typing import Any

from clipcluster.errors import DataError

__all__ = ["DEFAULT_CONFIG", "FUSIONS", "PAIR_FEATURES", "model_config"]

FUSIONS: tuple[str, ...] = ("average", "self", "cross")
PAIR_FEATURES: tuple[str, ...] = ("product", "concat")

DEFAULT_CONFIG: dict[str, Any] = {
    "face_dim": 256,  # f
    "clip_dim": 512,  # i, t
    "n_hallucinations": 10,  # M
    "hallucinate": True,  # False: "no hallucination" ablation (edge GCN on plain f)
    "hallucinator_hidden": 256,  # M_theta: 2 * clip_dim -> hidden -> clip_dim (256: inference-time budget)
    "fusion": "cross",  # average | self | cross (Table 1)
    "query_layers": 1,  # L of the neighbour GCN (eq. 5)
    "decoder_depth": 1,  # R (eq. 6)
    # eq. 6 as written: the proxy mixes the face's own tokens, no residual from the neighbour query; True = a
    # standard decoder's residual (the proxy is then mostly the neighbourhood mean; see ProxyGenerator)
    "query_residual": False,
    "heads": 4,
    "mlp_hidden": 512,  # transformer MLP width
    "dropout": 0.0,
    "edge_layers": 2,  # GCN layers of the edge predictor (eq. 7)
    "edge_hidden": 256,
    "edge_mlp_hidden": 256,
    # how "paired features corresponding to an edge are fed into the MLP" (paper 3.4): "product" = the symmetric
    # features [h_u * h_v, |h_u - h_v|] of the embeddings projected to pair_dim (the reading that learns a
    # similarity; ours), "concat" = [v_u; v_v] (the literal reading; ranks edges below the cosine at our budgets)
    "pair_features": "product",
    "pair_dim": 128,
    "pair_cosine": True,  # the edge's input cosine (kNN similarity of f) is one more pair feature (ours)
    # the cosine as it is (False) or standardised on the training edges (True: for features whose kNN cosines sit
    # in a narrow range, such as dlib's; clipcluster.training.pair_cosine)
    "pair_cosine_standardise": False,
    "prior_init": True,  # the edge classifier starts at the training edges' class prior (ours; edge_prior.py)
    # the "same" logit = a logistic baseline on the edge's cosine and its ends' local densities (fit on training
    # edges, frozen) + the network's learned correction (ours; clipcluster.training.pair_baseline)
    "pair_baseline": True,
    "baseline_local_k": 10,  # neighbours behind a face's local density (CSLS's k)
    # the pair's estimated attributes (its faces' hallucination source prompts through CLIP's text embeddings) as
    # one more input of the edge MLP, only where the model reads CLIP (ours; modules.PairAttributes). Off: it helped
    # on one twin seed and hurt on another (docs/edge_quality.md)
    "pair_attributes": False,
    "pair_attr_dim": 16,
    # False: no network at all, the "same" logit is the pair baseline's alone (the workflow's "pair baseline +
    # Infomap" row, the floor the learned correction is measured against); needs pair_baseline, reads no CLIP
    "learned_correction": True,
    # the learned correction has mean zero over the scored graph's edges (each training subgraph's, the whole test
    # graph's at inference): it re-ranks edges and the baseline alone sets their level. Uncentred, the network lifted
    # every edge (+0.7 logit for cross, +1.1 without hallucination, on part0 and part1-9 alike), which lowered its
    # effective tau and merged identities at scale (ours; docs/edge_quality.md)
    "centre_correction": True,
    "edge_weighted": False,  # adjacency weights: False = binary kNN, True = the given edge weights (similarities)
    "lambda_id": 1.0,  # lambda (eq. 8)
    "mu_cross": 1.0,  # mu (eq. 8)
    "seed": 0,  # parameter initialisation
}


def model_config(config: dict[str, Any] | None = None) -> dict[str, Any]:
    """:data:`DEFAULT_CONFIG` updated with ``config``; unknown keys and bad values raise a one-line DataError."""
    config = dict(config or {})
    unknown = sorted(set(config) - set(DEFAULT_CONFIG))
    if unknown:
        raise DataError("clip_cluster config", f"unknown key(s) {unknown}; known: {sorted(DEFAULT_CONFIG)}")
    out = {**DEFAULT_CONFIG, **config}
    if out["fusion"] not in FUSIONS:
        raise DataError("clip_cluster config", f"fusion {out['fusion']!r} not in {FUSIONS}")
    if not out["learned_correction"] and not out["pair_baseline"]:
        raise DataError(
            "clip_cluster config", "learned_correction=False keeps only the pair baseline: set pair_baseline"
        )
    if not out["learned_correction"] and out["hallucinate"]:
        raise DataError("clip_cluster config", "learned_correction=False reads no CLIP: set hallucinate to False")
    if out["pair_features"] not in PAIR_FEATURES:
        raise DataError("clip_cluster config", f"pair_features {out['pair_features']!r} not in {PAIR_FEATURES}")
    for key in (
        "face_dim", "clip_dim", "n_hallucinations", "hallucinator_hidden", "decoder_depth", "heads", "pair_dim",
        "baseline_local_k", "pair_attr_dim",
    ):  # fmt: skip
        if int(out[key]) < 1:
            raise DataError("clip_cluster config", f"{key} must be >= 1, got {out[key]}")
    if out["face_dim"] % out["heads"]:
        raise DataError("clip_cluster config", f"face_dim {out['face_dim']} not divisible by heads {out['heads']}")
    return out
