"""``prompts/text.npz``: the prompt table and its CLIP text embeddings, as the twin and open_clip both write it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from clipcluster.atomic import atomic_path


def write_prompts(path: str | Path, table: pd.DataFrame, emb: np.ndarray, weights: str) -> None:
    """``texts``, ``genders``, ``kinds``, ``values`` (str arrays), ``emb`` (P x 512), ``weights`` (what made them)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(
            fh,
            texts=table["text"].to_numpy(dtype=str),
            genders=table["gender"].to_numpy(dtype=str),
            kinds=table["kind"].to_numpy(dtype=str),
            values=table["value"].to_numpy(dtype=str),
            emb=np.asarray(emb, dtype=np.float32),
            weights=np.array(weights),
        )


def read_prompts(path: str | Path) -> tuple[pd.DataFrame, np.ndarray]:
    """The prompt table and its P x 512 text embeddings."""
    with np.load(path) as z:
        table = pd.DataFrame({"text": z["texts"], "gender": z["genders"], "kind": z["kinds"], "value": z["values"]})
        emb = np.asarray(z["emb"], dtype=np.float32)
    return table, emb
