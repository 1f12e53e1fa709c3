"""Rule faces_report: photos with a face per part, the attribute distribution, and a contact sheet of clusters."""

import json

import pandas as pd

from clipcluster.atomic import atomic_path
from clipcluster.images.face_figures import attribute_figure, contact_sheet, faces_table, pick_clusters
from clipcluster.images.image_sources import ImageSource
from clipcluster.io import read_meta
from clipcluster.runlog import to_log_file

log = to_log_file(snakemake.log[0])
inp, out, p = snakemake.input, snakemake.output, snakemake.params
summaries = {}
for part, path in zip(p.parts, inp.summaries, strict=True):
    with open(path) as fh:
        summaries[part] = json.load(fh)
table = faces_table(summaries)
with atomic_path(out.csv) as tmp:
    table.to_csv(tmp)
with atomic_path(out.md) as tmp:
    tmp.write_text(table.to_markdown() + "\n")
log.info("\n%s", table.to_string())

attributes = pd.concat([pd.read_parquet(a) for a in inp.attributes], ignore_index=True)
counts = attribute_figure(attributes, out.attributes, "Estimated attributes, all parts")
log.info("attribute counts: %s", counts)

kept = pd.concat([pd.read_parquet(k) for k in inp.kept], ignore_index=True)
pred = read_meta(inp.labels, expected_rows=len(kept))
source = ImageSource(p.source, p.images)
clusters = pick_clusters(pred, kept["label"].to_numpy(), 8, p.seed)
drawn = contact_sheet(
    clusters,
    kept,
    source.decode,
    out.sheet,
    f"{p.method} clusters on {p.subset}: the largest, the least pure, then random ones "
    "(green: the cluster's majority identity, red: another)",
)
log.info("contact sheet: %d clusters, %d faces", len(clusters), drawn)
