"""Rule figure_training_curves: the loss curves of every trained CLIP-Cluster model variant."""

from clipcluster.figures import read_history, training_curves
from clipcluster.runlog import to_log_file

log = to_log_file(snakemake.log[0])
hist = {v: read_history(p) for v, p in zip(snakemake.params.variants, snakemake.input.histories, strict=True)}
training_curves(hist, snakemake.output.png, snakemake.output.pdf)
log.info("wrote %s", snakemake.output.png)
