"""The MS1M twin: a seeded generative model of an MS1M-like face-clustering benchmark, with no images.

docs/design.md section 4. Every sample is one "photo" of one identity, described by three things the pipeline sees
(a 256-d face-recognition feature ``f``, a 512-d CLIP image embedding ``i`` and *estimated* attributes) and by the
hidden true attributes (kept in ``true_*`` columns for analysis only).

Generative model (all vectors below are in the stated space; ``normalize`` is L2 normalisation)
-----------------------------------------------------------------------------------------------
*Identities* (per part). Sizes ``n_j`` follow a discretised lognormal with mean ``mean_size`` and log-sd
``size_sigma`` clipped to ``[min_size, max_size]`` (long tail; MS1M mean ~68). Each identity has a gender
(``p_male``), a base age ``N(age_mean, age_sd)``, a photo time span ``Gamma(span_shape, span_scale)`` years (so
some identities have photos decades apart), an expression tendency ``Dirichlet(expr_conc * expr_probs)`` and a
noise scale ``sigma_j = noise * exp(noise_sd * N(0, 1))`` (large ``sigma_j`` = MHC's sparse clusters). With
``noise_strata`` the part's normal draws are stratified (one in each of ``ids_per_part`` equal-probability strata,
in random order): the same marginal law, but every part holds its share of very noisy identities, which small parts
otherwise get by luck (a few of them decide a 200-identity part's pairwise recall).
Its face centre is ``c_j = normalize(sqrt(1 - family_rho) g_j + sqrt(family_rho) h_{fam(j)} + face_gender s_j u)``
where ``g_j`` and the family centres ``h`` are Gaussians with a decaying spectrum (``id_alpha``, ``id_k0``:
effective dimension well below 256, as in real face features), families of ~``family_size`` identities share a
little of their look, ``s_j = +-1`` is the gender and ``u`` a shared gender direction. A fraction ``p_lookalike``
of identities are look-alikes (or MS1M's near-duplicate identities): their centre is pulled onto another identity's,
``c_j <- normalize(sqrt(1 - lookalike_rho) c_j + sqrt(lookalike_rho) c_partner)``; they make most of the precision
errors of graph clustering. A further fraction ``p_lookalike_cross`` leans (with the same ``lookalike_rho``) on an
identity of another part, so such a pair is present only in subsets holding both parts: confusable pairs grow with
the subset, as a bigger real gallery holds more look-alikes of everyone.

*Per-image true attributes*. age = base + span * U(-1/2, 1/2) + N(0, 2); yaw frontal ``N(0, yaw_sd)`` or, with
probability ``p_profile``, profile ``+-U(20, 90)``; expression from the identity's tendency. They enter both spaces
through a 10-d attribute code ``z = [a, a^2, 1 - cos(yaw), sin(yaw) / 2, onehot(expression)[1:]]`` with
``a = (age - 40) / 30`` (so age 40, frontal, neutral is ``z = 0``).

*Face space (256-d)*, property 3::

    f = normalize(c_j + D z + face_mod * tanh(U z) * q_j + sigma_j * hard * eps / 16)

``D`` (256 x 10) holds shared attribute directions with strengths ``face_age``, ``face_pose``, ``face_expr``;
``q_j = sqrt(256) V c_j`` (``V`` a fixed random rotation) makes the nonlinear response ``tanh(U z) * q_j``
identity-specific; ``eps ~ N(0, I)``; ``hard`` is 1 except for a fraction ``hard_frac`` of degraded images
(blurred, occluded) where it is ``hard_mult`` and ``hard_pull * U(1/2, 1) * d`` is added, ``d`` one shared
"degradation" direction, so degraded photos of different people drift together. ``face_pose_id`` (0 in every
preset) adds ``face_pose_id * (1 - cos(yaw)) * r_j`` with ``r_j = normalize(R c_j)`` (``R`` a fixed rotation of
its own stream): a turned head moves each identity its own way, so its frontal and profile photos part (CFP-FP's
cost, :mod:`clipcluster.twin.verification`) without pulling the profiles of different people together, as a large
shared ``face_pose`` does; being a function of ``c_j``, it is learnable from a frontal photo. ``face_age_id``
(1.2 in every preset since the ``ms1m`` calibration; 0 leaves the shared ageing alone) adds ``face_age_id * a *
r'_j`` likewise (``r'_j`` from a rotation of its own stream): each person ages their own way, so photos years apart
part without children (or the old) of different identities gathering, which a strong shared ``face_age`` does and
which chains single-linkage clustering at MS1M size (docs/twin.md). So one identity
splits into attribute sub-clusters: same identity with different attributes is less similar than with equal
attributes, but still mostly more similar than different identities.

*CLIP image space (512-d)*, property 4::

    i = normalize(img_gap * o_img + clip_id * P c_j + clip_gender * s_j v + T z + clip_noise * eps' / sqrt(512))

``T`` (512 x 10) has orthogonal columns scaled by ``clip_age``, ``clip_pose``, ``clip_expr`` (attributes strong),
``P`` is a fixed random isometry 256 -> 512 and ``clip_id`` small (identity weak), ``o_img`` a shared offset.

*CLIP text space*: prompt ``(gender, kind, value)`` has code ``z_p`` (the value's code, other attributes at the
reference state; profile = yaw 60 degrees) and embedding
``t = normalize(text_gap * o_txt + clip_gender * s v + T z_p + text_noise * e_p)`` with ``o_txt`` orthogonal to
``o_img``: prompt differences are aligned with the image-space attribute directions, yet raw text-image cosines are
small (the modality gap).

*Hidden CLIP -> face relation* (property 5). Between two photos of one identity the clean attribute offsets are
``di = T (z - z_r)`` and ``df = W di + face_mod * (tanh(U z) - tanh(U z_r)) * q_j`` with ``W = D T^+`` a fixed
linear map. The second term depends on the identity (through ``q_j``, which ``f_r`` reveals) and on the absolute
attribute state, so a network ``B(i - i_r, f_r)`` can learn ``f - f_r`` well but not exactly.

*Estimates the pipeline sees* (property 2): age + N(0, age_err_sd * (0.5 + age / 60)), gender flipped with
probability ``gender_flip`` (doubled for children), expression replaced by a confusion with probability
``expr_confusion``, yaw + N(0, yaw_err_sd); each with a confidence in (0, 1) that is higher when the estimate
is right. ``age_group`` and ``pose`` are derived from the estimates, as the pipeline would.

Determinism (property 6): shared matrices (``D, U, V, T, P``, offsets, gender directions, prompt noise) come from
the seed alone; identity-level draws from ``(seed, part)``; image-level draws from ``(seed, part, chunk)`` where a
chunk is ``chunk_ids`` consecutive identities. Parts are independent and can be generated in any order; a part
streams chunk by chunk, so peak memory is one chunk plus the part's labels (``write_part``).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtri
from threadpoolctl import threadpool_limits

from clipcluster import prompts
from clipcluster.atomic import atomic_path
from clipcluster.errors import DataError
from clipcluster.io import FLOAT, write_meta

log = logging.getLogger(__name__)

__all__ = [
    "PRESETS",
    "TwinModel",
    "TwinParams",
    "TwinPart",
    "ATTRIBUTE_COLUMNS",
    "TRUE_COLUMNS",
    "attribute_code",
    "generate_part",
    "identity_sizes",
    "identification_set",
    "iter_part_chunks",
    "part_labels",
    "text_embeddings",
    "twin_model",
    "twin_params",
    "write_part",
    "write_text_embeddings",
]

FACE_DIM = 256
CLIP_DIM = 512
CODE_DIM = 10  # [a, a^2, 1 - cos(yaw), sin(yaw)/2, 6 expression one-hots]
PROFILE_PROMPT_YAW = 60.0  # the yaw a "in profile" prompt stands for

ATTRIBUTE_COLUMNS = prompts.ATTRIBUTE_COLUMNS
TRUE_COLUMNS = ("true_gender", "true_age", "true_age_group", "true_expression", "true_yaw", "true_pose")

# Calibrated with benchmarks/calibrate_twin.py (k = 50 cosine kNN, similarity floor 0.58, seed 0) against MS1M
# part1's published baselines. ms1m part 1 (595,570 samples, 8,573 identities, IVF kNN): Infomap alone pairwise
# P/R/F 95.62/90.60/93.04 directed (the reference implementation's flow model), 94.03/91.57/92.78 undirected;
# paper 95.50/92.51/93.98. Scaled stand-ins (exact kNN): 500 identities 95.77/91.05/93.35 directed, 1,000
# identities 97.26/84.66/90.52 (pairwise recall is dominated by the few largest identities, so small parts are
# noisy). K-Means (k = #identities, faiss Lloyd, 10 iterations): P/R/F 82.85/71.06/76.50 on ms1m part 1, F 79.8
# (500 ids) and 80.6 (1,000 ids), falling with scale as in CLIP-Cluster Table 5; published
# 60.18 (CLIP-Cluster Table 3) and 79.21 (learn-to-cluster). The attribute strengths are as large as Infomap's
# recall allows: stronger face_pose/face_age split big identities into sub-clusters and cut recall to ~82-85.
_BASE: dict[str, Any] = {
    "n_parts": 10,
    "ids_per_part": 8573,
    "mean_size": 68.0,
    "size_sigma": 0.75,
    "min_size": 2,
    "max_size": 1500,
    "chunk_ids": 256,
    # identities
    "p_male": 0.7,
    "age_mean": 38.0,
    "age_sd": 13.0,
    "span_shape": 1.5,
    "span_scale": 8.0,
    "yaw_sd": 8.0,
    "p_profile": 0.12,
    "expr_probs": (0.45, 0.30, 0.06, 0.07, 0.03, 0.03, 0.06),
    "expr_conc": 20.0,
    # face space
    "id_alpha": 1.0,
    "id_k0": 24.0,
    "family_size": 4.0,
    "family_rho": 0.25,
    "p_lookalike": 0.08,
    "lookalike_rho": 0.8,
    "p_lookalike_cross": 0.0,  # look-alikes of someone in another part: confusions that grow with the subset
    "face_gender": 0.25,
    # Ageing mostly each person's own way (the ms1m calibration, docs/twin.md): with a shared face_age of 0.8 alone
    # the children (and the old) of different people gathered and, at MS1M size, chained DBSCAN and single-linkage
    # HAC into two giant clusters (precision 16 % and 13 %); 0.5 shared + 1.2 own gives the AgeDB-30 analogue 97.8
    # against ArcFace's 97.87 (benchmarks/diagnose_twin_chaining.py)
    "face_age": 0.5,
    "face_pose": 0.65,
    "face_expr": 0.25,
    "face_mod": 0.25,
    "face_pose_id": 0.0,  # identity-specific pose response (0: none; see the module docstring)
    "face_age_id": 1.2,  # identity-specific ageing (0: none; see the module docstring)
    "noise": 0.7,
    "noise_sd": 0.2,
    "noise_strata": False,  # stratified noise scales (the small preset; see the module docstring)
    "hard_frac": 0.03,
    "hard_mult": 2.0,
    "hard_pull": 0.5,
    # CLIP image and text spaces
    "img_gap": 1.0,
    "text_gap": 1.2,
    "clip_id": 0.35,
    "clip_gender": 0.8,
    "clip_age": 0.9,
    "clip_pose": 0.9,
    "clip_expr": 0.7,
    "clip_noise": 0.8,
    "text_noise": 0.25,
    # estimators
    "age_err_sd": 5.0,
    "gender_flip": 0.03,
    "expr_confusion": 0.25,
    "yaw_err_sd": 6.0,
}

PRESETS: dict[str, dict[str, Any]] = {
    # tests: seconds; 10 parts of ~12 identities with ~15 photos each
    "tiny": {**_BASE, "ids_per_part": 12, "mean_size": 15.0, "size_sigma": 0.5, "max_size": 100, "chunk_ids": 5},
    # the default run: ~13.6K samples per part. With 200 identities a part's pairwise F rests on a few of them, so
    # sizes are less skewed (log-sd 0.5: ~74 identities carry the pair weight, against ~21 at 0.75) and the noise
    # scales stratified; cross-part look-alikes make F fall with the subset as published (docs/twin.md)
    "small": {**_BASE, "ids_per_part": 200, "size_sigma": 0.5, "noise_strata": True, "p_lookalike_cross": 0.3},
    # MS1M sizes: 8,573 identities and ~584K samples per part, ~5.8M in all: the calibrated parameters themselves
    "ms1m": dict(_BASE),
    # Shaped like CLIP-Cluster Table 4's WebFace42M protocol (STAR-FC's): two identity-disjoint parts, train and
    # test, with many more identities and fewer photos each (WebFace42M: 42M photos of 2M identities, ~21 each).
    # webface42m: 190K identities x ~21 = ~4M per part, as in the paper; webface_small: ~13.6K per part like
    # the small preset's parts; webface_tiny: the tests'.
    "webface42m": {**_BASE, "n_parts": 2, "ids_per_part": 190_000, "mean_size": 21.0, "max_size": 500},
    "webface_small": {**_BASE, "n_parts": 2, "ids_per_part": 650, "mean_size": 21.0, "max_size": 500},
    "webface_tiny": {
        **_BASE,
        "n_parts": 2,
        "ids_per_part": 30,
        "mean_size": 6.0,
        "size_sigma": 0.5,
        "max_size": 40,
        "chunk_ids": 10,
    },
}


@dataclass(frozen=True)
class TwinParams:
    """All parameters of the twin (see the module docstring for the meaning of each field)."""

    preset: str
    seed: int
    n_parts: int
    ids_per_part: int
    mean_size: float
    size_sigma: float
    min_size: int
    max_size: int
    chunk_ids: int
    p_male: float
    age_mean: float
    age_sd: float
    span_shape: float
    span_scale: float
    yaw_sd: float
    p_profile: float
    expr_probs: tuple[float, ...]
    expr_conc: float
    id_alpha: float
    id_k0: float
    family_size: float
    family_rho: float
    p_lookalike: float
    lookalike_rho: float
    p_lookalike_cross: float
    face_gender: float
    face_age: float
    face_pose: float
    face_expr: float
    face_mod: float
    face_pose_id: float
    face_age_id: float
    noise: float
    noise_sd: float
    noise_strata: bool
    hard_frac: float
    hard_mult: float
    hard_pull: float
    img_gap: float
    text_gap: float
    clip_id: float
    clip_gender: float
    clip_age: float
    clip_pose: float
    clip_expr: float
    clip_noise: float
    text_noise: float
    age_err_sd: float
    gender_flip: float
    expr_confusion: float
    yaw_err_sd: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of all fields."""
        d = dataclasses.asdict(self)
        d["expr_probs"] = list(self.expr_probs)
        return d


_GENERATIVE_KEYS = tuple(f.name for f in dataclasses.fields(TwinParams) if f.name not in ("preset", "seed"))


def twin_params(preset: str = "small", seed: int = 0, overrides: Mapping[str, Any] | None = None) -> TwinParams:
    """The parameters of ``preset`` with ``overrides`` applied; unknown presets or keys raise a one-line DataError."""
    if preset not in PRESETS:
        raise DataError("twin.preset", f"unknown preset {preset!r} (allowed: {', '.join(PRESETS)})")
    values = dict(PRESETS[preset])
    for key, value in (overrides or {}).items():
        if key not in _GENERATIVE_KEYS:
            raise DataError("twin.overrides", f"{key}: unknown key (allowed: {', '.join(sorted(_GENERATIVE_KEYS))})")
        values[key] = value
    values["expr_probs"] = tuple(float(p) for p in values["expr_probs"])
    params = TwinParams(preset=preset, seed=int(seed), **values)
    _check(params)
    return params


def _check(p: TwinParams) -> None:
    def bad(key: str, problem: str) -> DataError:
        return DataError(f"twin.{key}", problem)

    for key in ("n_parts", "ids_per_part", "min_size", "chunk_ids"):
        if int(getattr(p, key)) < 1:
            raise bad(key, "must be a positive integer")
    if p.max_size < p.min_size:
        raise bad("max_size", f"must be >= min_size ({p.min_size})")
    if not p.min_size <= p.mean_size <= p.max_size:
        raise bad("mean_size", f"must lie in [min_size, max_size] = [{p.min_size}, {p.max_size}]")
    for key in ("face_pose_id", "face_age_id"):
        if not getattr(p, key) >= 0.0:
            raise bad(key, f"must be >= 0, got {getattr(p, key)!r}")
    if not isinstance(p.noise_strata, bool):
        raise bad("noise_strata", f"must be true or false, got {p.noise_strata!r}")
    if len(p.expr_probs) != len(prompts.EXPRESSIONS) or min(p.expr_probs) < 0 or sum(p.expr_probs) <= 0:
        raise bad("expr_probs", f"needs {len(prompts.EXPRESSIONS)} non-negative weights")
    for key in (
        "p_male",
        "p_profile",
        "family_rho",
        "p_lookalike",
        "lookalike_rho",
        "p_lookalike_cross",
        "hard_frac",
        "gender_flip",
        "expr_confusion",
    ):
        if not 0.0 <= getattr(p, key) <= 1.0:
            raise bad(key, "must lie in [0, 1]")


# --------------------------------------------------------------------------------------------------------------
# shared model (seed only)


@dataclass(frozen=True)
class TwinModel:
    """The shared matrices of one seed (see module docstring); identical for every part."""

    id_basis: np.ndarray  # 256 x 256 rotation times sqrt(spectrum): identity Gaussians are N(0,1) @ id_basis
    gender_face: np.ndarray  # 256 unit
    degrade: np.ndarray  # 256 unit: where hard (degraded) photos of everyone drift
    D: np.ndarray  # 256 x 10 shared face attribute directions (with strengths)
    U: np.ndarray  # 256 x 10 nonlinear response weights
    V: np.ndarray  # 256 x 256 rotation giving the identity-specific response q_j
    T: np.ndarray  # 512 x 10 CLIP attribute directions (with strengths)
    P: np.ndarray  # 512 x 256 isometry: face identity -> CLIP identity
    gender_clip: np.ndarray  # 512 unit
    gap_img: np.ndarray  # 512 unit
    gap_txt: np.ndarray  # 512 unit, orthogonal to gap_img
    prompt_noise: np.ndarray  # 26 x 512 fixed per-prompt "wording" noise, unit-norm rows

    @property
    def W(self) -> np.ndarray:
        """The linear part of the hidden CLIP -> face offset map: ``D z = W (T z)`` for every code ``z``."""
        return self.D @ np.linalg.pinv(self.T)


def _orthonormal(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    # One BLAS thread: threaded LAPACK QR on these small matrices is ~100x slower when cores are busy.
    with threadpool_limits(1):
        q, r = np.linalg.qr(rng.standard_normal((n, k)))
    return q * np.sign(np.diag(r))  # sign fix: a unique, well-defined draw


_MODEL_KEYS = ("id_alpha", "id_k0", "face_age", "face_pose", "face_expr", "clip_age", "clip_pose", "clip_expr")


def twin_model(params: TwinParams) -> TwinModel:
    """The shared matrices for ``params`` (depend on the seed and the strength parameters only; cached)."""
    return _twin_model(params.seed, tuple(getattr(params, k) for k in _MODEL_KEYS))


@lru_cache(maxsize=8)
def _twin_model(seed: int, strengths: tuple[float, ...]) -> TwinModel:
    id_alpha, id_k0, face_age, face_pose, face_expr, clip_age, clip_pose, clip_expr = strengths
    rng = np.random.default_rng([seed, 7001])
    spectrum = (1.0 + np.arange(FACE_DIM) / id_k0) ** (-id_alpha)
    spectrum /= spectrum.sum()
    rot = _orthonormal(rng, FACE_DIM, FACE_DIM)
    id_basis = np.sqrt(spectrum)[:, None] * rot.T  # rows scaled: g = N(0, I) @ id_basis has E|g|^2 = 1
    face_dirs = _orthonormal(rng, FACE_DIM, CODE_DIM + 2)
    strengths_face = np.array([face_age] * 2 + [face_pose] * 2 + [face_expr] * 6)
    D = face_dirs[:, :CODE_DIM] * strengths_face
    gender_face, degrade = face_dirs[:, CODE_DIM], face_dirs[:, CODE_DIM + 1]
    U = rng.standard_normal((FACE_DIM, CODE_DIM))
    V = _orthonormal(rng, FACE_DIM, FACE_DIM)
    clip_dirs = _orthonormal(rng, CLIP_DIM, CODE_DIM + 3)
    strengths_clip = np.array([clip_age] * 2 + [clip_pose] * 2 + [clip_expr] * 6)
    T = clip_dirs[:, :CODE_DIM] * strengths_clip
    gender_clip, gap_img, gap_txt = clip_dirs[:, CODE_DIM], clip_dirs[:, CODE_DIM + 1], clip_dirs[:, CODE_DIM + 2]
    P = _orthonormal(rng, CLIP_DIM, FACE_DIM)
    noise = rng.standard_normal((len(prompts.GENDERS) * 13, CLIP_DIM))
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    return TwinModel(id_basis, gender_face, degrade, D, U, V, T, P, gender_clip, gap_img, gap_txt, noise)


_OWN_STREAMS = {"pose": 7005, "age": 7006}  # each identity-specific response has a rotation of its own stream


@lru_cache(maxsize=8)
def _own_rotation(seed: int, kind: str) -> np.ndarray:
    """The fixed rotation behind the identity-specific ``kind`` directions (its own stream: the seed's other
    matrices stay as they were)."""
    return _orthonormal(np.random.default_rng([seed, _OWN_STREAMS[kind]]), FACE_DIM, FACE_DIM)


def _own_directions(seed: int, kind: str, centres: np.ndarray) -> np.ndarray:
    """Each identity's unit ``kind`` direction ``normalize(R c_j)``: a function of its centre, as ``q_j`` is, so a
    network that sees one photo can learn where that person's profile (or older face) lies."""
    r = centres @ _own_rotation(seed, kind).T
    return (r / np.linalg.norm(r, axis=1, keepdims=True)).astype(np.float32)


def attribute_code(age: np.ndarray, yaw_deg: np.ndarray, expression_idx: np.ndarray) -> np.ndarray:
    """The 10-d attribute code ``z`` (N x 10 float64) of true ages (years), yaws (degrees) and expression indices."""
    a = (np.asarray(age, dtype=np.float64) - 40.0) / 30.0
    yaw = np.deg2rad(np.asarray(yaw_deg, dtype=np.float64))
    n = a.shape[0]
    z = np.zeros((n, CODE_DIM))
    z[:, 0] = a
    z[:, 1] = a * a
    z[:, 2] = 1.0 - np.cos(yaw)
    z[:, 3] = 0.5 * np.sin(yaw)
    e = np.asarray(expression_idx, dtype=np.int64)
    nz = e > 0
    z[np.flatnonzero(nz), 3 + e[nz]] = 1.0
    return z


# --------------------------------------------------------------------------------------------------------------
# identities (seed, part)


def identity_sizes(params: TwinParams, part: int) -> np.ndarray:
    """Number of photos of each identity of ``part`` (int64, ``ids_per_part`` values)."""
    return _identities(params, part)["size"]


def part_labels(params: TwinParams, part: int) -> np.ndarray:
    """The identity label of every sample of ``part`` (int64), without generating features."""
    ids = _identities(params, part)
    return np.repeat(ids["label"], ids["size"])


def _check_part(params: TwinParams, part: int) -> None:
    if not 0 <= int(part) < params.n_parts:
        raise DataError("twin.part", f"part {part} out of range 0..{params.n_parts - 1}")


def _identities(params: TwinParams, part: int) -> dict[str, np.ndarray]:
    """Identity-level draws of one part: sizes, gender, age, span, tendencies, noise scale, face centres."""
    _check_part(params, part)
    p = params
    n = p.ids_per_part
    rng, draws = _identity_rng(p, part)
    size, male, base_age, span, tendency, sigma = (
        draws[k] for k in ("size", "male", "base_age", "span", "tendency", "sigma")
    )
    model = twin_model(p)
    family, c = _centres(p, rng, male)
    # Look-alikes (and MS1M's near-duplicate identities): a few identities lean on another one's centre.
    partner = np.full(n, -1, dtype=np.int64)
    look = np.flatnonzero(rng.random(n) < p.p_lookalike)
    if look.size and n > 1:
        partner[look] = (look + rng.integers(1, n, look.size)) % n
        c[look] = np.sqrt(1.0 - p.lookalike_rho) * c[look] + np.sqrt(p.lookalike_rho) * c[partner[look]]
        c[look] /= np.linalg.norm(c[look], axis=1, keepdims=True)
    # Look-alikes of someone in another part (drawn last, so p_lookalike_cross = 0 leaves every other draw as it
    # was): both are present only in subsets that hold both parts, so a bigger subset holds more confusable pairs,
    # as a bigger real gallery does. They lean on the partner's centre before its own look-alike pull.
    cross_partner = np.full(n, -1, dtype=np.int64)
    cross = np.flatnonzero(rng.random(n) < p.p_lookalike_cross)
    if cross.size and p.n_parts > 1:
        other = (part + rng.integers(1, p.n_parts, cross.size)) % p.n_parts
        row = rng.integers(0, n, cross.size)
        cross_partner[cross] = other * n + row
        pulled = np.empty((cross.size, FACE_DIM))
        for q in np.unique(other):
            pulled[other == q] = _base_centres(p, int(q))[row[other == q]]
        c[cross] = np.sqrt(1.0 - p.lookalike_rho) * c[cross] + np.sqrt(p.lookalike_rho) * pulled
        c[cross] /= np.linalg.norm(c[cross], axis=1, keepdims=True)
    return {
        "label": part * p.ids_per_part + np.arange(n, dtype=np.int64),
        "size": size,
        "male": male,
        "base_age": base_age,
        "span": span,
        "tendency": tendency,
        "sigma": sigma,
        "family": family,
        "partner": partner,
        "cross_partner": cross_partner,
        "centre": c,
        "q": np.sqrt(FACE_DIM) * (c @ model.V.T),
    }


def _identity_rng(params: TwinParams, part: int) -> tuple[np.random.Generator, dict[str, np.ndarray]]:
    """The part's identity stream and its first draws (sizes to noise scales), shared by every use of the part."""
    p = params
    n = p.ids_per_part
    rng = np.random.default_rng([p.seed, 7002, part])
    # Lognormal with the requested mean: E = exp(mu + s^2/2); rounding and clipping shift it by < 0.5 (the card
    # reports the measured mean: 68.08 over the ms1m preset's 10 parts at seed 0, 5.84M samples).
    mu = np.log(p.mean_size) - 0.5 * p.size_sigma**2
    size = np.clip(np.rint(rng.lognormal(mu, p.size_sigma, n)), p.min_size, p.max_size).astype(np.int64)
    male = rng.random(n) < p.p_male
    base_age = np.clip(rng.normal(p.age_mean, p.age_sd, n), 3.0, 90.0)
    span = rng.gamma(p.span_shape, p.span_scale, n)
    probs = np.asarray(p.expr_probs, dtype=np.float64)
    tendency = rng.dirichlet(p.expr_conc * probs / probs.sum() + 1e-3, n)
    z = rng.standard_normal(n)
    if p.noise_strata:
        # drawn from a stream of its own, so every later draw of the part is the same as without strata
        strata = np.random.default_rng([p.seed, 7004, part])
        z = ndtri((strata.permutation(n) + strata.uniform(1e-9, 1.0, n)) / n)  # in (0, 1): finite
    sigma = p.noise * np.exp(p.noise_sd * z)
    draws = {"size": size, "male": male, "base_age": base_age, "span": span, "tendency": tendency, "sigma": sigma}
    return rng, draws


def _centres(p: TwinParams, rng: np.random.Generator, male: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Families and face centres before any look-alike pull (unit rows)."""
    n = male.shape[0]
    model = twin_model(p)
    n_fam = max(1, int(round(n / max(p.family_size, 1.0))))
    family = rng.integers(0, n_fam, n)
    fam_centres = rng.standard_normal((n_fam, FACE_DIM)) @ model.id_basis
    own = rng.standard_normal((n, FACE_DIM)) @ model.id_basis
    sign = np.where(male, 1.0, -1.0)
    c = np.sqrt(1.0 - p.family_rho) * own + np.sqrt(p.family_rho) * fam_centres[family]
    c += p.face_gender * sign[:, None] * model.gender_face
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    return family, c


@lru_cache(maxsize=16)
def _base_centres(params: TwinParams, part: int) -> np.ndarray:
    """Part ``part``'s centres before look-alike pulls: what a cross-part look-alike leans on (cached, read-only)."""
    rng, draws = _identity_rng(params, part)
    c = _centres(params, rng, draws["male"])[1]
    c.setflags(write=False)
    return c


# --------------------------------------------------------------------------------------------------------------
# samples (seed, part, chunk)


@dataclass
class TwinPart:
    """One part (or one chunk of a part): features, labels and the attribute table (see module docstring)."""

    face: np.ndarray  # N x 256 float32, L2-normalised
    clip: np.ndarray  # N x 512 float32, L2-normalised
    labels: np.ndarray  # N int64 identity ids, unique across parts
    attributes: pd.DataFrame  # ATTRIBUTE_COLUMNS then TRUE_COLUMNS

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def _normalize32(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32, copy=False)
    x /= np.sqrt(np.einsum("ij,ij->i", x, x))[:, None]
    return x


def _confidence(rng: np.random.Generator, correct: np.ndarray) -> np.ndarray:
    """Estimator confidence: high (Beta(6, 1.5)) when right, middling (Beta(2, 2.5)) when wrong."""
    hi = rng.beta(6.0, 1.5, correct.shape[0])
    lo = rng.beta(2.0, 2.5, correct.shape[0])
    return np.where(correct, hi, lo)


def _chunk(params: TwinParams, part: int, ids: dict[str, np.ndarray], chunk: int) -> TwinPart:
    p = params
    model = twin_model(p)
    lo, hi = chunk * p.chunk_ids, min((chunk + 1) * p.chunk_ids, p.ids_per_part)
    rng = np.random.default_rng([p.seed, 7003, part, chunk])
    sizes = ids["size"][lo:hi]
    who = np.repeat(np.arange(lo, hi), sizes)  # identity row of every sample
    n = who.shape[0]

    # true attributes
    male = ids["male"][who]
    age = ids["base_age"][who] + ids["span"][who] * (rng.random(n) - 0.5) + rng.normal(0.0, 2.0, n)
    age = np.clip(age, 1.0, 99.0)
    profile = rng.random(n) < p.p_profile
    yaw = np.where(
        profile,
        np.where(rng.random(n) < 0.5, -1.0, 1.0) * rng.uniform(20.0, 90.0, n),
        np.clip(rng.normal(0.0, p.yaw_sd, n), -20.0, 20.0),
    )
    cum = np.cumsum(ids["tendency"][who], axis=1)
    expr = np.minimum((rng.random(n)[:, None] > cum).sum(axis=1), len(prompts.EXPRESSIONS) - 1)
    z = attribute_code(age, yaw, expr)

    # face space: centre + shared directions + identity-specific nonlinear response + noise
    # (float32 from here on: 5-10x faster tanh/normal draws, and half the memory of a chunk)
    f32 = np.float32
    z32 = z.astype(f32)
    is_hard = rng.random(n) < p.hard_frac
    hard = np.where(is_hard, p.hard_mult, 1.0)
    face = ids["centre"][lo:hi].astype(f32)[who - lo]
    face += z32 @ model.D.T.astype(f32)
    face += np.tanh(z32 @ model.U.T.astype(f32)) * (f32(p.face_mod / np.sqrt(FACE_DIM)) * ids["q"][who].astype(f32))
    noise_scale = (ids["sigma"][who] * hard / np.sqrt(FACE_DIM)).astype(f32)
    face += noise_scale[:, None] * rng.standard_normal((n, FACE_DIM), dtype=f32)
    # degraded photos of everyone drift towards one shared direction (they clump together across identities)
    pull = (p.hard_pull * is_hard * rng.uniform(0.5, 1.0, n)).astype(f32)
    face += pull[:, None] * model.degrade.astype(f32)
    # a turned head and the years move each identity its own way (no draw from rng: the rest is unchanged)
    for strength, col, kind in ((p.face_pose_id, 2, "pose"), (p.face_age_id, 0, "age")):
        if strength:
            own = _own_directions(p.seed, kind, ids["centre"][lo:hi])[who - lo]
            face += (f32(strength) * z32[:, col])[:, None] * own
    face = _normalize32(face)

    # CLIP image space: shared offset + weak identity + gender + strong attributes + noise
    sign = np.where(male, 1.0, -1.0).astype(f32)
    clip = ((p.clip_id * ids["centre"][lo:hi]) @ model.P.T).astype(f32)[who - lo]
    clip += (p.img_gap * model.gap_img).astype(f32) + z32 @ model.T.T.astype(f32)
    clip += sign[:, None] * (p.clip_gender * model.gender_clip).astype(f32)
    clip += f32(p.clip_noise / np.sqrt(CLIP_DIM)) * rng.standard_normal((n, CLIP_DIM), dtype=f32)
    clip = _normalize32(clip)

    attributes = _estimates(p, rng, male, age, yaw, expr)
    return TwinPart(face=face, clip=clip, labels=ids["label"][who], attributes=attributes)


def _estimates(
    p: TwinParams, rng: np.random.Generator, male: np.ndarray, age: np.ndarray, yaw: np.ndarray, expr: np.ndarray
) -> pd.DataFrame:
    """What an attribute estimator would report, with confidences; plus the hidden truth."""
    n = male.shape[0]
    genders = np.asarray(prompts.GENDERS, dtype=object)
    exprs = np.asarray(prompts.EXPRESSIONS, dtype=object)
    flip_p = np.where(age < 12.0, 2.0 * p.gender_flip, p.gender_flip)
    flip = rng.random(n) < flip_p
    male_est = male ^ flip
    age_sd = p.age_err_sd * (0.5 + age / 60.0)
    age_err = rng.normal(0.0, 1.0, n) * age_sd
    age_est = np.clip(age + age_err, 1.0, 99.0)
    # confusions land on neutral half of the time, else on a uniformly chosen other class
    confuse = rng.random(n) < p.expr_confusion
    other = (expr + rng.integers(1, len(exprs), n)) % len(exprs)
    wrong = np.where((rng.random(n) < 0.5) & (expr != 0), 0, other)
    expr_est = np.where(confuse, wrong, expr)
    yaw_est = np.clip(yaw + rng.normal(0.0, p.yaw_err_sd, n), -90.0, 90.0)
    age_ok = np.abs(age_err) < 1.5 * age_sd
    yaw_ok = np.abs(yaw_est - yaw) < 1.5 * p.yaw_err_sd
    return pd.DataFrame(
        {
            "gender": genders[np.where(male_est, 0, 1)],
            "age": age_est.astype(np.float32),
            "age_group": prompts.age_group(age_est),
            "expression": exprs[expr_est],
            "yaw": yaw_est.astype(np.float32),
            "pose": prompts.pose_of(yaw_est),
            "gender_conf": _confidence(rng, ~flip).astype(np.float32),
            "age_conf": _confidence(rng, age_ok).astype(np.float32),
            "expression_conf": _confidence(rng, expr_est == expr).astype(np.float32),
            "yaw_conf": _confidence(rng, yaw_ok).astype(np.float32),
            "true_gender": genders[np.where(male, 0, 1)],
            "true_age": age.astype(np.float32),
            "true_age_group": prompts.age_group(age),
            "true_expression": exprs[expr],
            "true_yaw": yaw.astype(np.float32),
            "true_pose": prompts.pose_of(yaw),
        }
    )


def n_chunks(params: TwinParams) -> int:
    """Number of identity chunks a part is generated in."""
    return -(-params.ids_per_part // params.chunk_ids)


def iter_part_chunks(params: TwinParams, part: int) -> Iterator[TwinPart]:
    """Yield ``part`` chunk by chunk (``chunk_ids`` identities each), in sample order; memory: one chunk."""
    ids = _identities(params, part)
    for chunk in range(n_chunks(params)):
        yield _chunk(params, part, ids, chunk)


def generate_part(params: TwinParams, part: int) -> TwinPart:
    """Generate one whole part in memory (for tests and small presets; use :func:`write_part` for ms1m)."""
    n = int(identity_sizes(params, part).sum())
    # preallocate so peak memory is the part plus one chunk (not twice the part)
    face = np.empty((n, FACE_DIM), dtype=np.float32)
    clip = np.empty((n, CLIP_DIM), dtype=np.float32)
    labels = np.empty(n, dtype=np.int64)
    tables = []
    start = 0
    for c in iter_part_chunks(params, part):
        stop = start + len(c)
        face[start:stop], clip[start:stop], labels[start:stop] = c.face, c.clip, c.labels
        tables.append(c.attributes)
        start = stop
    return TwinPart(face=face, clip=clip, labels=labels, attributes=pd.concat(tables, ignore_index=True))


def write_part(
    params: TwinParams,
    part: int,
    *,
    face_bin: str | Path,
    clip_bin: str | Path,
    meta: str | Path,
    attributes_parquet: str | Path,
) -> dict[str, Any]:
    """Generate ``part`` and write its four files atomically, streaming chunk by chunk.

    ``face_bin``/``clip_bin`` are learn-to-cluster ``.bin`` files (float32 N x 256 / N x 512), ``meta`` one label per
    line, ``attributes_parquet`` the attribute table. Peak memory is one chunk plus the labels. Returns a summary
    (samples, identities, seconds).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    t0 = time.perf_counter()
    labels = []
    with (
        atomic_path(face_bin) as face_tmp,
        atomic_path(clip_bin) as clip_tmp,
        atomic_path(attributes_parquet) as attr_tmp,
        open(face_tmp, "wb") as face_fh,
        open(clip_tmp, "wb") as clip_fh,
    ):
        writer = None
        try:
            for chunk in iter_part_chunks(params, part):
                face_fh.write(np.ascontiguousarray(chunk.face, dtype=FLOAT).tobytes())
                clip_fh.write(np.ascontiguousarray(chunk.clip, dtype=FLOAT).tobytes())
                table = pa.Table.from_pandas(chunk.attributes, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(attr_tmp, table.schema)
                writer.write_table(table)
                labels.append(chunk.labels)
        finally:
            if writer is not None:
                writer.close()
        face_fh.flush()
        clip_fh.flush()
        all_labels = np.concatenate(labels)
        write_meta(meta, all_labels)
    seconds = time.perf_counter() - t0
    log.info("twin part %d: %d samples, %d identities, %.1fs", part, all_labels.size, params.ids_per_part, seconds)
    return {"part": part, "samples": int(all_labels.size), "identities": params.ids_per_part, "seconds": seconds}


# --------------------------------------------------------------------------------------------------------------
# text space


def prompt_codes(table: pd.DataFrame) -> np.ndarray:
    """Attribute code ``z`` (P x 10) of each prompt: its value, other attributes at the reference state."""
    n = len(table)
    age = np.full(n, 40.0)
    yaw = np.zeros(n)
    expr = np.zeros(n, dtype=np.int64)
    kind = table["kind"].to_numpy()
    value = table["value"].to_numpy()
    is_age, is_pose, is_expr = kind == "age", kind == "pose", kind == "expression"
    age[is_age] = value[is_age].astype(np.float64)
    yaw[is_pose & (value == "profile")] = PROFILE_PROMPT_YAW
    lookup = {e: k for k, e in enumerate(prompts.EXPRESSIONS)}
    expr[is_expr] = [lookup[v] for v in value[is_expr]]
    return attribute_code(age, yaw, expr)


def text_embeddings(params: TwinParams) -> tuple[pd.DataFrame, np.ndarray]:
    """The prompt table and its CLIP text embeddings (P x 512 float32, L2-normalised); depends on the seed only."""
    model = twin_model(params)
    table = prompts.prompt_table()
    sign = np.where(table["gender"].to_numpy() == "male", 1.0, -1.0)
    emb = params.text_gap * model.gap_txt + params.clip_gender * sign[:, None] * model.gender_clip
    emb = emb + prompt_codes(table) @ model.T.T + params.text_noise * model.prompt_noise[: len(table)]
    return table, _normalize32(emb)


def write_text_embeddings(params: TwinParams, path: str | Path) -> None:
    """Write the prompt embeddings as npz (``texts``, ``genders``, ``kinds``, ``values``: str arrays; ``emb``)."""
    from clipcluster.prompt_file import write_prompts

    table, emb = text_embeddings(params)
    write_prompts(path, table, emb, "the twin's generative model")


# --------------------------------------------------------------------------------------------------------------
# identification set (MegaFace-style probes and distractors, for Figure 4)


def identification_set(
    params: TwinParams, *, probe_identities: int, probe_mean_size: float, distractors: int
) -> tuple[TwinPart, TwinPart]:
    """Probes and distractors of identities that no part holds, for MegaFace-style rank-1 identification.

    MegaFace challenge 1 pairs FaceScrub probes (80 identities, 3,530 photos, ~44 each) with 1M distractor photos
    of other people. Here the probes are ``probe_identities`` new identities with ~``probe_mean_size`` photos each
    and the distractors one photo each of ``distractors`` further identities, drawn from the same generative model
    (same seed, shared matrices) as the parts, as if they were parts ``n_parts`` and ``n_parts + 1``. Labels are
    renumbered past every part's (probes first), so they never collide with a training label.
    """
    if probe_identities < 2 or distractors < 1:
        raise DataError("recognition.identification", "needs >= 2 probe identities and >= 1 distractor")
    # other people: no look-alike of anyone in a part
    extra = dataclasses.replace(params, n_parts=params.n_parts + 2, p_lookalike_cross=0.0)
    probe = dataclasses.replace(
        extra,
        ids_per_part=int(probe_identities),
        mean_size=float(probe_mean_size),
        min_size=max(params.min_size, 2),  # every probe identity needs a gallery photo and a probe photo
        max_size=max(params.max_size, int(probe_mean_size)),
    )
    lone = dataclasses.replace(extra, ids_per_part=int(distractors), mean_size=1.0, min_size=1, max_size=1)
    _check(probe)
    _check(lone)
    probes = generate_part(probe, params.n_parts)
    dis = generate_part(lone, params.n_parts + 1)
    first = params.n_parts * params.ids_per_part  # past every part's labels
    probes.labels = first + probes.labels - params.n_parts * probe.ids_per_part
    dis.labels = first + int(probe_identities) + dis.labels - (params.n_parts + 1) * lone.ids_per_part
    return probes, dis
