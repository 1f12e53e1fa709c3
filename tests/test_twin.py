"""Tests of the MS1M twin (clipcluster.twin.generate) and its card (clipcluster.twin.card); tiny preset, seconds."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from clipcluster import prompts
from clipcluster.errors import DataError
from clipcluster.io import read_bin, read_meta
from clipcluster.twin import generate as twin
from clipcluster.twin.card import twin_card, write_twin_card


@pytest.fixture(scope="module")
def params() -> twin.TwinParams:
    return twin.twin_params("tiny", seed=3)


@pytest.fixture(scope="module")
def part1(params: twin.TwinParams) -> twin.TwinPart:
    return twin.generate_part(params, 1)


BIGGER = {"ids_per_part": 80}


@pytest.fixture(scope="module")
def bigger() -> twin.TwinPart:
    """A tiny-preset part with more identities, for statistical properties (~1.2K samples)."""
    return twin.generate_part(twin.twin_params("tiny", seed=5, overrides=BIGGER), 2)


def test_presets_have_the_documented_sizes() -> None:
    assert set(twin.PRESETS) == {"tiny", "small", "ms1m", "webface_tiny", "webface_small", "webface42m"}
    for name in twin.PRESETS:
        p = twin.twin_params(name)
        assert p.n_parts == (2 if name.startswith("webface") else 10)  # WebFace42M protocol: train part, test part
    assert twin.twin_params("small").ids_per_part == 200
    ms1m = twin.twin_params("ms1m")
    assert ms1m.ids_per_part == 8573
    # identity-level draws only (no features): mean size and total near MS1M's
    sizes = twin.identity_sizes(ms1m, 1)
    assert 60 <= sizes.mean() <= 76
    assert sizes.min() >= 2 and sizes.max() > 5 * sizes.mean()  # long tail
    assert 500_000 <= sizes.sum() <= 680_000
    # WebFace42M-shaped: ~21 photos per identity, 4M samples per part at full size
    web = twin.twin_params("webface42m")
    sizes = twin.identity_sizes(web, 0)
    assert 19 <= sizes.mean() <= 23 and 3_600_000 <= sizes.sum() <= 4_400_000
    assert twin.identity_sizes(twin.twin_params("webface_small"), 1).sum() > 10_000


def test_shapes_dtypes_norms(part1: twin.TwinPart, params: twin.TwinParams) -> None:
    n = len(part1)
    assert n == twin.identity_sizes(params, 1).sum()
    assert part1.face.shape == (n, 256) and part1.face.dtype == np.float32
    assert part1.clip.shape == (n, 512) and part1.clip.dtype == np.float32
    assert part1.labels.shape == (n,) and part1.labels.dtype == np.int64
    np.testing.assert_allclose(np.linalg.norm(part1.face, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(part1.clip, axis=1), 1.0, atol=1e-5)
    assert list(part1.attributes.columns) == list(twin.ATTRIBUTE_COLUMNS + twin.TRUE_COLUMNS)
    assert len(part1.attributes) == n
    np.testing.assert_array_equal(part1.labels, twin.part_labels(params, 1))


def test_same_seed_same_arrays_different_seed_different(part1: twin.TwinPart, params: twin.TwinParams) -> None:
    again = twin.generate_part(twin.twin_params("tiny", seed=3), 1)
    np.testing.assert_array_equal(again.face, part1.face)
    np.testing.assert_array_equal(again.clip, part1.clip)
    np.testing.assert_array_equal(again.labels, part1.labels)
    pd.testing.assert_frame_equal(again.attributes, part1.attributes)
    other = twin.generate_part(twin.twin_params("tiny", seed=4), 1)
    assert other.face.shape != part1.face.shape or not np.array_equal(other.face, part1.face)


def test_parts_do_not_depend_on_generation_order(params: twin.TwinParams, part1: twin.TwinPart) -> None:
    twin._twin_model.cache_clear()  # a fresh process generating part 7 first must get the same part 1
    p7 = twin.generate_part(params, 7)
    p1 = twin.generate_part(params, 1)
    np.testing.assert_array_equal(p1.face, part1.face)
    assert not np.array_equal(p7.face[:5], p1.face[:5])


def test_labels_unique_across_parts(params: twin.TwinParams) -> None:
    seen: set[int] = set()
    for part in range(params.n_parts):
        ids = set(np.unique(twin.part_labels(params, part)).tolist())
        assert len(ids) == params.ids_per_part
        assert not ids & seen
        seen |= ids


def test_overrides_are_validated() -> None:
    p = twin.twin_params("tiny", 0, {"noise": 0.3, "ids_per_part": 7})
    assert p.noise == 0.3 and p.ids_per_part == 7
    with pytest.raises(DataError, match="nosie: unknown key .*allowed: .*noise"):
        twin.twin_params("tiny", 0, {"nosie": 0.3})
    with pytest.raises(DataError, match="unknown preset"):
        twin.twin_params("huge")
    with pytest.raises(DataError, match="p_male"):
        twin.twin_params("tiny", 0, {"p_male": 1.5})
    with pytest.raises(DataError, match="face_pose_id: must be >= 0"):
        twin.twin_params("tiny", overrides={"face_pose_id": -1.0})
    with pytest.raises(DataError, match="face_age_id: must be >= 0"):
        twin.twin_params("tiny", overrides={"face_age_id": -0.5})
    with pytest.raises(DataError, match="noise_strata: must be true or false, got 'yes'"):
        twin.twin_params("tiny", 0, {"noise_strata": "yes"})
    with pytest.raises(DataError, match="part 10 out of range"):
        twin.generate_part(p, 10)
    msg = ""
    try:
        twin.twin_params("tiny", 0, {"bogus": 1})
    except DataError as e:
        msg = str(e)
    assert "\n" not in msg


def test_attribute_marginals_plausible(bigger: twin.TwinPart) -> None:
    a = bigger.attributes
    assert 0.55 < (a["true_gender"] == "male").mean() < 0.85
    assert 0.75 < (a["true_pose"] == "frontal").mean() < 0.97
    expr = a["true_expression"].value_counts(normalize=True)
    assert expr.index[0] in ("neutral", "happy") and expr.index[1] in ("neutral", "happy")
    assert set(a["expression"]) <= set(prompts.EXPRESSIONS)
    assert set(a["age_group"]) <= {5, 20, 40, 75}
    assert 25 < a["true_age"].mean() < 50
    # the pipeline sees noisy estimates: wrong sometimes, right mostly, confidences higher when right
    err = np.abs(a["age"] - a["true_age"]).mean()
    assert 2.0 < err < 10.0
    for col, conf in (("gender", "gender_conf"), ("expression", "expression_conf")):
        ok = a[col] == a["true_" + col]
        assert 0.6 < ok.mean() < 0.995
        assert a.loc[ok, conf].mean() > a.loc[~ok, conf].mean()
        assert a[conf].between(0, 1).all()
    np.testing.assert_array_equal(a["pose"], prompts.pose_of(a["yaw"].to_numpy()))
    np.testing.assert_array_equal(a["age_group"], prompts.age_group(a["age"].to_numpy()))
    # gender is per identity (before estimation noise)
    assert (a.groupby(bigger.labels)["true_gender"].nunique() == 1).all()


def test_face_space_has_attribute_subclusters(bigger: twin.TwinPart) -> None:
    f, y, a = bigger.face, bigger.labels, bigger.attributes
    sim = f @ f.T
    same_id = y[:, None] == y[None, :]
    np.fill_diagonal(same_id, False)
    same_attr = np.ones_like(same_id)
    for col in ("true_age_group", "true_pose", "true_expression"):
        v = a[col].to_numpy()
        same_attr &= v[:, None] == v[None, :]
    inter = ~same_id
    np.fill_diagonal(inter, False)
    eq, diff, other = sim[same_id & same_attr].mean(), sim[same_id & ~same_attr].mean(), sim[inter].mean()
    assert eq > diff + 0.02 > other + 0.3
    # pose alone splits identities: frontal-vs-profile pairs of one identity are clearly less similar
    pose = a["true_pose"].to_numpy()
    pose_eq = pose[:, None] == pose[None, :]
    assert sim[same_id & pose_eq].mean() > sim[same_id & ~pose_eq].mean() + 0.02
    # so does age: photos of one identity decades apart are less similar than photos a few years apart
    age = a["true_age"].to_numpy()
    gap = np.abs(age[:, None] - age[None, :])
    assert sim[same_id & (gap < 5)].mean() > sim[same_id & (gap >= 20)].mean() + 0.05


def test_clip_space_attributes_strong_identity_weak(bigger: twin.TwinPart) -> None:
    card = twin_card({"preset": "test"}, bigger, n_pairs=20000)
    clip = card["clip"]
    # sharing every attribute matters more than sharing the identity
    assert clip["inter_same_attributes"]["mean"] > clip["intra"]["mean"] - 0.05
    assert clip["identity_gap"] > 0.05  # identity still weakly present
    assert card["face"]["intra"]["mean"] - card["face"]["inter"]["mean"] > 0.4


def test_text_embeddings_aligned_with_a_modality_gap(bigger: twin.TwinPart) -> None:
    table, emb = twin.text_embeddings(twin.twin_params("tiny", seed=5, overrides=BIGGER))
    assert len(table) == 26 and emb.shape == (26, 512) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    card = twin_card({"preset": "test"}, bigger, text=(table, emb), n_pairs=5000)
    t = card["text"]
    assert t["direction_cosine_mean"] > 0.3
    assert all(v > 0 for v in t["direction_cosine"].values())
    assert t["zero_shot_accuracy"]["expression"] > 0.5
    gap = t["modality_gap"]
    assert gap["text_image_cosine_mean"] < gap["image_image_cosine_mean"] - 0.2
    # text embeddings depend on the seed only
    _, emb2 = twin.text_embeddings(twin.twin_params("small", seed=5))
    _, emb3 = twin.text_embeddings(twin.twin_params("small", seed=9))
    np.testing.assert_array_equal(emb, emb2)
    assert not np.array_equal(emb, emb3)


def test_hidden_relation_is_linear_part_plus_identity_term(params: twin.TwinParams) -> None:
    model = twin.twin_model(params)
    z = np.random.default_rng(0).standard_normal((4, twin.CODE_DIM))
    np.testing.assert_allclose((z @ model.T.T) @ model.W.T, z @ model.D.T, atol=1e-10)


def test_write_part_round_trip(tmp_path, params: twin.TwinParams, part1: twin.TwinPart) -> None:
    paths = {
        "face_bin": tmp_path / "faces" / "1.bin",
        "clip_bin": tmp_path / "clip" / "1.bin",
        "meta": tmp_path / "parts" / "1.meta",
        "attributes_parquet": tmp_path / "attributes" / "1.parquet",
    }
    info = twin.write_part(params, 1, **paths)
    assert info["samples"] == len(part1)
    labels = read_meta(paths["meta"])
    np.testing.assert_array_equal(labels, part1.labels)
    np.testing.assert_array_equal(read_bin(paths["face_bin"], 256, len(labels)), part1.face)
    np.testing.assert_array_equal(read_bin(paths["clip_bin"], 512, len(labels)), part1.clip)
    attrs = pd.read_parquet(paths["attributes_parquet"])
    pd.testing.assert_frame_equal(attrs, part1.attributes, check_dtype=False)
    assert not list(tmp_path.rglob(".*tmp*"))  # no temporary files left behind

    npz = tmp_path / "prompts" / "text.npz"
    twin.write_text_embeddings(params, npz)
    with np.load(npz) as z:
        assert set(z.files) == {"texts", "genders", "kinds", "values", "emb", "weights"}
        assert z["emb"].shape == (26, 512) and z["texts"][0] == "A photo of a male at the age of 5"


def test_twin_card_keys_and_files(tmp_path, params: twin.TwinParams, part1: twin.TwinPart) -> None:
    labels = {p: twin.part_labels(params, p) for p in range(params.n_parts)}
    card = twin_card(params, part1, labels, text=twin.text_embeddings(params), n_pairs=5000)
    for key in ("params", "sizes", "spread", "face", "clip", "attributes", "relation", "text"):
        assert key in card
    assert card["sizes"]["identities"] == params.ids_per_part * params.n_parts
    assert card["params"]["seed"] == 3
    assert set(card["face"]["by_true_attribute"]) == {"age_group", "pose", "expression", "all"}
    assert "0-5" in card["face"]["by_true_age_gap"]
    paths = [tmp_path / "card.json", tmp_path / "card.md", tmp_path / "card.png"]
    write_twin_card(card, *paths)
    loaded = json.loads(paths[0].read_text())
    assert loaded["sizes"]["samples"] == sum(len(v) for v in labels.values())
    assert "_figure" not in loaded
    assert paths[1].read_text().startswith("# MS1M twin card")
    assert paths[2].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cross_part_lookalikes_lean_on_an_identity_of_another_part() -> None:
    base = twin.twin_params("tiny", seed=4, overrides={"ids_per_part": 60})
    cross = twin.twin_params("tiny", seed=4, overrides={"ids_per_part": 60, "p_lookalike_cross": 0.5})
    plain = twin._identities(base, 2)
    ids = twin._identities(cross, 2)
    who = np.flatnonzero(ids["cross_partner"] >= 0)
    assert 15 <= who.size <= 45 and (plain["cross_partner"] < 0).all()
    # drawn after everything else: the other identities and every size are exactly the p = 0 ones
    np.testing.assert_array_equal(ids["size"], plain["size"])
    rest = np.setdiff1d(np.arange(60), who)
    np.testing.assert_array_equal(ids["centre"][rest], plain["centre"][rest])
    # each leans on its partner's centre (before look-alike pulls) in another part: cosine ~ sqrt(rho) = 0.894
    part, row = np.divmod(ids["cross_partner"][who], 60)
    assert (part != 2).all() and (part >= 0).all() and (part < cross.n_parts).all()
    partner = np.stack([twin._base_centres(cross, int(q))[r] for q, r in zip(part, row, strict=True)])
    cos = np.einsum("ij,ij->i", ids["centre"][who], partner)
    assert cos.min() > 0.85 and abs(np.median(cos) - np.sqrt(cross.lookalike_rho)) < 0.03
    # the partner's own part is untouched by being leaned on: generation stays part-independent
    np.testing.assert_array_equal(twin._identities(cross, 5)["size"], twin._identities(base, 5)["size"])
    # the identification set's probes and distractors are nobody's look-alikes
    probes, _ = twin.identification_set(cross, probe_identities=4, probe_mean_size=4, distractors=10)
    ref, _ = twin.identification_set(base, probe_identities=4, probe_mean_size=4, distractors=10)
    np.testing.assert_array_equal(probes.face, ref.face)


def test_noise_strata_put_one_noise_scale_in_each_stratum() -> None:
    from scipy.special import ndtr

    over = {"ids_per_part": 300}
    plain = twin.twin_params("tiny", seed=2, overrides=over)
    strat = twin.twin_params("tiny", seed=2, overrides={**over, "noise_strata": True})
    a, b = twin._identities(plain, 3), twin._identities(strat, 3)
    # the normal draw behind each sigma falls in its own one of 300 equal-probability strata
    z = np.log(b["sigma"] / strat.noise) / strat.noise_sd
    np.testing.assert_array_equal(np.sort(np.floor(ndtr(z) * 300)), np.arange(300))
    # iid draws leave some strata empty and others doubled (probability of none empty: 300!/300^300)
    z_iid = np.log(a["sigma"] / plain.noise) / plain.noise_sd
    assert np.unique(np.floor(ndtr(z_iid) * 300)).size < 300
    # a stream of its own: every other identity-level draw is unchanged, and the strata differ by part
    for key in ("size", "centre", "base_age", "partner", "family"):
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(b["sigma"], twin._identities(strat, 4)["sigma"])
    assert twin.twin_params("small").noise_strata and not twin.twin_params("ms1m").noise_strata


def test_identity_specific_pose_response_splits_frontal_from_profile_without_crowding_profiles() -> None:
    over = {"ids_per_part": 60, "mean_size": 30.0, "p_profile": 0.3}
    plain = twin.generate_part(twin.twin_params("tiny", seed=6, overrides=over), 1)
    turned = twin.generate_part(twin.twin_params("tiny", seed=6, overrides={**over, "face_pose_id": 4.0}), 1)
    shared = twin.generate_part(twin.twin_params("tiny", seed=6, overrides={**over, "face_pose": 2.6}), 1)
    np.testing.assert_array_equal(plain.labels, turned.labels)
    np.testing.assert_array_equal(plain.clip, turned.clip)  # only the face space changes, and no draw moves

    def cosines(p: twin.TwinPart) -> tuple[float, float]:
        prof = ((p.attributes.true_pose != "frontal") & (p.attributes.true_yaw.abs() >= 60)).to_numpy()
        front = (p.attributes.true_pose == "frontal").to_numpy()
        same = p.labels[:, None] == p.labels[None, :]
        fp = (p.face[front] @ p.face[prof].T)[same[np.ix_(front, prof)]]
        pp = (p.face[prof] @ p.face[prof].T)[~same[np.ix_(prof, prof)]]
        return float(np.median(fp)), float(np.median(pp))

    (fp0, pp0), (fp1, pp1), (_, pp2) = cosines(plain), cosines(turned), cosines(shared)
    assert fp1 < fp0 - 0.15  # a profile moves away from the same person's frontal photos
    assert pp1 <= pp0 + 0.02  # ... each its own way: profiles of different people do not gather
    assert pp2 > pp0 + 0.2  # unlike the shared pose direction (face_pose), which pulls every profile together


def test_identity_specific_ageing_parts_one_persons_years_without_gathering_the_young() -> None:
    # the shared age direction (face_age) pulls the children of different people together, which chains
    # single-linkage clustering at MS1M size; face_age_id ages each person along a direction of their own
    # every preset now ages this way (the ms1m calibration); the shared direction alone is the former default
    assert {(twin.twin_params(n).face_age, twin.twin_params(n).face_age_id) for n in twin.PRESETS} == {(0.5, 1.2)}
    over = {"ids_per_part": 80, "mean_size": 30.0, "span_scale": 16.0}
    shared = twin.generate_part(twin.twin_params("tiny", seed=4, overrides={**over, "face_age": 0.8,
                                                                             "face_age_id": 0.0}), 1)  # fmt: skip
    own = twin.generate_part(twin.twin_params("tiny", seed=4, overrides={**over, "face_age": 0.3}), 1)
    np.testing.assert_array_equal(shared.labels, own.labels)
    np.testing.assert_array_equal(shared.clip, own.clip)  # only the face space changes, and no draw moves

    def cosines(p: twin.TwinPart) -> tuple[float, float]:
        age = p.attributes.true_age.to_numpy()
        young = age < 20
        same = p.labels[:, None] == p.labels[None, :]
        gap = np.abs(age[:, None] - age[None, :]) >= 25
        sim = p.face @ p.face.T
        apart = float(np.median(sim[same & gap]))  # one person, 25+ years apart
        kids = float(np.median(sim[np.ix_(young, young)][~same[np.ix_(young, young)]]))  # two young people
        return apart, kids

    weaker = twin.generate_part(twin.twin_params("tiny", seed=4, overrides={**over, "face_age": 0.3,
                                                                             "face_age_id": 0.0}), 1)  # fmt: skip
    (apart0, kids0), (apart1, kids1), (apart2, _) = cosines(shared), cosines(own), cosines(weaker)
    assert kids0 > 0.25 and kids1 < kids0 - 0.15  # the young of different people no longer gather
    assert apart1 < apart0 + 0.05  # ... while one person's photos years apart still part
    assert apart2 > apart1 + 0.15  # a weaker shared direction alone would have lost that
