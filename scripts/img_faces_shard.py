"""Rule faces_shard: detection, landmarks and face features of one shard of a part's photos."""

from clipcluster.images.faces import FaceDetector, make_embedder
from clipcluster.images.image_pipeline import faces_shard, read_shard_rows
from clipcluster.images.image_sources import ImageSource
from clipcluster.runlog import timed, to_log_file

log = to_log_file(snakemake.log[0])
p = snakemake.params
cfg = p.faces
rows = read_shard_rows(snakemake.input.index, cfg["shard_size"], int(snakemake.wildcards.shard))
source = ImageSource(p.source, p.images)
detector = FaceDetector(aligned=cfg["aligned"], upsample=cfg["upsample"])
embedder = make_embedder(cfg["backend"], cfg["onnx_model"], cfg["batch_size"])
with timed(f"faces of {len(rows)} photos", log):
    counts = faces_shard(rows, source, detector, embedder, snakemake.output[0], cfg["batch_size"])
log.info("%s", counts)
