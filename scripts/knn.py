"""Rule knn: the subset's kNN graph (neighbours exclude self) and its build time, recall when approximate."""

from clipcluster.atomic import write_json
from clipcluster.features import l2_normalize
from clipcluster.graph.knn import build_knn, measure_recall, save_knn
from clipcluster.io import file_rows, load_parts
from clipcluster.runlog import to_log_file

log = to_log_file(snakemake.log[0])
opts = snakemake.params.knn
k = int(snakemake.wildcards.k)

feats, _ = load_parts(snakemake.input.bins, snakemake.input.metas, snakemake.params.dim)
feats = l2_normalize(feats, files=file_rows(snakemake.input.bins, snakemake.params.dim))
log.info("subset %s: %d x %d features, k=%d", snakemake.wildcards.subset, *feats.shape, k)

graph = build_knn(
    feats,
    k,
    index=opts["index"],
    exact_max_n=opts["exact_max_n"],
    nprobe=opts["nprobe"],
    seed=snakemake.params.seed,
    threads=snakemake.threads,
)
info = dict(graph.info)
if info.get("index") != "exact" and opts["recall_queries"] > 0:
    info["recall"] = measure_recall(feats, graph, n_queries=opts["recall_queries"], seed=snakemake.params.seed)
    log.info("recall of the %s index against exact search: %.4f", info["index"], info["recall"])
save_knn(snakemake.output.graph, graph)
write_json(snakemake.output.info, info)
