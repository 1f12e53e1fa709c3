"""Hallucination targets as row indices into the prompt table (paper 3.2; docs/design.md section 5).

For each face and each of its M = 10 hallucinations, ``src[n, m]`` is the prompt row of the face's *current* value
of the changed attribute kind and ``tgt[n, m]`` the prompt row of the reversed value, both with the face's estimated
gender. The model then forms ``dt = emb[tgt] - emb[src]`` on the fly, so nothing of size N x M x 512 is ever stored
(584K x 10 x 512 float32 would be 12 GB); the two int64 index arrays are 47 MB each at 584K faces.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from clipcluster import prompts
from clipcluster.errors import DataError

__all__ = ["ATTRIBUTE_KEYS", "hallucination_targets"]

ATTRIBUTE_KEYS: tuple[str, ...] = ("gender", "age_group", "expression", "pose")
_N_VALUES = len(prompts.AGE_VALUES) + len(prompts.EXPRESSIONS) + len(prompts.POSES)  # 13 prompts per gender


def _check_table(table: pd.DataFrame) -> None:
    """The index arithmetic below assumes :func:`prompts.prompt_table`'s row order; refuse any other table."""
    ref = prompts.prompt_table()
    cols = ["gender", "kind", "value"]
    if len(table) != len(ref) or any(c not in table.columns for c in cols):
        raise DataError("prompt table", f"expected the {len(ref)} rows of prompts.prompt_table(), got {len(table)}")
    got = table[cols].astype(str).reset_index(drop=True)
    if not got.equals(ref[cols]):
        raise DataError("prompt table", "row order differs from prompts.prompt_table(); re-embed the prompts")


def hallucination_targets(attributes: pd.DataFrame, table: pd.DataFrame | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Source and target prompt rows (two N x M int64 arrays) of every face's M = 10 hallucinations.

    Args:
        attributes: one row per face with the estimated ``gender`` (``male``/``female``), ``age_group``
            (5/20/40/75), ``expression`` and ``pose`` (``frontal``/``profile``).
        table: the prompt table the text embeddings were computed for; checked against
            :func:`prompts.prompt_table` when given.

    Returns:
        ``(src, tgt)``; column order is :func:`prompts.reversed_targets`'s (3 other ages, the other pose, 6 other
        expressions). Vectorised: no Python loop over faces.
    """
    if table is not None:
        _check_table(table)
    missing = [c for c in ATTRIBUTE_KEYS if c not in attributes.columns]
    if missing:
        raise DataError("attributes", f"missing column(s) {missing}; expected {list(ATTRIBUTE_KEYS)}")
    gender = attributes["gender"].to_numpy().astype(str)
    bad = ~np.isin(gender, prompts.GENDERS)
    if bad.any():
        raise DataError("attributes", f"row {int(np.argmax(bad))}: gender {gender[bad][0]!r} not in {prompts.GENDERS}")
    try:
        tgt = prompts.reversed_targets_array(
            attributes["age_group"].to_numpy(), attributes["expression"].to_numpy(), attributes["pose"].to_numpy()
        )
    except ValueError as exc:
        raise DataError("attributes", str(exc)) from None
    # Own value of each kind in the gender-free list: ages 0..3, expressions 4..10, poses 11..12 (KINDS order).
    ages = np.asarray(prompts.AGE_VALUES)
    age_own = np.searchsorted(ages, attributes["age_group"].to_numpy().astype(np.int64))
    expr_own = len(ages) + _index(attributes["expression"].to_numpy().astype(str), prompts.EXPRESSIONS)
    pose_own = len(ages) + len(prompts.EXPRESSIONS) + _index(attributes["pose"].to_numpy().astype(str), prompts.POSES)
    n_age, n_pose = len(ages) - 1, len(prompts.POSES) - 1
    src = np.concatenate(
        [
            np.repeat(age_own[:, None], n_age, axis=1),
            np.repeat(pose_own[:, None], n_pose, axis=1),
            np.repeat(expr_own[:, None], len(prompts.EXPRESSIONS) - 1, axis=1),
        ],
        axis=1,
    )
    offset = np.where(gender == prompts.GENDERS[0], 0, _N_VALUES)[:, None]
    return (src + offset).astype(np.int64), (tgt + offset).astype(np.int64)


def _index(values: np.ndarray, vocab: tuple[str, ...]) -> np.ndarray:
    """Position of each value in ``vocab`` (values already validated by ``reversed_targets_array``)."""
    order = np.argsort(np.asarray(vocab))
    return order[np.searchsorted(np.asarray(vocab)[order], values)]
