"""Figures of the workflow (matplotlib, Agg backend, written atomically as PNG and PDF)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from clipcluster.atomic import atomic_path  # noqa: E402

LOSSES = (("total", "L (total)"), ("clip", "L_CLIP"), ("id", "L_ID"), ("cross", "L_cross"))


def read_history(path: str | Path) -> list[dict]:
    """One dict per epoch from a trainer's history.jsonl."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def training_curves(
    histories: dict[str, Sequence[dict]],
    png: str | Path,
    pdf: str | Path,
    peers: dict[str, Sequence[dict]] | None = None,
) -> None:
    """Per-epoch mean of each loss term, one line per CLIP-Cluster model variant; the peers' edge losses beside."""
    panels = [(key, title, histories) for key, title in LOSSES if histories]
    if peers:
        panels.append(("total", "peers: edge loss (FaceT CE, MHC BCE)", peers))
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.2), squeeze=False)
    for ax, (key, title, group) in zip(axes[0], panels, strict=True):
        for name, hist in group.items():
            xs = [h["epoch"] for h in hist if key in h["losses"]]  # the trainer counts epochs from 1
            ys = [h["losses"][key] for h in hist if key in h["losses"]]
            if xs:
                ax.plot(xs, ys, marker="o", ms=3, label=name)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Training on the training part (per-epoch mean losses, measured by this run)")
    fig.tight_layout()
    for path in (png, pdf):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110)
    plt.close(fig)


def hallucination_figure(sims: dict[str, dict], png: str | Path, pdf: str | Path, title: str) -> dict:
    """Histograms of pair cosines before (f) and after (proxy v) hallucination; returns the means it plots."""
    import numpy as np

    fig, axes = plt.subplots(1, len(sims), figsize=(5.5 * len(sims), 3.6), sharey=True)
    bins = np.linspace(-0.4, 1.0, 71)
    summary = {}
    for ax, (name, groups) in zip(np.atleast_1d(axes), sims.items(), strict=True):
        summary[name] = {}
        for key, label in (("same_equal", "same identity, equal attributes"),
                           ("same_different", "same identity, different attributes"),
                           ("other", "different identities")):  # fmt: skip
            x = groups[key]
            summary[name][key] = round(float(x.mean()), 4)
            ax.hist(x, bins=bins, density=True, histtype="step", lw=1.5, label=f"{label} (mean {x.mean():.3f})")
        ax.set_title(name)
        ax.set_xlabel("cosine")
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    for path in (png, pdf):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return summary
