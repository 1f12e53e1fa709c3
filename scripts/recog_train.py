"""Rule train_recognition: one Figure 4 model (part0 + a pseudo-labelled subset), then its MegaFace-style rank-1."""

import torch

from clipcluster.atomic import atomic_path, write_json
from clipcluster.clip_cluster.pipeline import checkpoint_dir, input_stamps
from clipcluster.images.image_sources import ImageSource
from clipcluster.recognition.pipeline import run, run_photos
from clipcluster.runlog import to_log_file

log = to_log_file(snakemake.log[0])
inp, p, w = snakemake.input, snakemake.params, snakemake.wildcards
# one folder per setting and input version: new pseudo-labels (another tau, a retrained model) start afresh
ckpt = checkpoint_dir(p.checkpoints, cfg=p.cfg, seed=p.seed, inputs=input_stamps(inp))
log.info("checkpoints in %s (resumed from there after a kill)", ckpt)
common = {
    "pseudo": inp.get("pseudo"),
    "cfg": p.cfg,
    "checkpoint_dir": ckpt,
    "seed": p.seed,
    "device": p.device,
    "threads": snakemake.threads,
}
if p.backbone == "resnet":
    net, metrics, history = run_photos(
        kept0=inp.kept0,
        subset_kept=list(inp.get("kept", [])),
        ident_photos=inp.ident_photos,
        source=ImageSource(p.source, p.images),
        **common,
    )
else:
    net, metrics, history = run(
        face0=inp.face0,
        meta0=inp.meta0,
        subset_faces=list(inp.get("faces", [])),
        subset_metas=list(inp.get("metas", [])),
        ident=list(inp.ident),
        dim=p.dim,
        view=p.view,
        **common,
    )
with atomic_path(snakemake.output.model) as tmp:
    torch.save(net.state_dict(), tmp)
with atomic_path(snakemake.output.history) as tmp, open(tmp, "w") as fh:
    import json

    fh.writelines(json.dumps(h) + "\n" for h in history)
write_json(snakemake.output.metrics, {"labels": w.labels, "subset": w.subset, **metrics})
