"""Rule tune_infomap: Infomap alone's similarity floor chosen on the training part's kNN graph (best pairwise F)."""

from clipcluster.evaluation.tuning import tune_infomap, write_sweep
from clipcluster.graph.knn import load_knn
from clipcluster.io import read_meta
from clipcluster.runlog import to_log_file

log = to_log_file(snakemake.log[0])
p = snakemake.params
k = int(p.opts["k"])
graph = load_knn(snakemake.input.knn)
truth = read_meta(snakemake.input.meta, expected_rows=graph.nbrs.shape[0])
result = tune_infomap(
    graph.nbrs[:, :k], graph.sims[:, :k], truth, p.grid, fixed=p.opts["sim_floor"], seed=p.seed,
    num_trials=p.opts["num_trials"], progress=log.info,
)  # fmt: skip
log.info("floor chosen on %s: %g (pairwise F %.2f; the fixed %g: %.2f)", p.part, result["chosen"],
         result["chosen_f"], result["fixed"], result["fixed_f"])  # fmt: skip
write_sweep(snakemake.output[0], result, method="infomap", part=p.part, samples=int(truth.size), k=k)
