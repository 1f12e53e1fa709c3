"""The attribute vocabulary and text prompts of CLIP-Cluster (paper section 3.2 and 4.1; docs/design.md section 5).

Data only: no model, no I/O. The same tables serve the MS1M twin, real images (attribute estimators write these
values) and the CLIP-Cluster model (which embeds :func:`prompt_table`'s texts and hallucinates the
:func:`reversed_targets` of every face).

* gender: ``male`` / ``female``;
* age: four groups 0-10, 10-30, 30-50, 50-100 represented by their medians 5, 20, 40, 75 (the prompt value);
* pose: ``frontal`` iff ``|yaw| <= 20`` degrees, else ``profile``;
* expression: the seven classes of the usual facial-expression estimators.

The reversed set changes one attribute at a time: 3 other ages + 1 other pose + 6 other expressions = M = 10.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "AGE_EDGES",
    "ATTRIBUTE_COLUMNS",
    "AGE_GROUPS",
    "EXPRESSIONS",
    "FRONTAL_MAX_YAW",
    "GENDERS",
    "KINDS",
    "N_REVERSED",
    "POSES",
    "TEMPLATES",
    "age_group",
    "pose_of",
    "prompt_table",
    "prompt_text",
    "reversed_targets",
    "reversed_targets_array",
]

GENDERS: tuple[str, ...] = ("male", "female")
# (low, high, representative age); a group holds low <= age < high, the last one also age >= 100.
AGE_GROUPS: tuple[tuple[int, int, int], ...] = ((0, 10, 5), (10, 30, 20), (30, 50, 40), (50, 100, 75))
AGE_EDGES: tuple[int, ...] = (10, 30, 50)  # inner group boundaries, for np.digitize
AGE_VALUES: tuple[int, ...] = tuple(g[2] for g in AGE_GROUPS)
POSES: tuple[str, ...] = ("frontal", "profile")
FRONTAL_MAX_YAW = 20.0  # degrees; |yaw| <= 20 is frontal (paper 4.1)
EXPRESSIONS: tuple[str, ...] = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "angry")
KINDS: tuple[str, ...] = ("age", "expression", "pose")

TEMPLATES: dict[str, str] = {
    "age": "A photo of a {gender} at the age of {value}",
    "expression": "A photo of a {value} {gender}",
    "profile": "A photo of a {gender} in profile",
    "frontal": "A photo of a frontal {gender}",
}

# An attribute table's columns (what every estimator writes and the twin generates), in this order.
ATTRIBUTE_COLUMNS: tuple[str, ...] = (
    "gender",
    "age",
    "age_group",
    "expression",
    "yaw",
    "pose",
    "gender_conf",
    "age_conf",
    "expression_conf",
    "yaw_conf",
)

N_REVERSED = (len(AGE_GROUPS) - 1) + (len(POSES) - 1) + (len(EXPRESSIONS) - 1)  # M = 10


def _values(kind: str) -> tuple[str, ...]:
    if kind == "age":
        return tuple(str(v) for v in AGE_VALUES)
    if kind == "expression":
        return EXPRESSIONS
    if kind == "pose":
        return POSES
    raise ValueError(f"unknown attribute kind {kind!r}; expected one of {KINDS}")


def prompt_text(gender: str, kind: str, value: str | int) -> str:
    """The prompt sentence for one (gender, attribute kind, value), e.g. ``A photo of a male at the age of 40``."""
    value = str(value)
    if gender not in GENDERS:
        raise ValueError(f"unknown gender {gender!r}; expected one of {GENDERS}")
    if value not in _values(kind):
        raise ValueError(f"unknown {kind} value {value!r}; expected one of {_values(kind)}")
    template = TEMPLATES[value] if kind == "pose" else TEMPLATES[kind]
    return template.format(gender=gender, value=value)


def prompt_table() -> pd.DataFrame:
    """All 2 x (4 + 7 + 2) = 26 prompts, one row per (gender, attribute value), in a fixed order.

    Columns: ``gender``, ``kind`` (``age``/``expression``/``pose``), ``value`` (str: ``"40"``, ``"happy"``,
    ``"profile"``), ``text``. Order: gender-major, then kinds in :data:`KINDS` order, then values in vocabulary order.
    """
    rows = [(g, kind, value, prompt_text(g, kind, value)) for g in GENDERS for kind in KINDS for value in _values(kind)]
    return pd.DataFrame(rows, columns=["gender", "kind", "value", "text"])


def age_group(ages: np.ndarray | float) -> np.ndarray:
    """Representative age (5, 20, 40 or 75) of each age in years; vectorised, int64."""
    idx = np.digitize(np.asarray(ages, dtype=np.float64), AGE_EDGES, right=False)
    return np.asarray(AGE_VALUES, dtype=np.int64)[idx]


def pose_of(yaw_degrees: np.ndarray | float) -> np.ndarray:
    """``"frontal"`` where ``|yaw| <= 20`` degrees, else ``"profile"``; vectorised, object array of str."""
    yaw = np.abs(np.asarray(yaw_degrees, dtype=np.float64))
    return np.where(yaw <= FRONTAL_MAX_YAW, POSES[0], POSES[1]).astype(object)


def reversed_targets(age_value: int | str, expression: str, pose: str) -> list[tuple[str, str]]:
    """The M = 10 reversed attributes of one face: ``(kind, value)`` pairs changing one attribute at a time.

    Fixed order: the 3 other age values (ascending), the other pose, the 6 other expressions (vocabulary order).
    Values are strings, as in :func:`prompt_table`.
    """
    age_value, expression, pose = str(age_value), str(expression), str(pose)
    for kind, value in (("age", age_value), ("expression", expression), ("pose", pose)):
        if value not in _values(kind):
            raise ValueError(f"unknown {kind} value {value!r}; expected one of {_values(kind)}")
    out = [("age", v) for v in _values("age") if v != age_value]
    out += [("pose", v) for v in POSES if v != pose]
    out += [("expression", v) for v in EXPRESSIONS if v != expression]
    return out


def reversed_targets_array(age_values: np.ndarray, expressions: np.ndarray, poses: np.ndarray) -> np.ndarray:
    """Vectorised :func:`reversed_targets`: an N x 10 int64 array of row indices into the *gender-free* value list.

    The value list is the first 13 rows of :func:`prompt_table` without the gender, i.e. index ``j`` means
    ``prompt_table().iloc[j]`` for a male face and ``iloc[j + 13]`` for a female face. Row order per face is that of
    :func:`reversed_targets`.
    """
    ages = np.asarray(age_values).astype(np.int64)
    expr = np.asarray(expressions).astype(str)
    pose = np.asarray(poses).astype(str)
    n_age, n_expr = len(AGE_VALUES), len(EXPRESSIONS)
    age_idx = np.searchsorted(np.asarray(AGE_VALUES), ages)
    if np.any(age_idx >= n_age) or np.any(np.asarray(AGE_VALUES)[np.minimum(age_idx, n_age - 1)] != ages):
        raise ValueError(f"age values must be one of {AGE_VALUES}")
    expr_idx = _lookup(expr, EXPRESSIONS, "expression")
    pose_idx = _lookup(pose, POSES, "pose")
    # Offsets of each kind in the gender-free list: ages 0..3, expressions 4..10, poses 11..12 (KINDS order).
    e0, p0 = n_age, n_age + n_expr
    all_age = np.arange(n_age)
    all_expr = np.arange(n_expr)
    # "all values except mine": for each row drop the own index from the sorted range (vectorised via a mask).
    n = ages.shape[0]
    other_age = np.broadcast_to(all_age, (n, n_age))[all_age != age_idx[:, None]].reshape(n, n_age - 1)
    other_expr = np.broadcast_to(all_expr, (n, n_expr))[all_expr != expr_idx[:, None]].reshape(n, n_expr - 1)
    other_pose = (1 - pose_idx)[:, None]
    return np.concatenate([other_age, p0 + other_pose, e0 + other_expr], axis=1).astype(np.int64)


def _lookup(values: np.ndarray, vocab: tuple[str, ...], kind: str) -> np.ndarray:
    idx = np.searchsorted(np.asarray(sorted(vocab)), values)
    order = np.argsort(np.asarray(vocab))  # sorted position -> vocab position
    sorted_vocab = np.asarray(sorted(vocab))
    ok = (idx < len(vocab)) & (sorted_vocab[np.minimum(idx, len(vocab) - 1)] == values)
    if not np.all(ok):
        bad = values[~ok][0]
        raise ValueError(f"unknown {kind} value {bad!r}; expected one of {vocab}")
    return order[idx]
