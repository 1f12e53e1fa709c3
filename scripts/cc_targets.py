"""Rule hallucination_targets: per sample the M = 10 (source, reversed) prompt rows of its hallucinations."""

from clipcluster.clip_cluster.pipeline import read_prompts, write_targets
from clipcluster.runlog import to_log_file

log = to_log_file(snakemake.log[0])
table, _ = read_prompts(snakemake.input.prompts)
n = write_targets(snakemake.input.attributes, table, snakemake.output[0])
log.info("%d samples x 10 hallucination targets -> %s", n, snakemake.output[0])
