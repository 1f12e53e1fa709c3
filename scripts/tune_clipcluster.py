"""Rule tune_clipcluster: a CLIP-Cluster model's pruning tau chosen on the training part's kNN graph."""

from clipcluster.clip_cluster.pipeline import load_data, load_model, part_edge_scores, read_prompts
from clipcluster.evaluation.tuning import write_sweep
from clipcluster.evaluation.tuning_scores import tune_edge_threshold
from clipcluster.graph.knn import load_knn_columns
from clipcluster.runlog import to_log_file
from clipcluster.training.loop import resolve_device

log = to_log_file(snakemake.log[0])
inp, p = snakemake.input, snakemake.params
_, text_emb = read_prompts(inp.prompts)
data = load_data([inp.face], [inp.meta], [inp.clip], [inp.targets], dim=p.dim)
truth = data.labels
k = int(p.opts["k"])
nbrs, sims, _ = load_knn_columns(inp.knn, k)
model = load_model(inp.model).to(resolve_device(p.opts["device"], log))
scores = part_edge_scores(model, data, text_emb, nbrs, sims, batch_size=p.opts["infer"]["batch_size"],
                          threads=snakemake.threads)  # fmt: skip
result = tune_edge_threshold(
    nbrs, scores, sims, truth, p.grid, refine=p.refine, fixed=p.opts["tau"], seed=p.seed, progress=log.info
)
log.info("tau chosen on %s: %g (pairwise F %.2f; the paper's %g: %.2f)", p.part, result["chosen"],
         result["chosen_f"], result["fixed"], result["fixed_f"])  # fmt: skip
write_sweep(snakemake.output[0], result, method=snakemake.wildcards.ccmethod, refine=p.refine, part=p.part,
            samples=int(truth.size), k=k)  # fmt: skip
