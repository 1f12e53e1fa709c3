"""Rule twin_prompts: the twin's CLIP text embeddings of every (gender, attribute value) prompt."""

from clipcluster.runlog import to_log_file
from clipcluster.twin.generate import twin_params, write_text_embeddings

log = to_log_file(snakemake.log[0])
cfg = snakemake.params.twin
write_text_embeddings(twin_params(cfg["preset"], cfg["seed"], cfg["overrides"]), snakemake.output[0])
log.info("wrote %s", snakemake.output[0])
