"""Rule gather_part: a part's shards into its features, labels, CLIP embeddings and attributes."""

from clipcluster.images.image_pipeline import gather_part
from clipcluster.images.split import read_part
from clipcluster.runlog import to_log_file

log = to_log_file(snakemake.log[0])
inp, out = snakemake.input, snakemake.output
summary = gather_part(
    read_part(inp.index),
    snakemake.params.shard_size,
    inp.faces,
    inp.clip,
    inp.attributes,
    dict(out.items()),
    feature_dim=snakemake.params.feature_dim,
)
log.info("%s", summary)
if summary["no_face"] or summary["unreadable"]:
    log.warning(
        "%d photos without a face and %d unreadable left out; listed in %s",
        summary["no_face"],
        summary["unreadable"],
        out.skipped,
    )
