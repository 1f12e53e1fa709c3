# Config validation, the dataset's file layout, and the helpers every rule file uses.

import re
import sys
from pathlib import Path

# The package sits beside the Snakefile; make it importable even where it was not pip-installed.
sys.path.insert(0, str(Path(workflow.basedir)))

from clipcluster.config import ConfigError, validate  # noqa: E402

try:
    _resolved = validate(config)
except ConfigError as err:
    raise WorkflowError(str(err)) from None
config.clear()
config.update(_resolved)

DS = config["dataset"]
DSCFG = config["datasets"][DS]
RES = f"results/{DS}"
PARTS = DSCFG["parts"]
TRAIN_PART = PARTS[0]
SUBSETS = config["subsets"]
METHODS = [m for m, opts in config["methods"].items() if opts["enabled"]]
TABLE3_SUBSET = config["tables"]["table3_subset"]
TABLE5_SUBSETS = config["tables"]["table5_subsets"]


wildcard_constraints:
    part="|".join(re.escape(p) for p in PARTS),
    subset="|".join(re.escape(s) for s in SUBSETS),
    k="[0-9]+",


def _feature_file(kind, part):
    """Path of a part's face features (kind="bin") or labels (kind="meta")."""
    if DSCFG["source"] == "twin":
        return f"{RES}/faces/{part}.bin" if kind == "bin" else f"{RES}/parts/{part}.meta"
    f = DSCFG["features"]
    split = "train" if part == TRAIN_PART else "test"
    return f[kind].format(root=f["root"], part=part, split=split)


def face_bin(part):
    return _feature_file("bin", part)


def part_meta(part):
    return _feature_file("meta", part)


def subset_bins(wildcards):
    return [face_bin(p) for p in SUBSETS[wildcards.subset]]


def subset_metas(wildcards):
    return [part_meta(p) for p in SUBSETS[wildcards.subset]]


def knn_file(method):
    """The subset's cached kNN graph; every method reads its first methods.<method>.k columns of it."""
    return f"{RES}/knn/{{subset}}_k{config['knn']['k']}.npz"


def method_params(method):
    """A method's options as its rule passes them on (everything but `enabled`)."""
    return {k: v for k, v in config["methods"][method].items() if k != "enabled"}


def mem_mb_for(factor, base=1000):
    """Memory request that grows with the input size (for SLURM; ignored by local runs)."""
    return lambda wildcards, input: int(base + factor * input.size_mb)


def all_targets():
    targets = [
        *expand(f"{RES}/tables/table3{{ext}}", ext=[".csv", ".md", ".tex"]),
        *expand(f"{RES}/tables/table5{{ext}}", ext=[".csv", ".md", ".tex"]),
    ]
    if DSCFG["source"] == "twin":
        targets += [f"{RES}/twin_card.json", f"{RES}/twin_card.md", f"{RES}/twin_card.png", f"{RES}/prompts/text.npz"]
    return targets
