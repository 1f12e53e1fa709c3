"""Rule evaluate: metrics of one method's labels on one subset, merged with the method's time."""

import json

import numpy as np

from clipcluster.atomic import write_json
from clipcluster.evaluation.metrics import evaluate
from clipcluster.io import read_meta
from clipcluster.runlog import to_log_file

log = to_log_file(snakemake.log[0])
with open(snakemake.input.info) as fh:
    info = json.load(fh)
gt = np.concatenate([read_meta(m) for m in snakemake.input.metas])
# the rule's method name wins over the clustering's own (infomap_tuned runs Infomap alone at another floor)
out = {**info, "method": snakemake.wildcards.method, "subset": snakemake.wildcards.subset}
if info.get("skipped"):
    log.info("skipped: %s", info["skipped"])
else:
    pred = read_meta(snakemake.input.labels, expected_rows=gt.shape[0])
    out.update(evaluate(gt, pred))
    log.info("%s", {k: out[k] for k in ("pairwise_f", "bcubed_f", "nmi", "seconds")})
write_json(snakemake.output[0], out)
