"""Rule twin_part: one part of the MS1M twin (face features, CLIP embeddings, labels, attributes)."""

from clipcluster.runlog import timed, to_log_file
from clipcluster.twin.generate import twin_params, write_part

log = to_log_file(snakemake.log[0])
cfg = snakemake.params.twin
params = twin_params(cfg["preset"], cfg["seed"], cfg["overrides"])
with timed(f"twin part {snakemake.wildcards.part}", log):
    write_part(
        params,
        snakemake.params.part_index,
        face_bin=snakemake.output.face,
        clip_bin=snakemake.output.clip,
        meta=snakemake.output.meta,
        attributes_parquet=snakemake.output.attributes,
    )
