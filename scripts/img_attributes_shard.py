"""Rule attributes_shard: gender, age, expression and yaw of one shard's faces."""

from clipcluster.images.image_pipeline import attribute_backend, attributes_shard, read_faces_shard, read_shard_rows
from clipcluster.images.image_sources import ImageSource
from clipcluster.runlog import timed, to_log_file

log = to_log_file(snakemake.log[0])
p = snakemake.params
rows = read_shard_rows(snakemake.input.index, p.shard_size, int(snakemake.wildcards.shard))
faces = read_faces_shard(snakemake.input.faces, len(rows))
backend = attribute_backend(p.attributes, p.clip, snakemake.input.get("prompts"), p.seed, log)
with timed(f"attributes ({backend.name})", log):
    n = attributes_shard(rows, faces, ImageSource(p.source, p.images), backend, snakemake.output[0])
log.info("%d faces", n)
