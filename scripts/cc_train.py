"""Rule train_clipcluster: the end-to-end model (or a Table 1 / no-hallucination variant) on the training part."""

import shutil

from clipcluster.atomic import write_json, write_text
from clipcluster.clip_cluster.model import model_config
from clipcluster.clip_cluster.pipeline import (
    checkpoint_dir,
    input_stamps,
    load_data,
    load_transfer,
    read_prompts,
    save_model,
    train_model,
)
from clipcluster.graph.knn import load_knn_columns
from clipcluster.runlog import timed, to_log_file

log = to_log_file(snakemake.log[0])
inp, p = snakemake.input, snakemake.params
# the model's whole config, defaults included: a checkpoint of a network built from other defaults never resumes
model_keys = model_config(p.cfg["model"])
ckpt = checkpoint_dir(p.checkpoints, cfg=p.cfg, model=model_keys, seed=p.seed, dim=p.dim, inputs=input_stamps(inp))
log.info("checkpoints in %s (resumed from there after a kill)", ckpt)
_, text_emb = read_prompts(inp.prompts)
data = load_data([inp.face], [inp.meta], [inp.clip], [inp.targets], dim=p.dim)
transfer = load_transfer(inp.transfer) if inp.get("transfer") else None
nbrs, sims, _ = load_knn_columns(inp.knn, p.cfg["baseline_fit_k"])
with timed(f"train {snakemake.wildcards.variant}", log) as t:
    model, history = train_model(
        data, text_emb, transfer, p.cfg, checkpoint_dir=ckpt, seed=p.seed, threads=snakemake.threads,
        device=p.device, train_graph=(nbrs, sims),
    )  # fmt: skip
save_model(snakemake.output.model, model, {"train_seconds": t["seconds"], "epochs": len(history)})
if history:
    shutil.copyfile(ckpt / "history.jsonl", snakemake.output.history)
else:  # learned_correction=False: the pair baseline alone, nothing was trained
    write_text(snakemake.output.history, "")
write_json(snakemake.output.report, {"variant": snakemake.wildcards.variant, "train_seconds": t["seconds"],
                                    "epochs": len(history), "final": history[-1] if history else None})  # fmt: skip
