"""Rules cluster_*: run one training-free clustering method on a subset; write labels and its wall time."""

from clipcluster.atomic import write_json
from clipcluster.evaluation.tuning import read_chosen
from clipcluster.graph.methods import MethodInputs, run_method
from clipcluster.io import write_meta
from clipcluster.runlog import to_log_file

log = to_log_file(snakemake.log[0])
method = snakemake.params.method
opts = dict(snakemake.params.opts)
if snakemake.input.get("tuning"):  # infomap_tuned: the floor chosen on the training part
    opts["sim_floor"] = read_chosen(snakemake.input.tuning, "sim_floor")
    log.info("similarity floor %g, chosen on the training part (%s)", opts["sim_floor"], snakemake.input.tuning)
inputs = MethodInputs(
    knn_path=snakemake.input.get("knn"),
    bins=list(snakemake.input.get("bins", [])),
    metas=list(snakemake.input.get("metas", [])),
    dim=snakemake.params.get("dim"),
)
result = run_method(method, opts, inputs, seed=snakemake.params.seed, threads=snakemake.threads)
log.info("%s on %s: %s", method, snakemake.wildcards.subset, result.summary())
write_meta(snakemake.output.labels, result.labels)
write_json(snakemake.output.info, result.info(subset=snakemake.wildcards.subset))
