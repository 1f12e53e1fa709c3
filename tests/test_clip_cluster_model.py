"""CLIP-Cluster model: targets, module shapes, losses by hand, gradient flow, whole-graph scoring, refinement."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from clipcluster import prompts
from clipcluster.clip_cluster import (
    FUSIONS,
    CLIPClusterModel,
    GCNEdgePredictor,
    Hallucinator,
    NeighbourGCN,
    ProxyGenerator,
    SingleQueryAttention,
    SpaceTransfer,
    adjacency,
    clip_loss,
    cosine_distance,
    cross_loss,
    edge_targets,
    hallucination_targets,
    id_loss,
    knn_adjacency,
    model_config,
    naive_prune,
    prune_and_refine,
    score_edges,
    total_loss,
    transfer_pretrain_loss,
)
from clipcluster.errors import DataError
from clipcluster.training.pair_baseline import local_density


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one torch thread avoids OpenMP barrier stalls on a loaded machine (10x faster measured)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


SMALL = {"hallucinator_hidden": 32, "mlp_hidden": 32, "edge_hidden": 32, "edge_mlp_hidden": 16, "heads": 4,
         "baseline_local_k": 3}  # fmt: skip


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _attrs(n: int, rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "gender": rng.choice(prompts.GENDERS, n),
            "age_group": rng.choice(prompts.AGE_VALUES, n),
            "expression": rng.choice(prompts.EXPRESSIONS, n),
            "pose": rng.choice(prompts.POSES, n),
        }
    )


@pytest.fixture(scope="module")
def graph() -> dict[str, np.ndarray]:
    """40 faces in 4 identities, k = 6 kNN lists with one missing entry."""
    rng = np.random.default_rng(0)
    n, k = 40, 6
    labels = np.repeat(np.arange(4), 10)
    f = _unit(rng.normal(size=(4, 256))[labels] + 0.7 * rng.normal(size=(n, 256)))
    i = _unit(rng.normal(size=(n, 512)))
    sim = f @ f.T
    np.fill_diagonal(sim, -np.inf)
    nbrs = np.argsort(-sim, axis=1)[:, :k].astype(np.int64)
    sims = np.take_along_axis(sim, nbrs, axis=1).astype(np.float32)
    nbrs[3, -1], sims[3, -1] = -1, -np.inf
    src, tgt = hallucination_targets(_attrs(n, rng))
    text = _unit(rng.normal(size=(26, 512)))
    return {"f": f, "i": i, "nbrs": nbrs, "sims": sims, "labels": labels, "src": src, "tgt": tgt, "text": text}


def _batch(g: dict[str, np.ndarray], labels: bool = True) -> dict[str, torch.Tensor]:
    valid = g["nbrs"] >= 0
    n, k = g["nbrs"].shape
    ei = np.stack([np.repeat(np.arange(n), k)[valid.ravel()], g["nbrs"][valid]])
    out = {
        "f": torch.from_numpy(g["f"]),
        "i": torch.from_numpy(g["i"]),
        "text_emb": torch.from_numpy(g["text"]),
        "src": torch.from_numpy(g["src"]),
        "tgt": torch.from_numpy(g["tgt"]),
        "edge_index": torch.from_numpy(ei),
        "edge_weight": torch.from_numpy(g["sims"][valid]),
        "density": torch.from_numpy(local_density(g["nbrs"], g["sims"], 3)),
    }
    if labels:
        out["labels"] = torch.from_numpy(g["labels"])
    return out


def _model(**cfg: object) -> CLIPClusterModel:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        b = SpaceTransfer(hidden=48)
    return CLIPClusterModel({**SMALL, **cfg}, b if cfg.get("hallucinate", True) else None)


# targets


def test_targets_match_prompt_texts():
    rng = np.random.default_rng(3)
    attrs = _attrs(30, rng)
    table = prompts.prompt_table()
    src, tgt = hallucination_targets(attrs, table)
    assert src.shape == tgt.shape == (30, prompts.N_REVERSED) and src.dtype == np.int64
    for n, row in attrs.iterrows():
        own = {"age": str(row.age_group), "expression": row.expression, "pose": row.pose}
        want = prompts.reversed_targets(row.age_group, row.expression, row.pose)
        for m, (kind, value) in enumerate(want):
            assert table.text[tgt[n, m]] == prompts.prompt_text(row.gender, kind, value)
            assert table.text[src[n, m]] == prompts.prompt_text(row.gender, kind, own[kind])


def test_targets_reject_bad_input():
    rng = np.random.default_rng(0)
    attrs = _attrs(5, rng)
    bad = attrs.assign(gender=["male", "x", "male", "male", "male"])
    with pytest.raises(DataError, match="gender"):
        hallucination_targets(bad)
    with pytest.raises(DataError, match="expression"):
        hallucination_targets(attrs.assign(expression="bored"))
    with pytest.raises(DataError, match="missing column"):
        hallucination_targets(attrs.drop(columns="pose"))
    with pytest.raises(DataError, match="row order"):
        hallucination_targets(attrs, prompts.prompt_table().iloc[::-1].reset_index(drop=True))


# modules


def test_module_shapes():
    torch.manual_seed(0)
    n, m = 7, 10
    b = SpaceTransfer(hidden=16)
    assert b(torch.randn(n, m, 512), torch.randn(n, 1, 256)).shape == (n, m, 256)
    h = Hallucinator(hidden=16)
    assert h(torch.randn(n, m, 512), torch.randn(n, 1, 512)).shape == (n, m, 512)
    ei = torch.tensor([[0, 1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6, 0]])
    adj = adjacency(ei, n, self_loops=False)
    assert NeighbourGCN(256, 2)(torch.randn(n, 256), adj).shape == (n, 256)
    for fusion in FUSIONS:
        p = ProxyGenerator(256, fusion, 1, 2, 4, 32)
        q = p.query(torch.randn(n, 256), adj)
        assert (q is None) == (fusion != "cross")
        assert p(torch.randn(n, 256), torch.randn(n, m, 256), q).shape == (n, 256)
    adj_loop = adjacency(ei, n, self_loops=True)
    for pair in ("product", "concat"):
        e = GCNEdgePredictor(256, 32, 2, 8, pair=pair)
        assert e.embed(torch.randn(n, 256), adj_loop).shape == (n, 32)
        assert e(torch.randn(n, 256), adj_loop, ei[0], ei[1], torch.rand(7)).shape == (7, 2)
        with pytest.raises(DataError, match="cosines"):
            e(torch.randn(n, 256), adj_loop, ei[0], ei[1])
    e = GCNEdgePredictor(256, 32, 2, 8, pair_cosine=False)
    assert e(torch.randn(n, 256), adj_loop, ei[0], ei[1]).shape == (7, 2)


def test_cross_fusion_mixes_the_faces_own_tokens():
    """Eq. 6 as written: the proxy is a mix of the face's tokens, steered by the neighbour query but not made of it.

    With every token of a face equal, the attention mix is that token whatever the query, so the proxy cannot depend
    on the query; a standard decoder's residual (``query_residual=True``) adds the neighbourhood back in.
    """
    torch.manual_seed(0)
    n, m = 5, 4
    tokens = torch.randn(n, 256)
    fhat = tokens[:, None, :].expand(n, m, 256)
    q1, q2 = torch.randn(n, 256), torch.randn(n, 256)
    paper = ProxyGenerator(256, "cross", 1, 1, 4, 32).eval()
    assert torch.allclose(paper(tokens, fhat, q1), paper(tokens, fhat, q2), atol=1e-5)
    residual = ProxyGenerator(256, "cross", 1, 1, 4, 32, query_residual=True).eval()
    assert not torch.allclose(residual(tokens, fhat, q1), residual(tokens, fhat, q2), atol=1e-3)
    assert CLIPClusterModel({"query_residual": True}, SpaceTransfer()).proxy.blocks[0].query_residual
    assert not CLIPClusterModel({}, SpaceTransfer()).proxy.blocks[0].query_residual


def test_adjacency_matches_dense():
    ei = torch.tensor([[0, 0, 1, 2, 2, 2], [1, 2, 0, 0, 1, 2]])  # (2, 2) is a self loop: dropped
    w = torch.tensor([1.0, 3.0, 2.0, 1.0, 1.0, 5.0])
    dense = torch.zeros(3, 3)
    dense[0, 1], dense[0, 2], dense[1, 0], dense[2, 0], dense[2, 1] = 1.0, 3.0, 2.0, 1.0, 1.0
    bar = dense / dense.sum(1, keepdim=True)
    loop = (dense + torch.eye(3)) / (dense + torch.eye(3)).sum(1, keepdim=True)
    assert torch.allclose(adjacency(ei, 3, w, self_loops=False).to_dense(), bar)
    assert torch.allclose(adjacency(ei, 3, w, self_loops=True).to_dense(), loop)
    nbrs = np.array([[1, 2], [0, -1], [0, 1]])
    wk = np.array([[1.0, 3.0], [2.0, 9.0], [1.0, 1.0]], dtype=np.float32)
    assert torch.allclose(knn_adjacency(nbrs, wk, self_loops=True).to_dense(), loop)
    with pytest.raises(DataError, match="node ids"):
        adjacency(torch.tensor([[0], [5]]), 3, self_loops=False)


def test_edge_mlp_split_equals_concatenated_pair():
    torch.manual_seed(0)
    e = GCNEdgePredictor(8, 8, 1, 5, pair="concat")
    vu, vv, cos = torch.randn(4, 8), torch.randn(4, 8), torch.rand(4)
    w = torch.cat([e.pair_a.weight, e.pair_b.weight, e.pair_cos.weight], dim=1)
    ref = e.out(torch.relu(torch.cat([vu, vv, cos[:, None]], dim=1) @ w.T + e.pair_a.bias))
    assert torch.allclose(e.pair_logits(e.pair_a(vu), e.pair_b(vv), cos), ref, atol=1e-6)


def test_edge_mlp_product_pair_features_by_hand():
    """pair="product": the MLP reads [h_u * h_v, |h_u - h_v|] (h = P v) and the edge cosine; symmetric in u, v."""
    torch.manual_seed(0)
    e = GCNEdgePredictor(8, 8, 1, 5, pair="product", pair_dim=3)
    vu, vv, cos = torch.randn(4, 8), torch.randn(4, 8), torch.rand(4)
    hu, hv = vu @ e.pair_proj.weight.T, vv @ e.pair_proj.weight.T
    x = torch.cat([hu * hv, (hu - hv).abs()], dim=1) @ e.pair_in.weight.T + e.pair_in.bias
    ref = e.out(torch.relu(x + cos[:, None] * e.pair_cos.weight[:, 0]))
    a, b = e.node_terms(vu)[0], e.node_terms(vv)[1]
    assert torch.allclose(e.pair_logits(a, b, cos), ref, atol=1e-6)
    assert torch.allclose(e.pair_logits(b, a, cos), ref, atol=1e-6)


def test_set_prior_starts_the_classifier_at_the_class_prior():
    torch.manual_seed(0)
    e = GCNEdgePredictor(8, 8, 1, 5)
    e.set_prior(0.9)
    v = torch.nn.functional.normalize(torch.randn(6, 8), dim=1)
    adj = adjacency(torch.tensor([[0, 1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 0]]), 6, self_loops=True)
    p = torch.softmax(e(v, adj, torch.arange(6), torch.arange(6).roll(1), torch.rand(6)), dim=1)[:, 1]
    assert torch.allclose(p, torch.full((6,), 0.9), atol=0.03)


# losses, by hand


def test_cosine_and_clip_loss_by_hand():
    a = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    b = torch.tensor([[0.0, 2.0], [2.0, 2.0]])
    assert torch.allclose(cosine_distance(a, b), torch.tensor([1.0, 0.0]), atol=1e-6)
    # one face, M = 2: dt = [(1,0), (0,1)], di = [(1,1), (0,1)], t~ = [(0,1), (1,0)], i = (1,0)
    dt = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    di = torch.tensor([[[1.0, 1.0], [0.0, 1.0]]])
    t_tgt = torch.tensor([[[0.0, 1.0], [1.0, 0.0]]])
    i = torch.tensor([[[1.0, 0.0]]])
    d1 = ((1 - 1 / math.sqrt(2)) + 0.0) / 2  # D(dt, di)
    d2 = ((1 - 1 / math.sqrt(5)) + (1 - 1 / math.sqrt(2))) / 2  # D(t~, i + di): i+di = (2,1), (1,1)
    assert clip_loss(dt, di, t_tgt, i).item() == pytest.approx(d1 + d2, abs=1e-6)


def test_id_transfer_cross_total_by_hand():
    f = torch.tensor([[1.0, 0.0]])
    fhat = torch.tensor([[[1.0, 0.0], [0.0, 3.0], [-1.0, 0.0]]])
    assert id_loss(fhat, f).item() == pytest.approx((0 + 1 + 2) / 3, abs=1e-6)
    b = SpaceTransfer(clip_dim=2, face_dim=2, hidden=3)
    with torch.no_grad():
        for p in b.parameters():
            p.zero_()
        b.net[2].bias.copy_(torch.tensor([0.0, 1.0]))  # B(., .) = (0, 1) whatever the input
    i, i_r = torch.randn(2, 2), torch.randn(2, 2)
    f_r = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    f2 = torch.tensor([[1.0, 1.0], [0.0, 1.0]])  # f_r + B = (1,1), (0,2): distances 0 and 0
    assert transfer_pretrain_loss(b, i, f2, i_r, f_r).item() == pytest.approx(0.0, abs=1e-6)
    f3 = torch.tensor([[1.0, -1.0], [1.0, 0.0]])  # distances 1 and 1
    assert transfer_pretrain_loss(b, i, f3, i_r, f_r).item() == pytest.approx(1.0, abs=1e-6)
    logits = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    tg = edge_targets(torch.tensor([5, 5, 7]), torch.tensor([0, 0]), torch.tensor([1, 2]))
    assert tg.tolist() == [1, 0]
    want = (math.log(2) + math.log(1 + math.exp(-2))) / 2
    assert cross_loss(logits, tg).item() == pytest.approx(want, abs=1e-6)
    t = total_loss(torch.tensor(1.0), torch.tensor(2.0), torch.tensor(3.0), 0.5, 2.0)
    assert t.item() == pytest.approx(1 + 1 + 6)


# model


def test_config_defaults_and_errors():
    cfg = model_config()
    assert cfg["lambda_id"] == cfg["mu_cross"] == 1.0 and cfg["fusion"] == "cross" and cfg["hallucinate"]
    with pytest.raises(DataError, match="unknown key"):
        model_config({"lamda": 1})
    with pytest.raises(DataError, match="fusion"):
        model_config({"fusion": "concat"})
    with pytest.raises(DataError, match="needs the pretrained"):
        CLIPClusterModel({}, None)
    with pytest.raises(DataError, match="pair_attr_dim"):
        model_config({"pair_attr_dim": 0})


@pytest.mark.parametrize("fusion", FUSIONS)
def test_gradient_flow(graph, fusion):
    model = _model(fusion=fusion)
    model.train()
    out = model(_batch(graph))
    for key in ("loss_clip", "loss_id", "loss_cross", "loss"):
        assert out[key].ndim == 0 and torch.isfinite(out[key])
    want = out["loss_clip"] + out["loss_id"] + out["loss_cross"]
    assert out["loss"].item() == pytest.approx(want.item(), rel=1e-6)
    assert out["logits"].shape == (int((graph["nbrs"] >= 0).sum()), 2)
    out["loss"].backward()
    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(not name.startswith("transfer.") for name, _ in trainable)
    for name, p in trainable:
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    for p in model.transfer.parameters():
        assert not p.requires_grad and p.grad is None
    assert not model.transfer.training


def test_no_hallucination_ablation(graph):
    model = CLIPClusterModel({**SMALL, "hallucinate": False}, None)
    assert not hasattr(model, "hallucinator") and model.transfer is None
    batch = {k: v for k, v in _batch(graph).items() if k in ("f", "edge_index", "edge_weight", "density", "labels")}
    out = model(batch)
    assert out["loss_clip"].item() == out["loss_id"].item() == 0.0
    assert out["loss"].item() == pytest.approx(out["loss_cross"].item())
    out["loss"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_deterministic_init_and_bad_batch(graph):
    a, b, c = _model(seed=3), _model(seed=3), _model(seed=4)
    pa, pb, pc = (torch.cat([p.flatten() for p in m.parameters()]) for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)
    batch = _batch(graph)
    batch["src"] = batch["src"][:, :5]
    with pytest.raises(DataError, match="src/tgt"):
        a(batch)


# whole-graph scoring


def _reference_probs(model: CLIPClusterModel, g: dict[str, np.ndarray]) -> np.ndarray:
    """Slow reference: the training forward on the whole graph, scattered back to N x k (0 where missing)."""
    model.eval()
    with torch.no_grad():
        out = model(_batch(g, labels=False))
    ref = np.zeros(g["nbrs"].shape, dtype=np.float32)
    ref[g["nbrs"] >= 0] = torch.softmax(out["logits"], dim=-1)[:, 1].numpy()
    return ref


def _whole_graph_probs(model: CLIPClusterModel, g: dict[str, np.ndarray]) -> np.ndarray:
    """score_edges on the fixture's whole graph, in row blocks of 7 (several blocks, one thread)."""
    return score_edges(
        model, g["f"], g["i"], g["src"], g["tgt"], g["text"], g["nbrs"], sims=g["sims"], batch_size=7, threads=1
    )


@pytest.mark.parametrize(
    "cfg",
    [
        {"fusion": "cross"},
        {"fusion": "self"},
        {"fusion": "average"},
        {"edge_weighted": True},
        {"pair_features": "concat"},
        {"pair_features": "concat", "hallucinate": False},
        {"pair_baseline": False},  # the correction alone, centred
        {"pair_baseline": False, "centre_correction": False},
    ],
)
def test_score_edges_equals_reference(graph, cfg):
    model = _model(**cfg)
    ref = _reference_probs(model, graph)
    g = graph
    probs = _whole_graph_probs(model, g)
    assert probs.shape == g["nbrs"].shape and probs.dtype == np.float32
    assert probs[3, -1] == 0.0
    np.testing.assert_allclose(probs, ref, atol=2e-5)
    assert probs.std() > 1e-4  # not a constant: the comparison above means something


@pytest.mark.parametrize("hallucinate", [True, False])
def test_score_edges_with_the_pair_baseline_equals_reference(graph, hallucinate):
    """The whole-graph path adds the same baseline logit as the training forward, densities from the same lists."""
    model = _model(hallucinate=hallucinate)
    with torch.no_grad():
        model.edge.baseline.coef.copy_(torch.tensor([6.0, -2.5, 0.7]))
    ref = _reference_probs(model, graph)
    g = graph
    probs = _whole_graph_probs(model, g)
    np.testing.assert_allclose(probs, ref, atol=2e-5)
    with torch.no_grad():
        model.edge.baseline.coef.zero_()
    assert np.abs(score_edges(model, g["f"], g["i"], g["src"], g["tgt"], g["text"], g["nbrs"], sims=g["sims"])
                  - probs).max() > 1e-3  # fmt: skip


def test_pair_attributes_read_the_estimated_attributes_only(graph):
    """The attribute path: each face's mean projected source prompt by hand, the same for any two faces with the
    same estimated attributes (it cannot tell training identities apart), and it moves the edge logits (uncentred:
    the centring would move every edge by the change of the mean)."""
    model = _model(pair_attributes=True, centre_correction=False)
    pa = model.edge.pair_attr
    # no CLIP read, no attribute path; off by default
    assert pa is not None and _model(hallucinate=False, pair_attributes=True).edge.pair_attr is None
    assert _model().edge.pair_attr is None
    g = graph
    text, src = torch.from_numpy(g["text"]), torch.from_numpy(g["src"])
    with torch.no_grad():
        terms = pa.node_terms(text, src)
        by_hand = torch.stack([(pa.proj.weight @ text[src[n]].T).T.mean(0) for n in range(src.shape[0])])
        torch.testing.assert_close(terms, by_hand, atol=1e-5, rtol=1e-5)
        twin = torch.from_numpy(np.repeat(g["src"][:1], 2, axis=0))  # two faces, same attributes
        t2 = pa.node_terms(text, twin)
        assert torch.equal(t2[0], t2[1])
        # flipping one face's estimated gender (its prompt rows move by 13) moves the edge logits of that face's
        # edges and of no other (the edge predictor on fixed node inputs)
        b = _batch(g, labels=False)
        u, w = b["edge_index"]
        _, adj = model.adjacencies(b["edge_index"], 40)
        flipped = src.clone()
        flipped[0] = (flipped[0] + 13) % 26
        args = (b["f"], adj, u, w, b["edge_weight"], b["density"])
        diff = (model.edge(*args, pa.node_terms(text, flipped)) - model.edge(*args, terms)).abs().sum(1)
    touches = (u == 0) | (w == 0)
    assert diff[touches].max() > 1e-4 and diff[~touches].max() == 0


def test_score_edges_with_pair_attributes_equals_reference(graph):
    """The whole-graph path adds the same attribute terms as the training forward."""
    model = _model(pair_attributes=True)
    assert model.edge.pair_attr is not None
    with torch.no_grad():
        model.edge.pair_attr.lin.weight.mul_(20.0)  # make the attribute path matter
    ref = _reference_probs(model, graph)
    g = graph
    probs = _whole_graph_probs(model, g)
    np.testing.assert_allclose(probs, ref, atol=2e-5)
    with torch.no_grad():
        model.edge.pair_attr.lin.weight.zero_()
    assert np.abs(_reference_probs(model, graph) - ref).max() > 1e-3


def test_without_learned_correction_the_model_is_its_pair_baseline(graph):
    """learned_correction=False: the training forward and the whole-graph scores are the baseline's sigmoid."""
    with pytest.raises(DataError, match="set pair_baseline"):
        model_config({"learned_correction": False, "pair_baseline": False, "hallucinate": False})
    with pytest.raises(DataError, match="reads no CLIP"):
        model_config({"learned_correction": False})
    model = _model(hallucinate=False, learned_correction=False)
    with torch.no_grad():
        model.edge.baseline.coef.copy_(torch.tensor([6.0, -2.5, 0.7]))
    g = graph
    r = local_density(g["nbrs"], g["sims"], 3)
    ok = g["nbrs"] >= 0
    base = 6.0 * g["sims"] + -2.5 * (r[:, None] + r[np.maximum(g["nbrs"], 0)]) + 0.7
    by_hand = np.where(ok, 1.0 / (1.0 + np.exp(-np.where(ok, base, 0.0))), 0.0)
    np.testing.assert_allclose(_reference_probs(model, g), by_hand, atol=1e-6)
    probs = score_edges(model, g["f"], None, None, None, None, g["nbrs"], sims=g["sims"])
    np.testing.assert_allclose(probs, by_hand, atol=1e-6)
    assert probs[3, -1] == 0.0 and probs.std() > 1e-3


@pytest.mark.parametrize("hallucinate", [True, False])
def test_centred_correction_has_mean_zero_over_the_graphs_edges(graph, hallucinate):
    """centre_correction: the learned correction (the same logit minus the baseline's) has mean zero over the
    scored graph's edges, in the training forward and the whole-graph path alike; uncentred, the same correction is
    shifted by its mean, so the centring moves every edge by one constant and leaves their ranking alone."""
    g = graph
    ok = g["nbrs"] >= 0
    r = local_density(g["nbrs"], g["sims"], 3)
    base = (6.0 * g["sims"] + -2.5 * (r[:, None] + r[np.maximum(g["nbrs"], 0)]) + 0.7)[ok]
    corr = {}
    for centre in (True, False):
        model = _model(hallucinate=hallucinate, centre_correction=centre)
        with torch.no_grad():
            model.edge.baseline.coef.copy_(torch.tensor([6.0, -2.5, 0.7]))
            model.edge.out.bias.copy_(torch.tensor([0.0, 1.5]))  # a correction that lifts every edge
        for name, probs in (("forward", _reference_probs(model, g)), ("whole", _whole_graph_probs(model, g))):
            p = probs[ok].astype(np.float64)
            corr[centre, name] = np.log(p / (1 - p)) - base
    for name in ("forward", "whole"):
        assert abs(corr[True, name].mean()) < 1e-3
        shift = corr[False, name] - corr[True, name]
        assert shift.mean() > 1.0 and np.ptp(shift) < 1e-3
        assert corr[True, name].std() > 1e-3  # the correction itself is not a constant
    assert model_config()["centre_correction"] is True


def test_pair_baseline_is_where_an_untrained_model_starts(graph):
    """After the prior is set, the untrained model's edge logit is the baseline's plus a small correction."""
    model = _model(hallucinate=False)
    with torch.no_grad():
        model.edge.baseline.coef.copy_(torch.tensor([6.0, -2.5, 0.7]))
    model.edge.set_prior(0.9)
    assert model.edge.out.bias.tolist() == [0.0, 0.0]  # the baseline carries the prior
    g = graph
    probs = score_edges(model, g["f"], None, None, None, None, g["nbrs"], sims=g["sims"])
    r = local_density(g["nbrs"], g["sims"], 3)
    ok = g["nbrs"] >= 0
    base = 6.0 * g["sims"] + -2.5 * (r[:, None] + r[np.maximum(g["nbrs"], 0)]) + 0.7
    z = np.log(probs[ok] / (1 - probs[ok]))
    assert np.abs(z - base[ok]).max() < 0.5 and np.corrcoef(z, base[ok])[0, 1] > 0.95


def test_score_edges_without_hallucination_and_errors(graph):
    g = graph
    model = CLIPClusterModel({**SMALL, "hallucinate": False}, None)
    probs = score_edges(model, g["f"], None, None, None, None, g["nbrs"], sims=g["sims"], batch_size=5)
    np.testing.assert_allclose(probs, _reference_probs(model, g), atol=2e-5)
    with pytest.raises(DataError, match="pass sims"):
        score_edges(model, g["f"], None, None, None, None, g["nbrs"])
    full = _model()
    with pytest.raises(DataError, match="nbrs"):
        score_edges(full, g["f"], g["i"], g["src"], g["tgt"], g["text"], g["nbrs"][:5], sims=g["sims"])
    with pytest.raises(DataError, match="src"):
        score_edges(full, g["f"], g["i"], g["src"][:, :3], g["tgt"], g["text"], g["nbrs"], sims=g["sims"])
    with pytest.raises(DataError, match="prompt rows"):
        score_edges(full, g["f"], g["i"], g["src"] + 26, g["tgt"], g["text"], g["nbrs"], sims=g["sims"])


# refinement


def _two_cliques() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two 5-node cliques; each node also lists 2 nodes of the other clique with a low score."""
    n = 10
    nbrs = np.full((n, 6), -1, dtype=np.int64)
    probs = np.zeros((n, 6), dtype=np.float32)
    for u in range(n):
        base, other = (0, 5) if u < 5 else (5, 0)
        same = [v for v in range(base, base + 5) if v != u]
        nbrs[u, :4] = same
        nbrs[u, 4:] = [other + u % 5, other + (u + 1) % 5]
        probs[u, :4] = 0.9
        probs[u, 4:] = 0.2
    return nbrs, probs, np.repeat([0, 1], 5)


def test_prune_and_refine_two_clusters():
    nbrs, probs, truth = _two_cliques()
    stats: dict = {}
    labels = prune_and_refine(nbrs, probs, tau=0.5, stats=stats)
    assert labels.tolist() == truth.tolist()
    assert stats["kept_edges"] == 20  # 2 cliques x 10 undirected edges; cross edges pruned
    # tau below the cross scores prunes nothing (15 distinct cross pairs kept); Infomap alone, on the score
    # weights, still separates the cliques: the refinement step does work of its own.
    assert prune_and_refine(nbrs, probs, tau=0.1, stats=stats).tolist() == truth.tolist()
    assert stats["kept_edges"] == 35
    sims = np.full(nbrs.shape, 0.7, dtype=np.float32)
    assert prune_and_refine(nbrs, probs, sims, weight="sim").tolist() == truth.tolist()


def test_naive_prune_components_and_dynamic_threshold():
    nbrs, probs, truth = _two_cliques()
    assert naive_prune(nbrs, probs, tau=0.5).tolist() == truth.tolist()
    # tau = 0.1 joins everything (10 nodes); with max_size 5 the threshold rises past 0.2 and splits it again.
    assert naive_prune(nbrs, probs, tau=0.1, max_size=20).tolist() == [0] * 10
    assert naive_prune(nbrs, probs, tau=0.1, max_size=5).tolist() == truth.tolist()
    # max_iter = 0: no second round, the oversized component is kept whole.
    assert naive_prune(nbrs, probs, tau=0.1, max_size=5, max_iter=0).tolist() == [0] * 10


def test_single_query_attention_equals_torch_mha():
    torch.manual_seed(0)
    d, h, t, n = 16, 4, 11, 5
    ours = SingleQueryAttention(d, h)
    ref = torch.nn.MultiheadAttention(d, h, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([ours.q.weight, ours.k.weight, ours.v.weight]))
        ref.in_proj_bias.copy_(torch.cat([ours.q.bias, torch.randn(d), ours.v.bias]))  # key bias: no effect
        ref.out_proj.weight.copy_(ours.o.weight)
        ref.out_proj.bias.copy_(ours.o.bias)
    q, mem = torch.randn(n, d), torch.randn(n, t, d)
    want = ref(q[:, None, :], mem, mem, need_weights=False)[0][:, 0, :]
    assert torch.allclose(ours(q, mem), want, atol=1e-5)


# end to end on the tiny MS1M twin


def test_twin_targets_and_short_training_reduce_losses():
    from clipcluster.graph.knn import build_knn
    from clipcluster.twin import generate as twin

    params = twin.twin_params("tiny")
    part = twin.generate_part(params, 0)
    table, emb = twin.text_embeddings(params)
    src, tgt = hallucination_targets(part.attributes, table)
    # The estimated attributes are the source prompts: images sit closer to them than to the reversed ones.
    cos_src = (part.clip[:, None, :] * emb[src]).sum(-1).mean()
    cos_tgt = (part.clip[:, None, :] * emb[tgt]).sum(-1).mean()
    assert cos_src > cos_tgt + 0.02

    torch.manual_seed(0)
    f, i = torch.from_numpy(part.face), torch.from_numpy(part.clip)
    labels = torch.from_numpy(np.asarray(part.labels, dtype=np.int64))
    # B pretraining on same-identity pairs (reference = the next face of the same identity, cyclically).
    order = torch.argsort(labels, stable=True)
    lab_sorted = labels[order]
    nxt = torch.roll(torch.arange(len(order)), -1)
    first = torch.searchsorted(lab_sorted, lab_sorted)  # wrap to the identity's first face
    nxt = torch.where(lab_sorted[nxt] == lab_sorted, nxt, first)
    ref = torch.empty_like(order)
    ref[order] = order[nxt]
    b = SpaceTransfer(hidden=64)
    opt = torch.optim.Adam(b.parameters(), lr=1e-3)
    first_loss = transfer_pretrain_loss(b, i, f, i[ref], f[ref]).item()
    for _ in range(60):
        opt.zero_grad()
        loss = transfer_pretrain_loss(b, i, f, i[ref], f[ref])
        loss.backward()
        opt.step()
    assert loss.item() < 0.8 * first_loss

    knn = build_knn(part.face, 10, index="exact", progress=False)
    g = {
        "f": part.face,
        "i": part.clip,
        "nbrs": knn.nbrs,
        "sims": knn.sims,
        "labels": labels.numpy(),
        "src": src,
        "tgt": tgt,
        "text": emb,
    }
    model = CLIPClusterModel({**SMALL, "seed": 0}, b)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=2e-3)
    b_before = [p.detach().clone() for p in b.parameters()]
    batch = _batch(g)
    model.train()
    start = {k: v.item() for k, v in model(batch).items() if k.startswith("loss")}
    for _ in range(40):
        opt.zero_grad()
        out = model(batch)
        out["loss"].backward()
        opt.step()
    assert out["loss"].item() < 0.8 * start["loss"]
    assert out["loss_clip"].item() < start["loss_clip"] and out["loss_cross"].item() < start["loss_cross"]
    assert all(torch.equal(p, q) for p, q in zip(b.parameters(), b_before, strict=True))  # B stayed frozen
    probs = score_edges(model, g["f"], g["i"], src, tgt, emb, g["nbrs"], sims=g["sims"], batch_size=64)
    same = labels.numpy()[g["nbrs"]] == labels.numpy()[:, None]
    assert probs[same].mean() > probs[~same].mean() + 0.2


def test_hallucinate_uses_target_minus_source(graph):
    """docs/design.md section 5: dt = t~ - t (the paper prints t - t~, contradicting its own loss)."""
    model = _model()
    b = _batch(graph)
    with torch.no_grad():
        h = model.hallucinate(b["f"], b["i"], b["src"], b["tgt"], b["text_emb"])
    assert torch.equal(h["dt"], b["text_emb"][b["tgt"]] - b["text_emb"][b["src"]])
    assert torch.equal(h["t_tgt"], b["text_emb"][b["tgt"]])
    assert h["di"].shape == (40, 10, 512) and h["fhat"].shape == (40, 10, 256)
    want = b["f"][:, None, :] + model.transfer(h["di"], b["f"][:, None, :])
    assert torch.allclose(h["fhat"], want)


def test_score_edges_row_blocks_bit_identical_and_consume_f(graph, monkeypatch):
    """Row-blocked whole-graph layers equal one whole-graph product; consume_f reuses f only when allowed."""
    from clipcluster.clip_cluster import score

    g = graph
    model = _model(query_layers=2, edge_hidden=256, edge_mlp_hidden=256)  # GCN widths = face_dim: f is reusable
    args = (g["i"], g["src"], g["tgt"], g["text"], g["nbrs"])
    whole = score_edges(model, g["f"].copy(), *args, sims=g["sims"], batch_size=7)  # 40 rows < one 4096-row block
    monkeypatch.setattr(score, "_GCN_ROWS", 3)  # many blocks, the last one overlapping (40 = 13 x 3 + 1)
    monkeypatch.setattr(score, "_EDGE_CHUNK", 3 * 6 * 16)
    f = g["f"].copy()
    kept = score_edges(model, f, *args, sims=g["sims"], batch_size=7)
    assert np.array_equal(f, g["f"])  # not consumed: untouched
    consumed = score_edges(model, f, *args, sims=g["sims"], batch_size=7, consume_f=True)
    np.testing.assert_allclose(kept, whole, atol=1e-6)  # tiny blocks take other BLAS kernels: round-off only
    assert np.array_equal(consumed, kept)
    assert not np.array_equal(f, g["f"])  # its memory served as scratch


def test_adjacency_rows_equal_knn_adjacency(graph):
    from clipcluster.clip_cluster.score import _adjacency_rows

    nbrs, sims = graph["nbrs"], graph["sims"]
    for w in (None, np.maximum(sims, 0)):
        for loops in (True, False):
            full = knn_adjacency(nbrs, w, self_loops=loops).to_dense()
            rows = _adjacency_rows(nbrs, w, 5, 17, nbrs.shape[0], self_loops=loops).to_dense()
            assert torch.equal(rows, full[5:17])


def test_inference_loaders_equal_the_full_ones(tmp_path):
    """BinRows and load_knn_columns give the values load_data / load_knn give, in less memory."""
    from clipcluster.clip_cluster.pipeline import BinRows, load_data, load_inference_data
    from clipcluster.graph.knn import KnnGraph, load_knn, load_knn_columns, save_knn
    from clipcluster.io import write_bin, write_meta

    rng = np.random.default_rng(0)
    bins, metas, clips, targets = [], [], [], []
    for j, m in enumerate((30, 45)):
        for name, dim, lst in (("f", 256, bins), ("c", 512, clips)):
            write_bin(tmp_path / f"{name}{j}.bin", rng.standard_normal((m, dim)).astype(np.float32))
            lst.append(str(tmp_path / f"{name}{j}.bin"))
        write_meta(tmp_path / f"m{j}.meta", rng.integers(0, 5, m))
        np.savez(tmp_path / f"t{j}.npz", src=rng.integers(0, 26, (m, 10)), tgt=rng.integers(0, 26, (m, 10)))
        metas.append(str(tmp_path / f"m{j}.meta"))
        targets.append(str(tmp_path / f"t{j}.npz"))
    a, b = load_data(bins, metas, clips, targets), load_inference_data(bins, metas, clips, targets)
    assert np.array_equal(a.f, b.f) and np.array_equal(a.labels, b.labels)
    assert isinstance(b.i, BinRows) and b.i.shape == a.i.shape
    assert np.array_equal(b.i[20:50], a.i[20:50]) and np.array_equal(np.asarray(b.i), a.i)
    assert np.array_equal(b.src, a.src) and b.src.dtype == np.int16 and np.array_equal(b.tgt, a.tgt)
    bad = rng.standard_normal((45, 512)).astype(np.float32)
    bad[40] = 0.0
    write_bin(tmp_path / "c1.bin", bad)
    with pytest.raises(DataError, match="all zeros"):
        load_inference_data(bins, metas, clips, targets)
    n = 75
    g = KnnGraph(nbrs=rng.integers(-1, n, (n, 12)), sims=rng.random((n, 12)).astype(np.float32), info={"k": 12})
    save_knn(tmp_path / "g.npz", g)
    full = load_knn(tmp_path / "g.npz")
    nbrs, sims, info = load_knn_columns(tmp_path / "g.npz", 5)
    assert nbrs.dtype == np.int32 and np.array_equal(nbrs, full.nbrs[:, :5]) and np.array_equal(sims, full.sims[:, :5])
    assert info == full.info
    with pytest.raises(DataError, match="asked for"):
        load_knn_columns(tmp_path / "g.npz", 13)


def test_gated_transfer_starts_as_the_papers_and_computes_its_gated_maps():
    torch.manual_seed(0)
    plain = SpaceTransfer(16, 8, 12)
    torch.manual_seed(0)
    gated = SpaceTransfer(16, 8, 12, gates=3)
    assert set(plain.state_dict()) == {"net.0.weight", "net.0.bias", "net.2.weight", "net.2.bias"}
    di, f = torch.randn(5, 7, 16), torch.randn(5, 1, 8)
    assert torch.equal(gated(di, f), plain(di, f))  # the maps start at zero
    with torch.no_grad():
        gated.maps.normal_()
    fe = f.expand(5, 7, 8)
    want = gated.net(torch.cat([di, fe], -1)) + torch.einsum("...k,kij,...j->...i", gated.gate(di), gated.maps, fe)
    assert torch.allclose(gated(di, f), want, atol=1e-5)


def test_gated_transfer_learns_a_change_times_a_map_of_the_reference_that_the_mlp_does_not():
    # df = s * R f_ref, s the first CLIP offset coordinate: "how much the attribute changed" times a map of the face
    g = torch.Generator().manual_seed(0)
    r = torch.linalg.qr(torch.randn(16, 16, generator=g))[0]
    di, f = torch.randn(2048, 8, generator=g), torch.nn.functional.normalize(torch.randn(2048, 16, generator=g), dim=1)
    target = di[:, :1] * (f @ r.T)
    losses = {}
    for gates in (0, 2):
        torch.manual_seed(0)
        b = SpaceTransfer(8, 16, 32, gates=gates)
        opt = torch.optim.Adam(b.parameters(), lr=1e-2)
        for _ in range(300):
            loss = ((b(di, f) - target) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        losses[gates] = loss.item()
    assert losses[2] < 0.2 * losses[0]


def test_transfer_and_model_files_keep_the_gates(tmp_path):
    from clipcluster.clip_cluster.pipeline import load_model, load_transfer, save_model, save_transfer

    torch.manual_seed(2)
    b = SpaceTransfer(hidden=16, gates=2)
    with torch.no_grad():
        b.maps.normal_()
    save_transfer(tmp_path / "B.pt", b, {})
    back = load_transfer(tmp_path / "B.pt")
    di, f = torch.randn(3, 512), torch.randn(3, 256)
    assert back.gates == 2 and torch.equal(back(di, f), b(di, f))
    model = CLIPClusterModel(SMALL, b)
    save_model(tmp_path / "m.pt", model)
    again = load_model(tmp_path / "m.pt")
    assert again.transfer.gates == 2 and torch.equal(again.transfer(di, f), b(di, f))
