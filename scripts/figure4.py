"""Rule figure4: rank-1 identification vs pseudo-labelled training data (CLIP-Cluster Figure 4), figure + table."""

import json

from clipcluster.recognition.pipeline import raw_rank1
from clipcluster.reporting import figures, tables
from clipcluster.runlog import to_log_file

log = to_log_file(snakemake.log[0])
p = snakemake.params
runs = [json.load(open(path)) for path in snakemake.input.runs]
raw = raw_rank1(list(snakemake.input.ident), dim=p.dim)
display = {m: tables.method_info(m).display for m in {r["labels"] for r in runs}}
display["truth"] = "ground truth (upper bound)"
what = "twin features" if p.source == "twin" else "face features"
network = "an IResNet on the aligned photos" if p.backbone == "resnet" else f"an MLP on {what}"
title = f"Figure 4 ({p.dataset}): rank-1 vs pseudo-labelled data; {network}, {runs[0]['distractors']:,} distractors"
figures.figure4(runs, raw, display, snakemake.output.png, snakemake.output.pdf, title)
df = figures.figure4_table(runs, raw, display)
notes = [
    f"Measured: rank-1 identification (%) of an embedding network trained with ArcFace on part0's labels plus the "
    f"column's subset labelled by the row's clusters (clusters under the minimum size dropped, counted in "
    f"dropped_singletons), on {runs[0]['identities']} probe identities ({runs[0]['probe_photos']} photos, "
    f"{runs[0]['pairs']:,} probe-gallery pairs) against {runs[0]['distractors']:,} distractors, MegaFace "
    "challenge 1's protocol. The column header's x is the subset's size over part0's.",
    (
        "The network is an IResNet trained on the aligned photos, as the paper's ResNet."
        if p.backbone == "resnet"
        else f"The network reads {what} (the twin has no images; the paper trains a ResNet on photos)."
    )
    + " The reference row is the input face features' own rank-1, without training.",
    "The 'quoted' row holds the two points CLIP-Cluster's text states (58.2 with part0 alone, 80.5 with all 5.21M "
    "images pseudo-labelled) on real MegaFace with 1M distractors; not measured here, not comparable in scale.",
]
stem = snakemake.output.csv.removesuffix(".csv")
tables.write_table(df, stem, title, notes)
log.info("figure 4: %d runs, input-feature rank-1 %.4f", len(runs), raw["rank1"])
