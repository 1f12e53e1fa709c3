"""Rule figure_training_curves: the loss curves of every trained CLIP-Cluster model variant and of the peers."""

from clipcluster.reporting.figures import read_history, training_curves
from clipcluster.reporting.tables import method_info
from clipcluster.runlog import to_log_file

log = to_log_file(snakemake.log[0])
inp, p = snakemake.input, snakemake.params
hist = {v: read_history(path) for v, path in zip(p.variants, inp.histories, strict=True)}
peers = {method_info(m).display: read_history(path) for m, path in zip(p.peers, inp.peer_histories, strict=True)}
training_curves(hist, snakemake.output.png, snakemake.output.pdf, peers=peers)
log.info("wrote %s", snakemake.output.png)
