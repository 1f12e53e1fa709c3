"""Rule train_peer: FaceT's or MHC's learned edge scorer on the labelled training part, checkpointed."""

import shutil

from clipcluster.atomic import write_json
from clipcluster.clip_cluster.pipeline import checkpoint_dir, input_stamps
from clipcluster.features import l2_normalize
from clipcluster.io import load_parts
from clipcluster.peers.pipeline import save_peer_model, train_peer
from clipcluster.runlog import timed, to_log_file

log = to_log_file(snakemake.log[0])
inp, p, peer = snakemake.input, snakemake.params, snakemake.wildcards.peer
ckpt = checkpoint_dir(p.checkpoints, cfg=p.cfg, seed=p.seed, dim=p.dim, inputs=input_stamps(inp))
log.info("checkpoints in %s (resumed from there after a kill)", ckpt)
feats, labels = load_parts([inp.face], [inp.meta], p.dim)
feats = l2_normalize(feats, where=inp.face)
with timed(f"train {peer}", log) as t:
    model, history = train_peer(
        peer, feats, labels, {**p.cfg, "feat_dim": p.dim}, checkpoint_dir=ckpt, seed=p.seed,
        threads=snakemake.threads, device=p.device, progress=True,
    )  # fmt: skip
extra = {"train_seconds": t["seconds"], "epochs": len(history)}
save_peer_model(snakemake.output.model, model, extra)
shutil.copyfile(ckpt / "history.jsonl", snakemake.output.history)
write_json(snakemake.output.report, {"peer": peer, **extra, "final": history[-1] if history else None})
