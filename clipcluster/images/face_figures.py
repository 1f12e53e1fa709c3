"""What a person looks at after a run on photos: how many photos had a face, the attribute distribution, and a
contact sheet of predicted clusters (aligned face crops, one row per cluster)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from clipcluster import prompts  # noqa: E402
from clipcluster.atomic import atomic_path  # noqa: E402
from clipcluster.images.faces import align_crop  # noqa: E402

SUMMARY_COLUMNS = ("images", "ok", "no_face", "unreadable", "multi_face", "identities", "identities_kept")


def faces_table(summaries: dict[str, dict]) -> pd.DataFrame:
    """One row per part and a total: photos, photos with a face (ok), without, unreadable, identities."""
    table = pd.DataFrame.from_dict(summaries, orient="index").reindex(columns=list(SUMMARY_COLUMNS))
    total = table.sum(numeric_only=True).astype(int)
    table.loc["all"] = total
    table["ok %"] = (100.0 * table["ok"] / table["images"].clip(lower=1)).round(2)
    table.index.name = "part"
    return table


def attribute_figure(attributes: pd.DataFrame, png: str | Path, title: str) -> dict[str, dict[str, int]]:
    """Bar charts of gender, age group, expression and pose, and the yaw histogram; returns the counts drawn."""
    kinds = {
        "gender": list(prompts.GENDERS),
        "age_group": list(prompts.AGE_VALUES),
        "expression": list(prompts.EXPRESSIONS),
        "pose": list(prompts.POSES),
    }
    counts = {k: {str(v): int((attributes[k] == v).sum()) for v in values} for k, values in kinds.items()}
    fig, axes = plt.subplots(1, 5, figsize=(17, 3.2))
    for ax, (kind, values) in zip(axes, counts.items(), strict=False):
        ax.bar(list(values), list(values.values()), color="#4C72B0")
        ax.set_title(kind.replace("_", " "))
        ax.tick_params(axis="x", rotation=45)
    yaw = attributes["yaw"].to_numpy(dtype=float)
    axes[4].hist(yaw[np.isfinite(yaw)], bins=36, range=(-90, 90), color="#55A868")
    for edge in (-prompts.FRONTAL_MAX_YAW, prompts.FRONTAL_MAX_YAW):
        axes[4].axvline(edge, color="k", lw=0.8, ls="--")
    axes[4].set_title("yaw (degrees; |yaw| <= 20 frontal)")
    fig.suptitle(f"{title}: {len(attributes)} faces", y=1.02)
    fig.tight_layout()
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return counts


def pick_clusters(pred: np.ndarray, truth: np.ndarray, n_clusters: int, seed: int) -> list[np.ndarray]:
    """Rows of up to ``n_clusters`` predicted clusters with at least 2 members: the largest, then the least pure
    ones (up to half the rows: mistakes are what a person wants to see), then random others."""
    ids, sizes = np.unique(pred, return_counts=True)
    multi = ids[sizes >= 2]
    if not multi.size:
        return []
    chosen = [ids[np.argmax(sizes)]]
    purity = {
        c: np.bincount(np.unique(truth[pred == c], return_inverse=True)[1]).max() / (pred == c).sum() for c in multi
    }
    impure = sorted((c for c in multi if purity[c] < 1 and c not in chosen), key=lambda c: (purity[c], c))
    chosen += impure[: max(n_clusters // 2 - 1, 0)]
    rest = np.array([c for c in multi if c not in chosen])
    rng = np.random.default_rng(seed)
    chosen += list(rng.choice(rest, size=min(n_clusters - len(chosen), rest.size), replace=False)) if rest.size else []
    return [np.flatnonzero(pred == c) for c in chosen]


def contact_sheet(
    clusters: Sequence[np.ndarray],
    kept: pd.DataFrame,
    decode,
    png: str | Path,
    title: str,
    per_row: int = 10,
    size: int = 96,
) -> int:
    """One row per cluster: up to ``per_row`` aligned faces, framed green when they are of the cluster's majority
    identity and red otherwise (so wrong merges show at a glance). Returns the number of faces drawn."""
    rows = max(len(clusters), 1)
    fig, axes = plt.subplots(rows, per_row, figsize=(per_row * 1.1, rows * 1.25), squeeze=False)
    drawn = 0
    if not clusters:
        for ax in axes.ravel():
            ax.axis("off")
        axes[0][per_row // 2].text(0.5, 0.5, "no predicted cluster has two or more faces", ha="center", va="center")
    for r, members in enumerate(clusters):
        labels = kept["label"].to_numpy()[members]
        majority = np.bincount(labels - labels.min()).argmax() + labels.min()
        for c in range(per_row):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c >= len(members):
                continue
            row = kept.iloc[members[c]]
            crop = align_crop(decode(row["source"]), np.asarray(row["landmarks"]).reshape(-1, 2), size, 0.15)
            ax.imshow(crop)
            color = "#2ca02c" if row["label"] == majority else "#d62728"
            for spine in ax.spines.values():
                spine.set_visible(True)
                spine.set_color(color)
                spine.set_linewidth(3)
            drawn += 1
        purity = float((labels == majority).mean())
        axes[r][0].set_ylabel(f"{len(members)} faces\n{100 * purity:.0f}% one id", fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return drawn
