"""Rule clip_shard: CLIP image embeddings of one shard's aligned faces."""

from clipcluster.images.clip_encoders import encode_images, load_clip, resolve_device
from clipcluster.images.image_pipeline import clip_shard, read_faces_shard, read_shard_rows
from clipcluster.images.image_sources import ImageSource
from clipcluster.runlog import timed, to_log_file

log = to_log_file(snakemake.log[0])
p = snakemake.params
rows = read_shard_rows(snakemake.input.index, p.shard_size, int(snakemake.wildcards.shard))
faces = read_faces_shard(snakemake.input.faces, len(rows))
encoder = load_clip(p.clip["model"], p.clip["pretrained"], device=resolve_device(p.clip["device"], log), seed=p.seed)
log.info("CLIP %s, weights %s", p.clip["model"], encoder.weights)
with timed("CLIP image embeddings", log):
    n = clip_shard(
        rows,
        faces,
        ImageSource(p.source, p.images),
        lambda crops: encode_images(encoder, crops, p.clip["batch_size"]),
        snakemake.output[0],
        p.clip["batch_size"],
    )
log.info("%d faces embedded", n)
