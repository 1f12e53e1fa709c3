"""The peers' learned parts: FaceT (RE + LP) and MHC's similarity transformer, their training and inference.

Tiny models on the tiny twin; every check compares against an independent computation (NumPy by hand, or a slow
per-node loop over the modules) so a wrong gather, mask, batch split or loss would fail it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from clipcluster.errors import DataError
from clipcluster.evaluation.edge_quality import edge_auc
from clipcluster.graph.knn import build_knn
from clipcluster.peers.facet_cluster import facet_cluster
from clipcluster.peers.facet_model import (
    EncoderLayer,
    FaceTModel,
    LinkagePredictor,
    MultiHeadAttention,
    RelationEncoder,
    facet_config,
    facet_loss,
)
from clipcluster.peers.mhc_cluster import mhc_cluster
from clipcluster.peers.mhc_model import MhcSimilarityModel, mhc_config, mhc_loss
from clipcluster.peers.pipeline import (
    facet_link_probs,
    infer_facet,
    infer_mhc,
    load_peer_model,
    mhc_similarities,
    node_batches,
    save_peer_model,
    train_facet,
    train_mhc,
)
from clipcluster.twin.generate import generate_part, twin_params

FACET_TINY = {
    "depth": 1,
    "heads": 2,
    "head_dim": 16,
    "ffn_dim": 64,
    "mlp_hidden": 32,
    "hop1": 12,
    "hop2": 4,
    "dropout": 0.0,
    "epochs": 6,
    "batch_size": 16,
    "warmup_steps": 4,
    "lr": 0.003,
    "pair_baseline": False,  # the raw models; test_pair_baseline_is_added_to_the_learned_logit adds it
}
MHC_TINY = {"ffn_dim": 64, "heads": 4, "mlp": [512, 32, 16], "k": 12, "dropout": 0.0, "epochs": 3, "lr": 1e-3,
            "pair_baseline": False}  # fmt: skip


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def twin():
    part = generate_part(twin_params("tiny", 0), 1)
    graph = build_knn(part.face, 12, index="exact", progress=False)
    return part.face, part.labels, graph.nbrs, graph.sims


def holes(nbrs: np.ndarray) -> np.ndarray:
    """The same lists with some neighbours missing (-1 at the tail of a few rows, one row empty)."""
    out = nbrs.copy()
    out[3, 5:] = -1
    out[7, 1:] = -1
    out[11, :] = -1
    return out


# ------------------------------------------------------------------------------------------------ config


def test_configs_reject_unknown_keys_and_bad_values():
    with pytest.raises(DataError, match="unknown key"):
        facet_config({"hop3": 2})
    with pytest.raises(DataError, match="hop1"):
        facet_config({"hop1": 0})
    with pytest.raises(DataError, match="dropout"):
        facet_config({"dropout": 1.0})
    with pytest.raises(DataError, match="unknown key"):
        mhc_config({"K": 80})
    with pytest.raises(DataError, match="mlp"):
        mhc_config({"mlp": [256, 128]})
    with pytest.raises(DataError, match="divisible"):
        mhc_config({"heads": 7})
    # the papers' values are the defaults
    f, m = facet_config(), mhc_config()
    assert (f["depth"], f["heads"], f["head_dim"], f["dropout"], f["hop1"], f["hop2"]) == (2, 4, 64, 0.4, 150, 5)
    assert (f["batch_size"], f["weight_decay"], f["warmup_steps"], f["lr"], f["epochs"]) == (32, 5e-4, 500, 0.002, 60)
    assert (m["heads"], m["ffn_dim"], m["layers"], m["dropout"], m["mlp"], m["k"]) == (
        8,
        2048,
        1,
        0.2,
        [512, 256, 128],
        80,
    )
    assert (m["tau"], m["eps"]) == (0.7, 0.05)


# ------------------------------------------------------------------------------------------------ modules


def test_attention_matches_hand_computation_and_masks_keys():
    torch.manual_seed(0)
    att = MultiHeadAttention(6, heads=2, head_dim=3).eval()
    q, kv = torch.randn(2, 4, 6), torch.randn(2, 5, 6)
    mask = torch.tensor([[True, True, False, True, False], [False] * 5])
    out = att(q, kv, mask)
    assert out.shape == (2, 4, 6)
    # by hand, NumPy: Eqs. 1-3 with a scaled softmax over the valid keys only
    w = {n: (getattr(att, n).weight.detach().numpy(), getattr(att, n).bias.detach().numpy()) for n in "qkv"}
    wo, bo = att.out.weight.detach().numpy(), att.out.bias.detach().numpy()
    qn, kn = q.numpy()[0], kv.numpy()[0][[0, 1, 3]]
    heads = []
    for h in range(2):
        sl = slice(3 * h, 3 * h + 3)
        qh = (qn @ w["q"][0].T + w["q"][1])[:, sl]
        kh = (kn @ w["k"][0].T + w["k"][1])[:, sl]
        vh = (kn @ w["v"][0].T + w["v"][1])[:, sl]
        a = qh @ kh.T / math.sqrt(3)
        a = np.exp(a - a.max(1, keepdims=True))
        heads.append(a / a.sum(1, keepdims=True) @ vh)
    expect = np.concatenate(heads, axis=1) @ wo.T + bo
    np.testing.assert_allclose(out[0].detach().numpy(), expect, rtol=1e-5, atol=1e-5)
    # a query without any valid key attends to nothing: only W^O's bias remains
    np.testing.assert_allclose(out[1].detach().numpy(), np.broadcast_to(bo, (4, 6)), atol=1e-6)
    # masked keys do not matter
    kv2 = kv.clone()
    kv2[0, [2, 4]] += 10.0
    torch.testing.assert_close(att(q, kv2, mask)[0], out[0])


@pytest.mark.parametrize("norm_first", [False, True])
def test_module_shapes(norm_first):
    torch.manual_seed(0)
    layer = EncoderLayer(8, 2, 4, 16, 0.0, norm_first=norm_first)
    assert layer(torch.randn(3, 5, 8), torch.ones(3, 5, dtype=torch.bool)).shape == (3, 5, 8)
    cfg = facet_config({**FACET_TINY, "feat_dim": 8})
    mask = torch.ones(3, cfg["hop2"], dtype=torch.bool)
    assert RelationEncoder(cfg)(torch.randn(3, 8), torch.randn(3, cfg["hop2"], 8), mask).shape == (3, 8)
    mask = torch.ones(3, cfg["hop1"], dtype=torch.bool)
    cos = torch.rand(3, cfg["hop1"])
    assert LinkagePredictor(cfg)(torch.randn(3, 8), torch.randn(3, cfg["hop1"], 8), mask).shape == (3, cfg["hop1"], 2)
    lp = LinkagePredictor({**cfg, "pair_cosine": True})
    assert lp(torch.randn(3, 8), torch.randn(3, cfg["hop1"], 8), mask, cos=cos).shape == (3, cfg["hop1"], 2)
    with pytest.raises(DataError, match="cosines"):
        lp(torch.randn(3, 8), torch.randn(3, cfg["hop1"], 8), mask)
    model = FaceTModel(cfg)
    feats, nbrs = torch.randn(20, 8), torch.from_numpy(np.stack([np.roll(np.arange(20), -s) for s in range(1, 13)], 1))
    logits, m = model(feats, nbrs, torch.tensor([0, 5, 19]))
    assert logits.shape == (3, cfg["hop1"], 2) and m.shape == (3, cfg["hop1"]) and bool(m.all())
    mhc = MhcSimilarityModel({**MHC_TINY, "feat_dim": 8, "heads": 2, "mlp": [16, 8]})
    assert mhc(torch.randn(3, 8), torch.randn(3, 12, 8), mask).shape == (3, 12)
    lg, mm = mhc.score(feats, nbrs, torch.tensor([1, 2]))
    assert lg.shape == (2, 12) and mm.shape == (2, 12)


def test_losses_match_hand_computation():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((3, 4, 2)).astype(np.float32)
    mask = np.array([[1, 1, 0, 1], [1, 0, 0, 0], [1, 1, 1, 1]], dtype=bool)
    same = rng.random((3, 4)) < 0.5
    lse = np.log(np.exp(logits).sum(-1))
    ce = lse - np.where(same, logits[..., 1], logits[..., 0])
    got = facet_loss(torch.from_numpy(logits), torch.from_numpy(mask), torch.from_numpy(same))
    assert got.item() == pytest.approx(ce[mask].mean(), rel=1e-5)
    z = logits[..., 0]
    p = 1 / (1 + np.exp(-z))
    bce = -(same * np.log(p) + (1 - same) * np.log(1 - p))
    got = mhc_loss(torch.from_numpy(z), torch.from_numpy(mask), torch.from_numpy(same))
    assert got.item() == pytest.approx(bce[mask].mean(), rel=1e-5)
    # no valid pair: zero, still differentiable
    zero = mhc_loss(torch.from_numpy(z).requires_grad_(), torch.zeros(3, 4, dtype=torch.bool), torch.from_numpy(same))
    assert zero.item() == 0.0 and zero.requires_grad


def test_every_trainable_parameter_gets_a_gradient(twin):
    feats, labels, nbrs, _ = twin
    f, nb = torch.from_numpy(feats), torch.from_numpy(holes(nbrs))
    q = torch.arange(0, 40)
    same = torch.from_numpy(labels[np.maximum(nbrs, 0)] == labels[:, None])
    for model, run, loss in (
        (FaceTModel(FACET_TINY), lambda m: m(f, nb, q), facet_loss),
        (MhcSimilarityModel(MHC_TINY), lambda m: m.score(f, nb, q), mhc_loss),
    ):
        logits, mask = run(model)
        loss(logits, mask, same[q, : mask.shape[1]]).backward()
        for name, p in model.named_parameters():
            assert p.grad is not None and bool(p.grad.abs().sum() > 0), f"{type(model).__name__}.{name} has no gradient"


# ------------------------------------------------------------------------------------------------ inference


def facet_reference(model: FaceTModel, feats: np.ndarray, nbrs: np.ndarray) -> np.ndarray:
    """Per node, one at a time: RE of the query and of each candidate, then LP (FaceT Sec. 3.3-3.4)."""
    cfg, f = model.config, torch.from_numpy(feats)

    own = 1 if cfg["include_self"] else 0  # the node's own token leads its context and candidate set

    def re(i: int) -> torch.Tensor:
        idx = nbrs[i, : cfg["hop2"]]
        ctx = torch.zeros(1, own + cfg["hop2"], f.shape[1])
        valid = np.concatenate([np.ones(own, dtype=bool), idx >= 0])
        ctx[0, :own] = f[i]
        ctx[0, own:][torch.from_numpy(idx >= 0)] = f[idx[idx >= 0]]
        return model.encoder(f[i : i + 1], ctx, torch.from_numpy(valid)[None])[0]

    out = np.zeros((feats.shape[0], cfg["hop1"]), dtype=np.float32)
    with torch.no_grad():
        for q in range(feats.shape[0]):
            cand = nbrs[q, : cfg["hop1"]]
            g_q = re(q)
            tokens = [g_q] * own + [re(int(c)) if c >= 0 else torch.zeros(f.shape[1]) for c in cand]
            x, mask = (
                torch.stack(tokens)[None],
                torch.from_numpy(np.concatenate([np.ones(own, dtype=bool), cand >= 0]))[None],
            )
            for layer in model.predictor.layers:  # Eq. 7, by hand: the query token (if any) then the candidates
                x = layer(x, mask)
            g_qe, g_c = g_q[None, None].expand(1, len(cand), -1), x[:, own:]
            if cfg["pair_features"] == "concat":
                edge = torch.cat([g_qe, g_c], dim=-1)  # Eq. 8
            else:
                edge = torch.cat([g_qe * g_c, (g_qe - g_c).abs()], dim=-1)
            h = model.predictor.mlp[0](edge)
            if model.predictor.pair_cos is not None:  # the raw cosine f_q . f_c of each real candidate
                h = h + model.predictor.pair_cos(f[torch.from_numpy(cand).clamp_min(0)] @ f[q])[None]
            logits = model.predictor.mlp[2](model.predictor.mlp[1](h))
            out[q] = np.where(cand >= 0, torch.softmax(logits, -1)[0, :, 1].numpy(), 0.0)
    return out


@pytest.mark.parametrize(
    ("include_self", "pair", "cos"),
    [(True, "product", False), (False, "product", False), (True, "concat", False), (True, "product", True)],
)
def test_facet_inference_equals_per_node_reference(twin, include_self, pair, cos):
    feats, truth, nbrs, sims = twin
    nb = holes(nbrs)
    cfg = {**FACET_TINY, "dropout": 0.3, "include_self": include_self, "pair_features": pair,
           "pair_cosine": cos, "pair_cosine_standardise": cos}  # fmt: skip
    model = FaceTModel(cfg).eval()  # eval: no dropout
    if cos:
        model.predictor.pair_cos.set_stats(np.array([0.2, 0.5, 0.9]))
    ref = facet_reference(model, feats, nb)
    fast = facet_link_probs(model, feats, nb, batch_size=7)  # an odd batch: the last one is partial
    np.testing.assert_allclose(fast, ref, atol=2e-5)
    assert fast[11].max() == 0.0 and (fast[7, 1:] == 0).all()
    # the training path (RE only on the nodes a batch needs) gives the same logits
    q = torch.tensor([0, 3, 7, 50])
    with torch.no_grad():
        logits, mask = model(torch.from_numpy(feats), torch.from_numpy(nb), q)
    p = torch.where(mask, torch.softmax(logits, -1)[..., 1], torch.zeros(()))
    np.testing.assert_allclose(p.numpy(), ref[q.numpy()], atol=2e-5)
    labels, stats = infer_facet(model, feats, nb, np.where(nb >= 0, sims, -np.inf), {"tau": 0.5})
    np.testing.assert_array_equal(labels, facet_cluster(nb[:, :12], ref, tau=0.5))
    assert stats["n_clusters"] == labels.max() + 1 and stats["total_seconds"] >= stats["score_seconds"] >= 0
    # with the truth: the same labels, plus the link probabilities' edge AUC next to the cosine's
    masked = np.where(nb >= 0, sims, -np.inf)
    labels_t, stats_t = infer_facet(model, feats, nb, masked, {"tau": 0.5}, truth=truth)
    np.testing.assert_array_equal(labels_t, labels)
    assert stats_t["edge_auc"] == edge_auc(nb[:, :12], ref, masked[:, :12], truth) and "edge_auc" not in stats


@pytest.mark.parametrize("which", ["facet", "mhc"])
def test_pair_baseline_is_added_to_the_learned_logit(twin, which):
    """With a pair baseline, every probability is sigmoid(the raw model's logit + a cos + b (r_u + r_v) + c), the
    densities r over each node's first baseline_local_k neighbours, computed here by hand."""
    feats, _, nbrs, _ = twin
    nb = holes(nbrs)
    tiny = FACET_TINY if which == "facet" else MHC_TINY
    model = (FaceTModel if which == "facet" else MhcSimilarityModel)({**tiny, "pair_baseline": True,
                                                                      "baseline_local_k": 3}).eval()  # fmt: skip
    score = facet_link_probs if which == "facet" else mhc_similarities
    with torch.no_grad():
        model.baseline.coef.copy_(torch.tensor([5.0, -2.0, 0.5]))
    with_base = score(model, feats, nb, batch_size=7)
    baseline, model.baseline = model.baseline, None
    raw = score(model, feats, nb, batch_size=7)
    model.baseline = baseline
    r = np.zeros(len(feats))
    for i in range(len(feats)):
        first = [j for j in nb[i] if j >= 0][:3]
        r[i] = np.mean([feats[i] @ feats[j] for j in first]) if first else 0.0
    cols = with_base.shape[1]
    ok = nb[:, :cols] >= 0
    cand = np.maximum(nb[:, :cols], 0)
    base = 5.0 * np.einsum("nd,nkd->nk", feats, feats[cand]) - 2.0 * (r[:, None] + r[cand]) + 0.5
    z = np.log(raw[ok] / (1 - raw[ok])) + base[ok]
    np.testing.assert_allclose(with_base[ok], 1 / (1 + np.exp(-z)), atol=2e-4)
    assert (with_base[~ok] == 0).all() and np.abs(with_base - raw).max() > 0.05
    # training path: the same logits
    q = torch.tensor([0, 3, 7, 50])
    f, nbt = torch.from_numpy(feats), torch.from_numpy(nb)
    dens = torch.from_numpy(r.astype(np.float32))
    with torch.no_grad():
        logits, mask = model(f, nbt, q, dens) if which == "facet" else model.score(f, nbt, q, dens)
        p = torch.softmax(logits, -1)[..., 1] if which == "facet" else torch.sigmoid(logits)
    np.testing.assert_allclose(torch.where(mask, p, 0.0).numpy(), with_base[q.numpy()], atol=2e-4)
    with pytest.raises(DataError, match="densities"):
        model(f, nbt, q) if which == "facet" else model.score(f, nbt, q)


def test_mhc_inference_equals_per_node_reference(twin):
    feats, truth, nbrs, sims = twin
    nb = holes(nbrs)
    model = MhcSimilarityModel({**MHC_TINY, "dropout": 0.3}).eval()
    f = torch.from_numpy(feats)
    ref = np.zeros(nb.shape, dtype=np.float32)
    with torch.no_grad():
        for i in range(len(feats)):
            idx = nb[i]
            ctx = torch.zeros(1, 12, f.shape[1])
            ctx[0, idx >= 0] = f[idx[idx >= 0]]
            p = torch.sigmoid(model(f[i : i + 1], ctx, torch.from_numpy(idx >= 0)[None]))[0].numpy()
            ref[i] = np.where(idx >= 0, p, 0.0)
    fast = mhc_similarities(model, feats, nb, batch_size=5)
    np.testing.assert_allclose(fast, ref, atol=2e-5)
    labels, stats = infer_mhc(model, feats, nb, np.where(nb >= 0, sims, -np.inf), {"tau": 0.7})
    np.testing.assert_array_equal(labels, mhc_cluster(nb, ref, k=None, tau=0.7).labels)
    assert stats["ndde_converged"] and stats["n_clusters"] == labels.max() + 1
    masked = np.where(nb >= 0, sims, -np.inf)
    labels_t, stats_t = infer_mhc(model, feats, nb, masked, {"tau": 0.7}, truth=truth)
    np.testing.assert_array_equal(labels_t, labels)
    auc = stats_t["edge_auc"]
    assert auc == pytest.approx(edge_auc(nb, fast, masked, truth)) and 0 <= auc["auc_model"] <= 1


def test_inference_rejects_short_lists_and_wrong_widths(twin):
    feats, _, nbrs, sims = twin
    with pytest.raises(DataError, match="needs 20 neighbours"):
        infer_facet(FaceTModel({**FACET_TINY, "hop1": 20}), feats, nbrs, sims)
    with pytest.raises(DataError, match="needs 80 neighbours"):
        infer_mhc(MhcSimilarityModel({**MHC_TINY, "k": 80}), feats, nbrs, sims)
    with pytest.raises(DataError, match="columns"):
        infer_mhc(MhcSimilarityModel(MHC_TINY), feats[:, :128], nbrs, sims)


# ------------------------------------------------------------------------------------------------ training


def test_node_batches_cover_every_node_and_depend_on_epoch_only():
    b = node_batches(10, 4, None, seed=1, epoch=2)
    assert [len(x) for x in b] == [4, 4, 2] and sorted(np.concatenate(b)) == list(range(10))
    assert all((x == y).all() for x, y in zip(b, node_batches(10, 4, None, seed=1, epoch=2), strict=True))
    assert not (np.concatenate(b) == np.concatenate(node_batches(10, 4, None, seed=1, epoch=3))).all()
    assert sum(len(x) for x in node_batches(10, 4, 25, seed=1, epoch=0)) == 25


@pytest.mark.parametrize("which", ["facet", "mhc"])
def test_training_reduces_loss_and_is_deterministic(twin, tmp_path, which):
    feats, labels, nbrs, sims = twin
    fit, cfg = (train_facet, FACET_TINY) if which == "facet" else (train_mhc, MHC_TINY)
    cfg = {**cfg, "dropout": 0.1}  # dropout on: its RNG must be seeded too
    a, hist_a = fit(feats, labels, cfg, checkpoint_dir=tmp_path / "a", seed=3, device="cpu")
    b, hist_b = fit(feats, labels, cfg, checkpoint_dir=tmp_path / "b", seed=3, device="cpu")
    c, _ = fit(feats, labels, cfg, checkpoint_dir=tmp_path / "c", seed=4, device="cpu")
    losses = [h["losses"]["total"] for h in hist_a]
    assert losses[-1] < losses[0], losses
    assert [h["losses"] for h in hist_a] == [h["losses"] for h in hist_b]
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    # the trained model separates same-identity neighbours from the others better than an untrained one
    probs_fn = facet_link_probs if which == "facet" else mhc_similarities
    untrained = FaceTModel(cfg) if which == "facet" else MhcSimilarityModel(cfg)
    same = labels[nbrs] == labels[:, None]

    def auc(model: torch.nn.Module) -> float:  # how the scores rank the graph's edges (same identity first)
        p = probs_fn(model, feats, nbrs)
        return edge_auc(nbrs[:, : p.shape[1]], p, sims[:, : p.shape[1]], labels)["auc_model"]

    def bce(model: torch.nn.Module) -> float:  # the training loss over the whole graph, dropout off
        p = np.clip(probs_fn(model, feats, nbrs), 1e-7, 1 - 1e-7)
        y = same[:, : p.shape[1]]
        return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())

    assert bce(a) < 0.85 * bce(untrained), (bce(a), bce(untrained))
    assert auc(a) > max(auc(untrained) + 0.1, 0.9), (auc(a), auc(untrained))
    # save / load round trip
    save_peer_model(tmp_path / "m.pt", a, {"history": hist_a})
    back = load_peer_model(tmp_path / "m.pt")
    assert type(back) is type(a) and back.config == a.config
    np.testing.assert_array_equal(probs_fn(back, feats, nbrs), probs_fn(a, feats, nbrs))
    labels_pred, _ = (infer_facet if which == "facet" else infer_mhc)(back, feats, nbrs, sims)
    assert labels_pred.shape == labels.shape


def test_train_rejects_bad_inputs(tmp_path):
    feats = np.ones((5, 256), dtype=np.float32) / 16
    with pytest.raises(DataError, match="labels"):
        train_facet(feats, np.zeros(4, dtype=np.int64), FACET_TINY, checkpoint_dir=tmp_path)
    with pytest.raises(DataError, match="feat_dim"):
        train_mhc(feats[:, :8], np.zeros(5, dtype=np.int64), MHC_TINY, checkpoint_dir=tmp_path)
    with pytest.raises(DataError, match="not a peer model"):
        torch.save({"kind": "x"}, tmp_path / "bad.pt")
        load_peer_model(tmp_path / "bad.pt")


def test_checkpoint_folder_of_another_setting_is_refused(twin, tmp_path):
    feats, labels, nbrs, sims = twin
    cfg = {**MHC_TINY, "epochs": 1}
    model, _ = train_mhc(feats, labels, cfg, checkpoint_dir=tmp_path, device="cpu")
    again, _ = train_mhc(feats, labels, cfg, checkpoint_dir=tmp_path, device="cpu")  # resumes: nothing left to do
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True))
    with pytest.raises(DataError, match="other settings.*ffn_dim"):
        train_mhc(feats, labels, {**cfg, "ffn_dim": 32}, checkpoint_dir=tmp_path, device="cpu")
    with pytest.raises(DataError, match="can be set at inference"):
        infer_mhc(model, feats, nbrs, sims, {"k": 10})


@pytest.mark.parametrize("which", ["facet", "mhc"])
def test_training_on_two_threads_is_deterministic(twin, tmp_path, which):
    """Two CPU threads (what a rule gets on 2 cores): FaceT's backward once gave other weights each run."""
    feats, labels, _, _ = twin
    fit, cfg = (train_facet, FACET_TINY) if which == "facet" else (train_mhc, MHC_TINY)
    cfg = {**cfg, "dropout": 0.1, "epochs": 2}
    runs = [
        fit(feats, labels, cfg, checkpoint_dir=tmp_path / str(i), seed=0, device="cpu", threads=2)[0] for i in (0, 1)
    ]
    sa, sb = (m.state_dict() for m in runs)
    assert all(torch.equal(sa[k], sb[k]) for k in sa), [k for k in sa if not torch.equal(sa[k], sb[k])]
