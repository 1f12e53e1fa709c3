"""Rule tune_peer: FaceT's link tau or MHC's density-peak tau chosen on the training part's kNN graph."""

from clipcluster.evaluation.tuning import write_sweep
from clipcluster.evaluation.tuning_scores import tune_edge_threshold
from clipcluster.features import l2_normalize
from clipcluster.graph.knn import load_knn
from clipcluster.io import load_parts
from clipcluster.peers.pipeline import load_peer_model, peer_scores
from clipcluster.runlog import to_log_file
from clipcluster.training.loop import resolve_device

log = to_log_file(snakemake.log[0])
inp, p, peer = snakemake.input, snakemake.params, snakemake.wildcards.peer
feats, truth = load_parts([inp.face], [inp.meta], p.dim)
feats = l2_normalize(feats, where=inp.face)
graph = load_knn(inp.knn)
model = load_peer_model(inp.model).to(resolve_device(p.device, log))
scores = peer_scores(model, feats, graph.nbrs, batch_size=p.opts["infer_batch"], threads=snakemake.threads)
result = tune_edge_threshold(
    graph.nbrs, scores, graph.sims, truth, p.grid, refine=peer, fixed=p.opts["tau"], seed=p.seed,
    mhc_eps=p.opts.get("eps", 0.05), progress=log.info,
)  # fmt: skip
log.info("tau chosen on %s: %g (pairwise F %.2f; the fixed %g: %.2f)", p.part, result["chosen"],
         result["chosen_f"], result["fixed"], result["fixed_f"])  # fmt: skip
write_sweep(snakemake.output[0], result, method=peer, part=p.part, samples=int(truth.size), k=scores.shape[1])
