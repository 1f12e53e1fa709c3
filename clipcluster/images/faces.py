"""Face detection, 68-point landmarks, alignment and face-recognition features (docs/design.md section 7).

Backends for the features (config ``faces.backend``):

* ``dlib``: dlib's 128-d ResNet descriptor (``dlib_face_recognition_resnet_model_v1.dat``), offline: the model files
  ship in the ``face-recognition-models`` package;
* ``onnx``: a user-supplied ArcFace-style ONNX file (e.g. InsightFace's ``w600k_r50.onnx``): 112 x 112 RGB crops
  aligned to ArcFace's five-point template, ``(x - 127.5) / 127.5``, one embedding per crop.

Detection is dlib's HOG frontal detector; the largest face of a photo is the one kept (MS1M and WebFace hold one
subject per photo; the count of photos with more than one face is reported). For crops that are already aligned
(MS1M-ArcFace's 112 x 112), ``aligned: true`` skips detection and takes the whole image as the face box. Landmarks
are dlib's 68 points, in the photo's pixel coordinates; they are what every later stage (CLIP crops, attributes,
yaw) reuses, so a photo is detected once.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from clipcluster.errors import DataError

if TYPE_CHECKING:
    import dlib

# ArcFace's five-point template for 112 x 112 crops (insightface's arcface_dst): eye centres, nose tip, mouth corners
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32,
)
N_LANDMARKS = 68


def dlib_model_dir() -> Path:
    """The folder of dlib's model files inside ``face-recognition-models``.

    Found without importing the package: its ``__init__`` imports ``pkg_resources``, which setuptools >= 81 removed.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("face_recognition_models", "package not installed (pip install face-recognition-models)")
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    if not folder.is_dir():
        raise DataError(folder, "missing: face-recognition-models is installed without its model files")
    return folder


@dataclass
class Face:
    """One detected (or given) face: box (left, top, right, bottom), 68 landmarks (68 x 2, pixels), detections."""

    box: np.ndarray  # 4 float32
    landmarks: np.ndarray  # 68 x 2 float32
    n_detected: int  # faces the detector found in the photo (1 for aligned crops)


class FaceDetector:
    """dlib HOG detection (largest face) + 68-point landmarks; ``aligned`` takes the whole image as the face."""

    def __init__(self, *, aligned: bool = False, upsample: int = 1) -> None:
        import dlib

        self.aligned = aligned
        self.upsample = int(upsample)
        self._detector = None if aligned else dlib.get_frontal_face_detector()
        self._shape = dlib.shape_predictor(str(dlib_model_dir() / "shape_predictor_68_face_landmarks.dat"))

    def detect(self, rgb: np.ndarray) -> Face | None:
        """The photo's largest face with its landmarks, or None when the detector finds no face."""
        import dlib

        h, w = rgb.shape[:2]
        if self.aligned:
            rect, n = dlib.rectangle(0, 0, w - 1, h - 1), 1
        else:
            rects = list(self._detector(rgb, self.upsample))
            if not rects:
                return None
            n = len(rects)
            rect = max(rects, key=lambda r: (r.width() * r.height(), -r.left(), -r.top()))
        shape = self._shape(rgb, rect)
        points = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32)
        box = np.array([rect.left(), rect.top(), rect.right(), rect.bottom()], dtype=np.float32)
        return Face(box=box, landmarks=points, n_detected=n)


def five_points(landmarks: np.ndarray) -> np.ndarray:
    """ArcFace's five points from dlib's 68: eye centres (image left first), nose tip, mouth corners."""
    lm = np.asarray(landmarks, dtype=np.float32)
    if lm.shape != (N_LANDMARKS, 2):
        raise ValueError(f"landmarks have shape {lm.shape}, expected ({N_LANDMARKS}, 2)")
    return np.stack([lm[36:42].mean(0), lm[42:48].mean(0), lm[30], lm[48], lm[54]]).astype(np.float32)


def align_crop(rgb: np.ndarray, landmarks: np.ndarray, size: int = 112, padding: float = 0.0) -> np.ndarray:
    """A ``size`` x ``size`` crop whose five points sit on ArcFace's template (a similarity transform).

    ``padding`` widens the view around the template (0.25 = a quarter of the face more on every side), for encoders
    that were trained on looser crops than ArcFace's (CLIP, attribute models).
    """
    import cv2

    scale = size / 112.0 / (1.0 + 2.0 * padding)
    dst = (ARCFACE_TEMPLATE - 56.0) * scale + size / 2.0
    matrix, _ = cv2.estimateAffinePartial2D(five_points(landmarks), dst, method=cv2.LMEDS)
    if matrix is None:  # degenerate landmarks (all on a line): fall back to the box-free centre crop
        return _centre_crop(rgb, size)
    # black outside the photo, as insightface's norm_crop does (replicated edges smear into streaks)
    return cv2.warpAffine(rgb, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def _centre_crop(rgb: np.ndarray, size: int) -> np.ndarray:
    import cv2

    h, w = rgb.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return cv2.resize(rgb[top : top + s, left : left + s], (size, size), interpolation=cv2.INTER_AREA)


def _full_object_detection(face: Face) -> dlib.full_object_detection:
    import dlib

    left, top, right, bottom = (int(round(v)) for v in face.box)
    parts = [dlib.point(int(round(x)), int(round(y))) for x, y in face.landmarks]
    return dlib.full_object_detection(dlib.rectangle(left, top, right, bottom), parts)


class FaceEmbedder:
    """Interface of a face-recognition feature extractor: L2-normalised ``dim``-d features of faces in photos."""

    dim: int
    name: str

    def embed(self, images: list[np.ndarray], faces: list[Face]) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError


class DlibEmbedder(FaceEmbedder):
    """dlib's 128-d ResNet (99.38% on LFW) on its own 150 x 150 face chips from the 68 landmarks."""

    dim = 128
    name = "dlib"

    def __init__(self, num_jitters: int = 0) -> None:
        import dlib

        self._net = dlib.face_recognition_model_v1(str(dlib_model_dir() / "dlib_face_recognition_resnet_model_v1.dat"))
        self.num_jitters = int(num_jitters)

    def embed(self, images: list[np.ndarray], faces: list[Face]) -> np.ndarray:
        out = np.empty((len(images), self.dim), dtype=np.float32)
        for row, (rgb, face) in enumerate(zip(images, faces, strict=True)):
            out[row] = np.asarray(
                self._net.compute_face_descriptor(rgb, _full_object_detection(face), self.num_jitters),
                dtype=np.float32,
            )
        return _l2(out)


class OnnxEmbedder(FaceEmbedder):
    """A user's ArcFace-style ONNX model on 112 x 112 aligned crops (InsightFace's input convention)."""

    name = "onnx"

    def __init__(self, path: str | Path, batch_size: int = 64) -> None:
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise DataError(path, "ONNX face model not found (faces.onnx_model)")
        try:
            self._session = ort.InferenceSession(str(path), providers=ort.get_available_providers())
        except Exception as err:  # onnxruntime raises its own exception types for unreadable graphs
            raise DataError(path, f"not a loadable ONNX model: {str(err).splitlines()[0]}") from None
        inp = self._session.get_inputs()[0]
        shape = list(inp.shape)
        if len(shape) != 4 or shape[1] != 3 or shape[2:] != [112, 112]:
            raise DataError(path, f"input {inp.name!r} has shape {shape}, expected (batch, 3, 112, 112)")
        self._input = inp.name
        out_shape = self._session.get_outputs()[0].shape
        if len(out_shape) != 2 or not isinstance(out_shape[1], int):
            raise DataError(path, f"output has shape {out_shape}, expected (batch, dim)")
        self.dim = int(out_shape[1])
        self.batch_size = int(batch_size)

    def embed(self, images: list[np.ndarray], faces: list[Face]) -> np.ndarray:
        crops = np.stack([align_crop(rgb, f.landmarks, 112) for rgb, f in zip(images, faces, strict=True)])
        blob = ((crops.astype(np.float32) - 127.5) / 127.5).transpose(0, 3, 1, 2)
        out = [
            self._session.run(None, {self._input: blob[s : s + self.batch_size]})[0]
            for s in range(0, len(blob), self.batch_size)
        ]
        return _l2(np.concatenate(out).astype(np.float32))


def _l2(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)


def make_embedder(backend: str, onnx_model: str | None = None, batch_size: int = 64) -> FaceEmbedder:
    """The feature extractor named by config ``faces.backend``."""
    if backend == "dlib":
        return DlibEmbedder()
    if backend == "onnx":
        if not onnx_model:
            raise DataError("faces.onnx_model", "required when faces.backend is 'onnx' (path of an ArcFace .onnx)")
        return OnnxEmbedder(onnx_model, batch_size)
    raise ValueError(f"unknown faces backend {backend!r}; expected 'dlib' or 'onnx'")
