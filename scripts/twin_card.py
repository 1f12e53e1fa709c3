"""Rule twin_card: the twin's parameters plus statistics measured on what it generated (one test part)."""

import numpy as np
import pandas as pd

from clipcluster.io import read_bin, read_meta
from clipcluster.runlog import timed, to_log_file
from clipcluster.twin.card import twin_card, write_twin_card
from clipcluster.twin.generate import CLIP_DIM, FACE_DIM, TwinPart, twin_params

log = to_log_file(snakemake.log[0])
cfg = snakemake.params.twin
params = twin_params(cfg["preset"], cfg["seed"], cfg["overrides"])
inp = snakemake.input

# Sizes over every part (labels only); everything else on one test part's full arrays.
labels_by_part = {i: read_meta(m) for i, m in enumerate(inp.metas)}
card_index = snakemake.params.parts.index(snakemake.params.card_part)
labels = labels_by_part[card_index]
part = TwinPart(
    face=read_bin(inp.face, FACE_DIM, labels.size),
    clip=read_bin(inp.clip, CLIP_DIM, labels.size),
    labels=labels,
    attributes=pd.read_parquet(inp.attributes),
)
with np.load(inp.prompts) as z:
    table = pd.DataFrame({"text": z["texts"], "gender": z["genders"], "kind": z["kinds"], "value": z["values"]})
    emb = z["emb"]
with timed("twin card", log):
    card = twin_card(params, part, labels_by_part, text=(table, emb), seed=snakemake.params.seed)
write_twin_card(card, snakemake.output.json, snakemake.output.md, snakemake.output.png)
log.info("wrote %s", snakemake.output.md)
