"""Rule pretrain_B: the space transfer B on same-identity pairs of the training part, then frozen."""

from clipcluster.atomic import write_json
from clipcluster.clip_cluster.pipeline import checkpoint_dir, input_stamps, load_data, pretrain_transfer, save_transfer
from clipcluster.runlog import timed, to_log_file

log = to_log_file(snakemake.log[0])
inp, p = snakemake.input, snakemake.params
ckpt = checkpoint_dir(p.checkpoints, cfg=p.cfg, seed=p.seed, dim=p.dim, inputs=input_stamps(inp))
log.info("checkpoints in %s (resumed from there after a kill)", ckpt)
data = load_data([inp.face], [inp.meta], [inp.clip], [inp.targets], dim=p.dim)
with timed("pretrain B", log) as t:
    model, report = pretrain_transfer(
        data, p.cfg, checkpoint_dir=ckpt, seed=p.seed, threads=snakemake.threads, device=p.device
    )
report["seconds"] = round(t["seconds"], 2)
save_transfer(snakemake.output.model, model, report)
write_json(snakemake.output.report, report)
