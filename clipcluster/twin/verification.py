"""The twin's face features under the public face-verification protocols, beside one real model's published accuracy.

Issue 17 asks that the twin's attribute effects be sized from what verification benchmarks show for one recognition
model. The benchmarks isolate one attribute each: CFP (Sengupta et al., WACV 2016) compares frontal-frontal (FF)
with frontal-profile (FP) pairs of the same 500 people, AgeDB-30 (Moschoglou et al., CVPRW 2017) pairs photos of one
person 30 years apart, LFW pairs photos at random. :func:`verification_block` draws the twin's analogue of each pair
set from one part and scores it with their shared protocol: 10 folds of equal numbers of same- and
different-identity pairs; in each fold the cosine threshold that maximises accuracy on the other nine is applied to
it; the accuracy is the mean over folds.

The twin's pair sets (true attributes, which the pipeline never sees):

* ``lfw``: two photos at random (any pose, age or expression); different-identity pairs likewise;
* ``cfp_ff``: two frontal photos; the negatives two frontal photos of different identities;
* ``cfp_fp``: a frontal and a profile photo (true yaw at least ``PROFILE_YAW`` degrees, the yaw the "in profile"
  prompt stands for; CFP's profiles are near-full); the negatives a frontal and a profile photo of two identities;
* ``agedb_30``: two frontal photos of one identity whose true ages differ by 25 to 35 years; the negatives two
  frontal photos of different identities.

:data:`PUBLISHED` holds one model's accuracies on the real benchmarks, quoted (ArcFace, LResNet100E-IR trained on
refined MS1M, as listed in the ONNX model zoo's ArcFace page, ``onnx/models``
``vision/body_analysis/arcface/README.md``): the same network on all four, so the ratios between its error rates
say how much pose and age cost a recognition model of the kind whose features MS1M's clustering benchmarks use.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clipcluster.errors import DataError

__all__ = ["PUBLISHED", "PROFILE_YAW", "verification_accuracy", "verification_block"]

# Quoted: accuracy (%) of ArcFace LResNet100E-IR (refined MS1M) in the ONNX model zoo's ArcFace README.
PUBLISHED: dict[str, float] = {"lfw": 99.77, "cfp_ff": 99.83, "cfp_fp": 94.21, "agedb_30": 97.87}
PROFILE_YAW = 60.0  # degrees; clipcluster.twin.generate.PROFILE_PROMPT_YAW
AGE_GAP = (25.0, 35.0)  # years between the two photos of an AgeDB-30-like pair
FOLDS = 10
PAIRS = 3000  # same-identity pairs per protocol (LFW and AgeDB-30: 3,000; CFP: 3,500), as many different ones


def verification_accuracy(same_scores: np.ndarray, diff_scores: np.ndarray, folds: int = FOLDS) -> float:
    """LFW's protocol on given similarity scores: pairs dealt round-robin into ``folds`` folds; each fold is scored
    at the threshold that maximises accuracy on the others (a pair is called "same" above it). Mean accuracy, %."""
    s = np.concatenate([np.asarray(same_scores, np.float64), np.asarray(diff_scores, np.float64)])
    y = np.concatenate([np.ones(len(same_scores), bool), np.zeros(len(diff_scores), bool)])
    if len(same_scores) < folds or len(diff_scores) < folds or not np.isfinite(s).all():
        raise DataError("verification", f"{len(same_scores)} / {len(diff_scores)} pairs (finite: "
                        f"{np.isfinite(s).all()}); need at least {folds} of each, finite")  # fmt: skip
    fold = np.concatenate([np.arange(len(same_scores)) % folds, np.arange(len(diff_scores)) % folds])
    accs = []
    for k in range(folds):
        tr = fold != k
        order = np.argsort(s[tr], kind="stable")
        ss, yy = s[tr][order], y[tr][order]
        # threshold between sorted scores i-1 and i: "same" = scores from i on; correct = negatives below + positives
        # from i on, for every cut at once
        neg_below = np.concatenate([[0], np.cumsum(~yy)])
        pos_from = yy.sum() - np.concatenate([[0], np.cumsum(yy)])
        cut = int(np.argmax(neg_below + pos_from))
        if cut == 0:
            thr = -np.inf  # every pair "same"
        elif cut == ss.size:
            thr = np.inf  # none
        else:
            thr = (ss[cut - 1] + ss[cut]) / 2
        accs.append(np.mean((s[~tr] > thr) == y[~tr]))
    return float(100.0 * np.mean(accs))


def _draw(
    labels: np.ndarray, a_ok: np.ndarray, b_ok: np.ndarray, same: bool, n: int, rng: np.random.Generator,
    pair_ok: Any = None,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """``n`` pairs (i, j), i from ``a_ok``, j from ``b_ok``, same identity or not (and ``pair_ok(i, j)`` if given),
    by rejection in vectorised rounds."""
    a_idx, b_idx = np.flatnonzero(a_ok), np.flatnonzero(b_ok)
    if a_idx.size == 0 or b_idx.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    if same:  # candidates for j: the b-photos of i's identity
        order = b_idx[np.argsort(labels[b_idx], kind="stable")]
        lab = labels[order]
    out_i, out_j, got = [], [], 0
    for _ in range(200):
        i = rng.choice(a_idx, 4 * n)
        if same:
            lo, hi = np.searchsorted(lab, labels[i], "left"), np.searchsorted(lab, labels[i], "right")
            has = hi > lo
            i, lo, hi = i[has], lo[has], hi[has]
            j = order[lo + (rng.random(i.size) * (hi - lo)).astype(np.int64)]
            keep = j != i
        else:
            j = rng.choice(b_idx, i.size)
            keep = labels[i] != labels[j]
        if pair_ok is not None:
            keep &= pair_ok(i, j)
        out_i.append(i[keep])
        out_j.append(j[keep])
        got += int(keep.sum())
        if got >= n:
            break
    return np.concatenate(out_i)[:n], np.concatenate(out_j)[:n]


def verification_block(
    face: np.ndarray, attrs: pd.DataFrame, labels: np.ndarray, rng: np.random.Generator, n_pairs: int = PAIRS
) -> dict[str, Any]:
    """The twin's accuracy (%) on its analogue of each benchmark (module docstring), the published one beside it,
    and each error rate as a multiple of the frontal-frontal one; a protocol with too few pairs is None. Also the
    median cosine of two different people's frontal photos and of their profiles: whether profiles gather."""
    face = np.asarray(face, np.float32)
    labels = np.asarray(labels)
    yaw = np.abs(attrs["true_yaw"].to_numpy(np.float64))
    age = attrs["true_age"].to_numpy(np.float64)
    frontal = (attrs["true_pose"] == "frontal").to_numpy()
    profile = (attrs["true_pose"] != "frontal").to_numpy() & (yaw >= PROFILE_YAW)
    anyone = np.ones(labels.size, bool)

    def aged(i: np.ndarray, j: np.ndarray) -> np.ndarray:
        gap = np.abs(age[i] - age[j])
        return (gap >= AGE_GAP[0]) & (gap <= AGE_GAP[1])

    sets = {
        "lfw": ((anyone, anyone, None), (anyone, anyone)),
        "cfp_ff": ((frontal, frontal, None), (frontal, frontal)),
        "cfp_fp": ((frontal, profile, None), (frontal, profile)),
        "agedb_30": ((frontal, frontal, aged), (frontal, frontal)),
    }
    out: dict[str, Any] = {"protocol": f"{FOLDS}-fold, best threshold on the other folds; up to {n_pairs} pairs each"}
    for name, ((a, b, cond), (c, d)) in sets.items():
        si, sj = _draw(labels, a, b, True, n_pairs, rng, cond)
        di, dj = _draw(labels, c, d, False, si.size, rng)
        twin_acc = None
        if si.size >= 10 * FOLDS and di.size == si.size:
            twin_acc = round(verification_accuracy((face[si] * face[sj]).sum(1), (face[di] * face[dj]).sum(1)), 2)
        out[name] = {"twin": twin_acc, "published": PUBLISHED[name], "pairs": int(si.size)}
    # do profiles of different people gather? (a pose offset shared by everyone pulls them together)
    for name, ok in (("frontal", frontal), ("profile", profile)):
        di, dj = _draw(labels, ok, ok, False, n_pairs, rng)
        cos = (face[di] * face[dj]).sum(1)
        out[f"{name}_impostor_median_cos"] = round(float(np.median(cos)), 3) if cos.size else None
    ff_twin, ff_pub = out["cfp_ff"]["twin"], PUBLISHED["cfp_ff"]
    for name in sets:
        t = out[name]["twin"]
        out[name]["error_vs_ff"] = {
            "twin": round((100 - t) / (100 - ff_twin), 1) if t is not None and ff_twin is not None and ff_twin < 100
            else None,
            "published": round((100 - PUBLISHED[name]) / (100 - ff_pub), 1),
        }  # fmt: skip
    return out
