"""Diagnostic: what chains single-linkage clustering on a twin part, without building its kNN graph.

DBSCAN and single-linkage HAC merge two identities as soon as one photo of each is above their cosine threshold
(0.75 and 0.74 in the default config). This script generates one part of a twin preset, links two identities when
any pair of their photos reaches a threshold (each identity against the 30 others nearest its mean photo), and
reports the linked identity pairs, the components they form, the largest components' share of the photos and the
pairwise precision those components would give with every identity kept whole (an upper bound on single
linkage's: the real runs also split identities). For the two largest components it prints their identity count and the
median age of their identities, so a component of children or of the old shows. Last, the part's face
verification (the twin card's LFW / CFP / AgeDB-30 analogues) and the median cosine of two different people's
photos, among children (< 15 years), the old (> 65) and everyone.

    python benchmarks/diagnose_twin_chaining.py --preset ms1m                                  # ~1.5 min, 1 core
    python benchmarks/diagnose_twin_chaining.py --preset ms1m --set face_age=0.5 face_age_id=1.2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from twin_landscape import parse_overrides  # noqa: E402  (this folder)

from clipcluster.twin.generate import generate_part, twin_params  # noqa: E402
from clipcluster.twin.verification import verification_block  # noqa: E402

CANDIDATES = 30  # other identities checked per identity (nearest by mean photo)


def identity_links(face: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each identity (rows ``starts[j]:ends[j]`` of ``face``, sorted by identity), its ``CANDIDATES`` nearest
    others by mean photo and the highest photo-pair cosine with each: (candidates, best), both n_ids x CANDIDATES
    (fewer where there are fewer identities)."""
    means = np.add.reduceat(face, starts)
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    sim = means @ means.T
    np.fill_diagonal(sim, -2.0)
    n_cand = min(CANDIDATES, len(starts) - 1)
    cand = np.argsort(-sim, axis=1, kind="stable")[:, :n_cand]
    ft = torch.from_numpy(face)
    best = np.empty(cand.shape, np.float32)
    for a in range(len(starts)):
        fa = ft[starts[a] : ends[a]]
        for c, b in enumerate(cand[a]):
            best[a, c] = float((fa @ ft[starts[b] : ends[b]].T).max())
    return cand, best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="ms1m")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--part", type=int, default=1)
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="twin parameter overrides")
    ap.add_argument("--thresholds", type=float, nargs="+", default=[0.74, 0.75], help="HAC's and DBSCAN's cosine")
    args = ap.parse_args()
    over = parse_overrides(args.set)
    t0 = time.perf_counter()
    part = generate_part(twin_params(args.preset, args.seed, over or None), args.part)
    order = np.argsort(part.labels, kind="stable")
    face, attrs = np.ascontiguousarray(part.face[order]), part.attributes.iloc[order].reset_index(drop=True)
    _, labels = np.unique(part.labels[order], return_inverse=True)
    n_ids = int(labels.max()) + 1
    starts = np.searchsorted(labels, np.arange(n_ids))
    ends = np.searchsorted(labels, np.arange(n_ids), "right")
    sizes = (ends - starts).astype(np.float64)
    cand, best = identity_links(face, starts, ends)
    age = attrs["true_age"].to_numpy(np.float64)
    id_age = np.add.reduceat(age, starts) / sizes
    print(f"# {args.preset} seed {args.seed} part{args.part}, overrides {over}: {len(face)} photos, {n_ids} "
          f"identities ({time.perf_counter() - t0:.0f} s)")  # fmt: skip
    for thr in args.thresholds:
        a, c = np.nonzero(best >= thr)
        graph = coo_matrix((np.ones(a.size), (a, cand[a, c])), shape=(n_ids, n_ids))
        _, comp = connected_components(graph, directed=False)
        comp_photos = np.bincount(comp, weights=sizes)
        precision = 100.0 * (sizes**2).sum() / (comp_photos**2).sum()
        top = np.argsort(comp_photos)[::-1][:2]
        print(f"cosine >= {thr}: {a.size} identity pairs linked; largest components "
              f"{', '.join(f'{100 * comp_photos[t] / sizes.sum():.1f} %' for t in top)} of the photos; pairwise "
              f"precision with identities whole {precision:.1f}")  # fmt: skip
        for t in top:
            members = np.flatnonzero(comp == t)
            print(f"  component of {members.size} identities: median identity age {np.median(id_age[members]):.1f}"
                  f" (all {np.median(id_age):.1f})")  # fmt: skip
    block = verification_block(face, attrs, labels, np.random.default_rng(0))
    accs = {k: v["twin"] for k, v in block.items() if isinstance(v, dict)}
    rng = np.random.default_rng(1)

    def impostor_median(mask: np.ndarray) -> float | None:
        idx = np.flatnonzero(mask)
        if idx.size == 0:
            return None  # no photo in that age range (a tiny part)
        i, j = rng.choice(idx, 20_000), rng.choice(idx, 20_000)
        keep = labels[i] != labels[j]
        return round(float(np.median((face[i[keep]] * face[j[keep]]).sum(1))), 3)

    print(f"verification (twin): {accs}; published (ArcFace R100): "
          f"{ {k: v['published'] for k, v in block.items() if isinstance(v, dict)} }")  # fmt: skip
    print(f"median cosine of two people's photos: children {impostor_median(age < 15)}, old "
          f"{impostor_median(age > 65)}, anyone {impostor_median(age >= 0)}")  # fmt: skip


if __name__ == "__main__":
    main()
