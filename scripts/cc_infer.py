"""Rule infer_clipcluster: whole-graph edge scores on a subset, prune at tau, refine; labels and times."""

import numpy as np

from clipcluster.atomic import write_json
from clipcluster.clip_cluster.pipeline import infer, load_inference_data, load_model, read_prompts
from clipcluster.evaluation.tuning import read_chosen
from clipcluster.graph.knn import load_knn_columns
from clipcluster.io import write_meta
from clipcluster.runlog import to_log_file
from clipcluster.training.loop import resolve_device

log = to_log_file(snakemake.log[0])
inp, p = snakemake.input, snakemake.params
tau, tau_source = float(p.opts["tau"]), "fixed (methods.clipcluster.tau)"
if inp.get("tuning"):
    tau, tau_source = read_chosen(inp.tuning, "tau"), f"chosen on the training part ({inp.tuning})"
log.info("tau %g: %s", tau, tau_source)
_, text_emb = read_prompts(inp.prompts)
# CLIP rows stay on disk (read per batch), targets int16; only the first k kNN columns, ids int32
data = load_inference_data(list(inp.bins), list(inp.metas), list(inp.clips), list(inp.targets), dim=p.dim)
k = p.opts["k"]
nbrs, sims, knn_info = load_knn_columns(inp.knn, k)
model = load_model(inp.model).to(resolve_device(p.opts["device"], log))  # CUDA when present (device: auto)
labels, stats = infer(
    model, data, text_emb, nbrs, sims, refine=p.refine, tau=tau, batch_size=p.opts["infer"]["batch_size"],
    seed=p.seed, threads=snakemake.threads, truth=data.labels,  # truth: the edge-quality report only
)  # fmt: skip
seconds = stats["score_seconds"] + stats["refine_seconds"]
name, subset = snakemake.wildcards.ccmethod, snakemake.wildcards.subset
log.info("%s on %s: %d clusters in %.2f s (kNN excluded)", name, subset, np.unique(labels).size, seconds)
auc = stats["edge_auc"]
log.info("edge scores vs cosine on %d kNN edges (%.1f%% positive): ROC AUC %s vs %s", auc["edges"],
         100 * (auc["positive_rate"] or 0), auc["auc_model"], auc["auc_cosine"])  # fmt: skip
write_meta(snakemake.output.labels, labels)
info = {
    "method": name,
    "subset": subset,
    "seconds": seconds,
    "params": {"k": k, "tau": tau, "refine": p.refine, "model": p.model_name},
    "tau_source": tau_source,
    "skipped": None,
    "score_seconds": stats["score_seconds"],
    "refine_seconds": stats["refine_seconds"],
    "knn_seconds": knn_info.get("seconds"),
    "knn_index": knn_info.get("index"),
    "edge_auc": auc,
}
if "recall" in knn_info:
    info["knn_recall"] = knn_info["recall"]
write_json(snakemake.output.info, info)
