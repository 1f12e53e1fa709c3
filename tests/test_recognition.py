"""Figure 4's pieces: the ArcFace margin, MegaFace rank-1, pseudo-label assembly, training, the identification set."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from clipcluster.errors import DataError
from clipcluster.recognition import (
    ArcFaceHead,
    arcface_logits,
    embed,
    megaface_rank1,
    pseudo_labelled,
    train_recognition,
)
from clipcluster.twin.generate import generate_part, identification_set, part_labels, twin_params


def test_arcface_logits_against_hand_computed_values():
    cos = torch.tensor([[0.5, 0.2, -0.1], [-0.95, 0.3, 0.1]])
    target = torch.tensor([0, 0])
    out = arcface_logits(cos, target, scale=64.0, margin=0.5)
    # row 0: theta = 60 degrees, cos(pi/3 + 0.5) = 0.5 cos 0.5 - (sqrt(3)/2) sin 0.5
    want0 = 0.5 * math.cos(0.5) - math.sqrt(3) / 2 * math.sin(0.5)
    # row 1: cos(theta) = -0.95 <= cos(pi - 0.5): the fallback cos(theta) - sin(pi - m) * m
    want1 = -0.95 - math.sin(math.pi - 0.5) * 0.5
    assert out[0, 0].item() == pytest.approx(64 * want0, rel=1e-5)
    assert out[1, 0].item() == pytest.approx(64 * want1, rel=1e-5)
    assert out[0, 1:].tolist() == pytest.approx([64 * 0.2, 64 * -0.1])  # non-targets: scale * cos only
    loss = F.cross_entropy(out, target).item()
    by_hand = np.mean(
        [
            math.log(sum(math.exp(v) for v in (64 * want0, 12.8, -6.4))) - 64 * want0,
            math.log(sum(math.exp(v) for v in (64 * want1, 19.2, 6.4))) - 64 * want1,
        ]
    )
    assert loss == pytest.approx(by_hand, rel=1e-5)


def test_arcface_head_margin_makes_the_loss_larger_and_has_gradients():
    torch.manual_seed(0)
    emb, target = torch.randn(8, 4, requires_grad=True), torch.randint(0, 3, (8,))
    head = ArcFaceHead(4, 3, scale=16.0, margin=0.5)
    with_margin = head(emb, target)
    head.margin = 0.0
    assert with_margin.item() > head(emb, target).item()
    with_margin.backward()
    assert emb.grad is not None and head.weight.grad is not None and torch.isfinite(emb.grad).all()


def _unit(rows):
    x = np.asarray(rows, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_megaface_rank1_on_a_constructed_case():
    # identity 0: photos a, b close together; identity 1: photos c, d far apart, with a distractor next to d
    probes = _unit([[1, 0.1, 0], [1, -0.1, 0], [0, 1, 0], [0, 0, 1]])
    labels = np.array([0, 0, 1, 1])
    distractors = _unit([[0, 0.05, 1], [-1, 0, 0]])
    r = megaface_rank1(probes, labels, distractors)
    # pairs (probe, gallery): (a,b) (b,a) hit; (c,d): cos 0 < best distractor of c (0.05) miss;
    # (d,c): cos 0 < best distractor of d (~1) miss -> 2 of 4
    assert r["rank1"] == pytest.approx(0.5)
    assert (r["pairs"], r["identities"], r["distractors"]) == (4, 2, 2)


def test_megaface_rank1_rejects_bad_input():
    with pytest.raises(DataError, match="probe labels"):
        megaface_rank1(_unit([[1, 0], [0, 1]]), np.array([0]), _unit([[1, 1]]))
    with pytest.raises(DataError, match="no probe identity has two photos"):
        megaface_rank1(_unit([[1, 0], [0, 1]]), np.array([0, 1]), _unit([[1, 1]]))
    with pytest.raises(DataError, match="NaN"):
        megaface_rank1(np.array([[np.nan, 0], [0, 1]], np.float32), np.array([0, 0]), _unit([[1, 1]]))


def test_pseudo_labels_drop_singletons_and_never_merge_with_true_ids():
    data = pseudo_labelled(np.array([5, 5, 7]), np.array([5, 5, 9, 7, 7, 7]), min_size=2)
    assert data.dropped_singletons == 1 and data.pseudo == 5 and data.pseudo_classes == 2
    assert data.classes == 4  # 2 true + 2 pseudo: cluster id 5 is not identity 5
    assert data.rows.tolist() == [0, 1, 2, 3, 4, 6, 7, 8]
    assert data.labels.tolist() == [0, 0, 1, 2, 2, 3, 3, 3]
    alone = pseudo_labelled(np.array([3, 1, 3]))
    assert (alone.classes, alone.pseudo, alone.dropped_singletons) == (2, 0, 0)


def _toy(n_ids=12, per=10, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_ids, dim))
    labels = np.repeat(np.arange(n_ids), per)
    x = centres[labels] + 0.3 * rng.standard_normal((labels.size, dim))
    return _unit(x), labels


CFG = {"model": {"hidden": 32, "embed_dim": 8}, "train": {"epochs": 3, "batch_size": 32, "lr": 0.05}}


def test_training_fits_the_classes_and_is_deterministic(tmp_path):
    x, y = _toy()
    data = pseudo_labelled(y)
    net1, hist = train_recognition(x, data, CFG, checkpoint_dir=tmp_path / "a", seed=3, device="cpu")
    net2, _ = train_recognition(x, data, CFG, checkpoint_dir=tmp_path / "b", seed=3, device="cpu")
    assert hist[-1]["losses"]["total"] < hist[0]["losses"]["total"]
    e1, e2 = embed(net1, x), embed(net2, x)
    assert np.array_equal(e1, e2)
    assert np.allclose(np.linalg.norm(e1, axis=1), 1.0, atol=1e-5)
    # same-class embeddings end up closer than different-class ones
    sims = e1 @ e1.T
    same = y[:, None] == y[None, :]
    assert sims[same].mean() > sims[~same].mean() + 0.3


def test_a_killed_training_resumes_to_the_same_weights(tmp_path):
    x, y = _toy()
    data = pseudo_labelled(y)
    full, _ = train_recognition(x, data, CFG, checkpoint_dir=tmp_path / "full", seed=1, device="cpu")
    cut = tmp_path / "cut"
    train_recognition(x, data, CFG, checkpoint_dir=cut, seed=1, device="cpu")
    last = sorted(cut.glob("epoch_*.pt"))
    assert len(last) >= 2
    last[-1].unlink()  # as if killed during the last epoch: only the previous epoch's checkpoint is left
    resumed, hist = train_recognition(x, data, CFG, checkpoint_dir=cut, seed=1, device="cpu")
    assert len(hist) == CFG["train"]["epochs"]
    assert np.array_equal(embed(resumed, x), embed(full, x))
    other = {**CFG, "train": {**CFG["train"], "lr": 0.01}}
    with pytest.raises(DataError, match="other settings"):  # never resume another configuration's checkpoints
        train_recognition(x, data, other, checkpoint_dir=cut, seed=1, device="cpu")


def test_unknown_training_key_is_one_line_error(tmp_path):
    x, y = _toy()
    with pytest.raises(DataError, match="unknown key"):
        train_recognition(x, pseudo_labelled(y), {"train": {"epoch": 2}}, checkpoint_dir=tmp_path, device="cpu")


def test_identification_set_holds_new_identities():
    p = twin_params("tiny", 0)
    probes, dis = identification_set(p, probe_identities=5, probe_mean_size=6, distractors=40)
    seen = np.concatenate([part_labels(p, i) for i in range(p.n_parts)])
    assert not set(probes.labels) & set(seen) and not set(dis.labels) & set(seen)
    assert not set(probes.labels) & set(dis.labels)
    assert len(np.unique(probes.labels)) == 5 and np.bincount(probes.labels - probes.labels.min()).min() >= 2
    assert len(dis) == 40 and len(np.unique(dis.labels)) == 40  # one photo per distractor identity
    again, _ = identification_set(p, probe_identities=5, probe_mean_size=6, distractors=40)
    assert np.array_equal(again.face, probes.face)
    # and they are not copies of a training part's photos
    assert not np.isclose(probes.face @ generate_part(p, 0).face.T, 1.0, atol=1e-6).any()


def test_iresnet_shapes_and_its_size_check():
    from clipcluster.recognition.resnet import IResNet

    net = IResNet(layers=[1, 1], widths=[4, 8], embed_dim=16, input_size=32).eval()
    out = net.embed(torch.zeros(3, 3, 32, 32))
    assert out.shape == (3, 16)
    with pytest.raises(ValueError, match="not divisible"):
        IResNet(layers=[1, 1, 1], widths=[4, 8, 8], input_size=36)


def test_photo_lists_resolve_paths_and_name_a_bad_line(tmp_path):
    from clipcluster.errors import DataError
    from clipcluster.images.photo_lists import read_photo_list

    (tmp_path / "probes.tsv").write_text("# probes\na/1.jpg\talice\n/abs/2.jpg\tbob\n")
    table = read_photo_list(tmp_path / "probes.tsv", True)
    assert table["path"].tolist() == [str(tmp_path / "a/1.jpg"), "/abs/2.jpg"]
    assert table["identity"].tolist() == ["alice", "bob"]
    (tmp_path / "bad.tsv").write_text("a/1.jpg\talice\nb/2.jpg\n")
    with pytest.raises(DataError, match=r"bad\.tsv line 2: expected 'photo path<TAB>identity'"):
        read_photo_list(tmp_path / "bad.tsv", True)


def test_crop_store_flips_and_normalises():
    from clipcluster.images.faces import ARCFACE_TEMPLATE
    from clipcluster.recognition.photos import CropStore

    rng = np.random.default_rng(0)
    photo = rng.integers(0, 255, (120, 120, 3), dtype=np.uint8)
    lm = np.zeros((68, 2), np.float32)
    pts = ARCFACE_TEMPLATE
    lm[36:42], lm[42:48], lm[30], lm[48], lm[54] = pts[0], pts[1], pts[2], pts[3], pts[4]
    store = CropStore(lambda i: photo, [lm, lm], 112)
    x = store.batch(np.array([0, 1]), flip=np.array([False, True])).numpy()
    assert x.shape == (2, 3, 112, 112) and x.min() >= -1 and x.max() <= 1
    np.testing.assert_array_equal(x[1], x[0][:, :, ::-1])


def test_identification_set_is_read_in_the_requested_view(tmp_path):
    from clipcluster.recognition.pipeline import load_identification

    rng = np.random.default_rng(0)
    z = {
        "probe_face": rng.standard_normal((6, 4)).astype(np.float32),
        "probe_clip": rng.standard_normal((6, 8)).astype(np.float32),
        "probe_labels": np.repeat([0, 1, 2], 2),
        "distractor_face": rng.standard_normal((3, 4)).astype(np.float32),
        "distractor_clip": rng.standard_normal((3, 8)).astype(np.float32),
    }
    path = tmp_path / "ident.npz"
    np.savez(path, **z)
    probes, labels, dis = load_identification([path], 4, "clip")
    np.testing.assert_array_equal(probes, z["probe_clip"])
    np.testing.assert_array_equal(dis, z["distractor_clip"])
    np.testing.assert_array_equal(labels, z["probe_labels"])
    assert load_identification([path], 4)[0].shape == (6, 4)  # face by default
    old = tmp_path / "old.npz"  # written before the CLIP view existed
    np.savez(old, **{k: v for k, v in z.items() if "clip" not in k})
    with pytest.raises(DataError, match=r"old\.npz: lacks distractor_clip, probe_clip"):
        load_identification([old], 4, "clip")
    with pytest.raises(DataError, match="needs the twin's identification set"):
        load_identification(["p.bin", "p.meta", "d.bin"], 4, "clip")
    with pytest.raises(DataError, match="unknown view 'pixels'"):
        load_identification([path], 4, "pixels")
