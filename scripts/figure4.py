"""Rule figure4: rank-1 identification vs pseudo-labelled training data (CLIP-Cluster Figure 4), figure + table."""

import json

from clipcluster.recognition.pipeline import raw_rank1
from clipcluster.reporting import figures, tables
from clipcluster.runlog import to_log_file

log = to_log_file(snakemake.log[0])
p = snakemake.params
runs = [json.load(open(path)) for path in snakemake.input.runs]
ident = list(snakemake.input.ident)
# the references: the view the network reads, and on the twin's CLIP view also the face features (the ceiling a
# recognition model reaches, which the paper's ResNet approaches from pixels)
refs = {}
if p.backbone != "resnet" and p.view == "clip":
    refs["input CLIP embeddings, no training (reference)"] = raw_rank1(ident, dim=p.dim, view="clip")
refs["input face features, no training (reference)"] = raw_rank1(ident, dim=p.face_dim, view="face")
display = {m: tables.method_info(m).display for m in {r["labels"] for r in runs}}
display["truth"] = "ground truth (upper bound)"
if p.backbone == "resnet":
    network = "an IResNet on the aligned photos"
    reads = "The network is an IResNet trained on the aligned photos, as the paper's ResNet."
elif p.view == "clip":
    network = "a network on the CLIP view"
    reads = (
        "The network reads the CLIP image embeddings, where identity is weak and must be learned (the twin's "
        "stand-in for the paper's pixels; recognition.view: face trains on the face features instead)."
    )
else:
    what = "twin face features" if p.source == "twin" else "face features"
    network, reads = f"an MLP on {what}", f"The network reads {what} (the paper trains a ResNet on photos)."
title = f"Figure 4 ({p.dataset}): rank-1 vs pseudo-labelled data; {network}, {runs[0]['distractors']:,} distractors"
figures.figure4(runs, refs, display, snakemake.output.png, snakemake.output.pdf, title)
df = figures.figure4_table(runs, refs, display)
notes = [
    f"Measured: rank-1 identification (%) of an embedding network trained with ArcFace on part0's labels plus the "
    f"column's subset labelled by the row's clusters (clusters under the minimum size dropped, counted in "
    f"dropped_singletons), on {runs[0]['identities']} probe identities ({runs[0]['probe_photos']} photos, "
    f"{runs[0]['pairs']:,} probe-gallery pairs) against {runs[0]['distractors']:,} distractors, MegaFace "
    "challenge 1's protocol. The column header's x is the subset's size over part0's.",
    reads + " The reference rows are the input features' own rank-1, without training.",
    "The 'quoted' row holds the two points CLIP-Cluster's text states (58.2 with part0 alone, 80.5 with all 5.21M "
    "images pseudo-labelled) on real MegaFace with 1M distractors; not measured here, not comparable in scale.",
]
stem = snakemake.output.csv.removesuffix(".csv")
tables.write_table(df, stem, title, notes)
log.info("figure 4: %d runs, references %s", len(runs), {k: round(v["rank1"], 4) for k, v in refs.items()})
