"""The twin card: the MS1M twin's parameters plus statistics measured on what it generated.

:func:`twin_card` measures on sampled pairs (vectorised), so it works on the ms1m preset without loading all parts:
the caller gives every part's labels (cheap; e.g. read from the ``.meta`` files) for the size statistics and one
part's full arrays (features, CLIP embeddings, attribute table) for everything else. :func:`write_twin_card` writes
the card as JSON, a readable Markdown page and a figure.

What it measures (all cosines; "intra" = two photos of one identity, "inter" = of two identities):

* identity sizes over all given parts (histogram, quantiles) and per-identity spread
  (``1 - mean cos(f, identity mean direction)``) on the full part, with the fraction of "sparse" identities;
* face space: intra vs inter similarity; intra similarity with equal vs different attributes per kind
  (true age group, true pose, true expression) and with all equal vs any different;
* CLIP image space: intra vs inter, and inter-identity pairs sharing all attributes (attributes strong, identity
  weak);
* attributes: true and estimated distributions and the estimators' accuracy; photos decades apart;
* text-image alignment: cosine between the image-space attribute direction (mean embedding of images with value v
  minus that of the reference value) and the text prompt difference, zero-shot accuracy of the prompts, and the
  modality gap (raw text-image vs image-image cosines);
* the hidden CLIP -> face relation: how much of the same-identity face offset a linear map of the CLIP offset
  explains (held-out R^2; below 1 by design);
* face verification: the twin's accuracy on its analogues of LFW, CFP-FF, CFP-FP and AgeDB-30 beside one real
  model's published accuracy (:mod:`clipcluster.twin.verification`): how much pose and age cost, against a real
  recognition model.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from clipcluster import prompts
from clipcluster.atomic import atomic_path, write_json, write_text
from clipcluster.twin.verification import verification_block

log = logging.getLogger(__name__)

__all__ = ["twin_card", "write_twin_card", "card_markdown"]

_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
_SIZE_QUANTILES = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0)
_SPARSE_SPREAD = 0.3  # spread above which an identity counts as a "sparse cluster" (MHC's hard clusters)
_KINDS = (("age_group", "age"), ("pose", "pose"), ("expression", "expression"))
_AGE_GAPS = ((0, 5), (5, 10), (10, 20), (20, 30), (30, 100))  # years between two photos of one identity


def _summary(x: np.ndarray) -> dict[str, Any]:
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return {"n": 0, "mean": None, "quantiles": {}}
    q = np.quantile(x, _QUANTILES)
    return {
        "n": int(x.size),
        "mean": round(float(x.mean()), 4),
        "std": round(float(x.std()), 4),
        "quantiles": {f"{k:g}": round(float(v), 4) for k, v in zip(_QUANTILES, q, strict=True)},
    }


def _rowdot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", a, b, dtype=np.float64)


def _pair_cos(feats: np.ndarray, i: np.ndarray, j: np.ndarray, block: int = 32768) -> np.ndarray:
    """Cosines of rows ``i`` and ``j`` of L2-normalised ``feats``, gathered in blocks (bounded temporaries)."""
    out = np.empty(i.size, dtype=np.float64)
    for s in range(0, i.size, block):
        out[s : s + block] = np.einsum("ij,ij->i", feats[i[s : s + block]], feats[j[s : s + block]])
    return out


def _intra_pairs(labels: np.ndarray, n_pairs: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Uniform random samples i and a random other photo j of the same identity (pairs with j == i dropped)."""
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    pos = np.empty_like(order)
    pos[order] = np.arange(order.size)
    start = np.searchsorted(sorted_labels, sorted_labels, side="left")
    stop = np.searchsorted(sorted_labels, sorted_labels, side="right")
    i = rng.integers(0, labels.size, n_pairs)
    p = pos[i]
    j = order[start[p] + (rng.random(n_pairs) * (stop[p] - start[p])).astype(np.int64)]
    keep = j != i
    return i[keep], j[keep]


def _inter_pairs(labels: np.ndarray, n_pairs: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    i = rng.integers(0, labels.size, n_pairs)
    j = rng.integers(0, labels.size, n_pairs)
    keep = labels[i] != labels[j]
    return i[keep], j[keep]


def _histogram(x: np.ndarray, bins: np.ndarray) -> dict[str, list]:
    counts, edges = np.histogram(x, bins=bins)
    return {"edges": [round(float(e), 4) for e in edges], "counts": counts.astype(int).tolist()}


def _size_stats(labels_by_part: Mapping[int, np.ndarray]) -> dict[str, Any]:
    per_part = {}
    sizes = []
    for part, labels in sorted(labels_by_part.items()):
        _, counts = np.unique(np.asarray(labels), return_counts=True)
        per_part[str(part)] = {"samples": int(counts.sum()), "identities": int(counts.size)}
        sizes.append(counts)
    s = np.concatenate(sizes) if sizes else np.zeros(0, dtype=np.int64)
    top = max(int(s.max()) if s.size else 2, 2)
    bins = np.unique(np.geomspace(1, top + 1, 30).astype(np.int64))
    return {
        "parts": per_part,
        "identities": int(s.size),
        "samples": int(s.sum()),
        "mean": round(float(s.mean()), 2) if s.size else None,
        "quantiles": {f"{q:g}": int(v) for q, v in zip(_SIZE_QUANTILES, np.quantile(s, _SIZE_QUANTILES), strict=True)}
        if s.size
        else {},
        "histogram": _histogram(s, bins.astype(np.float64)),
        "sizes": s,  # removed before JSON; kept for the figure
    }


def _spread(face: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per identity: 1 - mean cosine between its photos and its mean direction (0 = all photos identical)."""
    codes, inv = np.unique(labels, return_inverse=True)
    # identity x sample indicator times features: per-identity sums in one sparse product (fast at 584K)
    member = sp.csr_matrix((np.ones(inv.size), (inv, np.arange(inv.size))), shape=(codes.size, inv.size))
    sums = np.asarray(member @ face.astype(np.float64))
    centres = sums / np.linalg.norm(sums, axis=1, keepdims=True)
    cos = _rowdot(face, centres[inv])
    mean_cos = np.bincount(inv, weights=cos) / np.bincount(inv)
    return 1.0 - mean_cos


def _pair_block(
    feats: np.ndarray, attrs: pd.DataFrame, labels: np.ndarray, n_pairs: int, rng: np.random.Generator
) -> dict[str, Any]:
    """Intra/inter similarity and intra similarity split by equal / different true and estimated attributes."""
    i, j = _intra_pairs(labels, n_pairs, rng)
    a, b = _inter_pairs(labels, n_pairs, rng)
    intra = _pair_cos(feats, i, j)
    inter = _pair_cos(feats, a, b)
    out: dict[str, Any] = {"intra": _summary(intra), "inter": _summary(inter)}
    out["separation"] = {
        "intra_below_inter_q999": round(float(np.mean(intra < np.quantile(inter, 0.999))), 4),
        "inter_q999": round(float(np.quantile(inter, 0.999)), 4),
        "inter_max": round(float(inter.max()), 4) if inter.size else None,
    }
    for prefix, name in (("true_", "by_true_attribute"), ("", "by_estimated_attribute")):
        block = {}
        all_eq = np.ones(i.size, dtype=bool)
        for col, _ in _KINDS:
            vals = attrs[prefix + col].to_numpy()
            eq = vals[i] == vals[j]
            all_eq &= eq
            block[col] = {"equal": _summary(intra[eq]), "different": _summary(intra[~eq])}
        block["all"] = {"equal": _summary(intra[all_eq]), "different": _summary(intra[~all_eq])}
        out[name] = block
    # Age acts continuously (age groups are coarse bins), so also split by the true age gap in years.
    gap = np.abs(attrs["true_age"].to_numpy()[i] - attrs["true_age"].to_numpy()[j])
    out["by_true_age_gap"] = {f"{lo}-{hi}": _summary(intra[(gap >= lo) & (gap < hi)]) for lo, hi in _AGE_GAPS}
    out["_samples"] = {  # raw similarities for the figure (dropped from JSON)
        "intra_equal": intra[all_eq],
        "intra_different": intra[~all_eq],
        "inter": inter,
    }
    return out


def _clip_block(clip: np.ndarray, attrs: pd.DataFrame, labels: np.ndarray, n: int, rng: np.random.Generator) -> dict:
    i, j = _intra_pairs(labels, n, rng)
    a, b = _inter_pairs(labels, n, rng)
    keys = ["true_gender"] + ["true_" + c for c, _ in _KINDS]
    same_attr_inter = np.ones(a.size, dtype=bool)
    same_attr_intra = np.ones(i.size, dtype=bool)
    for k in keys:
        v = attrs[k].to_numpy()
        same_attr_inter &= v[a] == v[b]
        same_attr_intra &= v[i] == v[j]
    intra = _pair_cos(clip, i, j)
    inter = _pair_cos(clip, a, b)
    return {
        "intra": _summary(intra),
        "inter": _summary(inter),
        "inter_same_attributes": _summary(inter[same_attr_inter]),
        "intra_different_attributes": _summary(intra[~same_attr_intra]),
        "identity_gap": round(float(intra.mean() - inter.mean()), 4),
        "attribute_gap": round(float(inter[same_attr_inter].mean() - inter.mean()), 4)
        if same_attr_inter.any()
        else None,
    }


def _distribution(values: np.ndarray) -> dict[str, float]:
    s = pd.Series(values).astype(str).value_counts(normalize=True).sort_index()
    return {str(k): round(float(v), 4) for k, v in s.items()}


def _attribute_block(attrs: pd.DataFrame, labels: np.ndarray) -> dict[str, Any]:
    out: dict[str, Any] = {"true": {}, "estimated": {}, "accuracy": {}}
    for col in ("gender", "age_group", "pose", "expression"):
        out["true"][col] = _distribution(attrs["true_" + col].to_numpy())
        out["estimated"][col] = _distribution(attrs[col].to_numpy())
        out["accuracy"][col] = round(float(np.mean(attrs[col].to_numpy() == attrs["true_" + col].to_numpy())), 4)
    age, true_age = attrs["age"].to_numpy(np.float64), attrs["true_age"].to_numpy(np.float64)
    yaw, true_yaw = attrs["yaw"].to_numpy(np.float64), attrs["true_yaw"].to_numpy(np.float64)
    out["accuracy"]["age_mae_years"] = round(float(np.mean(np.abs(age - true_age))), 3)
    out["accuracy"]["yaw_mae_degrees"] = round(float(np.mean(np.abs(yaw - true_yaw))), 3)
    out["true"]["age"] = _summary(true_age)
    out["true"]["yaw_abs"] = _summary(np.abs(true_yaw))
    # age range within identity: photos decades apart
    codes, inv = np.unique(labels, return_inverse=True)
    hi = np.full(codes.size, -np.inf)
    lo = np.full(codes.size, np.inf)
    np.maximum.at(hi, inv, true_age)
    np.minimum.at(lo, inv, true_age)
    rng_years = hi - lo
    out["identity_age_range_years"] = _summary(rng_years)
    out["identities_with_photos_20y_apart"] = round(float(np.mean(rng_years >= 20.0)), 4)
    confs = {}
    for col in ("gender", "age_group", "expression", "pose"):
        conf_col = {"age_group": "age_conf", "pose": "yaw_conf"}.get(col, col + "_conf")
        ok = attrs[col].to_numpy() == attrs["true_" + col].to_numpy()
        c = attrs[conf_col].to_numpy(np.float64)
        confs[conf_col] = {
            "mean_when_right": round(float(c[ok].mean()), 4) if ok.any() else None,
            "mean_when_wrong": round(float(c[~ok].mean()), 4) if (~ok).any() else None,
        }
    out["confidence"] = confs
    return out


def _text_block(clip: np.ndarray, attrs: pd.DataFrame, table: pd.DataFrame, emb: np.ndarray) -> dict[str, Any]:
    """Alignment of text prompt differences with image-space attribute directions, zero-shot accuracy, gap."""
    ref = {"age": "40", "pose": "frontal", "expression": "neutral"}
    true_vals = {
        "age": attrs["true_age_group"].to_numpy().astype(str),
        "pose": attrs["true_pose"].to_numpy().astype(str),
        "expression": attrs["true_expression"].to_numpy().astype(str),
    }
    gender = attrs["true_gender"].to_numpy().astype(str)
    key = {(g, k, v): r for r, (g, k, v) in enumerate(zip(table["gender"], table["kind"], table["value"], strict=True))}
    align: dict[str, float] = {}
    for kind, values in true_vals.items():
        for value in pd.unique(table.loc[table["kind"] == kind, "value"]):
            if value == ref[kind]:
                continue
            cos = []
            for g in prompts.GENDERS:
                m_v = (values == value) & (gender == g)
                m_r = (values == ref[kind]) & (gender == g)
                if m_v.sum() < 5 or m_r.sum() < 5:
                    continue
                d_img = clip[m_v].mean(axis=0, dtype=np.float64) - clip[m_r].mean(axis=0, dtype=np.float64)
                d_txt = emb[key[(g, kind, value)]].astype(np.float64) - emb[key[(g, kind, ref[kind])]]
                cos.append(float(d_img @ d_txt / (np.linalg.norm(d_img) * np.linalg.norm(d_txt))))
            if cos:
                align[f"{kind}:{value}"] = round(float(np.mean(cos)), 4)
    # zero-shot: argmax over one kind's prompts of the image's (true) gender
    sims = clip.astype(np.float32) @ emb.T.astype(np.float32)
    zero_shot = {}
    for kind, values in true_vals.items():
        rows = {
            g: np.flatnonzero((table["gender"] == g).to_numpy() & (table["kind"] == kind).to_numpy())
            for g in prompts.GENDERS
        }
        pred = np.empty(clip.shape[0], dtype=object)
        for g, r in rows.items():
            m = gender == g
            pred[m] = table["value"].to_numpy()[r][np.argmax(sims[np.ix_(m, r)], axis=1)]
        zero_shot[kind] = round(float(np.mean(pred == values)), 4)
    rng = np.random.default_rng(0)
    a = rng.integers(0, clip.shape[0], 20000)
    b = rng.integers(0, clip.shape[0], 20000)
    return {
        "direction_cosine": align,
        "direction_cosine_mean": round(float(np.mean(list(align.values()))), 4) if align else None,
        "zero_shot_accuracy": zero_shot,
        "modality_gap": {
            "text_image_cosine_mean": round(float(sims.mean()), 4),
            "image_image_cosine_mean": round(float(_pair_cos(clip, a, b).mean()), 4),
            "text_text_cosine_mean": round(float((emb @ emb.T)[np.triu_indices(len(emb), 1)].mean()), 4),
        },
    }


def _relation_block(
    face: np.ndarray, clip: np.ndarray, labels: np.ndarray, n: int, rng: np.random.Generator
) -> dict[str, float]:
    """Held-out R^2 of a least-squares linear map from CLIP offsets to face offsets within identities."""
    i, j = _intra_pairs(labels, n, rng)
    di = (clip[i] - clip[j]).astype(np.float64)
    df = (face[i] - face[j]).astype(np.float64)
    half = i.size // 2
    if half < 2 * clip.shape[1]:
        return {"linear_r2_heldout": None, "pairs": int(i.size)}
    # ridge via normal equations; one BLAS thread (threaded BLAS crawls on busy small machines)
    with threadpool_limits(1):
        gram = di[:half].T @ di[:half]
        gram[np.diag_indices_from(gram)] += 1e-3 * np.trace(gram) / gram.shape[0]
        A = np.linalg.solve(gram, di[:half].T @ df[:half])
    resid = df[half:] - di[half:] @ A
    r2 = 1.0 - float((resid**2).sum() / ((df[half:] - df[half:].mean(0)) ** 2).sum())
    return {"linear_r2_heldout": round(r2, 4), "pairs": int(i.size)}


def twin_card(
    params: Any,
    part: Any,
    labels_by_part: Mapping[int, np.ndarray] | None = None,
    *,
    text: tuple[pd.DataFrame, np.ndarray] | None = None,
    n_pairs: int = 100_000,
    seed: int = 0,
) -> dict[str, Any]:
    """Measure the twin card.

    ``params``: a :class:`~clipcluster.twin.generate.TwinParams` (or a plain dict of parameters). ``part``: one
    part's full arrays, a :class:`~clipcluster.twin.generate.TwinPart` (anything with ``face``, ``clip``, ``labels``,
    ``attributes``).
    ``labels_by_part``: ``{part: labels}`` for the size statistics of all parts (defaults to the given part only).
    ``text``: ``(prompt_table, embeddings)`` for the text-image statistics (skipped when None).
    Pair statistics use ``n_pairs`` random pairs drawn with ``seed``. Returns a JSON-able dict (plus a private
    ``_figure`` entry of raw samples that :func:`write_twin_card` plots and drops).
    """
    rng = np.random.default_rng(seed)
    face, clip = np.asarray(part.face), np.asarray(part.clip)
    labels, attrs = np.asarray(part.labels), part.attributes
    param_dict = params.to_dict() if hasattr(params, "to_dict") else dict(params)
    sizes = _size_stats(labels_by_part if labels_by_part is not None else {-1: labels})
    spread = _spread(face, labels)
    face_pairs = _pair_block(face, attrs, labels, n_pairs, rng)
    card: dict[str, Any] = {
        "params": param_dict,
        "measured_on": {"samples": int(labels.size), "identities": int(np.unique(labels).size), "pairs": n_pairs},
        "sizes": {k: v for k, v in sizes.items() if k != "sizes"},
        "spread": {
            **_summary(spread),
            "histogram": _histogram(spread, np.linspace(0.0, 1.0, 41)),
            "sparse_threshold": _SPARSE_SPREAD,
            "sparse_fraction": round(float(np.mean(spread > _SPARSE_SPREAD)), 4),
        },
        "face": {k: v for k, v in face_pairs.items() if k != "_samples"},
        "clip": _clip_block(clip, attrs, labels, n_pairs, rng),
        "attributes": _attribute_block(attrs, labels),
        "relation": _relation_block(face, clip, labels, min(n_pairs, 20_000), rng),
        "verification": verification_block(face, attrs, labels, rng),
    }
    if text is not None:
        card["text"] = _text_block(clip, attrs, *text)
    card["_figure"] = {"sizes": sizes["sizes"], "spread": spread, **face_pairs["_samples"]}
    return card


def _fmt(s: Mapping[str, Any] | None) -> str:
    if not s or s.get("mean") is None:
        return "-"
    q = s["quantiles"]
    return f"{s['mean']:.3f} ({q['0.05']:.3f} / {q['0.5']:.3f} / {q['0.95']:.3f})"


def _verification_lines(v: Mapping[str, Any]) -> list[str]:
    names = {"lfw": "LFW (any two photos)", "cfp_ff": "CFP-FF (frontal-frontal)",
             "cfp_fp": "CFP-FP (frontal-profile)", "agedb_30": "AgeDB-30 (25-35 years apart)"}  # fmt: skip
    lines = [
        "## Face verification: the twin beside a real model",
        f"Accuracy (%) on the twin's analogue of each benchmark ({v['protocol']}; true attributes) beside ArcFace "
        "LResNet100E-IR on the real benchmark (quoted: ONNX model zoo); and each error rate as a multiple of "
        "CFP-FF's: what pose and age cost.",
        "",
        "| benchmark | twin | published | twin error / FF error | published error / FF error | twin pairs |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for key, name in names.items():
        r = v[key]
        lines.append(f"| {name} | {r['twin'] if r['twin'] is not None else '-'} | {r['published']} | "
                     f"{r['error_vs_ff']['twin'] if r['error_vs_ff']['twin'] is not None else '-'} | "
                     f"{r['error_vs_ff']['published']} | {r['pairs']} |")  # fmt: skip
    lines.append(f"\nTwo different people, median cosine: frontal photos {v.get('frontal_impostor_median_cos')}, "
                 f"profiles {v.get('profile_impostor_median_cos')} (a pose offset everyone shares pulls profiles "
                 "together).")  # fmt: skip
    return lines


def card_markdown(card: Mapping[str, Any]) -> str:
    """A readable Markdown rendering of a twin card."""
    p, sz, face, clip = card["params"], card["sizes"], card["face"], card["clip"]
    lines = [
        f"# MS1M twin card: preset `{p.get('preset')}`, seed {p.get('seed')}",
        "",
        "A synthetic MS1M-like benchmark (no images). It tests that an implementation exploits the structure the "
        "CLIP-Cluster paper describes; it is not evidence that this structure exists in real faces.",
        "",
        "## Identities",
        f"- {sz['identities']} identities, {sz['samples']} samples, mean {sz['mean']} photos per identity; "
        f"size quantiles (0/10/25/50/75/90/99/100%): {', '.join(str(v) for v in sz['quantiles'].values())}",
        f"- per-identity spread (1 - mean cos to the identity's mean): {_fmt(card['spread'])}; "
        f"sparse identities (spread > {card['spread']['sparse_threshold']}): {card['spread']['sparse_fraction']:.1%}",
        "",
        "## Face space (256-d): cosine mean (5% / 50% / 95%)",
        "| pairs | cosine |",
        "| --- | --- |",
        f"| same identity | {_fmt(face['intra'])} |",
        f"| different identities | {_fmt(face['inter'])} |",
    ]
    for col in ("age_group", "pose", "expression", "all"):
        blk = face["by_true_attribute"][col]
        lines.append(f"| same identity, equal {col} | {_fmt(blk['equal'])} |")
        lines.append(f"| same identity, different {col} | {_fmt(blk['different'])} |")
    for gap, blk in face.get("by_true_age_gap", {}).items():
        lines.append(f"| same identity, photos {gap} years apart | {_fmt(blk)} |")
    lines += [
        f"\nInter-identity 99.9% quantile {face['separation']['inter_q999']}; share of same-identity pairs below it: "
        f"{face['separation']['intra_below_inter_q999']:.1%}.",
        "",
        "## CLIP image space (512-d)",
        f"- same identity {_fmt(clip['intra'])}; different identities {_fmt(clip['inter'])}; "
        f"different identities with equal gender/age/pose/expression {_fmt(clip['inter_same_attributes'])}",
        f"- identity gap {clip['identity_gap']}, attribute gap {clip['attribute_gap']} (attributes strong, identity "
        "weak)",
        "",
        "## Attributes (true vs estimated)",
    ]
    att = card["attributes"]
    for col in ("gender", "age_group", "pose", "expression"):
        lines.append(
            f"- {col}: true {att['true'][col]}; estimated {att['estimated'][col]}; accuracy {att['accuracy'][col]:.3f}"
        )
    lines += [
        f"- age MAE {att['accuracy']['age_mae_years']} years, yaw MAE {att['accuracy']['yaw_mae_degrees']} degrees; "
        f"identities with photos >= 20 years apart: {att['identities_with_photos_20y_apart']:.1%}",
        "",
        "## Hidden CLIP -> face relation",
        f"- held-out R^2 of a linear map from CLIP offsets to face offsets (same identity): "
        f"{card['relation']['linear_r2_heldout']} (a learnable, not purely linear relation)",
    ]
    if "verification" in card:
        lines += ["", *_verification_lines(card["verification"])]
    if "text" in card:
        t = card["text"]
        lines += [
            "",
            "## Text-image alignment",
            f"- cosine of image attribute direction vs prompt difference: mean {t['direction_cosine_mean']}; "
            + ", ".join(f"{k} {v}" for k, v in t["direction_cosine"].items()),
            f"- zero-shot accuracy of the prompts: {t['zero_shot_accuracy']}",
            f"- modality gap: text-image cosine {t['modality_gap']['text_image_cosine_mean']}, image-image "
            f"{t['modality_gap']['image_image_cosine_mean']}, text-text {t['modality_gap']['text_text_cosine_mean']}",
        ]
    lines += ["", "## Parameters", "", "| name | value |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in p.items()]
    return "\n".join(lines) + "\n"


def _plot(card: Mapping[str, Any], png_path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig_data = card["_figure"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    sizes = np.asarray(fig_data["sizes"])
    bins = np.unique(np.geomspace(1, max(int(sizes.max()), 2) + 1, 40).astype(int))
    axes[0].hist(sizes, bins=bins, color="tab:blue")
    axes[0].set(xscale="log", yscale="log", xlabel="photos per identity", ylabel="identities", title="Identity sizes")
    axes[1].hist(fig_data["spread"], bins=40, color="tab:orange")
    axes[1].axvline(card["spread"]["sparse_threshold"], color="k", ls="--", lw=1)
    axes[1].set(xlabel="1 - mean cos to identity mean", ylabel="identities", title="Per-identity spread")
    b = np.linspace(-0.3, 1.0, 66)
    for key, label in (
        ("intra_equal", "same id, equal attributes"),
        ("intra_different", "same id, different attributes"),
        ("inter", "different ids"),
    ):
        axes[2].hist(fig_data[key], bins=b, density=True, histtype="step", lw=1.5, label=label)
    axes[2].set(xlabel="face cosine", ylabel="density", title="Face-space similarity")
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def write_twin_card(card: Mapping[str, Any], json_path: str | Path, md_path: str | Path, png_path: str | Path) -> None:
    """Write the card as JSON (without raw samples), Markdown and a PNG figure, each atomically."""
    _plot(card, png_path)
    public = {k: v for k, v in card.items() if not k.startswith("_")}
    write_json(json_path, public)
    write_text(md_path, card_markdown(public))
