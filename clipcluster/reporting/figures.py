"""Figures of the workflow (matplotlib, Agg backend, written atomically as PNG and PDF)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
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


# Figure 4's two points stated in CLIP-Cluster's text (Sec. 4.5), on real MegaFace with 1M distractors: rank-1 with
# part0 alone, and with all 5.21M images of part1-9 pseudo-labelled by CLIP-Cluster (ratio 9).
FIGURE4_PAPER_POINTS = ((0.0, 58.2), (9.0, 80.5))


def figure4_table(runs: Sequence[dict], refs: Mapping[str, dict], display: dict[str, str]):
    """Rank-1 (%) per pseudo-label source (rows) and subset (columns), part0 alone first, with each column's measured
    ratio of unlabelled to labelled rows, the reference rows ``refs`` (label -> rank-1 of input features without
    training) and the paper's two quoted points."""
    import pandas as pd

    subsets = sorted({r["subset"] for r in runs if r["labels"] != "part0"}, key=lambda s: (_ratio(runs, s), s))
    base = next(r for r in runs if r["labels"] == "part0")
    cols = ["0 (part0 only)"] + [f"{s} (x{_ratio(runs, s):.2f})" for s in subsets]
    rows = []
    for lab in dict.fromkeys(r["labels"] for r in runs if r["labels"] != "part0"):
        by = {r["subset"]: r for r in runs if r["labels"] == lab}
        cells = [100 * base["rank1"]] + [100 * by[s]["rank1"] if s in by else float("nan") for s in subsets]
        dropped = sum(by[s]["dropped_singletons"] for s in by)
        rows.append(
            {
                "labels": display.get(lab, lab),
                "source": "measured",
                **dict(zip(cols, cells, strict=True)),
                "dropped_singletons": dropped,
            }
        )
    for label, raw in refs.items():
        rows.append(
            {
                "labels": label,
                "source": "measured",
                **{c: (100 * raw["rank1"] if i == 0 else float("nan")) for i, c in enumerate(cols)},
            }
        )
    quoted = {cols[0]: FIGURE4_PAPER_POINTS[0][1]}
    if subsets and abs(_ratio(runs, subsets[-1]) - 9.0) < 1.0:  # the paper's second point is at part1-9 (ratio 9)
        quoted[cols[-1]] = FIGURE4_PAPER_POINTS[1][1]
    rows.append({"labels": "CLIP-Cluster, paper (real MegaFace, 1M distractors)", "source": "quoted", **quoted})
    return pd.DataFrame(rows)


def _ratio(runs: Sequence[dict], subset: str) -> float:
    return float(next(r["ratio"] for r in runs if r["subset"] == subset))


def figure4(
    runs: Sequence[dict],
    refs: Mapping[str, dict],
    display: dict[str, str],
    png: str | Path,
    pdf: str | Path,
    title: str,
) -> None:
    """Rank-1 identification vs the ratio of pseudo-labelled to labelled training data, one line per label source
    (each starts at part0 alone), the ground truth dashed, each reference in ``refs`` (input features' own rank-1)
    dotted, and the paper's two stated points as hollow stars (quoted, real MegaFace)."""
    base = next(r for r in runs if r["labels"] == "part0")
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for lab in dict.fromkeys(r["labels"] for r in runs if r["labels"] != "part0"):
        pts = sorted((r["ratio"], 100 * r["rank1"]) for r in runs if r["labels"] == lab)
        xs, ys = zip(*[(0.0, 100 * base["rank1"]), *pts], strict=True)
        style = {"ls": "--", "color": "black"} if lab == "truth" else {}
        ax.plot(xs, ys, marker="o", ms=4, label=display.get(lab, lab), **style)
    for (label, raw), color in zip(refs.items(), ("grey", "tab:brown", "tab:olive"), strict=False):
        ax.axhline(100 * raw["rank1"], ls=":", color=color, label=label)
    px, py = zip(*FIGURE4_PAPER_POINTS, strict=True)
    ax.plot(
        px,
        py,
        ls="none",
        marker="*",
        ms=12,
        mfc="none",
        color="tab:red",
        label="CLIP-Cluster, paper (quoted; real MegaFace)",
    )
    ax.set_xlabel("ratio of pseudo-labelled to labelled training data")
    ax.set_ylabel("rank-1 identification (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    for path in (png, pdf):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110)
    plt.close(fig)
