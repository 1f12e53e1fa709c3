"""Rule infer_peer: a trained peer (FaceT or MHC) clusters a whole subset; labels and its time (kNN excluded)."""

import numpy as np

from clipcluster.atomic import write_json
from clipcluster.evaluation.tuning import read_chosen
from clipcluster.features import l2_normalize
from clipcluster.graph.knn import load_knn
from clipcluster.io import file_rows, load_parts, write_meta
from clipcluster.peers.pipeline import infer_peer, load_peer_model
from clipcluster.runlog import to_log_file
from clipcluster.training.loop import resolve_device

log = to_log_file(snakemake.log[0])
inp, p = snakemake.input, snakemake.params
opts, tau_source = dict(p.opts), f"fixed (methods.{snakemake.wildcards.peer}.tau)"
if inp.get("tuning"):
    opts["tau"], tau_source = read_chosen(inp.tuning, "tau"), f"chosen on the training part ({inp.tuning})"
log.info("tau %g: %s", opts["tau"], tau_source)
feats, truth = load_parts(list(inp.bins), list(inp.metas), p.dim)  # truth: for the edge-quality report only
feats = l2_normalize(feats, files=file_rows(list(inp.bins), p.dim))
graph = load_knn(inp.knn)
model = load_peer_model(inp.model).to(resolve_device(p.device, log))  # CUDA when present (device: auto)
labels, stats = infer_peer(model, feats, graph.nbrs, graph.sims, opts, threads=snakemake.threads, truth=truth)
peer, subset = snakemake.wildcards.peer, snakemake.wildcards.subset
log.info("%s on %s: %d clusters in %.2f s (kNN excluded): %s", peer, subset, np.unique(labels).size,
         stats["total_seconds"], stats)  # fmt: skip
write_meta(snakemake.output.labels, labels)
info = {
    "method": peer,
    "subset": subset,
    "seconds": stats["total_seconds"],
    "params": opts,
    "tau_source": tau_source,
    "skipped": None,
    **{k: v for k, v in stats.items() if k != "total_seconds"},
    "knn_seconds": graph.info.get("seconds"),
    "knn_index": graph.info.get("index"),
}
if "recall" in graph.info:
    info["knn_recall"] = graph.info["recall"]
write_json(snakemake.output.info, info)
