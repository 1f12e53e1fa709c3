"""Rule split_parts: the image index of the photos, split into identity-disjoint parts."""

from clipcluster.images.image_pipeline import split_dataset
from clipcluster.runlog import to_log_file

log = to_log_file(snakemake.log[0])
p = snakemake.params
summary = split_dataset(
    p.source, p.images, p.split, p.parts, snakemake.output.index, snakemake.output.parts, snakemake.output.summary
)
log.info("%s", summary)
